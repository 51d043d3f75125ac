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

import math
import threading
import time
from collections.abc import Callable, Iterable
from math import frexp
from typing import TYPE_CHECKING, Any

from .errors import require

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["COUNTERS", "OUTCOMES", "TIER_COLUMNS", "Histogram", "Recorder", "RegionStats", "Stats"]

COUNTERS = ("hits", "misses", "sets", "deletes", "errors", "evictions", "loads", "stale_hits")
_FOLDED = (*COUNTERS, "l1_hits", "load_time", "load_failures", "expirations")
#: the columns of ``to_frame(by="tier")``
TIER_COLUMNS = ("hits", "misses", "hit_ratio", "sets", "deletes", "errors", "evictions", "expirations", "loads",
                "load_failures", "stale_hits", "invalidations")
#: the numeric counters of a snapshot row (``timeseries``, rates)
_SERIES = ("hits", "misses", "sets", "deletes", "errors", "evictions", "expirations", "loads", "load_failures",
           "stale_hits", "l1_hits", "load_time_s")


class Histogram:
    """A compact latency histogram (HDR-style): log-linear buckets, 8 per power of two (relative
    error under 9 %), over microseconds; exact ``count``, ``total`` and ``max``."""

    __slots__ = ("buckets", "count", "max", "total")
    SUB = 8

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.total = 0.0
        self.max = 0.0

    def add(self, seconds: float) -> None:
        us = seconds * 1e6
        self.count += 1
        self.total += us
        if us > self.max:
            self.max = us
        if us <= 1.0:
            b = 0
        else:  # bucket(us), inline: one latency per timed store call
            m, e = frexp(us)
            b = e * 8 + int((m - 0.5) * 16) - 7
        buckets = self.buckets
        buckets[b] = buckets.get(b, 0) + 1

    @classmethod
    def bucket(cls, us: float) -> int:
        if us <= 1.0:
            return 0
        m, e = math.frexp(us)  # us = m * 2**e, 0.5 <= m < 1
        return e * cls.SUB + int((m - 0.5) * 2 * cls.SUB) - cls.SUB + 1

    @classmethod
    def upper(cls, b: int) -> float:
        """The upper bound (µs) of bucket ``b``."""
        if b <= 0:
            return 1.0
        e, sub = divmod(b - 1 + cls.SUB, cls.SUB)
        return math.ldexp(0.5 + (sub + 1) / (2 * cls.SUB), e)

    def merge(self, other: Histogram) -> None:
        self.count += other.count
        self.total += other.total
        self.max = max(self.max, other.max)
        for b, n in other.buckets.items():
            self.buckets[b] = self.buckets.get(b, 0) + n

    def quantile(self, q: float) -> float:
        """The ``q`` quantile in µs (a bucket's upper bound, capped by the maximum); NaN when empty."""
        if not self.count:
            return float("nan")
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for b in sorted(self.buckets):
            seen += self.buckets[b]
            if seen >= rank:
                return min(self.upper(b), self.max)
        return self.max

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound in µs, count at or below)`` per non-empty bucket (Prometheus buckets)."""
        out, seen = [], 0
        for b in sorted(self.buckets):
            seen += self.buckets[b]
            out.append((self.upper(b), seen))
        return out

    def as_dict(self) -> dict[str, float]:
        n = self.count
        return {"count": n, "mean_us": self.total / n if n else float("nan"), "p50_us": self.quantile(0.5),
                "p90_us": self.quantile(0.9), "p99_us": self.quantile(0.99), "max_us": self.max if n else float("nan")}


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
    "load_failures": ("region", "remember", "failed"),
}


class Recorder:
    """What happened in one region (and its tiers): the counters of :data:`OUTCOMES`, plus the
    time spent in loaders (``load_time``, seconds)."""

    __slots__ = ("deletes", "errors", "evictions", "expirations", "hits", "invalidations", "l1_evictions",
                 "l1_expirations", "l1_hits", "latency", "load_failures", "load_time", "loads", "misses",
                 "provider", "region", "sets", "stale_hits", "timing", "trace", "two_tier")

    def __init__(self, region: str, provider: str) -> None:
        self.region = region
        self.provider = provider
        #: time non-hot operations (``[cache].stats``); the in-process memory get is never timed
        self.timing = True
        #: the active :class:`cachekit.simulate.Trace` (``runtime.trace()``), else ``None``
        self.trace: Any = None
        self.two_tier = False
        self.reset()

    def reset(self) -> None:
        self.hits = self.misses = self.sets = self.deletes = 0
        self.errors = self.evictions = self.loads = self.stale_hits = self.l1_hits = 0
        self.load_time = 0.0
        self.load_failures = self.expirations = self.l1_evictions = self.l1_expirations = 0
        #: op -> :class:`Histogram`
        self.latency: dict[str, Histogram] = {}
        #: (kind, name) -> [count, keys removed, generations advanced]
        self.invalidations: dict[tuple[str, str], list[int]] = {}

    def observe(self, op: str, seconds: float) -> None:
        """Record one latency of ``op`` (``get``, ``put``, ``delete``, ``load``...)."""
        h = self.latency.get(op)
        if h is None:
            h = self.latency[op] = Histogram()
        h.add(seconds)

    def timed(self, op: str, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)``, its latency recorded under ``op``."""
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.observe(op, time.perf_counter() - started)

    def loaded(self, key: str, seconds: float) -> None:
        """A loader of ``key`` ran for ``seconds`` (``remember``)."""
        self.loads += 1
        self.load_time += seconds
        if self.timing:
            self.observe("load", seconds)
        if self.trace is not None:
            self.trace.event(self.region, key, "load", False, None, seconds)

    def invalidated(self, kind: str, name: str, removed: int, generations: int = 0) -> None:
        """One invalidation by ``kind`` (``tag``, ``pattern``, ``rule``, ``flush``, ``event``) named ``name``."""
        row = self.invalidations.get((kind, name))
        if row is None:
            row = self.invalidations[(kind, name)] = [0, 0, 0]
        row[0] += 1
        row[1] += removed
        row[2] += generations

    def tiers(self) -> list[dict[str, Any]]:
        """The ``to_frame(by="tier")`` rows of this region: ``l1`` (two-tier regions) and ``l2``."""
        l2_hits = self.hits - self.l1_hits
        inv = sum(row[0] for row in self.invalidations.values())
        l2 = {"region": self.region, "tier": "l2", "hits": l2_hits, "misses": self.misses,
              "hit_ratio": _ratio(l2_hits, self.misses), "sets": self.sets, "deletes": self.deletes,
              "errors": self.errors, "evictions": self.evictions - self.l1_evictions,
              "expirations": self.expirations - self.l1_expirations, "loads": self.loads,
              "load_failures": self.load_failures, "stale_hits": self.stale_hits, "invalidations": inv}
        if not self.two_tier:
            return [l2]
        l1_misses = l2_hits + self.misses + self.stale_hits
        l1 = {"region": self.region, "tier": "l1", "hits": self.l1_hits, "misses": l1_misses,
              "hit_ratio": _ratio(self.l1_hits, l1_misses), "sets": 0, "deletes": 0, "errors": 0,
              "evictions": self.l1_evictions, "expirations": self.l1_expirations, "loads": 0,
              "load_failures": 0, "stale_hits": 0, "invalidations": 0}
        return [l1, l2]

    def add(self, other: RegionStats) -> None:
        """Fold ``other``'s counters into these (a dropped ad-hoc region's, say)."""
        for name in _FOLDED:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for op, h in other.latency.items():
            self.latency.setdefault(op, Histogram()).merge(h)
        for key, row in other.invalidations.items():
            mine = self.invalidations.setdefault(key, [0, 0, 0])
            for i in range(3):
                mine[i] += row[i]

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
            "expirations": self.expirations,
            "load_failures": self.load_failures,
        }


