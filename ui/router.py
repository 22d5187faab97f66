"""The dashboard: server-rendered pages under /ui/, data from the public JSON API called in-process.

Every page takes `range` (15m, 1h, 6h, 24h, custom with `start`/`end`) and `refresh` (seconds,
auto-refresh) in its URL, so a URL reproduces the view. An API failure is a message on the
page; an empty answer explains what to do next.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import plotly
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from tracehouse.ui import figures, forms
from tracehouse.ui.api import ApiClient, ApiResult
from tracehouse.ui.data import (
    error_rate,
    first,
    fmt_bytes,
    fmt_count,
    fmt_ms,
    fmt_num,
    fmt_pct,
    fmt_time,
    latest_by_label,
    num,
    rows,
    str_list,
    text,
    to_datetime,
)
from tracehouse.ui.graph import neighbourhood, parse_graph
from tracehouse.ui.render import figure_html
from tracehouse.ui.timerange import PRESET_LABELS, REFRESH_CHOICES_S, TimeRange, page_url, parse_time_range
from tracehouse.ui.tracemodel import build_trace

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals.update(to_datetime=to_datetime, fmt_bytes=fmt_bytes, fmt_num=fmt_num, fmt_ms=fmt_ms, fmt_pct=fmt_pct, fmt_count=fmt_count, fmt_time=fmt_time,
                             error_rate=error_rate, num=num, text=text, first=first, str_list=str_list)

router = APIRouter(include_in_schema=False)

NAV = (("services", "Services"), ("map", "Service map"), ("traces", "Traces"), ("top", "TOP-N"),
       ("db", "DB calls"), ("latency", "Latency"), ("hosts", "Hosts"), ("middleware", "Middleware"),
       ("alerts", "Alerts"))
SPARKLINE_SERVICES_MAX = 20


# --- plumbing ------------------------------------------------------------------------------------------

def base_path(request: Request) -> str:
    """Where the UI is mounted (e.g. "/ui"), so links work under any prefix."""
    return request.url_for("ui_home").path.rstrip("/")


def time_range_of(request: Request) -> TimeRange:
    q = request.query_params
    return parse_time_range(q.get("range"), q.get("start"), q.get("end"), q.get("refresh"), now=datetime.now(UTC))


class Page:
    """What every page template gets: links, the time range, messages."""

    def __init__(self, request: Request, name: str, title: str) -> None:
        self.request = request
        self.name = name
        self.title = title
        self.base = base_path(request)
        self.tr = time_range_of(request)
        self.api = ApiClient(request)
        self.errors: list[str] = []
        self.notices: list[str] = [self.tr.warning] if self.tr.warning else []
        self.params = {k: v for k, v in request.query_params.items()
                       if k not in ("range", "start", "end", "refresh")}

    def url(self, page: str, **params: Any) -> str:
        return page_url(f"{self.base}/{page}", self.tr, **params)

    def self_url(self, **overrides: Any) -> str:
        merged: dict[str, Any] = {**self.params, **overrides}
        return page_url(str(self.request.url.path), self.tr, **merged)

    def service_url(self, service: str) -> str:
        return self.url(f"services/{quote(service, safe='')}")

    def trace_url(self, trace_id: str) -> str:
        return self.url(f"traces/{quote(trace_id, safe='')}")

    def ok(self, result: ApiResult) -> Any:
        """The data of a result, or None after noting its error for the page."""
        if result.ok:
            return result.data
        self.errors.append(result.error or f"{result.path} failed")
        return None

    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        context.update(page=self, nav=NAV, presets=PRESET_LABELS, refresh_choices=REFRESH_CHOICES_S,
                       plotly_version=plotly.__version__)
        return templates.TemplateResponse(self.request, template, context, status_code=status_code)


PageBuilder = Callable[[Page], Awaitable[HTMLResponse]]


async def run_page(request: Request, name: str, title: str, build: PageBuilder) -> HTMLResponse:
    page = Page(request, name, title)
    if request.method == "POST" and cross_site(request):
        page.errors.append("This form was sent from another site's page; nothing was changed.")
        return page.render("message.html", status_code=403)
    try:
        return await build(page)
    except Exception as exc:  # noqa: BLE001 - a page always renders; the reason is shown and logged
        log.exception("page %s failed", name)
        page.errors.append(f"This page could not be built: {type(exc).__name__}: {exc}")
        return page.render("message.html", status_code=500)


# --- static --------------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _plotly_js() -> tuple[bytes, bytes]:
    raw = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()
    return raw, gzip.compress(raw, compresslevel=6)


def _static_response(request: Request, raw: bytes, packed: bytes | None, media_type: str,
                     max_age_s: int) -> Response:
    headers = {"Cache-Control": f"public, max-age={max_age_s}", "Vary": "Accept-Encoding"}
    if packed is not None and "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(packed, media_type=media_type, headers=headers)
    return Response(raw, media_type=media_type, headers=headers)


@router.get("/static/plotly.min.js", name="ui_plotly_js")
async def plotly_js(request: Request) -> Response:
    raw, packed = await asyncio.to_thread(_plotly_js)
    return _static_response(request, raw, packed, "application/javascript", 86400)


@router.get("/static/{name}", name="ui_static")
async def static_file(request: Request, name: str) -> Response:
    media = {"app.js": "application/javascript", "app.css": "text/css"}.get(name)
    if media is None:
        return Response("not found", status_code=404, media_type="text/plain")
    return _static_response(request, (HERE / "static" / name).read_bytes(), None, media, 300)


# --- pages ---------------------------------------------------------------------------------------------

@router.get("/", name="ui_home")
async def home(request: Request) -> RedirectResponse:
    query = request.url.query
    return RedirectResponse(f"{base_path(request)}/services" + (f"?{query}" if query else ""), status_code=307)


@router.get("/services", name="ui_services", response_class=HTMLResponse)
async def services_page(request: Request) -> HTMLResponse:
    async def build(page: Page) -> HTMLResponse:
        data = page.ok(await page.api.get("/api/v1/services", page.tr.api_params()))
        services = rows(data, "services")
        minutes = max(page.tr.duration_s / 60.0, 1e-9)
        spark: dict[str, Any] = {}
        shown = services[:SPARKLINE_SERVICES_MAX]
        results = await page.api.gather(*(("/api/v1/latency", {**page.tr.api_params(), "service": text(s, "name")})
                                          for s in shown))
        for service, result in zip(shown, results, strict=True):
            points = figures.sparkline_points(result.data) if result.ok else []
            if points:
                name = text(service, "name")
                spark[name] = figure_html(figures.sparkline(points, color=figures.service_color(name)),
                                          static=True)
        table = [{
            "name": text(s, "name", "service"),
            "calls": num(s, "calls"),
            "per_minute": (num(s, "calls") or 0.0) / minutes,
            "error_rate": error_rate(s),
            "p50_ms": num(s, "p50_ms"), "p95_ms": num(s, "p95_ms"), "p99_ms": num(s, "p99_ms"),
            "operations": num(s, "operation_count", "operations", "operations_count"),
            "instances": str_list(first(s, "instances")), "versions": str_list(first(s, "versions")),
        } for s in services]
        table.sort(key=lambda r: -(r["calls"] or 0))
        return page.render("services.html", services=table, spark=spark, data_ok=data is not None)
    return await run_page(request, "services", "Services", build)


@router.get("/services/{service}", name="ui_service", response_class=HTMLResponse)
async def service_page(request: Request, service: str) -> HTMLResponse:
    async def build(page: Page) -> HTMLResponse:
        params = page.tr.api_params()
        enc = quote(service, safe="")
        services_r, ops_r, latency_r, deps_r, db_r, corr_r = await page.api.gather(
            ("/api/v1/services", params),
            (f"/api/v1/services/{enc}/operations", params),
            ("/api/v1/latency", {**params, "service": service}),
            ("/api/v1/dependencies", params),
            ("/api/v1/db/calls", {**params, "service": service}),
            (f"/api/v1/services/{enc}/correlated", params),
        )
        summary = next((s for s in rows(page.ok(services_r), "services") if text(s, "name") == service), None)
        operations = rows(page.ok(ops_r), "operations")
        latency = page.ok(latency_r)
        deps = page.ok(deps_r)
        db_calls = rows(page.ok(db_r), "statements", "calls")
        graph = parse_graph(deps) if deps is not None else None
        upstream = [e for e in graph.edges if e.target == service and e.source != service] if graph else []
        downstream = [e for e in graph.edges if e.source == service and e.target != service] if graph else []
        correlated_note = None
        span = (page.tr.start, page.tr.end)
        if corr_r.ok:
            correlated = figure_html(figures.correlated_panels(corr_r.data, service=service, x_range=span),
                                     name="correlated")
        else:
            correlated = None
            correlated_note = corr_r.error
        charts = {
            "red": figure_html(figures.red_charts(figures.latency_series(latency),
                                                  interval_s=num(latency, "step_s") if isinstance(latency, Mapping)
                                                  else None, x_range=span), name="red")
            if latency is not None else None,
            "histogram": figure_html(figures.latency_histogram(latency), name="histogram")
            if latency is not None else None,
            "heatmap": figure_html(figures.latency_heatmap(latency, x_range=span), name="heatmap")
            if latency is not None else None,
        }
        return page.render("service.html", service=service, summary=summary, operations=operations,
                           upstream=upstream, downstream=downstream, db_calls=db_calls, charts=charts,
                           correlated=correlated, correlated_note=correlated_note)
    return await run_page(request, "services", service, build)


@router.get("/map", name="ui_map", response_class=HTMLResponse)
async def map_page(request: Request) -> HTMLResponse:
    async def build(page: Page) -> HTMLResponse:
        deps_r, cycles_r = await page.api.gather(("/api/v1/dependencies", page.tr.api_params()),
                                                 ("/api/v1/dependencies/cycles", page.tr.api_params()))
        deps = page.ok(deps_r)
        full = parse_graph(deps) if deps is not None else None
        focus = page.params.get("focus", "")
        depth_text = page.params.get("depth", "1")
        depth = int(depth_text) if depth_text in ("1", "2", "3") else 1
        graph = full
        if full is not None and focus:
            if full.node(focus) is None:
                page.notices.append(f"{focus} is not in the graph of this time range; showing every service.")
            else:
                graph = neighbourhood(full, focus, depth)
        trace_cycles = rows(page.ok(cycles_r), "trace_cycles")
        chart = figure_html(figures.service_map(graph, page.service_url), name="service-map", clickable=True) \
            if graph and graph.nodes else None
        return page.render("map.html", graph=graph, full=full, focus=focus, depth=depth, chart=chart,
                           trace_cycles=trace_cycles,
                           cycles_truncated=bool(cycles_r.ok and isinstance(cycles_r.data, Mapping)
                                                 and cycles_r.data.get("cycles_truncated")))
    return await run_page(request, "map", "Service map", build)


TRACE_FILTERS = ("service", "operation", "min_duration_ms", "max_duration_ms", "status", "attr", "limit")


@router.get("/traces", name="ui_traces", response_class=HTMLResponse)
async def traces_page(request: Request) -> HTMLResponse:
    async def build(page: Page) -> HTMLResponse:
        filters = {k: page.params.get(k, "").strip() for k in TRACE_FILTERS}
        problems = forms.trace_filter_problems(filters)
        page.notices.extend(problems)
        query = {**page.tr.api_params(), **{k: v for k, v in filters.items() if v}}
        query.setdefault("limit", "100")
        calls: list[tuple[str, Mapping[str, Any] | None]] = [("/api/v1/traces", query),
                                                              ("/api/v1/services", page.tr.api_params())]
        if filters["service"]:
            calls.append((f"/api/v1/services/{quote(filters['service'], safe='')}/operations",
                          page.tr.api_params()))
        results = await page.api.gather(*calls)
        traces = rows(page.ok(results[0]), "traces")
        services = sorted(text(s, "name") for s in rows(results[1].data if results[1].ok else None, "services"))
        operations = sorted({text(o, "name", "operation") for o in rows(results[2].data, "operations")}) \
            if len(results) > 2 and results[2].ok else []
        chart = figure_html(figures.trace_scatter(traces, page.trace_url, x_range=(page.tr.start, page.tr.end)),
                            name="trace-scatter",
                            clickable=True) if traces else None
        return page.render("traces.html", filters=filters, traces=traces, services=services,
                           operations=operations, chart=chart, searched=results[0].ok)
    return await run_page(request, "traces", "Trace search", build)


@router.get("/find-trace", name="ui_find_trace")
async def find_trace(request: Request) -> RedirectResponse:
    """The header's trace-id box: opens that trace (the trace page says if it is malformed or unknown)."""
    trace_id = (request.query_params.get("trace_id") or "").strip().lower()
    page = Page(request, "traces", "Trace")
    target = page.trace_url(trace_id) if trace_id else page.url("traces")
    return RedirectResponse(target, status_code=303)


