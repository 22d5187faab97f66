"""Property-based API test: schemathesis generates requests from /openapi.json against the query
app on a real store holding the known topology; no answer may be a server error, and every answer
must match the documented status codes, content types and response schemas."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.result import Ok

from tests.test_query_support import ago, dsn_with_database, insert_spans, known_topology, topology_rows
from tracehouse import storage
from tracehouse.query.app import create_app
from tracehouse.query.settings import QuerySettings
from tracehouse.settings import StoreSettings

EXAMPLES_PER_OPERATION = 40


def test_api_never_fails_and_matches_its_schema(clickhouse: storage.Client, session_store_dsn: str) -> None:
    insert_spans(clickhouse, topology_rows(known_topology(), ago(300)))
    dsn = dsn_with_database(session_store_dsn, storage.database_of(clickhouse))
    app = create_app(StoreSettings(store=dsn), {}, settings=QuerySettings(rollup_enabled=False))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    results = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in results), results
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        def check(case: schemathesis.Case) -> None:
            response = case.call()
            assert response.status_code < 500, \
                f"{case.method} {case.formatted_path} {case.query}: {response.status_code} {response.text[:500]}"
            # Schema-valid free text in start/end may still be no time: 400 is right there.
            case.validate_response(response, excluded_checks=[positive_data_acceptance])

        check()
