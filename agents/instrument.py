"""Auto-instrumentation with the upstream `opentelemetry-instrumentation-*` packages.

At start-up every installed instrumentor (entry point group `opentelemetry_instrumentor`) whose
target library is installed in a compatible version is switched on, as `opentelemetry-instrument`
does: the dependency check is the package's own (`get_dist_dependency_conflicts`), and one that
fails to load is skipped with a log line rather than stopping the others or the application.

`bootstrap` answers the other question, as `opentelemetry-bootstrap` does from its generated table
(`opentelemetry.instrumentation.bootstrap_gen`): which instrumentation packages fit the libraries
installed here, which of those are missing, and installs them on request.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distributions, entry_points, version
from typing import Any

logger = logging.getLogger("tracehouse.agents")
ENTRY_POINT_GROUP = "opentelemetry_instrumentor"
# Instrumentors that take arguments worth setting: SQL commenter off (it changes the statements the
# database sees, and defeats its statement cache).
INSTRUMENTOR_KWARGS: dict[str, dict[str, Any]] = {
    "sqlite3": {"enable_commenter": False},
    "psycopg": {"enable_commenter": False},
    "psycopg2": {"enable_commenter": False},
    "pymysql": {"enable_commenter": False},
    "mysqlclient": {"enable_commenter": False},
    "sqlalchemy": {"enable_commenter": False},
}


# Covered by the agent's own psutil metrics (metrics.py); instrumenting it too would report every
# system.* / process.* series twice.
REPLACED_BY_AGENT = {"system_metrics": "opentelemetry-instrumentation-system-metrics"}


@dataclass(frozen=True)
class InstrumentationReport:
    instrumented: tuple[str, ...]
    skipped: tuple[str, ...]  # library not installed / version outside the supported range / disabled
    failed: tuple[str, ...]


def instrument_installed(disabled: Iterable[str] = (), *, metrics: bool = False) -> InstrumentationReport:
    """Instruments every installed library. With `metrics` False the instrumentations get a no-op meter
    provider: their request-duration histograms repeat what the spans already say (TraceHouse derives
    rate, errors and duration from spans) and would cost every request a few tens of microseconds."""
    from opentelemetry.instrumentation.dependencies import get_dist_dependency_conflicts
    from opentelemetry.metrics import NoOpMeterProvider

    common: dict[str, Any] = {} if metrics else {"meter_provider": NoOpMeterProvider()}

    disabled_names = {name.strip() for name in disabled if name.strip()}
    instrumented: list[str] = []
    skipped: list[str] = []
    failed: list[str] = []
    dists = None
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        name = entry_point.name
        if name in disabled_names or "*" in disabled_names or name in REPLACED_BY_AGENT:
            skipped.append(name)
            continue
        try:
            dist = getattr(entry_point, "dist", None)
            if dist is None:
                if dists is None:
                    dists = {f"{ep.group}:{ep.name}:{ep.value}": d for d in distributions() for ep in d.entry_points}
                dist = dists.get(f"{entry_point.group}:{entry_point.name}:{entry_point.value}")
            if dist is not None and get_dist_dependency_conflicts(dist) is not None:
                skipped.append(name)
                continue
            instrumentor = entry_point.load()()
            if getattr(instrumentor, "is_instrumented_by_opentelemetry", False):
                instrumented.append(name)
                continue
            kwargs = {"skip_dep_check": True, **common, **INSTRUMENTOR_KWARGS.get(name, {})}
            if name == "django" and _django_settings_pending():
                _instrument_at_django_setup(instrumentor, kwargs)
            else:
                instrumentor.instrument(**kwargs)
            instrumented.append(name)
        except ImportError as exc:
            logger.debug("tracehouse agent: skipping instrumentation %s: %s", name, exc)
            skipped.append(name)
        except Exception as exc:  # noqa: BLE001 - one broken instrumentation must not stop the rest
            logger.warning("tracehouse agent: instrumentation %s failed: %s", name, exc)
            failed.append(name)
    return InstrumentationReport(tuple(instrumented), tuple(skipped), tuple(failed))


def _django_settings_pending() -> bool:
    """True while Django cannot know its settings yet: `manage.py` and `wsgi.py` set
    DJANGO_SETTINGS_MODULE only after the agent started. Instrumenting then would make the Django
    instrumentation configure empty default settings, and the application's own would be ignored."""
    import os

    if os.environ.get("DJANGO_SETTINGS_MODULE"):
        return False
    from django.conf import settings

    return not settings.configured


def _instrument_at_django_setup(instrumentor: Any, kwargs: dict[str, Any]) -> None:
    """Instruments Django on its first `django.setup()` (manage.py, get_wsgi_application and
    get_asgi_application all call it before loading middleware), when its settings are known."""
    import django

    original = django.setup

    def setup(*args: Any, **setup_kwargs: Any) -> Any:
        django.setup = original  # once
        try:
            if not instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.instrument(**kwargs)
        except Exception as exc:  # noqa: BLE001 - the application starts regardless
            logger.warning("tracehouse agent: instrumentation django failed: %s", exc)
        return original(*args, **setup_kwargs)

    django.setup = setup


# --- bootstrap ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Suggestion:
    library: str  # requirement of the target library, e.g. "flask >= 1.0"
    instrumentation: str  # requirement of the instrumentation package
    installed: bool  # whether that instrumentation package is installed already


def _requirement_installed(requirement: str) -> bool:
    from packaging.requirements import Requirement

    parsed = Requirement(requirement)
    try:
        installed_version = version(parsed.name)
    except PackageNotFoundError:
        return False
    return not parsed.specifier or parsed.specifier.contains(installed_version, prereleases=True)


def suggestions() -> list[Suggestion]:
    """Instrumentation packages that fit this environment, as opentelemetry-bootstrap decides."""
    from opentelemetry.instrumentation.bootstrap_gen import default_instrumentations, libraries

    seen: set[str] = set()
    result: list[Suggestion] = []
    candidates = [("(standard library)", req) for req in default_instrumentations]
    candidates += [(lib["library"], lib["instrumentation"]) for lib in libraries
                   if _safe_installed(lib["library"])]
    replaced = tuple(REPLACED_BY_AGENT.values())
    for library, instrumentation in candidates:
        if instrumentation in seen or instrumentation.startswith(replaced):
            continue
        seen.add(instrumentation)
        result.append(Suggestion(library, instrumentation, _safe_installed(instrumentation)))
    return result


def _safe_installed(requirement: str) -> bool:
    try:
        return _requirement_installed(requirement)
    except Exception:  # noqa: BLE001 - a malformed requirement string: treat as absent
        return False


def install(requirements: Iterable[str]) -> int:
    """`pip install` into the running interpreter's environment; pip's exit code."""
    wanted = list(requirements)
    if not wanted:
        return 0
    return subprocess.call([sys.executable, "-m", "pip", "install", *wanted])