MAX_WATERFALL_SPANS = 1000  # beyond this a browser struggles with the figure and the list


@router.get("/traces/{trace_id}", name="ui_trace", response_class=HTMLResponse)
async def trace_page(request: Request, trace_id: str) -> HTMLResponse:
    async def build(page: Page) -> HTMLResponse:
        result = await page.api.get(f"/api/v1/traces/{quote(trace_id, safe='')}")
        if result.status == 404:
            page.notices.append(f"Trace {trace_id} was not found. It may not have arrived yet (spans are "
                                "written in batches), or it is older than the retention period.")
            return page.render("trace.html", trace=None, trace_id=trace_id, chart=None, status_code=404)
        data = page.ok(result)
        trace = build_trace(data, trace_id) if data is not None else None
        shown = trace
        if trace and len(trace.spans) > MAX_WATERFALL_SPANS:
            page.notices.append(f"This trace has {len(trace.spans)} spans; the waterfall and the list show the first "
                                f"{MAX_WATERFALL_SPANS} in tree order. The JSON at /api/v1/traces/{trace_id} has them all.")
            shown = replace(trace, spans=trace.spans[:MAX_WATERFALL_SPANS])
        chart = figure_html(figures.waterfall(shown), name="waterfall", clickable=True) \
            if shown and shown.spans else None
        return page.render("trace.html", trace=trace, shown=shown, trace_id=trace_id, chart=chart,
                           status_code=200 if result.ok or result.status < 400 else result.status)
    return await run_page(request, "traces", f"Trace {trace_id[:16]}", build)


