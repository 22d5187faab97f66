"""Typed settings: defaults < TOML file < TRACEHOUSE_* environment < command line.

Each component declares one frozen dataclass of settings (units in the field names) and reads it
with `load_settings`. A bad value raises `ConfigError` with one line naming the setting, its
source and what is allowed; the CLI prints that line and exits 2.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
ENV_PREFIX = "TRACEHOUSE_"


class ConfigError(ValueError):
    """Invalid configuration; the message is one line meant for the operator."""


def read_toml(path: str | os.PathLike[str] | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _convert(name: str, raw: Any, annotation: Any, source: str) -> Any:
    """`raw` (a TOML value or an environment string) as the field's declared type."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if raw is None or (isinstance(raw, str) and raw == ""):
            return None
        non_none = [a for a in args if a is not type(None)]
        return _convert(name, raw, non_none[0], source)
    try:
        if annotation is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if annotation is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError("expected a whole number")
            return int(raw)
        if annotation is float:
            return float(raw)
        if annotation is str:
            return str(raw)
        if origin in (list, tuple):
            items = raw if isinstance(raw, list) else [p.strip() for p in str(raw).split(",") if p.strip()]
            converted = [_convert(name, item, args[0], source) for item in items]
            return tuple(converted) if origin is tuple else converted
        if origin is dict or annotation is dict:
            if isinstance(raw, Mapping):
                return dict(raw)
            raise ValueError("expected a table")
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} from {source}: {raw!r} is not valid ({exc})") from None
    return raw


def load_settings(
    cls: type[T],
    *,
    toml: Mapping[str, Any] | None = None,
    section: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> T:
    """Builds `cls` from its defaults, then `toml` (top level, then `[section]`), then
    `TRACEHOUSE_<FIELD>` environment variables, then `overrides` whose value is not None."""
    environ = os.environ if environ is None else environ
    hints = typing.get_type_hints(cls)
    field_names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    layers: list[tuple[str, Mapping[str, Any]]] = []
    if toml:
        layers.append(("the config file", {k: v for k, v in toml.items() if not isinstance(v, dict)}))
        if section and isinstance(toml.get(section), dict):
            layers.append((f"the config file [{section}]", toml[section]))
    for source, layer in layers:
        for key, raw in layer.items():
            key = key.replace("-", "_")
            if key in field_names:
                values[key] = _convert(key, raw, hints[key], source)
    for name in field_names:
        env_name = ENV_PREFIX + name.upper()
        if env_name in environ:
            values[name] = _convert(name, environ[env_name], hints[name], env_name)
    for name, raw in (overrides or {}).items():
        if raw is not None and name in field_names:
            values[name] = _convert(name, raw, hints[name], "the command line")
    try:
        return cls(**values)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None


def require(condition: bool, message: str) -> None:
    """For `__post_init__` validation: one line, raised as ConfigError."""
    if not condition:
        raise ConfigError(message)


def check_port(name: str, port: int) -> None:
    require(0 <= port <= 65535, f"{name} must be a TCP port between 0 and 65535, not {port}")


def default_data_path() -> Path:
    return Path(os.environ.get("TRACEHOUSE_DATA", "./tracehouse-data"))
