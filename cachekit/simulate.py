"""Access traces and the what-if simulator.

A :class:`Trace` is a compact columnar record of cache operations (time, region, key hash, op, hit,
value size, load time). ``runtime.trace()`` records one while a workload runs; ``Trace.record`` is the
cheap append it calls. :func:`simulate` replays a trace under other settings and predicts what the
cache would have done::

    >>> trace = Trace.synthetic_zipf(n_keys=1_000, n_events=20_000, alpha=0.9, seed=1)
    >>> frame = simulate(trace, max_size=[100, 500], ttl=[None, 60])
    >>> list(frame.columns[:8])
    ['region', 'max_size', 'ttl', 'policy', 'hit_ratio', 'misses', 'loads', 'est_load_time_s']

The replay drives a real :class:`~cachekit.providers.memory.MemoryDriver` on a clock that reads the
trace's time, so eviction and TTL expiry are the memory store's own code, never a second copy. Reads
are replayed cache-aside: a ``get`` that misses counts a load and inserts the key (what ``remember``
does); ``put`` events write, ``delete`` events remove. ``opt`` (Belady's optimum) and ``infinite``
(no size bound) are reported as bounds, and ``max_size="curve"`` gives the whole LRU hit-ratio curve
in one pass (Mattson's stack distances).

pandas (and numpy) are imported only by the functions that build frames; tqdm only for a progress bar.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .clock import Clock
from .config.durations import DURATION_FORMS, parse_duration
from .errors import require
from .providers.base import MISSING
from .providers.memory import POLICIES as MEMORY_POLICIES
from .providers.memory import MemoryDriver
from .simulate_bounds import INF, Result, chunks, replay_opt, stack_distances
from .trace import DELETE, GET, OPS, PUT, RegionEvents, Trace

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BOUNDS", "OPS", "Trace", "lru_curve", "simulate"]

#: policies the simulator computes itself, as bounds: Belady's optimum and an unbounded store
BOUNDS = ("opt", "infinite")
#: replays longer than this (events x settings) show a progress bar when ``progress=None``
PROGRESS_THRESHOLD = 1_000_000


# -- replays ------------------------------------------------------------------------------------
class _TraceClock(Clock):
    """The clock of a replay: reads the time of the event being replayed."""

    __slots__ = ("t",)

    def __init__(self) -> None:
        self.t = 0.0
        super().__init__(self._read)

    def _read(self) -> float:
        return self.t


def _store(max_size: int | None, clock: Clock, policy: str) -> MemoryDriver:
    """A memory store as the runtime builds one, with ``policy`` passed on when it is not plain LRU."""
    if policy == "lru":
        return MemoryDriver(max_size=max_size, clock=clock)
    if "policy" not in inspect.signature(MemoryDriver).parameters:
        raise ValueError(f"unknown policy {policy!r}; known: {', '.join(policies())}")
    return MemoryDriver(max_size=max_size, clock=clock, policy=policy)  # type: ignore[call-arg]


def _replay(ev: RegionEvents, max_size: int | None, ttl: float | None, policy: str, progress: Any) -> Result:
    """One tier: the region's memory store, read cache-aside."""
    clock = _TraceClock()
    store = _store(max_size, clock, policy)
    get, put, forget = store.get, store.put, store.forget
    lt_of, mean_lt = ev.key_load_time.get, ev.mean_load_time
    times, keys, ops = ev.time, ev.key, ev.op
    res = Result()
    lookups = hits = 0
    load_time = 0.0
    for start, stop in chunks(len(ev), progress):
        for t, k, op in zip(times[start:stop], keys[start:stop], ops[start:stop], strict=True):
            clock.t = t
            if op == GET:
                lookups += 1
                if get(k) is MISSING:
                    load_time += lt_of(k, mean_lt)
                    put(k, True, ttl)
                else:
                    hits += 1
            elif op == PUT:
                put(k, True, ttl)
            elif op == DELETE:
                forget(k)
    res.lookups, res.hits, res.load_time = lookups, hits, load_time
    res.evictions, res.expirations = store.evictions, store.expirations
    return res


