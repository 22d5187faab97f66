"""Settings shared by every server-side component: where the data lives and how it is kept."""

from __future__ import annotations

from dataclasses import dataclass

from tracehouse.config import require
from tracehouse.storage import DEFAULT_DATA_PATH, SchemaOptions, dsn_for_data_path, validate_dsn


@dataclass(frozen=True)
class StoreSettings:
    store: str | None = None  # DSN: chdb:///path or http(s)://user:pass@host:8123/db; wins over `data`
    data: str = DEFAULT_DATA_PATH  # embedded data directory when no DSN is given
    retention_days: int = 7  # TTL of raw spans and metrics; 0 keeps them forever
    cluster: str | None = None  # ON CLUSTER name when migrating a ClickHouse cluster
    migrate: bool = True  # apply schemas/*.sql at start

    def __post_init__(self) -> None:
        require(self.retention_days >= 0, "retention_days must be 0 (keep forever) or a positive number of days")
        if self.store:
            validate_dsn(self.store)

    @property
    def dsn(self) -> str:
        return self.store or dsn_for_data_path(self.data)

    @property
    def schema_options(self) -> SchemaOptions:
        return SchemaOptions(retention_days=self.retention_days, cluster=self.cluster)
