"""Rules as code: a YAML or TOML file with `channels` and `rules` lists, applied at start.

    channels:
      - {name: ops-webhook, type: webhook, url: "https://hooks.example/alerts", secret: "..."}
    rules:
      - name: checkout p99
        target: {service: shop, operation: GET /checkout}
        signal: p99_ms
        op: ">"
        threshold: 250
        channels: [ops-webhook]

(TOML: `[[channels]]` and `[[rules]]` tables.) A rule's id is its `id`, or its name made into a slug.
The file owns the rules and channels it defines: at each start they are written again when changed,
and those it no longer defines are removed; rules and channels made through the API are left alone.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tracehouse.config import ConfigError
from tracehouse.query.alerts.models import ChannelBody, ChannelIn, RuleBody, RuleIn
from tracehouse.query.alerts.repository import AlertRepository

FILE_SOURCE = "file"


def slug(name: str) -> str:
    text = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64].strip("-")
    return text or "rule"


@dataclass(frozen=True)
class RulesFile:
    rules: dict[str, RuleBody]
    channels: dict[str, ChannelIn]


def _error_text(exc: ValidationError) -> str:
    first = exc.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"


def parse(path: str | Path) -> RulesFile:
    """Reads and validates the file; any problem is a ConfigError naming the entry and field."""
    path = Path(path)
    try:
        text = path.read_text()
        data: Any = tomllib.loads(text) if path.suffix.lower() == ".toml" else yaml.safe_load(text)
    except FileNotFoundError:
        raise ConfigError(f"rules_file {path} does not exist") from None
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"rules_file {path} cannot be parsed: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"rules_file {path} must hold a mapping with `rules` and `channels`")
    unknown = set(data) - {"rules", "channels"}
    if unknown:
        raise ConfigError(f"rules_file {path}: unknown top-level keys {sorted(unknown)} (expected rules, channels)")
    channels: dict[str, ChannelIn] = {}
    for index, raw in enumerate(data.get("channels") or []):
        try:
            channel = ChannelIn.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(f"rules_file {path}: channels[{index}].{_error_text(exc)}") from None
        if channel.name in channels:
            raise ConfigError(f"rules_file {path}: channels[{index}].name {channel.name!r} is defined twice")
        channels[channel.name] = channel
    rules: dict[str, RuleBody] = {}
    for index, raw in enumerate(data.get("rules") or []):
        try:
            rule = RuleIn.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(f"rules_file {path}: rules[{index}].{_error_text(exc)}") from None
        rule_id = rule.id or slug(rule.name)
        if rule_id in rules:
            raise ConfigError(f"rules_file {path}: rules[{index}] has the id {rule_id!r} of an earlier rule "
                              "(give it an `id`)")
        rules[rule_id] = RuleBody.model_validate(rule.model_dump(exclude={"id"}))
    return RulesFile(rules, channels)


def apply(repository: AlertRepository, rules_file: RulesFile) -> tuple[int, int]:
    """Writes what changed; returns (rules written, rules removed)."""
    existing_channels = {c.name: c for c in repository.list_channels()}
    for name, channel in rules_file.channels.items():
        body = channel.model_dump(exclude={"name"})
        old = existing_channels.get(name)
        if old is None or old.source != FILE_SOURCE or old.body.model_dump() != body:
            repository.put_channel(name, ChannelBody.model_validate(body), FILE_SOURCE)
    for name, old in existing_channels.items():
        if old.source == FILE_SOURCE and name not in rules_file.channels:
            repository.delete_channel(name)
    existing_rules = {r.id: r for r in repository.list_rules()}
    written = removed = 0
    for rule_id, rule in rules_file.rules.items():
        old_rule = existing_rules.get(rule_id)
        if old_rule is None or old_rule.source != FILE_SOURCE or old_rule.body != rule:
            repository.put_rule(rule_id, rule, FILE_SOURCE)
            written += 1
    for rule_id, old_rule in existing_rules.items():
        if old_rule.source == FILE_SOURCE and rule_id not in rules_file.rules:
            repository.delete_rule(rule_id)
            removed += 1
    return written, removed