TOP_TABLES = (
    ("Slowest operations (p99)", {"by": "p99", "entity": "operation"}, "p99_ms"),
    ("Most called operations", {"by": "calls", "entity": "operation"}, "calls"),
    ("Most errors", {"by": "errors", "entity": "operation"}, "errors"),
    ("Highest error rate", {"by": "error_rate", "entity": "operation"}, "error_rate"),
    ("Highest total time", {"by": "total_time", "entity": "operation"}, "total_time_ms"),
    ("Slowest DB statements (p99)", {"by": "p99", "entity": "db_statement"}, "p99_ms"),
)


@router.get("/top", name="ui_top", response_class=HTMLResponse)
async def top_page(request: Request) -> HTMLResponse:
    async def build(page: Page) -> HTMLResponse:
        n = page.params.get("n", "10")
        n = n if n.isdigit() and 0 < int(n) <= 100 else "10"
        results = await page.api.gather(*(("/api/v1/top", {**page.tr.api_params(), **query, "n": n})
                                          for _, query, _ in TOP_TABLES))
        tables = []
        for (title, query, metric), result in zip(TOP_TABLES, results, strict=True):
            ranked = rows(result.data, "items", "top", "rows") if result.ok else []
            if metric in ("errors", "error_rate"):  # a ranking of things that never failed says nothing
                ranked = [r for r in ranked if (num(r, metric, "value") or 0) > 0]
            tables.append({"title": title, "metric": metric, "entity": query["entity"], "rows": ranked,
                           "error": result.error})
        return page.render("top.html", tables=tables, n=n)
    return await run_page(request, "top", "TOP-N", build)


