"""Query service benchmark: load synthetic spans with a realistic topology into a store, then time
every API endpoint over a one-hour window (median of N runs).

The spans are generated inside ClickHouse (INSERT ... SELECT FROM numbers()), so loading 10 million
takes as long as ClickHouse needs to write them and update the materialized views, not a Python
loop. Each trace has ten spans: a frontend (3 of them) calls two of 27 backend services, one of
which calls a third; backends query PostgreSQL, MySQL or Redis; about 2% of spans fail.

    python -m tracehouse.bench.query --spans 1000000
    tracehouse bench query --store http://localhost:8123/default
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode, urlparse, urlunparse

from fastapi.testclient import TestClient

from tracehouse import storage
from tracehouse.query.app import create_app
from tracehouse.query.rollup import EdgeRollup
from tracehouse.query.settings import QuerySettings
from tracehouse.settings import StoreSettings

SPANS_PER_TRACE = 10
CHUNK_SPANS = 1_000_000

# One span per row of numbers(): trace t = number / 10, position i = number % 10 in this tree:
#   0 frontend SERVER  <- root
#   1 frontend CLIENT  -> 2 backend X SERVER -> 3 X CLIENT (database)
#                                             -> 4 X CLIENT -> 5 backend Y SERVER -> 6 Y CLIENT (database)
#   7 frontend CLIENT  -> 8 backend Z SERVER -> 9 Z INTERNAL
GENERATE_SQL = """
INSERT INTO otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName,
                         ResourceAttributes, ScopeName, SpanAttributes, Duration, StatusCode, StatusMessage)
SELECT
    fromUnixTimestamp64Nano(toInt64({start_ns:Int64} + intDiv(t * {span_ns:Int64}, 1) + [0, 1, 2, 3, 10, 11, 12, 40, 41, 42][i + 1] * 1000000)) AS Timestamp,
    concat(lower(hex(cityHash64(t, 'hi'))), lower(hex(cityHash64(t, 'lo')))) AS TraceId,
    lower(hex(cityHash64(t, i))) AS SpanId,
    if(parent < 0, '', lower(hex(cityHash64(t, parent)))) AS ParentSpanId,
    [concat('GET /api/', toString(t % 7)), concat('call ', svc_x), concat('GET /', svc_x, '/items'), 'SELECT',
     concat('call ', svc_y), concat('POST /', svc_y, '/work'), 'SELECT', concat('call ', svc_z),
     concat('GET /', svc_z, '/info'), 'render'][i + 1] AS SpanName,
    ['Server', 'Client', 'Server', 'Client', 'Client', 'Server', 'Client', 'Client', 'Server', 'Internal'][i + 1] AS SpanKind,
    [frontend, frontend, svc_x, svc_x, svc_x, svc_y, svc_y, frontend, svc_z, svc_z][i + 1] AS ServiceName,
    map('service.name', ServiceName, 'service.instance.id', concat(ServiceName, '-', toString(t % 3)),
        'service.version', concat('1.', toString(t % 2))) AS ResourceAttributes,
    'bench' AS ScopeName,
    multiIf(i IN (3, 6), map('db.system', db_system, 'db.name', 'shop',
                             'db.statement', if(db_system = 'redis', concat('GET item:', toString(t % 1000)),
                                                concat('SELECT * FROM items_', toString(t % 20), ' WHERE id = ', toString(t)))),
            i IN (0, 2, 5, 8), map('http.request.method', 'GET', 'http.response.status_code', if(failed, '500', '200')),
            map()) AS SpanAttributes,
    toUInt64(greatest(exp(log([40, 35, 30, 2, 15, 12, 3, 8, 6, 1][i + 1]) + randNormal(0, 0.6)), 0.05) * 1000000) AS Duration,
    if(failed, 'Error', 'Unset') AS StatusCode,
    if(failed, 'synthetic failure', '') AS StatusMessage
