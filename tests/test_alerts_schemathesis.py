"""Property-based test of the alerts API: schemathesis generates requests from its OpenAPI schema
against the router on a real store; no answer may be a server error, and every answer must match
the documented status codes, content types and response schemas."""

from __future__ import annotations

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.result import Ok

from tests.test_alerts_inprocess import DatabasePool
from tracehouse import storage
from tracehouse.query.alerts.router import router

EXAMPLES_PER_OPERATION = 30


def test_alerts_api_never_fails_and_matches_its_schema(clickhouse: storage.Client, session_store_dsn: str) -> None:
    app = FastAPI()
    app.include_router(router)
    app.state.store = DatabasePool(session_store_dsn, storage.database_of(clickhouse))
    # something to find: a channel and a rule
    app.state.store.client().insert(
        "tracehouse_alert_channels", [["hook", '{"type": "log"}', "api", 0, 1]],
        column_names=["name", "body", "source", "deleted", "version"])
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    assert len(operations) >= 18
    try:
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck),
                      database=None)
            def check(case: schemathesis.Case) -> None:
                response = case.call()
                assert response.status_code < 500, \
                    f"{case.method} {case.formatted_path} {case.query} {case.body!r}: " \
                    f"{response.status_code} {response.text[:500]}"
                case.validate_response(response, excluded_checks=[positive_data_acceptance])

            check()
    finally:
        app.state.store.close()
