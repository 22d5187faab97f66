"""`tracehouse-agent middleware --config middleware.toml`: configuration errors, credentials from
the environment, `--once`, and a real run exporting OTLP/HTTP until SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from tests.apps.otlp_peer import OtlpPeer, running_peer
from tests.support import free_port, wait_for
from tests.test_middleware_receivers import RedisServer
from tracehouse.agents.middleware import config
from tracehouse.agents.middleware.cli import main
from tracehouse.config import ConfigError


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "middleware.toml"
    path.write_text(text)
    return str(path)


def test_settings_from_a_config_file(tmp_path: Path) -> None:
    settings = config.load(write(tmp_path, """
[exporter]
endpoint = "http://collector:4318"
interval_s = 15

[[redis]]
name = "cache"
port = 6380
password_env = "CACHE_PASSWORD"

[[mysql]]
host = "db.internal"

[[nginx]]
url = "http://edge:8081/status"

[[rabbitmq]]
url = "http://broker:15672"
password = "s3cret"
"""), environ={"CACHE_PASSWORD": "from-env"})
    assert settings.exporter.metrics_url == "http://collector:4318/v1/metrics"
    assert settings.exporter.interval_s == 15
    by_system = {t.system: t for t in settings.targets}
    assert by_system["redis"].name == "cache" and by_system["redis"].password == "from-env"
    assert by_system["redis"].host == "127.0.0.1" and by_system["redis"].port == 6380
    assert by_system["mysql"].name == "mysql:db.internal:3306" and by_system["mysql"].user == "root"
    assert (by_system["nginx"].host, by_system["nginx"].port) == ("edge", 8081)
    assert by_system["rabbitmq"].name == "rabbitmq:broker:5672" and by_system["rabbitmq"].password == "s3cret"
    assert "s3cret" not in repr(settings) and "from-env" not in repr(settings)


def test_the_exporter_endpoint_from_file_and_environment(tmp_path: Path) -> None:
    path = write(tmp_path, '[exporter]\nendpoint = "http://from-file:4318"\n[[redis]]\n')
    assert config.load(path, environ={}).exporter.endpoint == "http://from-file:4318"
    assert config.load(path, environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318"}).exporter.endpoint == \
        "http://from-file:4318"
    assert config.load(path, environ={"TRACEHOUSE_ENDPOINTS": "http://a:4318,http://b:4318"}).exporter.endpoint == \
        "http://a:4318"
    bare = write(tmp_path, "[[redis]]\n")
    assert config.load(bare, environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318"}).exporter.endpoint == \
        "http://otel:4318"
    assert config.load(bare, environ={}).exporter.endpoint == "http://127.0.0.1:4318"


@pytest.mark.parametrize(("text", "message"), [
    ("[[redis]]\npassword_env = 'NOT_SET_ANYWHERE'\n", "NOT_SET_ANYWHERE, which is not set"),
    ("[[redis]]\npassword = 'a'\npassword_env = 'B'\n", "not both"),
    ("[[redis]]\nport = 70000\n", "port must be 1-65535"),
    ("[[redis]]\nprot = 1\n", "unknown setting(s) prot"),
    ("[[memcached]]\n", "unknown section(s) memcached"),
    ("[exporter]\nendpoint = 'collector:4318'\n[[redis]]\n", "must be an http(s):// URL"),
    ("[exporter]\ninterval_s = 0\n[[redis]]\n", "interval_s must be more than 0"),
    ("[exporter]\n", "names no middleware"),
    ("[[redis]]\nname = 'x'\n[[mysql]]\nname = 'x'\n", "share the name x"),
    ("[[nginx]]\nurl = 'ftp://x/status'\n", "must be an http(s):// URL"),
])
def test_bad_configuration_is_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config.load(write(tmp_path, text), environ={})


def test_the_cli_exits_2_on_bad_configuration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", write(tmp_path, "[[redis]]\nport = 'six'\n")]) == 2
    assert main(["--config", str(tmp_path / "missing.toml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2
    assert "port" in err[0] and "does not exist" in err[1]


def test_passwords_are_not_taken_from_the_command_line(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--config", write(tmp_path, "[[redis]]\n"), "--password", "x"])


def test_once_reads_each_instance_and_reports_the_down_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server = RedisServer(tmp_path)
    server.start()
    dead_port = free_port()
    try:
        path = write(tmp_path, f"""