@router.get("/db", name="ui_db", response_class=HTMLResponse)
async def db_page(request: Request) -> HTMLResponse:
    async def build(page: Page) -> HTMLResponse:
        service = page.params.get("service", "")
        db_system = page.params.get("db_system", "")
        calls_r, n1_r = await page.api.gather(
            ("/api/v1/db/calls", {**page.tr.api_params(), "service": service, "db_system": db_system}),
            ("/api/v1/db/n-plus-one", {**page.tr.api_params(), "service": service}),
        )
        statements = rows(page.ok(calls_r), "statements", "calls")
        findings = rows(page.ok(n1_r), "findings", "n_plus_one", "items")
        return page.render("db.html", statements=statements, findings=findings, service=service,
                           db_system=db_system)
    return await run_page(request, "db", "DB calls", build)


PERCENTILE_KEYS = (("count", "count"), ("min", "min_ms"), ("mean", "mean_ms"), ("p50", "p50_ms"),
                   ("p75", "p75_ms"), ("p90", "p90_ms"), ("p95", "p95_ms"), ("p99", "p99_ms"),
                   ("p99.9", "p999_ms"), ("max", "max_ms"))


@router.get("/latency", name="ui_latency", response_class=HTMLResponse)
async def latency_page(request: Request) -> HTMLResponse:
    async def build(page: Page) -> HTMLResponse:
        service = page.params.get("service", "")
        operation = page.params.get("operation", "")
        calls: list[tuple[str, Mapping[str, Any] | None]] = [("/api/v1/services", page.tr.api_params())]
        if service:
            calls.append(("/api/v1/latency", {**page.tr.api_params(), "service": service, "operation": operation}))
            calls.append((f"/api/v1/services/{quote(service, safe='')}/operations", page.tr.api_params()))
        results = await page.api.gather(*calls)
        services = sorted(text(s, "name") for s in rows(page.ok(results[0]), "services"))
        latency = page.ok(results[1]) if service else None
        operations = sorted({text(o, "name", "operation") for o in rows(results[2].data, "operations")}) \
            if service and results[2].ok else []
        percentiles = []
        if isinstance(latency, Mapping):
            for label, key in PERCENTILE_KEYS:
                value = num(latency, key, key.removesuffix("_ms"), "p99_9_ms" if label == "p99.9" else key)
                percentiles.append((label, value, key == "count"))
        charts = None
        span = (page.tr.start, page.tr.end)
        if latency is not None:
            charts = {"histogram": figure_html(figures.latency_histogram(latency), name="histogram"),
                      "heatmap": figure_html(figures.latency_heatmap(latency, x_range=span), name="heatmap"),
                      "lines": figure_html(figures.percentile_lines(latency, x_range=span), name="percentiles")}
        return page.render("latency.html", service=service, operation=operation, services=services,
                           operations=operations, percentiles=percentiles, charts=charts)
    return await run_page(request, "latency", "Latency", build)


