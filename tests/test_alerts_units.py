"""Alerting logic without a database: the state machine, cycle finding, signatures, rule validation,
the rules file, webhook retries."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.test_alerts_receiver import WebhookReceiver
from tracehouse.config import ConfigError, load_settings
from tracehouse.query.alerts import rules_file
from tracehouse.query.alerts.channels import (
    SIGNATURE_HEADER,
    EmailSender,
    Notification,
    WebhookSender,
    body_for,
    retry,
    sign,
    verify,
)
from tracehouse.query.alerts.models import ChannelBody, RuleIn
from tracehouse.query.alerts.settings import AlertSettings
from tracehouse.query.alerts.signals import cycle_key, min_executions
from tracehouse.query.alerts.state import SeriesState, step

RULE_JSON = {"name": "checkout p99", "target": {"service": "shop", "operation": "GET /checkout"},
             "signal": "p99_ms", "op": ">", "threshold": 250, "window_s": 300, "for_s": 60,
             "severity": "critical", "labels": {}, "channels": ["ops-webhook"], "enabled": True}


def run(states: list[bool], *, for_s: float = 0, repeat_s: float = 0, silenced: list[bool] | None = None,
        step_ms: int = 10_000) -> list[tuple[str, str | None]]:
    """Feeds conditions one evaluation apart; returns (state, notification) after each."""
    current = SeriesState(rule_id="r", series="")
    out = []
    for index, condition in enumerate(states):
        result = step(current, condition=condition, value=1.0 if condition else 0.0, now_ms=(index + 1) * step_ms,
                      for_s=for_s, repeat_interval_s=repeat_s, silenced=bool(silenced and silenced[index]))
        current = result.state
        out.append((current.state, result.notify))
    return out


def test_fires_and_resolves_with_one_notification_each() -> None:
    assert run([False, True, True, True, False, False]) == [
        ("ok", None), ("firing", "firing"), ("firing", None), ("firing", None), ("resolved", "resolved"),
        ("resolved", None)]


def test_for_holds_pending_until_the_condition_has_lasted() -> None:
    # evaluations 10 s apart, for_s = 20: pending at 10 s and 20 s, firing at 30 s
    assert run([True, True, True, True, False], for_s=20) == [
        ("pending", None), ("pending", None), ("firing", "firing"), ("firing", None), ("resolved", "resolved")]


def test_pending_that_clears_goes_back_to_ok_without_notifying() -> None:
    assert run([True, False, True], for_s=60) == [("pending", None), ("ok", None), ("pending", None)]


def test_repeat_interval_renotifies_while_firing() -> None:
    result = run([True] * 7, repeat_s=25)
    assert [n for _, n in result] == ["firing", None, None, "repeat", None, None, "repeat"]


def test_silence_mutes_and_an_unannounced_firing_is_announced_after_it() -> None:
    result = run([True, True, True, False], silenced=[True, True, False, False])
    assert result == [("firing", None), ("firing", None), ("firing", "firing"), ("resolved", "resolved")]
    muted_to_the_end = run([True, False], silenced=[True, False])
    assert muted_to_the_end == [("firing", None), ("resolved", None)]


def test_refiring_after_resolution_notifies_again() -> None:
    assert [n for _, n in run([True, False, True, False])] == ["firing", "resolved", "firing", "resolved"]


def test_cycle_key_is_stable_under_rotation() -> None:
    assert cycle_key(["c", "a", "b"]) == "a -> b -> c -> a"
    assert cycle_key(["b", "c", "a"]) == cycle_key(["a", "b", "c"])


def test_signature_is_hmac_sha256_of_the_body() -> None:
    body = b'{"a":1}'
    header = sign("s3cret", body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify("s3cret", body, header)
    assert not verify("other", body, header)
    assert not verify("s3cret", body + b" ", header)


def test_issue_rule_json_is_accepted() -> None:
    rule = RuleIn.model_validate(RULE_JSON)
    assert rule.signal == "p99_ms" and rule.target.operation == "GET /checkout" and rule.for_s == 60


@pytest.mark.parametrize(("change", "field"), [
    ({"signal": "p98_ms"}, "signal"),
    ({"op": "=>"}, "op"),
    ({"window_s": 0}, "window_s"),
    ({"threshold": "high"}, "threshold"),
    ({"severity": "urgent"}, "severity"),
    ({"signal": "metric_value"}, "target"),
    ({"target": {"operation": "x"}}, "target"),
    ({"name": "  "}, "name"),
    ({"channels": ["no spaces please"]}, "channels"),
    ({"colour": "red"}, "colour"),
    ({"signal": "heartbeat_missing", "target": {}, "threshold": 0}, "threshold"),
])
def test_invalid_rules_name_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RuleIn.model_validate({**RULE_JSON, **change})
    assert caught.value.errors()[0]["loc"][0] == field


def test_webhook_channel_needs_a_url() -> None:
    with pytest.raises(ValidationError) as caught:
        ChannelBody.model_validate({"type": "webhook"})
    assert caught.value.errors()[0]["loc"] == ("url",)
    assert ChannelBody.model_validate({"type": "log"}).url is None


def _notification(kind: str = "firing") -> Notification:
    return Notification(kind=kind, delivery_id="d1", rule_id="r1", rule_name="checkout p99", description="",
                        severity="critical", signal="p99_ms", op=">", threshold=250.0, rule_labels={"team": "shop"},
                        target={"service": "shop"}, series="", series_labels={}, value=412.5,
                        active_since_ms=1_000, fired_at_ms=2_000, resolved_at_ms=0, at_ms=2_000)


def test_slack_format_is_only_text() -> None:
    slack = body_for(ChannelBody(type="webhook", url="http://x", format="slack"), _notification())
    assert slack == {"text": "[FIRING] checkout p99 (critical): p99_ms = 412.5, rule > 250; service=shop"}
    full = body_for(ChannelBody(type="webhook", url="http://x"), _notification("resolved"))
    assert full["status"] == "resolved" and full["rule"]["name"] == "checkout p99"
    assert full["labels"] == {"team": "shop"} and full["text"].startswith("[RESOLVED]")


def test_webhook_is_retried_until_the_receiver_answers() -> None:
    with WebhookReceiver(fail_first=2) as receiver:
        settings = AlertSettings(webhook_backoff_s=0.01, webhook_max_attempts=5)
        sender = WebhookSender(settings, threading.Event())
        result = sender.send(ChannelBody(type="webhook", url=receiver.url, secret="k"), _notification())
        sender.close()
    assert result.ok and result.attempts == 3 and result.status_code == 200
    assert len(receiver.requests) == 3  # two refused with 503, one accepted
    accepted = receiver.accepted()
    assert len(accepted) == 1
    assert verify("k", accepted[0].body, accepted[0].headers[SIGNATURE_HEADER])
    assert json.loads(accepted[0].body)["delivery_id"] == "d1"


def test_webhook_gives_up_on_a_client_error_at_once() -> None:
    with WebhookReceiver(status=404) as receiver:
        sender = WebhookSender(AlertSettings(webhook_backoff_s=0.01), threading.Event())
        result = sender.send(ChannelBody(type="webhook", url=receiver.url), _notification())
        sender.close()
    assert not result.ok and result.attempts == 1 and result.status_code == 404


def test_retry_stops_waiting_when_asked() -> None:
    from tracehouse.query.alerts.channels import _Retryable

    stop = threading.Event()
    stop.set()

    def failing() -> int:
        raise _Retryable("down")

    result = retry(failing, max_attempts=5, backoff_s=60, stop=stop)
    assert not result.ok and result.attempts == 1 and "stopped" in result.error


def test_rules_file_yaml_and_toml(tmp_path: Path) -> None:
    yaml_file = tmp_path / "rules.yaml"
    yaml_file.write_text(
        "channels:\n  - {name: ops, type: webhook, url: 'http://127.0.0.1:9/hook'}\n"
        "rules:\n  - name: Checkout p99\n    target: {service: shop}\n    signal: p99_ms\n"
        "    threshold: 250\n    channels: [ops]\n")
    parsed = rules_file.parse(yaml_file)
    assert list(parsed.rules) == ["checkout-p99"] and list(parsed.channels) == ["ops"]
    toml_file = tmp_path / "rules.toml"
    toml_file.write_text('[[rules]]\nid = "cyc"\nname = "cycles"\nsignal = "new_cycle"\nop = ">="\nthreshold = 1\n')
    assert rules_file.parse(toml_file).rules["cyc"].signal == "new_cycle"


def test_rules_file_errors_name_the_entry_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("rules:\n  - name: ok\n    signal: p99_ms\n    target: {service: a}\n"
                   "  - name: bad\n    signal: p99_ms\n    target: {service: a}\n    window_s: -5\n")
    with pytest.raises(ConfigError, match=r"rules\[1\]\.window_s"):
        rules_file.parse(bad)


def test_settings_from_environment() -> None:
    settings = load_settings(AlertSettings, section="alerts",
                             environ={"TRACEHOUSE_EVALUATION_INTERVAL_S": "0.5", "TRACEHOUSE_REPLICA_ID": "r1"})
    assert settings.evaluation_interval_s == 0.5 and settings.replica_id == "r1"
    assert settings.effective_lease_ttl_s == 10.0
    with pytest.raises(ConfigError, match="evaluation_interval_s"):
        load_settings(AlertSettings, environ={"TRACEHOUSE_EVALUATION_INTERVAL_S": "0"})


def test_email_channel_sends_through_a_real_smtp_server() -> None:
    controller_module = pytest.importorskip("aiosmtpd.controller")
    from aiosmtpd.handlers import Message

    received: list[Any] = []

    class Collect(Message):
        def handle_message(self, message: Any) -> None:
            received.append(message)

    from tests.support import free_port

    port = free_port()
    controller = controller_module.Controller(Collect(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = AlertSettings(smtp_host="127.0.0.1", smtp_port=port, smtp_from="alerts@example.org")
        result = EmailSender(settings, threading.Event()).send(
            ChannelBody(type="email", to=["oncall@example.org"]), _notification())
    finally:
        controller.stop()
    assert result.ok, result.error
    (message,) = received
    assert message["To"] == "oncall@example.org" and message["From"] == "alerts@example.org"
    assert " ".join(message["Subject"].split()).startswith("[FIRING] checkout p99 (critical)")  # unfolded


def test_email_without_smtp_host_fails_clearly() -> None:
    result = EmailSender(AlertSettings(), threading.Event()).send(
        ChannelBody(type="email", to=["a@example.org"]), _notification())
    assert not result.ok and "smtp_host" in result.error


@pytest.mark.parametrize(("op", "threshold", "expected"), [
    (">=", 5, 5), (">", 5, 6), (">", 4.5, 5), (">=", 4.5, 5), (">=", 0, 2), ("<", 3, 2), ("==", 7, 2)])
def test_n_plus_one_pushes_only_thresholds_it_can_into_sql(op: str, threshold: float, expected: int) -> None:
    rule = RuleIn.model_validate({"name": "n", "signal": "n_plus_one", "op": op, "threshold": threshold})
    assert min_executions(rule) == expected
