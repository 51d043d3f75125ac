"""Statistics: the one recording seam, plain integer counters on the hot path, DataFrames on demand.

Each region owns one :class:`Recorder`, and every region operation records what happened there and
nowhere else: the region, its tiers (``Tier.failed`` counts a store error) and the plans driving the
store all write into the same recorder (``__slots__`` integers incremented inline, so a hit pays one
attribute increment and no call). :data:`OUTCOMES` says what each counter means as (tier, operation,
outcome); :meth:`Recorder.outcomes` reads them back in that shape, and :class:`Stats` gathers the
recorders of a runtime into rows. Latencies, traces and exporters belong here too: they read the
recorders, never the region logic. pandas is imported only by ``to_frame`` and ``timeseries``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .errors import require

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["COUNTERS", "OUTCOMES", "Recorder", "RegionStats", "Stats"]

COUNTERS = ("hits", "misses", "sets", "deletes", "errors", "evictions", "loads", "stale_hits")
_FOLDED = (*COUNTERS, "l1_hits", "load_time")

#: counter -> (tier, operation, outcome). ``hits`` counts every hit, of L1 or L2 (a caller sees one
#: hit either way); ``l1_hits`` the part L1 answered. "region" is the region as a whole.
OUTCOMES: dict[str, tuple[str, str, str]] = {
    "hits": ("region", "get", "hit"),
    "l1_hits": ("l1", "get", "hit"),
    "misses": ("region", "get", "miss"),
    "stale_hits": ("l2", "get", "stale"),
    "sets": ("l2", "put", "stored"),
    "deletes": ("l2", "forget", "done"),
    "errors": ("l2", "any", "error"),
    "evictions": ("l2", "put", "evicted"),
    "loads": ("region", "remember", "loaded"),
}


class Recorder:
    """What happened in one region (and its tiers): the counters of :data:`OUTCOMES`, plus the
    time spent in loaders (``load_time``, seconds)."""

    __slots__ = ("deletes", "errors", "evictions", "hits", "l1_hits", "load_time", "loads", "misses",
                 "provider", "region", "sets", "stale_hits")

    def __init__(self, region: str, provider: str) -> None:
        self.region = region
        self.provider = provider
        self.reset()

    def reset(self) -> None:
        self.hits = self.misses = self.sets = self.deletes = 0
        self.errors = self.evictions = self.loads = self.stale_hits = self.l1_hits = 0
        self.load_time = 0.0

    def add(self, other: RegionStats) -> None:
        """Fold ``other``'s counters into these (a dropped ad-hoc region's, say)."""
        for name in _FOLDED:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def active(self) -> bool:
        """Whether anything was counted here."""
        return bool(self.hits or self.misses or self.sets or self.deletes or self.errors or self.loads)

    def outcomes(self) -> list[tuple[str, str, str, str, int]]:
        """``(region, tier, operation, outcome, count)`` for every counter."""
        return [(self.region, *OUTCOMES[name], getattr(self, name)) for name in OUTCOMES]

    def as_dict(self) -> dict[str, Any]:
        lookups = self.hits + self.misses
        return {
            "region": self.region,
            "provider": self.provider,
            "hits": self.hits,
            "misses": self.misses,
            "hit_ratio": (self.hits / lookups) if lookups else float("nan"),
            "sets": self.sets,
            "deletes": self.deletes,
            "errors": self.errors,
            "evictions": self.evictions,
            "loads": self.loads,
            "stale_hits": self.stale_hits,
            "l1_hits": self.l1_hits,
            "load_time_s": self.load_time,
        }


#: the former name of :class:`Recorder`
RegionStats = Recorder


class Stats:
    """All regions' counters of a runtime.

    ``rows()`` is plain Python; ``to_frame()`` a pandas DataFrame (one row per region);
    ``sample()`` records a timestamped snapshot and ``timeseries()`` returns the snapshots.
    """

    def __init__(self, sources: Callable[[], Iterable[RegionStats]], clock: Callable[[], float] = time.time,
                 on_reset: Callable[[], None] | None = None) -> None:
        self._sources = sources
        self._clock = clock
        self._on_reset = on_reset
        self._samples: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.max_samples = 10_000

    def rows(self) -> list[dict[str, Any]]:
        return [st.as_dict() for st in self._sources()]

    def breakers(self) -> dict[str, dict[str, Any]]:
        """The providers' circuit breakers, ``{provider: {"state", "failures", "opened", "skipped",
        "opens"}}`` (the runtime sets this to :meth:`Runtime.breakers`)."""
        return {}

    def outcomes(self) -> list[tuple[str, str, str, str, int]]:
        """Every recorder's ``(region, tier, operation, outcome, count)``, non-zero counts only."""
        return [row for st in self._sources() for row in st.outcomes() if row[4]]

    def totals(self) -> dict[str, int]:
        totals = dict.fromkeys(COUNTERS, 0)
        for row in self.rows():
            for name in COUNTERS:
                totals[name] += row[name]
        return totals

    def to_frame(self) -> pd.DataFrame:
        """One row per region: hits, misses, hit_ratio, sets, deletes, errors, evictions..."""
        pd = require("pandas", "pandas")
        rows = self.rows()
        columns = ["region", "provider", "hits", "misses", "hit_ratio", "sets", "deletes", "errors",
                   "evictions", "loads", "stale_hits", "l1_hits", "load_time_s"]
        return pd.DataFrame(rows, columns=columns).set_index("region")  # type: ignore[attr-defined,no-any-return]

    def sample(self) -> None:
        """Record the current counters with a timestamp (for :meth:`timeseries`)."""
        now = self._clock()
        with self._lock:
            for row in self.rows():
                row["time"] = now
                self._samples.append(row)
            del self._samples[: max(0, len(self._samples) - self.max_samples)]

    def timeseries(self) -> pd.DataFrame:
        """The recorded samples, indexed by (time, region)."""
        pd = require("pandas", "pandas")
        with self._lock:
            frame = pd.DataFrame(list(self._samples))  # type: ignore[attr-defined]
        if frame.empty:
            return frame
        frame["time"] = pd.to_datetime(frame["time"], unit="s")  # type: ignore[attr-defined]
        return frame.set_index(["time", "region"])  # type: ignore[no-any-return]

    def reset(self) -> None:
        for st in self._sources():
            st.reset()
        if self._on_reset is not None:
            self._on_reset()
        with self._lock:
            self._samples.clear()
