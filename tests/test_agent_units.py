"""Pure parts of the agent: statement sanitizing, settings, Retry-After, endpoint selection."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from tracehouse.agents.dispatch import EndpointPool
from tracehouse.agents.identity import InstanceIdentity, port_from_argv
from tracehouse.agents.sanitize import sanitize_statement, strip_sql_literals
from tracehouse.agents.settings import AgentConfigError, load_agent_settings, program_name
from tracehouse.agents.transport import Outcome, SendResult, parse_retry_after


@pytest.mark.parametrize(("statement", "system", "expected"), [
    ("SELECT * FROM users WHERE email = 'ann@example.com' AND age > 42",
     "postgresql", "SELECT * FROM users WHERE email = ? AND age > ?"),
    ("SELECT 'it''s', E'a\\'b', $$dollar secret$$, $tag$x$tag$ FROM t", "postgresql", "SELECT ?, ?, ?, ? FROM t"),
    ("SELECT * FROM t2 WHERE id IN (1, 2, 3) AND code = 0xFF AND ratio = -1.5e3", "postgresql",
     "SELECT * FROM t2 WHERE id IN (?) AND code = ? AND ratio = -?"),
    ('SELECT "Name", col1 FROM "T" WHERE x = $1', "postgresql", 'SELECT "Name", col1 FROM "T" WHERE x = $1'),
    ('SELECT `a` FROM t WHERE s = "secret" AND n = 7', "mysql", "SELECT `a` FROM t WHERE s = ? AND n = ?"),
    ("INSERT INTO t VALUES (%s, %s)", "mysql", "INSERT INTO t VALUES (%s, %s)"),
    ("SELECT 1 /* it's a 'comment' */ FROM t", "sqlite", "SELECT ? /* it's a 'comment' */ FROM t"),
    ("SET session:42 hunter2", "redis", "SET ? ?"),
    ("GET ? ", "redis", "GET ?"),
])
def test_statement_literals_are_stripped(statement: str, system: str, expected: str) -> None:
    assert sanitize_statement(statement, system) == expected


def test_identifiers_with_digits_are_kept() -> None:
    assert strip_sql_literals("SELECT t1.col2 FROM table3 AS t1") == "SELECT t1.col2 FROM table3 AS t1"


def test_settings_from_otel_and_tracehouse_variables() -> None:
    settings = load_agent_settings({
        "OTEL_SERVICE_NAME": "orders",
        "OTEL_RESOURCE_ATTRIBUTES": "team=payments,service.namespace=shop%20eu",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318",
        "TRACEHOUSE_ENDPOINTS": "http://b:4318, http://c:4318",
        "OTEL_TRACES_SAMPLER_ARG": "0.25",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_METRIC_EXPORT_INTERVAL": "5000",
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "redis, grpc_client",
        "TRACEHOUSE_SANITIZE_DB_STATEMENT": "false",
        "OTEL_METRICS_EXPORTER": "none",
    })
    assert settings.effective_service_name == "orders"
    assert settings.resource_attributes == {"team": "payments", "service.namespace": "shop eu"}
    assert settings.endpoints == ("http://b:4318", "http://c:4318")  # TRACEHOUSE_* wins over OTEL_*
    assert settings.sampling_ratio == 0.25
    assert settings.schedule_delay_s == pytest.approx(0.2)
    assert settings.metrics_interval_s == pytest.approx(5.0)
    assert settings.disabled_instrumentations == ("redis", "grpc_client")
    assert settings.sanitize_db_statement is False
    assert settings.metrics_enabled is False


def test_keyword_overrides_win_and_defaults_apply() -> None:
    settings = load_agent_settings({"OTEL_SERVICE_NAME": "env-name"}, service_name="orders", endpoints=["http://x:1"])
    assert settings.effective_service_name == "orders"
    assert settings.endpoints == ("http://x:1",)
    assert load_agent_settings({}, endpoints="http://a:1, http://b:2").endpoints == ("http://a:1", "http://b:2")
    assert load_agent_settings({}).effective_endpoints == ("http://localhost:4318",)
    assert load_agent_settings({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}).effective_endpoints == ("http://localhost:4317",)


@pytest.mark.parametrize(("environ", "fragment"), [
    ({"TRACEHOUSE_SAMPLING_RATIO": "2"},
     "sampling_ratio must be between 0 and 1, not 2.0 (from TRACEHOUSE_SAMPLING_RATIO)"),
    ({"OTEL_BSP_SCHEDULE_DELAY": "0"}, "schedule_delay_s must be greater than 0, not 0.0 (from OTEL_BSP_SCHEDULE_DELAY)"),
    ({"OTEL_TRACES_SAMPLER_ARG": "lots"}, "OTEL_TRACES_SAMPLER_ARG='lots' is not valid"),
    ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "protocol must be one of"),
    ({"TRACEHOUSE_ENDPOINTS": "collector:4318"}, "needs a scheme"),
    ({"TRACEHOUSE_ENDPOINTS": "http://collector:99999"}, "invalid port"),
    ({"OTEL_RESOURCE_ATTRIBUTES": "novalue"}, "expected key=value"),
    ({"TRACEHOUSE_HOST_METRICS": "maybe"}, "TRACEHOUSE_HOST_METRICS='maybe' is not valid"),
    ({"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "5000"}, "max_export_batch_size must be between"),
])
def test_bad_values_raise_one_clear_line(environ: dict[str, str], fragment: str) -> None:
    with pytest.raises(AgentConfigError) as error:
        load_agent_settings(environ)
    message = str(error.value)
    assert fragment in message
    assert "\n" not in message


def test_retry_after_seconds_and_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=7), usegmt=True), now=now) == pytest.approx(7.0)
    assert parse_retry_after(format_datetime(now - timedelta(seconds=7), usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


class _NamedTransport:
    def __init__(self, url: str) -> None:
        self.url = url

    def send(self, signal: str, body: bytes, timeout_s: float) -> SendResult:
        return SendResult(Outcome.OK)

    def after_fork(self) -> None:
        pass

    def close(self) -> None:
        pass


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _pool(count: int, clock: _Clock, seed: int = 1) -> EndpointPool:
    return EndpointPool([_NamedTransport(f"http://e{i}") for i in range(count)], cooldown_s=30, max_backoff_s=10,
                        clock=clock, rng=random.Random(seed))


def test_least_in_flight_wins_and_ties_rotate() -> None:
    clock = _Clock()
    pool = _pool(3, clock)
    first, _ = pool.acquire()
    second, _ = pool.acquire()
    third, _ = pool.acquire()
    assert first is not None and second is not None and third is not None
    assert len({first.url, second.url, third.url}) == 3  # each busy endpoint is skipped while others are idle
    pool.release(second, SendResult(Outcome.OK))
    again, _ = pool.acquire()
    assert again is second  # the only one with nothing in flight
    for endpoint in (first, third, again):
        pool.release(endpoint, SendResult(Outcome.OK))
    order = []
    for _ in range(6):
        endpoint, _ = pool.acquire()
        assert endpoint is not None
        order.append(endpoint.url)
        pool.release(endpoint, SendResult(Outcome.OK))
    assert order[:3] == order[3:] and len(set(order[:3])) == 3  # idle endpoints take turns


def test_processes_start_at_different_endpoints() -> None:
    starts = set()
    for seed in range(40):
        endpoint, _ = _pool(4, _Clock(), seed).acquire()
        assert endpoint is not None
        starts.add(endpoint.url)
    assert len(starts) == 4


def test_refused_endpoint_cools_down_then_returns() -> None:
    clock = _Clock()
    pool = _pool(2, clock)
    bad, _ = pool.acquire()
    assert bad is not None
    for _ in range(8):  # repeated refusals lengthen the cool-down up to its cap
        pool.release(bad, SendResult(Outcome.UNREACHABLE, "connection refused"))
        bad.in_flight += 1
    pool.release(bad, SendResult(Outcome.UNREACHABLE, "connection refused"))
    assert bad.unavailable_until == pytest.approx(clock.now + 30)
    for _ in range(5):
        endpoint, _ = pool.acquire()
        assert endpoint is not None and endpoint is not bad
        pool.release(endpoint, SendResult(Outcome.OK))
    clock.now += 31
    seen = set()
    for _ in range(2):
        endpoint, _ = pool.acquire()
        assert endpoint is not None
        seen.add(endpoint.url)
        pool.release(endpoint, SendResult(Outcome.OK))
    assert bad.url in seen


def test_retry_after_is_honoured_and_capped() -> None:
    clock = _Clock()
    pool = _pool(1, clock)
    endpoint, _ = pool.acquire()
    assert endpoint is not None
    pool.release(endpoint, SendResult(Outcome.RETRY, "HTTP 429", retry_after_s=4))
    assert pool.acquire() == (None, pytest.approx(4.0))
    clock.now += 4
    endpoint, _ = pool.acquire()
    assert endpoint is not None
    pool.release(endpoint, SendResult(Outcome.RETRY, "HTTP 503", retry_after_s=3600))
    assert pool.acquire() == (None, pytest.approx(10.0))  # max_backoff_s


def test_instance_id_names_host_port_start_and_pid() -> None:
    first = InstanceIdentity(configured_port=8123)
    second = InstanceIdentity(configured_port=8123)
    host, port, start_ns, pid = first.instance_id.split(":")
    assert (port, int(pid)) == ("8123", first.pid)
    assert int(start_ns) > 1_600_000_000 * 10**9
    assert first.instance_id != second.instance_id  # same process, same second: start time differs


@pytest.mark.parametrize(("argv", "port"), [
    (["gunicorn", "-w", "2", "-b", "127.0.0.1:8000", "app:app"], 8000),
    (["gunicorn", "--bind=0.0.0.0:8001", "app:app"], 8001),
    (["uvicorn", "app:app", "--port", "9000"], 9000),
    (["manage.py", "runserver", "0.0.0.0:8002"], 8002),
    (["python", "app.py"], 0),
    (["gunicorn", "-b", "unix:/tmp/app.sock", "app:app"], 0),
])
def test_listening_port_from_server_command_lines(argv: list[str], port: int) -> None:
    assert port_from_argv(argv) == port


def test_agent_pulls_in_no_server_code() -> None:
    import subprocess
    import sys

    code = ("import sys, tracehouse.agents as a\n"
            "assert a.init(service_name='light', endpoints=['http://127.0.0.1:9']) is not None\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('chdb', 'clickhouse_connect') or "
            "m.startswith(('tracehouse.collector', 'tracehouse.query', 'tracehouse.ui', 'tracehouse.storage')))\n"
            "a.shutdown(timeout_s=0.1)\n"
            "print(heavy)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(("argv", "name"), [
    (["/venv/bin/python", "-m", "uvicorn", "app:app"], "uvicorn"),
    (["/venv/bin/python", "/venv/bin/gunicorn", "-w", "2", "app:app"], "gunicorn"),
    (["/usr/bin/python3", "-u", "/srv/orders/app.py"], "app.py"),
    (["python", "-c", "pass"], "python"),
])
def test_default_service_name_is_the_program(argv: list[str], name: str) -> None:
    assert program_name(argv) == name


def test_spans_are_copied_only_when_a_statement_has_literals() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tracehouse.agents.exporters import sanitized_span

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    for statement in ("SELECT * FROM t WHERE id = %s", "SELECT * FROM t WHERE name = 'ann'"):
        with tracer.start_as_current_span("query", attributes={"db.system": "postgresql", "db.statement": statement}):
            pass
    parameterized, literal = memory.get_finished_spans()
    assert sanitized_span(parameterized) is parameterized
    cleaned = sanitized_span(literal)
    assert cleaned is not literal and cleaned.attributes is not None
    assert cleaned.attributes["db.statement"] == "SELECT * FROM t WHERE name = ?"
    assert (cleaned.context, cleaned.parent, cleaned.start_time, cleaned.end_time, cleaned.name) == \
        (literal.context, literal.parent, literal.start_time, literal.end_time, literal.name)


def test_sliced_encoding_is_one_valid_request() -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tracehouse.agents.exporters import ENCODE_SLICE, TraceHouseSpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    for index in range(ENCODE_SLICE * 3 + 5):
        with tracer.start_as_current_span(f"op-{index}", attributes={"db.statement": f"SELECT {index}"}):
            pass
    spans = memory.get_finished_spans()
    exporter = TraceHouseSpanExporter(None, deadline_s=1)
    request = ExportTraceServiceRequest.FromString(exporter._encode(spans))
    decoded = [span for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]
    assert [span.name for span in decoded] == [span.name for span in spans]
    assert {kv.value.string_value for span in decoded for kv in span.attributes} == {"SELECT ?"}


def test_sampler_is_parent_based_with_the_configured_ratio() -> None:
    from opentelemetry.sdk.trace.sampling import Decision
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

    from tracehouse.agents.agent import build_sampler

    def decide(ratio: float, trace_id: int, parent_sampled: bool | None) -> bool:
        sampler = build_sampler(load_agent_settings({}, sampling_ratio=ratio))
        context = None
        if parent_sampled is not None:
            parent = SpanContext(trace_id, 0x1234, is_remote=True,
                                 trace_flags=TraceFlags(TraceFlags.SAMPLED if parent_sampled else 0))
            context = set_span_in_context(NonRecordingSpan(parent))
        return sampler.should_sample(context, trace_id, "op").decision is Decision.RECORD_AND_SAMPLE

    rng = random.Random(7)
    trace_ids = [rng.getrandbits(128) for _ in range(4000)]
    kept = sum(decide(0.25, trace_id, None) for trace_id in trace_ids) / len(trace_ids)
    assert 0.2 < kept < 0.3
    assert all(decide(1.0, t, None) for t in trace_ids[:50]) and not any(decide(0.0, t, None) for t in trace_ids[:50])
    assert all(decide(0.0, t, True) for t in trace_ids[:50])  # a sampled caller wins over the local ratio
    assert not any(decide(1.0, t, False) for t in trace_ids[:50])