def _replay_tiers(ev: RegionEvents, max_size: int | None, ttl: float | None, policy: str, l1_ttl: float | None,
                  l1_max_size: int | None, progress: Any) -> Result:
    """An L1 memory store in front of L2, with the region's read and write paths: an L1 hit is served
    from L1; an L2 hit fills L1 until the sooner of the entry's expiry and ``l1_ttl``; a write goes to
    L2 and replaces the L1 copy; a delete removes both."""
    clock = _TraceClock()
    l2 = _store(max_size, clock, policy)
    l1 = MemoryDriver(max_size=l1_max_size, clock=clock)
    get1, put1, forget1 = l1.get, l1.put, l1.forget
    get2, put2, forget2 = l2.get, l2.put, l2.forget
    lt_of, mean_lt = ev.key_load_time.get, ev.mean_load_time
    times, keys, ops = ev.time, ev.key, ev.op
    res = Result()
    lookups = hits = l1_hits = 0
    load_time = 0.0

    def fill(k: int, expires: float, now: float) -> None:
        deadline = expires if not l1_ttl or expires < now + l1_ttl else now + l1_ttl
        put1(k, deadline, None if deadline == INF else deadline - now)

    for start, stop in chunks(len(ev), progress):
        for t, k, op in zip(times[start:stop], keys[start:stop], ops[start:stop], strict=True):
            clock.t = t
            if op == GET:
                lookups += 1
                deadline = get1(k)
                if deadline is not MISSING and deadline > t:
                    hits += 1
                    l1_hits += 1
                    continue
                expires = get2(k)
                if expires is not MISSING and expires > t:
                    hits += 1
                    fill(k, expires, t)
                    continue
                load_time += lt_of(k, mean_lt)
            elif op == DELETE:
                forget2(k)
                forget1(k)
                continue
            elif op != PUT:
                continue
            expires = INF if ttl is None else t + ttl
            put2(k, expires, ttl)
            forget1(k)
            fill(k, expires, t)
    res.lookups, res.hits, res.l1_hits, res.load_time = lookups, hits, l1_hits, load_time
    res.evictions, res.expirations = l2.evictions, l2.expirations
    return res




def lru_curve(trace: Trace, region: str | None = None, sizes: Iterable[int] | None = None) -> pd.DataFrame:
    """The hit ratio of an exact LRU cache of every size, from one pass over the trace (Mattson's
    stack distances, O(n log n)). ``sizes``: the sizes to report (default 1 to the number of distinct
    keys). No TTL: entries live until evicted. Rows: ``region, max_size, ttl, policy, hit_ratio,
    misses, loads, est_load_time_s`` (from the trace's mean load time).

    >>> trace = Trace()
    >>> for i, key in enumerate("abcabc"):
    ...     _ = trace.record(float(i), "r", key, "get")
    >>> lru_curve(trace).hit_ratio.tolist()  # sizes 1, 2, 3: only 3 holds the loop
    [0.0, 0.0, 0.5]
    """
    pd = require("pandas", "pandas")
    np = require("numpy", "pandas")
    frames = []
    for name, code in _regions(trace, region):
        keys = np.frombuffer(trace.key_hash, dtype=np.int64)
        ops = np.frombuffer(trace.op, dtype=np.uint8)
        load_time = np.frombuffer(trace.load_time, dtype=np.float64)
        if len(trace.regions) > 1:
            mine = np.frombuffer(trace.region, dtype=np.uint16) == code
            keys, ops, load_time = keys[mine], ops[mine], load_time[mine]
        loaded = load_time[load_time > 0]
        mean_load_time = float(loaded.mean()) if len(loaded) else 0.0
        distance, lookups, distinct = stack_distances(keys, ops)
        r = trace.sample
        wanted = np.arange(1, max(distinct, 1) + 1) if sizes is None else np.asarray(list(sizes), dtype=np.int64)
        scaled = np.maximum(1, np.round(wanted * r).astype(np.int64)) if r < 1 else wanted
        hist = np.bincount(distance, minlength=int(scaled.max(initial=1)) + 1)
        hits_upto = np.cumsum(hist)
        hits = hits_upto[np.minimum(scaled, len(hits_upto) - 1)]
        misses = lookups - hits
        frames.append(pd.DataFrame({
            "region": name,
            "max_size": pd.array(wanted, dtype="Int64"),
            "ttl": pd.array([None] * len(wanted), dtype="Float64"),
            "policy": "lru",
            "hit_ratio": hits / lookups if lookups else np.nan,
            "misses": np.round(misses / r).astype(np.int64),
            "loads": np.round(misses / r).astype(np.int64),
            "est_load_time_s": misses / r * mean_load_time,
        }))
    return pd.concat(frames, ignore_index=True) if frames else _empty_frame()


