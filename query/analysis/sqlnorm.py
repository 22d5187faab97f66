"""Database statement normalization: the same statement with different literals is one statement.

Literals (strings, numbers, booleans, NULL-free) become `?`, IN-lists and VALUES rows become `(?)`,
whitespace collapses, and key-value stores keep their command word only ("GET ?"). The rollup's
SQL does the same with ClickHouse's `normalizeQuery`; this function states the rules in Python and
is applied to what ClickHouse returns, so both spellings of an IN-list end up alike.
"""

from __future__ import annotations

import re

KEY_VALUE_SYSTEMS = frozenset({"redis", "memcached"})

_STRING = re.compile(r"[eE]?'(?:[^'\\]|\\.|'')*'")
_DOLLAR = re.compile(r"\$\$.*?\$\$", re.S)
_NUMBER = re.compile(r"(?<![\w$.?])[-+]?(?:0x[0-9a-f]+|\d+(?:\.\d*)?(?:e[-+]?\d+)?|\.\d+(?:e[-+]?\d+)?)(?![\w.])", re.I)
_BOOL = re.compile(r"\b(?:true|false)\b", re.I)
_LIST = re.compile(r"\(\s*(?:\?|\?\.\.)(?:\s*,\s*(?:\?|\?\.\.))*\s*\)")
_ROWS = re.compile(r"\(\?\)(?:\s*,\s*\(\?\))+")
_SPACE = re.compile(r"\s+")
_COMMENT = re.compile(r"/\*.*?\*/|--[^\n]*", re.S)


def normalize_statement(statement: str, db_system: str = "") -> str:
    """The statement's shape without its literals; see the module docstring."""
    text = statement.strip()
    if db_system.lower() in KEY_VALUE_SYSTEMS:
        words = text.split()
        return f"{words[0].upper()} ?" if words else ""
    text = _COMMENT.sub(" ", text)
    text = _DOLLAR.sub("?", text)
    text = _STRING.sub("?", text)
    text = _NUMBER.sub("?", text)
    text = _BOOL.sub("?", text)
    text = _SPACE.sub(" ", text).strip()
    text = _LIST.sub("(?)", text)
    text = _ROWS.sub("(?)", text)
    return text