# --- metrics pages -------------------------------------------------------------------------------------

HOST_METRIC_HINTS = ("cpu", "memory", "disk", "network", "filesystem", "load")
MIDDLEWARE_PREFIXES = ("redis", "mysql", "postgresql", "nginx", "rabbitmq")
MAX_CHARTS = 12


def metric_catalog(data: Any) -> list[dict[str, Any]]:
    out = []
    for row in rows(data, "metrics"):
        name = text(row, "name", "metric_name", "metric")
        if name:
            out.append({"name": name, "type": text(row, "type", "kind").lower(), "unit": text(row, "unit"),
                        "services": str_list(first(row, "services")), "hosts": str_list(first(row, "hosts"))})
    return sorted(out, key=lambda m: m["name"])


# Metrics whose points split by an attribute that must not be averaged together (OpenTelemetry
# semantic conventions: CPU time by cpu.mode, memory by system.memory.state, filesystems by device).
METRIC_SPLITS: dict[str, dict[str, list[str]]] = {
    "system.cpu.utilization": {"group_by": ["cpu.mode"]},
    "system.cpu.time": {"group_by": ["cpu.mode"]},
    "system.memory.utilization": {"attr": ["system.memory.state:used"]},
    "system.memory.usage": {"group_by": ["system.memory.state"]},
    "system.filesystem.utilization": {"group_by": ["system.device"]},
    "system.network.io": {"group_by": ["network.io.direction"]},
    "system.disk.io": {"group_by": ["disk.io.direction"]},
}


async def metric_charts(page: Page, metrics: list[dict[str, Any]], *, group_by: str,
                        attr: str | None = None) -> list[dict[str, Any]]:
    """One chart per metric; the API picks the aggregation (rate for counters, avg for gauges)."""
    calls = []
    for metric in metrics:
        split = METRIC_SPLITS.get(metric["name"], {})
        params: dict[str, Any] = {**page.tr.api_params(), "name": metric["name"],
                                  "group_by": [group_by, *split.get("group_by", [])],
                                  "attr": [a for a in (attr, *split.get("attr", [])) if a]}
        calls.append(("/api/v1/metrics/query", params))
    results = await page.api.gather(*calls)
    charts = []
    for metric, result in zip(metrics, results, strict=True):
        if not result.ok:
            charts.append({"metric": metric, "error": result.error, "html": None})
            continue
        data = result.data if isinstance(result.data, Mapping) else {}
        agg = text(data, "agg")
        unit = text(data, "unit", default=metric["unit"])
        title = f"{metric['name']}" + (f" ({agg})" if agg else "")
        chart = figures.metric_chart(data, title=title, unit=unit, x_range=(page.tr.start, page.tr.end))
        charts.append({"metric": metric, "error": None, "html": figure_html(chart)})
    return charts