# -- the public entry point ---------------------------------------------------------------------
def policies() -> tuple[str, ...]:
    """The policies :func:`simulate` knows: those of the memory driver, then the bounds."""
    return (*MEMORY_POLICIES, *BOUNDS)


def _listed(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple, set, frozenset, range)):
        return list(value)
    return [value]


def _seconds(value: Any, name: str) -> float | None:
    """A TTL as the config takes one: seconds, a ``timedelta`` or a duration such as ``"10m"``."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    elif isinstance(value, str):
        seconds = parse_duration(value.strip())
        if seconds is None:
            raise ValueError(f"{name} {value!r} is not {DURATION_FORMS}")
        value = seconds
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be positive seconds, a timedelta or a duration, not {value!r}")
    return float(value)


def _regions(trace: Trace, region: str | Sequence[str] | None) -> list[tuple[str, int | None]]:
    if region is None:
        names = trace.regions or []
    else:
        names = _listed(region)
        unknown = [n for n in names if n not in trace.regions]
        if unknown:
            raise ValueError(f"region(s) {unknown} not in the trace; it has {trace.regions}")
    return [(n, trace.regions.index(n)) for n in names]


def _empty_frame() -> pd.DataFrame:
    pd = require("pandas", "pandas")
    return pd.DataFrame(columns=["region", "max_size", "ttl", "policy", "hit_ratio", "misses", "loads",
                                 "est_load_time_s"])


def _progress_bar(total: int, progress: bool | None) -> Any:
    if progress is False or (progress is None and total < PROGRESS_THRESHOLD):
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if progress:
            require("tqdm", "pandas")
        return None
    return tqdm(total=total, unit="ev", unit_scale=True, desc="simulate", leave=False)


def simulate(trace: Trace, region: str | Sequence[str] | None = None, max_size: Any = None, ttl: Any = None,
             policy: str | Sequence[str] = "lru", l1_ttl: Any = None, l1_max_size: Any = None, *,
             progress: bool | None = None) -> pd.DataFrame:
    """Replay ``trace`` under every combination of the settings and predict what the cache does.

    Each of ``max_size``, ``ttl``, ``policy``, ``l1_ttl`` and ``l1_max_size`` is a value or a list;
    ``None`` means what it means in a config (no size bound, no expiry, no L1); a TTL is seconds, a
    ``timedelta`` or a duration string (``"10m"``). One row per region
    (``region=None``: each region of the trace, replayed apart as the runtime keeps them) and
    combination, with columns ``region, max_size, ttl, policy, hit_ratio, misses, loads,
    est_load_time_s`` plus ``hits, lookups, evictions, expirations`` and, when an ``l1_ttl`` is given,
    ``l1_ttl, l1_max_size, l1_hit_ratio``.

    - ``policy``: ``"lru"`` (the memory store's eviction) or any other policy the memory driver
      accepts, plus the bounds ``"opt"`` (Belady, one tier) and ``"infinite"`` (no size bound; its rows
      have ``max_size`` <NA>).
    - ``l1_ttl``: an L1 memory tier in front of the region (``l1_max_size``, default: the region's
      ``max_size``), with the region's fill and write paths; ``l1_hit_ratio`` is the share of reads
      served by L1.
    - ``max_size="curve"``: the LRU hit ratio of every size in one pass (see :func:`lru_curve`).
    - ``est_load_time_s``: misses times the load time recorded for the key (the trace's mean for keys
      without one).
    - ``progress``: a tqdm bar; ``None`` shows one when events x settings exceed a million.

    With a sampled trace (``Trace(sample=r)``) sizes are scaled by ``r`` for the replay and counts by
    ``1/r`` in the result.
    """
    pd = require("pandas", "pandas")
    if isinstance(max_size, str):
        if max_size != "curve":
            raise ValueError(f"max_size is a number, a list, None or 'curve', not {max_size!r}")
        if any(t is not None for t in _listed(ttl)):
            raise ValueError("the LRU curve assumes no TTL; give max_size as a list to replay with a TTL")
        return lru_curve(trace, region)
    sizes, pols, l1_sizes = _listed(max_size), _listed(policy), _listed(l1_max_size)
    ttls = [_seconds(t, "ttl") for t in _listed(ttl)]
    l1_ttls = [_seconds(t, "l1_ttl") for t in _listed(l1_ttl)]
    known = policies()
    for p in pols:
        if p not in known and "policy" not in inspect.signature(MemoryDriver).parameters:
            raise ValueError(f"unknown policy {p!r}; known: {', '.join(known)}")
    with_l1 = any(v is not None for v in l1_ttls) or any(v is not None for v in l1_sizes)
    regions = _regions(trace, region)
    combos: list[tuple[Any, ...]] = []
    seen: set[tuple[Any, ...]] = set()
    for pol in pols:
        for size in ([None] if pol == "infinite" else sizes):
            for t in ttls:
                for lt in ([None] if pol == "opt" else l1_ttls):
                    for ls in ([None] if pol == "opt" or not with_l1 else l1_sizes):
                        combo = (pol, size, t, lt, ls)
                        if combo not in seen:
                            seen.add(combo)
                            combos.append(combo)
    r = trace.sample

    def scaled(n: int | None) -> int | None:
        return n if n is None or r >= 1 else max(1, round(n * r))

    events = {name: RegionEvents(trace, code) for name, code in regions}
    bar = _progress_bar(sum(len(e) for e in events.values()) * len(combos), progress)
    rows = []
    try:
        for name, ev in events.items():
            for pol, size, t, lt, ls in combos:
                if pol == "opt":
                    res = replay_opt(ev, scaled(size), t, bar)
                elif with_l1:
                    store = "lru" if pol == "infinite" else pol
                    res = _replay_tiers(ev, scaled(size), t, store, lt, scaled(ls if ls is not None else size), bar)
                else:
                    res = _replay(ev, scaled(size), t, "lru" if pol == "infinite" else pol, bar)
                misses = res.lookups - res.hits
                row = {
                    "region": name, "max_size": size, "ttl": t, "policy": pol,
                    "hit_ratio": res.hits / res.lookups if res.lookups else math.nan,
                    "misses": round(misses / r), "loads": round(misses / r),
                    "est_load_time_s": res.load_time / r,
                    "hits": round(res.hits / r), "lookups": round(res.lookups / r),
                    "evictions": round(res.evictions / r), "expirations": round(res.expirations / r),
                }
                if with_l1:
                    row["l1_ttl"] = lt
                    row["l1_max_size"] = (ls if ls is not None else size) if pol != "opt" else None
                    row["l1_hit_ratio"] = res.l1_hits / res.lookups if res.lookups else math.nan
                rows.append(row)
    finally:
        if bar is not None:
            bar.close()
    if not rows:
        return _empty_frame()
    frame = pd.DataFrame(rows)
    frame["max_size"] = frame["max_size"].astype("Int64")
    frame["ttl"] = frame["ttl"].astype("Float64")
    if with_l1:
        frame["l1_ttl"] = frame["l1_ttl"].astype("Float64")
        frame["l1_max_size"] = frame["l1_max_size"].astype("Int64")
    return frame