[[redis]]
name = "cache"
port = {server.port}

[[redis]]
name = "gone"
port = {dead_port}
timeout_s = 1
""")
        code = main(["--once", "--config", path])
    finally:
        server.stop()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1
    by_name = {line["name"]: line for line in lines}
    assert by_name["cache"]["up"] == 1
    assert any(m["name"] == "redis.commands.processed" for m in by_name["cache"]["metrics"])
    assert by_name["gone"]["up"] == 0 and "Connection refused" in by_name["gone"]["error"]


def test_a_password_from_the_environment_is_used(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--requirepass", "hunter2", "--dir", str(tmp_path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: redis.Redis(port=port, password="hunter2", socket_timeout=1).ping(), timeout_s=15,
                 message="redis with a password")
        path = write(tmp_path, f"[[redis]]\nname = 'locked'\nport = {port}\npassword_env = 'LOCKED_REDIS_PASSWORD'\n")
        monkeypatch.setenv("LOCKED_REDIS_PASSWORD", "hunter2")
        assert main(["--once", "--config", path]) == 0
        monkeypatch.setenv("LOCKED_REDIS_PASSWORD", "wrong")
        assert main(["--once", "--config", path]) == 1
    finally:
        process.terminate()
        process.wait(timeout=15)
    right, wrong = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert right["up"] == 1
    assert wrong["up"] == 0 and wrong["error"]


def exported(peer: OtlpPeer) -> list[tuple[str, str, float]]:
    """(service.name, metric, value) of every number point the peer accepted."""
    out = []
    for request in peer.accepted("/v1/metrics"):
        message = ExportMetricsServiceRequest.FromString(request.body)
        for rm in message.resource_metrics:
            service = next(kv.value.string_value for kv in rm.resource.attributes if kv.key == "service.name")
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    kind = metric.WhichOneof("data")
                    points = getattr(metric, kind).data_points if kind in ("gauge", "sum") else []
                    for point in points:
                        number = point.as_double if point.WhichOneof("value") == "as_double" else point.as_int
                        out.append((service, metric.name, float(number)))
    return out


def test_a_run_exports_until_sigterm_and_survives_a_restart_of_the_middleware(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    with running_peer() as peer:
        path = write(tmp_path, f"""
[exporter]
endpoint = "{peer.url}"
interval_s = 0.5

[[redis]]
name = "cache"
port = {server.port}
timeout_s = 1
""")
        log_path = tmp_path / "agent.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen([sys.executable, "-m", "tracehouse.agents.cli", "middleware", "--config", path],
                                       stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
        try:
            def up_values() -> list[float]:
                return [v for s, m, v in exported(peer) if s == "cache" and m == "up"]

            wait_for(lambda: 1.0 in up_values(), timeout_s=30, message="up=1 from the running agent")
            assert any(m == "redis.commands.processed" for _s, m, _v in exported(peer))
            server.stop()
            wait_for(lambda: up_values()[-1] == 0.0, timeout_s=30,
                     message=f"up=0 once redis is stopped (log: {log_path.read_text()[-2000:]}, up: {up_values()[-20:]})")
            assert process.poll() is None  # no crash
            server.start()
            wait_for(lambda: up_values()[-1] == 1.0, timeout_s=30, message="up=1 once redis is back")
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            server.stop()
    log_text = log_path.read_text()
    assert "is down" in log_text and "is back up" in log_text
    assert "Traceback" not in log_text
