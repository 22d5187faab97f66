"""Settings of the query service: `[query]` in the config file, TRACEHOUSE_<FIELD> in the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tracehouse.config import load_settings, require


@dataclass(frozen=True)
class QuerySettings:
    lateness_s: int = 300  # a span is stored at most this long after it ends; edges wait this long
    rollup_interval_s: int = 60  # how often the edge rollup job runs, and the width of its windows
    rollup_enabled: bool = True  # run the edge rollup job in this process
    rollup_max_window_s: int = 600  # catching up processes at most this much span time per INSERT
    max_pair_gap_s: int = 900  # parent and child spans start and end within this of each other
    exact_window_s: int = 900  # windows up to this long are answered exactly from raw spans
    raw_tail_max_spans: int = 50_000  # longer windows join the spans past the rollup only if this few
    default_window_s: int = 3600  # list endpoints without start/end cover the last this many seconds
    max_cycles: int = 500  # elementary cycles enumerated at most (a dense graph cannot hang the server)
    cycle_trace_limit: int = 2000  # traces checked at most for per-trace service re-entry
    n_plus_one_min: int = 5  # default K of /db/n-plus-one

    def __post_init__(self) -> None:
        require(self.lateness_s >= 0, "lateness_s must be 0 or more seconds")
        require(self.rollup_interval_s >= 1, "rollup_interval_s must be at least 1 second")
        require(self.rollup_max_window_s >= self.rollup_interval_s,
                "rollup_max_window_s must be at least rollup_interval_s")
        require(self.max_pair_gap_s >= 1, "max_pair_gap_s must be at least 1 second")
        require(self.exact_window_s >= 0, "exact_window_s must be 0 or more seconds")
        require(self.raw_tail_max_spans >= 0, "raw_tail_max_spans must be 0 or more")
        require(self.default_window_s >= 1, "default_window_s must be at least 1 second")
        require(self.max_cycles >= 1, "max_cycles must be at least 1")
        require(self.cycle_trace_limit >= 1, "cycle_trace_limit must be at least 1")
        require(self.n_plus_one_min >= 2, "n_plus_one_min must be at least 2")


def load_query_settings(toml: Mapping[str, Any] | None = None,
                        overrides: Mapping[str, Any] | None = None) -> QuerySettings:
    return load_settings(QuerySettings, toml=toml, section="query", overrides=overrides)
