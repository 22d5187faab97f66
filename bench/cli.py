"""`tracehouse bench ingest|query|agent|compare|all`: the benchmarks of the pipeline, the query service
and the agent in one command, with a progress display; results go to --out as results.json,
results.md and results.html (+ results.png when kaleido is installed).

    tracehouse bench all --quick --out bench-results       # about a minute, for CI
    tracehouse bench ingest --spans 1000000 --clients 4
    tracehouse bench compare --phoenix                      # TraceHouse vs Arize Phoenix, spans stored/s
    tracehouse bench all --backend-otlp-url http://host:4318 --backend-count-url http://host/count
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCHMARKS = ("ingest", "query", "agent", "compare")

# (full, quick) sizes
SIZES: dict[str, tuple[dict[str, int], dict[str, int]]] = {
    "ingest": ({"spans": 1_000_000, "clients": 4, "spans_per_request": 1000},
               {"spans": 10_000, "clients": 2, "spans_per_request": 500}),
    "query": ({"spans": 10_000_000, "runs": 20}, {"spans": 100_000, "runs": 3}),
    "agent": ({"requests": 3000, "rounds": 3}, {"requests": 200, "rounds": 1}),
    "compare": ({"spans": 200_000, "clients": 4, "spans_per_request": 1000},
                {"spans": 10_000, "clients": 2, "spans_per_request": 500}),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tracehouse bench", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("benchmark", choices=(*BENCHMARKS, "all"),
                        help="which benchmark; all = ingest, query, agent (and compare when a backend is given)")
    parser.add_argument("--quick", action="store_true", help="small sizes: finishes in about a minute (CI)")
    parser.add_argument("--out", default="bench-results", metavar="DIR", help="where the result files go")
    parser.add_argument("--store", metavar="DSN", help="store for ingest and query (default: fresh embedded stores)")
    parser.add_argument("--no-png", action="store_true", help="skip the PNG even when kaleido is installed")
    parser.add_argument("--no-progress", action="store_true", help="plain log lines instead of a live display")
    sizes = parser.add_argument_group("sizes (defaults: the full run, or the quick one with --quick)")
    sizes.add_argument("--spans", type=int, help="ingest: spans to send")
    sizes.add_argument("--clients", type=int, help="ingest and compare: concurrent client processes")
    sizes.add_argument("--spans-per-request", type=int, help="ingest and compare: spans per export request")
    sizes.add_argument("--query-spans", type=int, help="query: spans to load")
    sizes.add_argument("--runs", type=int, help="query: requests per endpoint")
    sizes.add_argument("--requests", type=int, help="agent: measured requests per round and mode")
    sizes.add_argument("--rounds", type=int, help="agent: rounds")
    sizes.add_argument("--agent-db", choices=("sqlite", "postgresql"), default="sqlite", help="agent: the endpoint's DB")
    sizes.add_argument("--compare-spans", type=int, help="compare: spans to send to each system")
    other = parser.add_argument_group("compare: the other backend")
    other.add_argument("--phoenix", action="store_true", help="start Arize Phoenix (`phoenix serve`) on free ports")
    other.add_argument("--phoenix-command", metavar="PATH",
                       help="the phoenix executable (default: TRACEHOUSE_BENCH_PHOENIX, next to python, or PATH)")
    other.add_argument("--backend-name", default="other", help="name of a running backend in the report")
    other.add_argument("--backend-otlp-url", metavar="URL", help="OTLP/HTTP base URL of a running backend")
    other.add_argument("--backend-count-command", metavar="CMD", help="prints how many spans the backend stored")
    other.add_argument("--backend-count-url", metavar="URL", help="answers how many spans the backend stored")
    other.add_argument("--backend-count-field", default="count", help="JSON field of the count (default count)")
    other.add_argument("--settle-s", type=float, default=20.0,
                       help="compare: stop counting once the count has not grown for this long (default 20)")
    return parser


def _size(args: argparse.Namespace, benchmark: str, name: str, option: str | None = None) -> int:
    given = getattr(args, option or name)
    if given is not None:
        return int(given)
    full, quick = SIZES[benchmark]
    return (quick if args.quick else full)[name]


class Display:
    """A rich progress display with one line per benchmark (or plain lines when not on a terminal)."""

    def __init__(self, benchmarks: Sequence[str], plain: bool) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True)
        self.plain = plain or not self.console.is_terminal
        self.progress = Progress(SpinnerColumn(), TextColumn("[bold]{task.fields[name]:<8}"),
                                 BarColumn(bar_width=24), TextColumn("{task.description}"), TimeElapsedColumn(),
                                 console=self.console, disable=self.plain)
        self.tasks = {name: self.progress.add_task("waiting", total=1, name=name, start=False) for name in benchmarks}
        self._printed_at: dict[str, float] = {}

    def __enter__(self) -> Display:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def begin(self, name: str, total: float = 1) -> None:
        self.progress.start_task(self.tasks[name])
        self.progress.update(self.tasks[name], total=total, completed=0)

    def say(self, name: str) -> Callable[[str], None]:
        def update(text: str) -> None:
            self.progress.update(self.tasks[name], description=text.strip())
            now = time.monotonic()
            if self.plain and now - self._printed_at.get(name, 0.0) >= 2.0:  # a line at most every 2 s
                self._printed_at[name] = now
                print(f"bench {name}: {text.strip()}", file=sys.stderr, flush=True)
        return update

    def advance(self, name: str, steps: float = 1) -> None:
        self.progress.advance(self.tasks[name], steps)

    def done(self, name: str, text: str) -> None:
        task = self.tasks[name]
        self.progress.update(task, completed=self.progress.tasks[task].total or 1, description=text)
        if self.plain:
            print(f"bench {name}: {text}", file=sys.stderr, flush=True)


# --- the benchmarks ---------------------------------------------------------------------------------

def run_ingest_bench(args: argparse.Namespace, display: Display) -> dict[str, Any]:
    from tracehouse.bench.ingest import run_ingest

    spans, clients = _size(args, "ingest", "spans"), _size(args, "ingest", "clients")
    per_request = _size(args, "ingest", "spans_per_request")
    display.begin("ingest", total=clients)
    display.say("ingest")(f"{spans:,} spans from {clients} clients to a fresh tracehouse up")
    result = run_ingest(spans, clients, per_request, args.store, progress=lambda: display.advance("ingest"))
    display.done("ingest", f"{result.stored_spans_per_s:,.0f} spans/s stored, "
                           f"{result.bytes_per_span_on_disk} bytes/span on disk")
    return asdict(result)


def run_query_bench(args: argparse.Namespace, display: Display) -> dict[str, Any]:
    from tracehouse.bench import query as query_bench

    spans, runs = _size(args, "query", "spans", "query_spans"), _size(args, "query", "runs")
    say = display.say("query")
    display.begin("query")
    namespace = argparse.Namespace(spans=spans, runs=runs, store=args.store, database=None, keep=False)
    load_rate: list[float] = []

    def log(line: str) -> None:
        if line.strip().endswith(")") and "spans/s" in line:
            with contextlib.suppress(ValueError):
                load_rate.append(float(line.strip().split(" ")[0].replace(",", "")))
        say(line)

    timings = query_bench.run(namespace, log=log)
    endpoints = [{"name": t.name, "path": t.path, "median_ms": round(t.median_ms, 2), "p90_ms": round(t.p90_ms, 2),
                  "target_ms": query_bench.TARGETS_MS.get(t.name), "status": t.status} for t in timings]
    slowest = max(endpoints, key=lambda e: e["median_ms"]) if endpoints else None
    display.done("query", f"{len(endpoints)} endpoints timed" +
                 (f"; slowest {slowest['name']} {slowest['median_ms']:.0f} ms" if slowest else ""))
    result: dict[str, Any] = {"spans": spans, "runs": runs, "endpoints": endpoints}
    if load_rate:
        result["load_spans_per_s"] = load_rate[0]
    return result


def run_agent_bench(args: argparse.Namespace, display: Display) -> dict[str, Any]:
    from tracehouse.bench import agent as agent_bench

    requests, rounds = _size(args, "agent", "requests"), _size(args, "agent", "rounds")
    display.begin("agent")
    display.say("agent")(f"uninstrumented vs bare SDK vs agent, {rounds} x {requests} requests each")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = agent_bench.main(["--requests", str(requests), "--rounds", str(rounds), "--db", args.agent_db, "--json"])
    if code != 0:
        raise RuntimeError(f"agent benchmark exited with {code}: {err.getvalue()[-2000:]}")
    modes: dict[str, dict[str, float]] = json.loads(out.getvalue())
    modes = {mode: {k: round(v, 2) for k, v in row.items()} for mode, row in modes.items()}
    agent = modes.get("agent", {})
    display.done("agent", f"agent adds {agent.get('added_p50_us', 0):.0f} µs at p50 "
                          f"({agent.get('added_p50_pct', 0):.1f} %)")
    return {"requests": requests, "rounds": rounds, "db": args.agent_db, "via": "http", "modes": modes}


def _other_backend(args: argparse.Namespace) -> Callable[[Path], Any] | None:
    from tracehouse.bench import compare

    if args.phoenix:
        command = compare.find_phoenix(args.phoenix_command)
        if command is None:
            raise compare.BackendError("phoenix is not installed here: pip install arize-phoenix (into this or "
                                       "another virtualenv) and pass --phoenix-command PATH, or use --backend-otlp-url")
        return lambda work: compare.phoenix_backend(command, work)
    if args.backend_otlp_url:
        backend = compare.generic_backend(args.backend_name, args.backend_otlp_url,
                                          count_command=args.backend_count_command,
                                          count_url=args.backend_count_url, count_field=args.backend_count_field)
        return lambda work: backend
    return None


def run_compare_bench(args: argparse.Namespace, display: Display) -> dict[str, Any]:
    from tracehouse.bench.compare import BackendError, run_compare

    other = _other_backend(args)
    if other is None:
        raise BackendError("compare needs another backend: --phoenix, or --backend-otlp-url with "
                           "--backend-count-command or --backend-count-url")
    display.begin("compare")
    result = run_compare(other, total_spans=_size(args, "compare", "spans", "compare_spans"),
                         clients=_size(args, "compare", "clients"),
                         spans_per_request=_size(args, "compare", "spans_per_request"), store_dsn=args.store,
                         settle_s=args.settle_s, progress=display.say("compare"))
    display.done("compare", ", ".join(f"{s['name']} {s['stored_spans_per_s']:,.0f} stored spans/s"
                                      for s in result["systems"]))
    return result


RUNNERS: dict[str, Callable[[argparse.Namespace, Display], dict[str, Any]]] = {
    "ingest": run_ingest_bench, "query": run_query_bench, "agent": run_agent_bench, "compare": run_compare_bench,
}


def _meta(args: argparse.Namespace) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        tracehouse_version = version("tracehouse")
    except PackageNotFoundError:
        tracehouse_version = "unknown"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"tracehouse": tracehouse_version, "quick": args.quick, "cpus": os.cpu_count(),
            "python": platform.python_version(), "platform": platform.platform(terse=True),
            "load_average_1m_at_start": round(load, 2) if load is not None else None,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds")}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    for option in ("spans", "clients", "spans_per_request", "query_spans", "runs", "requests", "rounds",
                   "compare_spans"):
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1")
    if args.benchmark == "compare" or (args.benchmark == "all" and (args.phoenix or args.backend_otlp_url)):
        try:
            other = _other_backend(args)
        except Exception as exc:  # noqa: BLE001 - one clear line before any benchmark starts
            parser.error(str(exc))
        if other is None:
            parser.error("compare needs another backend: --phoenix, or --backend-otlp-url with "
                         "--backend-count-command or --backend-count-url")
    selected = [b for b in BENCHMARKS if args.benchmark in (b, "all")]
    if args.benchmark == "all" and not (args.phoenix or args.backend_otlp_url):
        selected.remove("compare")

    from tracehouse.bench.report import to_markdown, write_results

    logging.getLogger("tracehouse.storage").setLevel(logging.WARNING)  # one line per schema file is noise here

    results: dict[str, Any] = {"meta": _meta(args)}
    began = time.perf_counter()
    failed = []
    with Display(selected, args.no_progress) as display:
        for name in selected:
            started = time.perf_counter()
            try:
                results[name] = RUNNERS[name](args, display)
            except Exception as exc:  # noqa: BLE001 - record it, run the others, exit 1 at the end
                failed.append(name)
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
                display.done(name, f"failed: {type(exc).__name__}: {exc}")
                traceback.print_exc(file=sys.stderr)
            results[name]["duration_s"] = round(time.perf_counter() - started, 1)
    results["meta"]["duration_s"] = round(time.perf_counter() - began, 1)
    written = write_results(results, Path(args.out), png=not args.no_png)
    print(to_markdown(results))
    files = [written.json, written.markdown, written.html] + ([written.png] if written.png else [])
    print("results: " + ", ".join(str(f) for f in files if f))
    if written.png_error:
        print(f"no PNG: {written.png_error}", file=sys.stderr)
    if failed:
        print(f"tracehouse bench: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
