"""The evaluator lease: among query replicas sharing a database, one evaluates at a time.

ClickHouse has no compare-and-set, so the lease is a claim protocol on plain inserts, timed by the
database's clock (`now64`), not the replicas':

* Every claim is a row (name, holder, expires_at, version, claimed_at), claimed_at stamped by the
  database as the row is inserted. The lease is the claim with the highest version; of claims with
  the same version the earliest wins (then the smallest holder name), so every reader that sees the
  same rows picks the same winner, and a claim that arrives late cannot unseat one that was there first.
* Whoever finds the lease free (absent or expired) or held by itself claims version+1 (nobody
  claims a lease another replica holds), waits `settle_s`, and reads again. Inserts are synchronous,
  so a competing claim stamped before ours is visible by then and wins, and one stamped after ours
  loses to us: all contenders agree. The holder renews the same way, so a renewal that comes late
  (after its lease expired) cannot race a takeover either. The one assumption is that an insert
  becomes visible within `settle_s` of its stamp.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

LEASE_TABLE = "tracehouse_alert_lease"
DEFAULT_LEASE = "alert-evaluator"

CURRENT_SQL = """
SELECT holder, toUnixTimestamp64Milli(expires_at) AS expires_ms, version,
       toUnixTimestamp64Milli(now64(3)) AS now_ms
FROM tracehouse_alert_lease
WHERE name = {name:String}
ORDER BY version DESC, claimed_at ASC, holder ASC
LIMIT 1
"""

NOW_SQL = "SELECT toUnixTimestamp64Milli(now64(3))"

CLAIM_SQL = """
INSERT INTO tracehouse_alert_lease (name, holder, expires_at, version, claimed_at)
SELECT {name:String}, {holder:String}, now64(3) + toIntervalMillisecond({ttl_ms:Int64}), {version:UInt64}, now64(3)
"""


@dataclass(frozen=True)
class LeaseView:
    holder: str
    expires_ms: int
    version: int
    now_ms: int

    @property
    def valid(self) -> bool:
        return self.expires_ms > self.now_ms


class Lease:
    def __init__(self, client: Client, holder: str, *, ttl_s: float, settle_s: float = 0.5,
                 name: str = DEFAULT_LEASE) -> None:
        self.client = client
        self.holder = holder
        self.ttl_ms = int(ttl_s * 1000)
        self.settle_s = settle_s
        self.name = name
        self.expires_ms = 0  # of our own lease, by the database clock, when we last held it

    def current(self) -> LeaseView | None:
        result = self.client.query(CURRENT_SQL, parameters={"name": self.name})
        if not result.result_rows:
            return None
        holder, expires_ms, version, now_ms = result.result_rows[0]
        return LeaseView(str(holder), int(expires_ms), int(version), int(now_ms))

    def _claim(self, version: int, ttl_ms: int) -> None:
        self.client.command(CLAIM_SQL, parameters={"name": self.name, "holder": self.holder, "ttl_ms": ttl_ms,
                                                   "version": version},
                            settings={"insert_distributed_sync": 1})  # visible to the next read on a cluster

    def try_acquire(self) -> bool:
        """Claims or renews the lease; True when this replica holds it afterwards."""
        view = self.current()
        if view is not None and view.holder != self.holder and view.valid:
            return False
        self._claim((view.version if view else 0) + 1, self.ttl_ms)
        if self.settle_s > 0:
            time.sleep(self.settle_s)
        after = self.current()
        held = after is not None and after.holder == self.holder and after.valid
        self.expires_ms = after.expires_ms if held and after else 0
        return held

    def still_held(self, margin_s: float = 1.0) -> bool:
        """True when this replica holds the lease for at least `margin_s` more (by the database clock)."""
        view = self.current()
        return view is not None and view.holder == self.holder and view.expires_ms - view.now_ms > margin_s * 1000

    def release(self) -> None:
        """Gives the lease up at once (another replica takes over on its next try)."""
        view = self.current()
        if view is not None and view.holder == self.holder and view.valid:
            self._claim(view.version + 1, 0)
        self.expires_ms = 0
