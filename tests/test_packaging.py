"""The distribution and the deployment files: what a user installs and runs."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import yaml

from tracehouse.cli import build_parser
from tracehouse.storage import validate_dsn

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_maps_every_folder_into_the_tracehouse_namespace(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True, timeout=300)
    [wheel] = tmp_path.glob("tracehouse-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ("tracehouse/cli.py", "tracehouse/collector/pipeline.py", "tracehouse/agents/__init__.py",
                   "tracehouse/query/app.py", "tracehouse/ui/router.py", "tracehouse/schemas/001_otel_traces.sql"):
        assert module in names, module
    assert not any(name.split("/")[0] in ("collector", "agents", "query", "ui", "schemas", "tests") for name in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "tracehouse = tracehouse.cli:main" in text and "tracehouse-agent = tracehouse.agents.cli:main" in text


def test_importing_the_agent_pulls_in_no_server_code() -> None:
    probe = ("import sys, tracehouse.agents; heavy = [m for m in ('chdb', 'clickhouse_connect', 'fastapi', "
             "'tracehouse.collector', 'tracehouse.query', 'tracehouse.ui') if m in sys.modules]; print(heavy)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"


def test_docker_compose_wires_collector_and_query_to_clickhouse() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server")
    parser = build_parser()
    for name in ("collector", "query"):
        args = parser.parse_args(services[name]["command"])
        assert args.command == name
        validate_dsn(args.store)
        assert "@clickhouse:8123/" in args.store
        assert services[name]["depends_on"]["clickhouse"]["condition"] == "service_healthy"
    assert "4317:4317" in services["collector"]["ports"] and "8080:8080" in services["query"]["ports"]
