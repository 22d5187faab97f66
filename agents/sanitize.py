"""Literal stripping for database statements: `WHERE email = 'a@b.c' AND id = 42` becomes
`WHERE email = ? AND id = ?`, so no secrets or personal data leave the service and statements
group by shape. Pure functions, no dependencies.

The token rules (quoted strings with doubled or backslash-escaped quotes, PostgreSQL dollar quoting
and E/N/X/B prefixes, numbers not glued to identifiers, comments skipped) are those of common SQL
obfuscators such as the one in OpenTelemetry's sqlcommenter work and Datadog's obfuscator; this is
an independent implementation.
"""

from __future__ import annotations

import re
from functools import lru_cache

_COMMENT = r"--[^\n]*|/\*.*?\*/"
_SINGLE_QUOTED = r"(?:\b[EeNnXxBbUu]&?)?'(?:[^'\\]|\\.|'')*'"
_DOUBLE_QUOTED = r'"(?:[^"\\]|\\.|"")*"'
_DOLLAR_QUOTED = r"\$(?P<tag>[A-Za-z_][A-Za-z_0-9]*)?\$.*?\$(?P=tag)?\$"
_NUMBER = r"(?<![\w$.])(?:0[xX][0-9A-Fa-f]+|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)(?![\w$])"

# Double quotes delimit identifiers in standard SQL (kept) but strings in MySQL/MariaDB (stripped).
_STANDARD = re.compile(
    f"(?P<comment>{_COMMENT})|(?P<ident>{_DOUBLE_QUOTED})|(?P<literal>{_SINGLE_QUOTED}|{_DOLLAR_QUOTED}|{_NUMBER})",
    re.DOTALL,
)
_MYSQL = re.compile(
    f"(?P<comment>{_COMMENT})|(?P<ident>`[^`]*`)|(?P<literal>{_SINGLE_QUOTED}|{_DOUBLE_QUOTED}|{_NUMBER})",
    re.DOTALL,
)
_IN_LIST = re.compile(r"(\bIN\s*)\(\s*\?(?:\s*,\s*\?)+\s*\)", re.IGNORECASE)
MYSQL_SYSTEMS = frozenset({"mysql", "mariadb"})
KEY_VALUE_SYSTEMS = frozenset({"redis", "memcached"})


def _replace(match: re.Match[str]) -> str:
    return "?" if match.group("literal") is not None else match.group(0)


@lru_cache(maxsize=2048)
def strip_sql_literals(statement: str, mysql_quotes: bool = False) -> str:
    """The statement with every string and number literal replaced by `?` and IN lists collapsed."""
    pattern = _MYSQL if mysql_quotes else _STANDARD
    stripped = pattern.sub(_replace, statement)
    return _IN_LIST.sub(r"\1(?)", stripped)


def strip_command_arguments(statement: str) -> str:
    """Key-value stores (`SET user:1 secret`): keep the command word, hide every argument."""
    words = statement.split()
    if not words:
        return statement
    return " ".join([words[0]] + ["?"] * (len(words) - 1))


def sanitize_statement(statement: str, db_system: str | None) -> str:
    system = (db_system or "").lower()
    if system in KEY_VALUE_SYSTEMS:
        return strip_command_arguments(statement)
    return strip_sql_literals(statement, system in MYSQL_SYSTEMS)