@router.get("/hosts", name="ui_hosts", response_class=HTMLResponse)
async def hosts_page(request: Request) -> HTMLResponse:
    async def build(page: Page) -> HTMLResponse:
        hosts_r, metrics_r = await page.api.gather(("/api/v1/hosts", page.tr.api_params()),
                                                   ("/api/v1/metrics", page.tr.api_params()))
        hosts = rows(page.ok(hosts_r), "hosts")
        catalog = [m for m in metric_catalog(page.ok(metrics_r))
                   if m["name"].startswith(("system.", "process.", "host."))]
        chosen = page.params.get("metric", "")
        selected = [m for m in catalog if m["name"] == chosen] if chosen else [
            m for m in catalog if any(h in m["name"] for h in HOST_METRIC_HINTS)][:6]
        host = page.params.get("host", "")
        charts = await metric_charts(page, selected, group_by="host.name", attr=f"host.name:{host}" if host else None)
        return page.render("hosts.html", hosts=hosts, catalog=catalog, charts=charts, chosen=chosen, host=host)
    return await run_page(request, "hosts", "Hosts", build)


@router.get("/middleware", name="ui_middleware", response_class=HTMLResponse)
async def middleware_page(request: Request) -> HTMLResponse:
    async def build(page: Page) -> HTMLResponse:
        catalog = metric_catalog(page.ok(await page.api.get("/api/v1/metrics", page.tr.api_params())))
        groups: dict[str, list[dict[str, Any]]] = {}
        for metric in catalog:
            prefix = metric["name"].split(".", 1)[0]
            if prefix in MIDDLEWARE_PREFIXES:
                groups.setdefault(prefix, []).append(metric)
        up = [m for m in catalog if m["name"] in ("up", "middleware.up") or m["name"].endswith(".up")]
        kind = page.params.get("kind", "")
        chosen = page.params.get("metric", "")
        if chosen:
            selected = [m for m in catalog if m["name"] == chosen]
        else:
            pool = groups.get(kind, []) if kind else [m for ms in groups.values() for m in ms[:3]]
            selected = (up[:1] if not kind else []) + pool
        charts = await metric_charts(page, selected[:MAX_CHARTS], group_by="service.name")
        instances = []
        if up:
            up_r = await page.api.get("/api/v1/metrics/query", {**page.tr.api_params(), "name": up[0]["name"],
                                                                 "group_by": "service.name", "agg": "min"})
            latest = latest_by_label(page.ok(up_r), "service.name")
            system_of = {svc: prefix for prefix, metrics in groups.items() for m in metrics for svc in m["services"]}
            for name in sorted(set(latest) | set(system_of)):
                value, seen = latest.get(name, (None, None))
                instances.append({"name": name, "system": system_of.get(name, ""), "up": value, "last_seen": seen})
        return page.render("middleware.html", groups=groups, kind=kind, chosen=chosen, charts=charts,
                           prefixes=MIDDLEWARE_PREFIXES, instances=instances)
    return await run_page(request, "middleware", "Middleware", build)


# --- alerts --------------------------------------------------------------------------------------------