def _ratio(hits: int, misses: int) -> float:
    return hits / (hits + misses) if hits + misses else float("nan")


#: the former name of :class:`Recorder`
RegionStats = Recorder


class Tracer:
    """An active ``runtime.trace()``: the :class:`cachekit.simulate.Trace` it fills and the runtime clock."""

    __slots__ = ("now", "trace")

    def __init__(self, trace: Any, now: Callable[[], float]) -> None:
        self.trace = trace
        self.now = now

    def event(self, region: str, key: Any, op: str, hit: bool = False, value: Any = None,
              load_time: float = 0.0) -> None:
        size = len(value) if isinstance(value, (str, bytes, bytearray)) else 0
        self.trace.record(self.now(), region, key, op, hit, size, load_time)


class Stats:
    """All regions' counters of a runtime.

    ``rows()`` is plain Python; ``to_frame()`` a pandas DataFrame (one row per region; ``by="tier"``:
    per tier); ``latency_frame()`` and ``invalidations_frame()`` the histograms and invalidations;
    ``sample()`` (or the background sampler of ``start_sampling()``) records a timestamped snapshot
    and ``timeseries()`` returns the snapshots; ``snapshot()`` is everything as plain JSON-able data.
    """

    def __init__(self, sources: Callable[[], Iterable[RegionStats]], clock: Callable[[], float] = time.time,
                 on_reset: Callable[[], None] | None = None) -> None:
        self._sources = sources
        self._clock = clock
        self._on_reset = on_reset
        #: whole snapshots: (time, rows)
        self._snapshots: list[tuple[float, list[dict[str, Any]]]] = []
        self._lock = threading.Lock()
        #: how many snapshots ``timeseries()`` keeps (the oldest go first, always whole)
        self.max_snapshots = 10_000
        self._sampler: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def max_samples(self) -> int:
        """The former name of :attr:`max_snapshots`."""
        return self.max_snapshots

    @max_samples.setter
    def max_samples(self, value: int) -> None:
        self.max_snapshots = value

    def recorders(self) -> list[Recorder]:
        return list(self._sources())

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

    def set_timing(self, on: bool) -> None:
        """Latency timing of non-hot operations on (``[cache].stats = true``, the default) or off."""
        for st in self._sources():
            st.timing = on

    def to_frame(self, by: str | None = None) -> pd.DataFrame:
        """One row per region: hits, misses, hit_ratio, sets, deletes, errors, evictions...;
        ``by="tier"``: index ``(region, tier)``, numeric columns only (:data:`TIER_COLUMNS`)."""
        pd = require("pandas", "pandas")
        if by == "tier":
            rows = [row for st in self._sources() for row in st.tiers()]
            frame = pd.DataFrame(rows, columns=["region", "tier", *TIER_COLUMNS])
            return frame.set_index(["region", "tier"])  # type: ignore[no-any-return]
        if by is not None:
            raise ValueError(f"by must be None or 'tier', not {by!r}")
        rows = self.rows()
        columns = ["region", "provider", "hits", "misses", "hit_ratio", "sets", "deletes", "errors",
                   "evictions", "loads", "stale_hits", "l1_hits", "load_time_s"]
        return pd.DataFrame(rows, columns=columns).set_index("region")  # type: ignore[attr-defined,no-any-return]

    def latency_frame(self) -> pd.DataFrame:
        """Index ``(region, op)``: count, mean_us, p50_us, p90_us, p99_us, max_us."""
        pd = require("pandas", "pandas")
        rows = [{"region": st.region, "op": op, **h.as_dict()}
                for st in self._sources() for op, h in sorted(st.latency.items())]
        frame = pd.DataFrame(rows, columns=["region", "op", "count", "mean_us", "p50_us", "p90_us", "p99_us",
                                            "max_us"])
        return frame.set_index(["region", "op"])  # type: ignore[no-any-return]

    def invalidations_frame(self) -> pd.DataFrame:
        """Index ``(region, kind, name)``: count, removed (keys deleted), generations (advanced)."""
        pd = require("pandas", "pandas")
        rows = [{"region": st.region, "kind": kind, "name": name, "count": c, "removed": r, "generations": g}
                for st in self._sources() for (kind, name), (c, r, g) in sorted(st.invalidations.items())]
        frame = pd.DataFrame(rows, columns=["region", "kind", "name", "count", "removed", "generations"])
        return frame.set_index(["region", "kind", "name"])  # type: ignore[no-any-return]

    def snapshot(self) -> dict[str, Any]:
        """Everything as plain JSON-able data: ``{"time", "regions": {name: {counters..., "tiers",
        "latency", "invalidations"}}}`` (NaN ratios become ``None``)."""
        regions: dict[str, Any] = {}
        for st in self._sources():
            row = {k: _plain(v) for k, v in st.as_dict().items() if k != "region"}
            row["tiers"] = {t.pop("tier"): {k: _plain(v) for k, v in t.items() if k != "region"}
                            for t in st.tiers()}
            row["latency"] = {op: {k: _plain(v) for k, v in h.as_dict().items()} for op, h in st.latency.items()}
            row["invalidations"] = [{"kind": kind, "name": name, "count": c, "removed": r, "generations": g}
                                    for (kind, name), (c, r, g) in sorted(st.invalidations.items())]
            regions[st.region] = row
        return {"time": self._clock(), "regions": regions}

    # -- over time ------------------------------------------------------------------------
    def sample(self) -> None:
        """Record the current counters with a timestamp (for :meth:`timeseries`); a snapshot taken at
        the same time as the last one replaces it."""
        now = self._clock()
        rows = [{k: row[k] for k in ("region", "hit_ratio", *_SERIES)} for row in self.rows()]
        with self._lock:
            if self._snapshots and self._snapshots[-1][0] == now:
                self._snapshots.pop()
            self._snapshots.append((now, rows))
            del self._snapshots[: max(0, len(self._snapshots) - self.max_snapshots)]

    def start_sampling(self, interval: float = 1.0) -> None:
        """Call :meth:`sample` every ``interval`` seconds in a daemon thread (until :meth:`stop_sampling`)."""
        if interval <= 0:
            raise ValueError(f"interval must be > 0, not {interval!r}")
        self.stop_sampling()
        self._stop = stop = threading.Event()

        def run() -> None:
            while not stop.wait(interval):
                self.sample()

        self.sample()
        self._sampler = threading.Thread(target=run, name="cachekit-stats-sampler", daemon=True)
        self._sampler.start()

    def stop_sampling(self) -> None:
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join(timeout=5)
            self._sampler = None

    @property
    def sampling(self) -> bool:
        return self._sampler is not None

    def timeseries(self, rates: bool = False) -> pd.DataFrame:
        """The snapshots, indexed by ``(time, region)``, numeric columns only (cumulative counters);
        ``rates=True``: per-second rates over each interval, at the interval's end."""
        pd = require("pandas", "pandas")
        with self._lock:
            rows = [{"time": t, **row} for t, snap in self._snapshots for row in snap]
        frame = pd.DataFrame(rows, columns=["time", "region", "hit_ratio", *_SERIES])
        frame["time"] = pd.to_datetime(frame["time"], unit="s")
        frame = frame.set_index(["time", "region"])
        if not rates or frame.empty:
            return frame  # type: ignore[no-any-return]
        frame = frame.drop(columns="hit_ratio")
        seconds = pd.Series(frame.index.get_level_values("time"), index=frame.index)
        by = frame.groupby(level="region")
        dt = seconds.groupby(level="region").diff().dt.total_seconds()
        out = by.diff().div(dt, axis=0)
        return out[dt.notna() & (dt > 0)]  # type: ignore[no-any-return]

    def reset(self) -> None:
        for st in self._sources():
            st.reset()
        if self._on_reset is not None:
            self._on_reset()
        with self._lock:
            self._snapshots.clear()


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
