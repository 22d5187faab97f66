"""Shared fixtures: a real store (chDB, or the ClickHouse server in TRACEHOUSE_TEST_CLICKHOUSE_URL)
and a real `tracehouse up` process on free ports."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.support import TraceHouseProcess, free_port, start_tracehouse  # noqa: F401 (re-exported)
from tracehouse import storage

SERVER_URL = os.environ.get("TRACEHOUSE_TEST_CLICKHOUSE_URL")


@pytest.fixture(scope="session")
def session_store_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The store this pytest process talks to directly. chDB allows one data path per process,
    so every in-process test shares this one and isolates itself in a database of its own."""
    if SERVER_URL:
        return SERVER_URL
    return storage.dsn_for_data_path(tmp_path_factory.mktemp("chdb-session"))


@pytest.fixture
def clickhouse(session_store_dsn: str) -> Iterator[storage.Client]:
    """A client on a fresh, migrated database of its own (dropped afterwards)."""
    database = f"t_{uuid.uuid4().hex[:12]}"
    admin = storage.connect(session_store_dsn)
    admin.command(f"CREATE DATABASE {database}")
    client = storage.connect(session_store_dsn, database=database)
    storage.migrate(client)
    try:
        yield client
    finally:
        client.close()
        admin.command(f"DROP DATABASE IF EXISTS {database} SYNC")
        admin.close()


@pytest.fixture
def server_store_dsn(tmp_path: os.PathLike[str]) -> Iterator[str]:
    """A store for a `tracehouse up` subprocess: its own chDB path, or a fresh database on the server."""
    if not SERVER_URL:
        yield storage.dsn_for_data_path(os.path.join(tmp_path, "data"))
        return
    database = f"t_{uuid.uuid4().hex[:12]}"
    admin = storage.connect(SERVER_URL)
    admin.command(f"CREATE DATABASE {database}")
    yield _with_database(SERVER_URL, database)
    admin.command(f"DROP DATABASE IF EXISTS {database} SYNC")
    admin.close()


@pytest.fixture
def tracehouse(server_store_dsn: str, tmp_path: os.PathLike[str]) -> Iterator[TraceHouseProcess]:
    """`tracehouse up` as a real process on free ports, ready to receive; stopped with SIGTERM after."""
    process = start_tracehouse(server_store_dsn, log_path=os.path.join(tmp_path, "tracehouse.log"))
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def shared_tracehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TraceHouseProcess]:
    """One `tracehouse up` for a whole test module, for tests that only add data and read their own back."""
    directory = tmp_path_factory.mktemp("tracehouse-shared")
    if SERVER_URL:
        database = f"t_{uuid.uuid4().hex[:12]}"
        admin = storage.connect(SERVER_URL)
        admin.command(f"CREATE DATABASE {database}")
        dsn = _with_database(SERVER_URL, database)
    else:
        dsn = storage.dsn_for_data_path(directory / "data")
    process = start_tracehouse(dsn, log_path=str(directory / "tracehouse.log"))
    try:
        yield process
    finally:
        process.stop()
        if SERVER_URL:
            admin.command(f"DROP DATABASE IF EXISTS {database} SYNC")
            admin.close()


def _with_database(url: str, database: str) -> str:
    """`url` with its database path replaced by `database` (query string kept)."""
    from urllib.parse import urlparse, urlunparse

    parsed = urlparse(url)
    return urlunparse(parsed._replace(path="/" + database))