def cross_site(request: Request) -> bool:
    """A form POST sent by another site's page (its Origin or Referer names another host), which the
    browser would otherwise carry out with this user's access: a cross-site request forgery."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return source == "null"
    # The host only: behind a proxy that ends TLS, the page is https while this request is http.
    return urlsplit(source).netloc != request.url.netloc


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}


async def _alerts_view(page: Page, *, form_values: dict[str, str] | None = None, form_errors: list[str] | None = None,
                       test_result: Any = None, status_code: int = 200) -> HTMLResponse:
    rules_r, active_r, history_r, channels_r = await page.api.gather(
        ("/api/v1/alerts/rules", None), ("/api/v1/alerts", None),
        ("/api/v1/alerts/history", page.tr.api_params()), ("/api/v1/alerts/channels", None))
    rules = rows(page.ok(rules_r), "rules")
    active = rows(page.ok(active_r), "alerts", "active")
    history = rows(page.ok(history_r), "history", "events", "transitions")
    channels = rows(channels_r.data, "channels") if channels_r.ok else []
    states = forms.rule_states(rules, active)
    editing = page.params.get("edit", "")
    if form_values is None:
        rule = next((r for r in rules if text(r, "id", "rule_id") == editing), None) if editing else None
        form_values = forms.rule_to_form(rule) if rule else forms.rule_to_form(None)
    return page.render("alerts.html", rules=rules, states=states, active=active, history=history[:200],
                       channels=channels, form=form_values, form_errors=form_errors or [], editing=editing,
                       signals=forms.SIGNALS, ops=forms.OPS, severities=forms.SEVERITIES, group_by_choices=forms.GROUP_BY,
                       silence_choices=SILENCE_CHOICES_MIN, now=datetime.now(UTC), test_result=test_result,
                       status_code=status_code)


@router.get("/alerts", name="ui_alerts", response_class=HTMLResponse)
async def alerts_page(request: Request) -> HTMLResponse:
    return await run_page(request, "alerts", "Alerts", lambda page: _alerts_view(page))


@router.post("/alerts/rules", name="ui_alert_save", response_class=HTMLResponse)
async def alert_save(request: Request) -> Response:
    async def build(page: Page) -> HTMLResponse:
        values = await _form(request)
        rule, problems = forms.form_to_rule(values)
        if problems:
            return await _alerts_view(page, form_values=values, form_errors=problems, status_code=422)
        rule_id = values.get("id", "").strip()
        if rule_id:
            result = await page.api.call("PUT", f"/api/v1/alerts/rules/{quote(rule_id, safe='')}", json=rule)
        else:
            result = await page.api.call("POST", "/api/v1/alerts/rules", json=rule)
        if not result.ok:
            page.params["edit"] = rule_id
            return await _alerts_view(page, form_values=values, form_errors=[result.error or "rejected"],
                                      status_code=result.status if 400 <= result.status < 500 else 502)
        return RedirectResponse(page.url("alerts"), status_code=303)  # type: ignore[return-value]
    return await run_page(request, "alerts", "Alerts", build)


@router.post("/alerts/rules/{rule_id}/delete", name="ui_alert_delete", response_class=HTMLResponse)
async def alert_delete(request: Request, rule_id: str) -> Response:
    async def build(page: Page) -> HTMLResponse:
        result = await page.api.call("DELETE", f"/api/v1/alerts/rules/{quote(rule_id, safe='')}")
        if not result.ok:
            page.errors.append(result.error or "delete failed")
            return await _alerts_view(page, status_code=502)
        return RedirectResponse(page.url("alerts"), status_code=303)  # type: ignore[return-value]
    return await run_page(request, "alerts", "Alerts", build)


@router.post("/alerts/rules/{rule_id}/test", name="ui_alert_test", response_class=HTMLResponse)
async def alert_test(request: Request, rule_id: str) -> Response:
    async def build(page: Page) -> HTMLResponse:
        result = await page.api.call("POST", f"/api/v1/alerts/rules/{quote(rule_id, safe='')}/test")
        if not result.ok:
            page.errors.append(result.error or "test failed")
            return await _alerts_view(page)
        return await _alerts_view(page, test_result={"rule_id": rule_id, **(result.data if isinstance(
            result.data, dict) else {"value": result.data})})
    return await run_page(request, "alerts", "Alerts", build)


SILENCE_CHOICES_MIN = (30, 60, 240, 1440)


@router.post("/alerts/rules/{rule_id}/silence", name="ui_alert_silence", response_class=HTMLResponse)
async def alert_silence(request: Request, rule_id: str) -> Response:
    """Mutes a rule's notifications for a while (`minutes`), or ends its silence (`minutes=0`)."""
    async def build(page: Page) -> HTMLResponse:
        values = await _form(request)
        raw = values.get("minutes", "")
        minutes = int(raw) if raw.isdigit() else -1
        path = f"/api/v1/alerts/rules/{quote(rule_id, safe='')}/silence"
        if minutes == 0:
            result = await page.api.call("DELETE", path)
        elif minutes in SILENCE_CHOICES_MIN:
            until = datetime.now(UTC) + timedelta(minutes=minutes)
            result = await page.api.call("PUT", path, json={"until": until.isoformat(), "comment": "muted in the UI"})
        else:
            page.errors.append(f"minutes: choose one of {', '.join(str(m) for m in SILENCE_CHOICES_MIN)}")
            return await _alerts_view(page, status_code=422)
        if not result.ok:
            page.errors.append(result.error or "silence failed")
            return await _alerts_view(page, status_code=502)
        return RedirectResponse(page.url("alerts"), status_code=303)  # type: ignore[return-value]
    return await run_page(request, "alerts", "Alerts", build)