FROM (
    SELECT
        intDiv(number, 10) AS t,
        number % 10 AS i,
        [-1, 0, 1, 2, 2, 4, 5, 0, 7, 8][i + 1] AS parent,
        concat('frontend-', toString(t % 3)) AS frontend,
        cityHash64(t, 'x') % 27 AS x,
        concat('svc-', leftPad(toString(x), 2, '0')) AS svc_x,
        concat('svc-', leftPad(toString((x + 1 + cityHash64(t, 'y') % 4) % 27), 2, '0')) AS svc_y,
        concat('svc-', leftPad(toString(cityHash64(t, 'z') % 27), 2, '0')) AS svc_z,
        ['postgresql', 'mysql', 'redis'][cityHash64(t, 'db') % 3 + 1] AS db_system,
        cityHash64(t, i, 'err') % 100 < 2 AS failed
    FROM numbers({first:UInt64}, {count:UInt64})
)
"""

TARGETS_MS = {
    "dependencies": 100.0, "services": 100.0, "latency": 150.0, "top": 150.0,
    "trace by id": 50.0, "search service+min duration": 50.0,
}


@dataclass
class Timing:
    name: str
    path: str
    median_ms: float
    p90_ms: float
    status: int


def load(client: storage.Client, spans: int, window_s: int, *, log: Callable[[str], None]) -> float:
    """Inserts `spans` spans (whole traces) spread over the `window_s` seconds before now."""
    traces = max(spans // SPANS_PER_TRACE, 1)
    end_ns = time.time_ns() - 1_000_000_000
    start_ns = end_ns - window_s * 1_000_000_000
    span_ns = (window_s * 1_000_000_000) // traces
    began = time.perf_counter()
    total = traces * SPANS_PER_TRACE
    for first in range(0, total, CHUNK_SPANS):
        count = min(CHUNK_SPANS, total - first)
        client.command(GENERATE_SQL, parameters={"start_ns": start_ns, "span_ns": span_ns, "first": first,
                                                 "count": count})
        log(f"  loaded {first + count:,} / {total:,} spans")
    return time.perf_counter() - began


def wait_for_merges(client: storage.Client, timeout_s: float = 180.0) -> float:
    """Waits until the store has merged what the load wrote (as it would have long before anyone
    looks at an hour of data); returns the seconds waited."""
    began = time.perf_counter()
    while time.perf_counter() - began < timeout_s:
        if not client.command("SELECT count() FROM system.merges WHERE database = currentDatabase()"):
            break
        time.sleep(0.5)
    return time.perf_counter() - began


def time_requests(http: TestClient, name: str, paths: Sequence[str], runs: int) -> Timing:
    """Median and p90 of `runs` requests (cycling through `paths`), after warm-up requests."""
    for path in paths[:3]:
        http.get(path)
    durations = []
    status = 200
    for run in range(runs):
        path = paths[run % len(paths)]
        began = time.perf_counter()
        response = http.get(path)
        durations.append((time.perf_counter() - began) * 1000)
        if response.status_code != 200:
            status = response.status_code
    durations.sort()
    return Timing(name, paths[0], statistics.median(durations), durations[max(math.ceil(0.9 * len(durations)) - 1, 0)], status)


def with_database(dsn: str, database: str) -> str:
    parsed = urlparse(dsn)
    if parsed.scheme == "chdb":
        return urlunparse(parsed._replace(query=urlencode({"database": database})))
    return urlunparse(parsed._replace(path="/" + database))


def run(args: argparse.Namespace, log: Callable[[str], None] = print) -> list[Timing]:
    scratch: str | None = None
    if args.store:
        dsn = args.store
    else:  # a fresh embedded store, removed afterwards unless --keep
        scratch = tempfile.mkdtemp(prefix="tracehouse-bench-query-")
        dsn = storage.dsn_for_data_path(scratch)
    database = args.database or f"bench_{uuid.uuid4().hex[:8]}"
    admin = storage.connect(dsn)
    admin.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    client = storage.connect(dsn, database=database)
    try:
        storage.migrate(client)
        log(f"loading {args.spans:,} spans into {storage.redact_dsn(dsn)} database {database}")
        load_s = load(client, args.spans, 3600, log=log)
        log(f"  {args.spans / load_s:,.0f} spans/s ({load_s:.1f} s, materialized views included)")
        settings = QuerySettings(rollup_enabled=False)
        began = time.perf_counter()
        EdgeRollup(lambda: client, settings).run_once(client=client)
        log(f"edge rollup caught up in {time.perf_counter() - began:.1f} s "
            f"(the newest {settings.lateness_s} s stay in the raw tail)")
        log(f"background merges done after {wait_for_merges(client):.1f} s")
        trace_ids = [row[0] for row in client.query(
            "SELECT TraceId FROM otel_traces WHERE SpanName LIKE 'GET /api/%' ORDER BY cityHash64(TraceId) LIMIT 20"
        ).result_rows]
        app = create_app(StoreSettings(store=with_database(dsn, database)), {}, settings=settings)
        timings: list[Timing] = []
        with TestClient(app) as http:
            cases: list[tuple[str, list[str]]] = [
                ("dependencies", ["/api/v1/dependencies"]),
                ("services", ["/api/v1/services"]),
                ("latency", ["/api/v1/latency?service=svc-07", "/api/v1/latency?service=frontend-1"]),
                ("top", ["/api/v1/top?by=p99&entity=operation", "/api/v1/top?by=calls&entity=service",
                         "/api/v1/top?by=error_rate&entity=edge"]),
                ("trace by id", [f"/api/v1/traces/{trace_id}" for trace_id in trace_ids]),
                ("search service+min duration", ["/api/v1/traces?service=svc-03&min_duration_ms=60&limit=20",
                                                 "/api/v1/traces?service=svc-11&min_duration_ms=60&limit=20"]),
                ("operations", ["/api/v1/services/svc-05/operations"]),
                ("dependencies/cycles", ["/api/v1/dependencies/cycles"]),
                ("db/calls", ["/api/v1/db/calls?limit=50"]),
                ("db/n-plus-one", ["/api/v1/db/n-plus-one"]),
            ]
            for name, paths in cases:
                timing = time_requests(http, name, paths, args.runs)
                timings.append(timing)
                log(f"  {name}: {timing.median_ms:.1f} ms")
        return timings
    finally:
        client.close()
        if not args.keep:
            admin.command(f"DROP DATABASE IF EXISTS {database} SYNC")
        admin.close()
        if scratch and not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)


def table(timings: Sequence[Timing], spans: int, runs: int) -> str:
    lines = [f"Query API over a one-hour window, {spans:,} spans, median of {runs} runs", "",
             "| endpoint | median ms | p90 ms | target ms | |", "| --- | ---: | ---: | ---: | --- |"]
    for t in timings:
        target = TARGETS_MS.get(t.name)
        verdict = "" if target is None else ("ok" if t.median_ms <= target else "over")
        if t.status != 200:
            verdict = f"HTTP {t.status}"
        lines.append(f"| {t.name} | {t.median_ms:.1f} | {t.p90_ms:.1f} | "
                     f"{'' if target is None else f'{target:.0f}'} | {verdict} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tracehouse bench query", description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=10_000_000, help="spans to load (default 10,000,000)")
    parser.add_argument("--runs", type=int, default=20, help="requests per endpoint (default 20)")
    parser.add_argument("--store", help="store DSN (default: a new embedded store in a temporary directory)")
    parser.add_argument("--database", help="database to load into (default: a new one, dropped afterwards)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    if args.spans < SPANS_PER_TRACE or args.runs < 1:
        parser.error("--spans must be at least 10 and --runs at least 1")
    timings = run(args, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(table(timings, args.spans, args.runs))
    return 0 if all(t.status == 200 for t in timings) else 1


if __name__ == "__main__":
    sys.exit(main())
