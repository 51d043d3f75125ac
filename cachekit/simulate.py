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

import heapq
import inspect
import math
from array import array
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .clock import Clock
from .config.durations import DURATION_FORMS, parse_duration
from .errors import require
from .providers.base import MISSING
from .providers.memory import MemoryDriver

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["BOUNDS", "OPS", "Trace", "lru_curve", "simulate"]

#: operation codes of a trace, by name; ``Trace.GET`` etc. are the same numbers
OPS = {"get": 0, "put": 1, "delete": 2, "load": 3}
OP_NAMES = tuple(OPS)
GET, PUT, DELETE, LOAD = 0, 1, 2, 3
#: policies the simulator computes itself, as bounds: Belady's optimum and an unbounded store
BOUNDS = ("opt", "infinite")
INF = math.inf
_MASK64 = (1 << 64) - 1
_MIX = 0x9E3779B97F4A7C15  # Fibonacci hashing: spreads key hashes before sampling
#: replays longer than this (events x settings) show a progress bar when ``progress=None``
PROGRESS_THRESHOLD = 1_000_000
_CHUNK = 1 << 16


class Trace:
    """A columnar log of cache operations, cheap to append to and easy to turn into a DataFrame.

    Columns (``array.array``, one entry per event): ``time`` (seconds, the runtime clock), ``region``
    (a small code; ``regions[code]`` is the name), ``key_hash`` (64-bit hash of the key: keys
    themselves are never kept), ``op`` (``get`` / ``put`` / ``delete`` / ``load``, see :data:`OPS`),
    ``hit`` (``get``: found in the cache), ``size`` (bytes of the value, 0 when unknown) and
    ``load_time`` (seconds a loader ran; on ``load`` events, or on the ``get`` miss it followed).

    ``sample`` < 1 keeps the events of a fixed share of the keys (chosen by key hash, so every access to
    a kept key is kept and reuse is preserved); the simulator scales sizes and counts back.
    ``max_events`` bounds the memory: events past it are dropped and counted in ``dropped``.

    >>> t = Trace()
    >>> t.record(0.0, "users", "user:1", "get", hit=False)
    True
    >>> t.record(0.1, "users", "user:1", Trace.LOAD, load_time=0.02)
    True
    >>> len(t), t.regions
    (2, ['users'])
    """

    GET, PUT, DELETE, LOAD = GET, PUT, DELETE, LOAD
    columns = ("time", "region", "key_hash", "op", "hit", "size", "load_time")

    def __init__(self, *, sample: float = 1.0, max_events: int | None = None) -> None:
        if not 0.0 < sample <= 1.0:
            raise ValueError(f"sample must be in (0, 1], not {sample!r}")
        if max_events is not None and max_events < 0:
            raise ValueError(f"max_events must be >= 0, not {max_events!r}")
        self.sample = float(sample)
        self.max_events = max_events
        self.dropped = 0
        self.regions: list[str] = []
        self._codes: dict[str, int] = {}
        self._threshold = None if sample >= 1.0 else int(sample * (1 << 64))
        self.time = array("d")
        self.region = array("H")
        self.key_hash = array("q")
        self.op = array("B")
        self.hit = array("B")
        self.size = array("q")
        self.load_time = array("d")

    # -- recording ------------------------------------------------------------------------------
    def region_code(self, name: str) -> int:
        """The code of region ``name`` in this trace (added on first use)."""
        code = self._codes.get(name)
        if code is None:
            code = self._codes[name] = len(self.regions)
            self.regions.append(name)
        return code

    def record(self, time: float, region: str, key: Any, op: int | str, hit: bool = False, size: int = 0,
               load_time: float = 0.0) -> bool:
        """Append one event; ``False`` when it was not kept (not sampled, or ``max_events`` reached).

        ``key`` is hashed with ``hash`` (a string key's hash varies between processes unless
        ``PYTHONHASHSEED`` is set; an ``int`` is its own hash); ``op`` a code (``Trace.GET``...) or a
        name (``"get"``...).
        """
        h = hash(key)  # an int below 2**61 - 1 is its own hash (but -1 hashes to -2)
        if self._threshold is not None and ((h * _MIX) & _MASK64) >= self._threshold:
            return False
        if self.max_events is not None and len(self.time) >= self.max_events:
            self.dropped += 1
            return False
        code = self._codes.get(region)
        if code is None:
            code = self.region_code(region)
        self.time.append(time)
        self.region.append(code)
        self.key_hash.append(h)
        self.op.append(op if type(op) is int else OPS[op])  # type: ignore[index]
        self.hit.append(1 if hit else 0)
        self.size.append(size)
        self.load_time.append(load_time)
        return True

    def __len__(self) -> int:
        return len(self.time)

    def __repr__(self) -> str:
        sampled = f", sample={self.sample}" if self.sample < 1 else ""
        return f"<Trace: {len(self)} events, regions={self.regions}{sampled}>"

    # -- frames ---------------------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """One row per event: ``time`` (float), ``region`` and ``op`` (categorical), ``key_hash``
        (int64), ``hit`` (bool), ``size`` (int64), ``load_time`` (float)."""
        pd = require("pandas", "pandas")
        np = require("numpy", "pandas")
        return pd.DataFrame({
            "time": np.frombuffer(self.time, dtype=np.float64).copy(),
            "region": pd.Categorical.from_codes(np.frombuffer(self.region, dtype=np.uint16).astype(np.int64),
                                                categories=self.regions or ["default"]),
            "key_hash": np.frombuffer(self.key_hash, dtype=np.int64).copy(),
            "op": pd.Categorical.from_codes(np.frombuffer(self.op, dtype=np.uint8).astype(np.int64),
                                            categories=list(OP_NAMES)),
            "hit": np.frombuffer(self.hit, dtype=np.uint8).astype(bool),
            "size": np.frombuffer(self.size, dtype=np.int64).copy(),
            "load_time": np.frombuffer(self.load_time, dtype=np.float64).copy(),
        })

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, sample: float = 1.0) -> Trace:
        """A trace from a frame shaped like :meth:`to_frame` (``time``, ``region``, ``key_hash``
        and ``op`` are required; ``op`` as names or codes; ``hit``, ``size`` and ``load_time`` default
        to ``False`` / 0). Rows are taken in the frame's order."""
        pd = require("pandas", "pandas")
        np = require("numpy", "pandas")
        missing = [c for c in ("time", "region", "key_hash", "op") if c not in frame.columns]
        if missing:
            raise ValueError(f"a trace frame needs the columns {missing}; it has {list(frame.columns)}")
        trace = cls(sample=sample)
        n = len(frame)
        column_region = frame["region"]
        if isinstance(column_region.dtype, pd.CategoricalDtype):  # keeps the trace's region codes
            names, codes = list(column_region.cat.categories), column_region.cat.codes.to_numpy()
        else:
            codes, names = pd.factorize(column_region.astype(str), sort=False)
        for name in names:
            trace.region_code(str(name))
        ops = frame["op"]
        if ops.dtype.kind in "iu":
            op_codes = ops.to_numpy(dtype=np.int64)
        else:
            unknown = set(ops.astype(str).unique()) - set(OPS)
            if unknown:
                raise ValueError(f"unknown op(s) {sorted(unknown)}; known: {', '.join(OPS)}")
            op_codes = ops.astype(str).map(OPS).to_numpy(dtype=np.int64)

        def column(name: str, dtype: Any, default: Any) -> Any:
            return frame[name].to_numpy(dtype=dtype) if name in frame.columns else np.full(n, default, dtype=dtype)

        trace.time = array("d", frame["time"].to_numpy(dtype=np.float64).tobytes())
        trace.region = array("H", codes.astype(np.uint16).tobytes())
        trace.key_hash = array("q", frame["key_hash"].to_numpy(dtype=np.int64).tobytes())
        trace.op = array("B", op_codes.astype(np.uint8).tobytes())
        trace.hit = array("B", column("hit", bool, False).astype(np.uint8).tobytes())
        trace.size = array("q", column("size", np.int64, 0).tobytes())
        trace.load_time = array("d", column("load_time", np.float64, 0.0).tobytes())
        return trace

    # -- synthetic workloads --------------------------------------------------------------------
    @classmethod
    def synthetic_zipf(cls, n_keys: int, n_events: int, alpha: float = 0.99, seed: int = 0, *,
                       region: str = "default", rate: float = 100.0, scan_every: int | None = None,
                       scan_length: int = 0, load_time: float = 0.0) -> Trace:
        """A workload of ``get`` events: keys drawn from a Zipf(``alpha``) law over ``n_keys`` keys
        (popularity in a random order of the keys), ``rate`` events per second on average.

        ``scan_every`` / ``scan_length``: after every ``scan_every`` Zipf reads, a scan reads
        ``scan_length`` keys never seen before (scan pollution). ``load_time`` is recorded on every
        event as the cost of loading its key. Events carry ``hit=False``: the workload was not run
        through a cache. Needs numpy (the ``pandas`` extra).
        """
        np = require("numpy", "pandas")
        rng = np.random.default_rng(seed)
        weights = 1.0 / np.arange(1, n_keys + 1, dtype=np.float64) ** alpha
        cdf = np.cumsum(weights)
        cdf /= cdf[-1]
        ranks = np.minimum(np.searchsorted(cdf, rng.random(n_events), side="right"), n_keys - 1)
        keys = rng.permutation(n_keys).astype(np.int64)[ranks]
        if scan_every and scan_length:
            parts, fresh = [], n_keys
            for start in range(0, n_events, scan_every):
                parts.append(keys[start:start + scan_every])
                if start + scan_every < n_events:
                    parts.append(np.arange(fresh, fresh + scan_length, dtype=np.int64))
                    fresh += scan_length
            keys = np.concatenate(parts)
        times = np.cumsum(rng.exponential(1.0 / rate, size=len(keys)))
        trace = cls()
        trace.region_code(region)
        n = len(keys)
        trace.time = array("d", times.tobytes())
        trace.region = array("H", bytes(2 * n))
        trace.key_hash = array("q", keys.tobytes())
        trace.op = array("B", bytes(n))
        trace.hit = array("B", bytes(n))
        trace.size = array("q", bytes(8 * n))
        trace.load_time = array("d", np.full(n, float(load_time)).tobytes())
        return trace


# -- replays ------------------------------------------------------------------------------------
class _TraceClock(Clock):
    """The clock of a replay: reads the time of the event being replayed."""

    __slots__ = ("t",)

    def __init__(self) -> None:
        self.t = 0.0
        super().__init__(self._read)

    def _read(self) -> float:
        return self.t


class _Events:
    """The events of one region as plain lists (fast to iterate), with the load-time estimates."""

    def __init__(self, trace: Trace, code: int | None) -> None:
        if code is None or len(trace.regions) <= 1:
            self.time = trace.time.tolist()
            self.key = trace.key_hash.tolist()
            self.op = trace.op.tolist()
            load_time, keys_all = trace.load_time, self.key
        else:
            keep = [i for i, r in enumerate(trace.region) if r == code]
            time, key, op = trace.time, trace.key_hash, trace.op
            self.time = [time[i] for i in keep]
            self.key = [key[i] for i in keep]
            self.op = [op[i] for i in keep]
            load_time = array("d", (trace.load_time[i] for i in keep))
            keys_all = self.key
        totals: dict[int, float] = {}
        counts: dict[int, int] = {}
        for k, lt in zip(keys_all, load_time, strict=True):
            if lt > 0:
                totals[k] = totals.get(k, 0.0) + lt
                counts[k] = counts.get(k, 0) + 1
        #: mean load time of each key that has one recorded, and the mean over all recorded loads
        self.key_load_time = {k: totals[k] / counts[k] for k in totals}
        n = sum(counts.values())
        self.mean_load_time = (sum(totals.values()) / n) if n else 0.0

    def __len__(self) -> int:
        return len(self.time)


class _Result:
    __slots__ = ("evictions", "expirations", "hits", "l1_hits", "load_time", "lookups")

    def __init__(self) -> None:
        self.lookups = self.hits = self.l1_hits = self.evictions = self.expirations = 0
        self.load_time = 0.0


def _chunks(n: int, progress: Any) -> Iterator[tuple[int, int]]:
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        yield start, stop
        if progress is not None:
            progress.update(stop - start)


def _store(max_size: int | None, clock: Clock, policy: str) -> MemoryDriver:
    """A memory store as the runtime builds one, with ``policy`` passed on when it is not plain LRU."""
    if policy == "lru":
        return MemoryDriver(max_size=max_size, clock=clock)
    if "policy" not in inspect.signature(MemoryDriver).parameters:
        raise ValueError(f"unknown policy {policy!r}; known: {', '.join(policies())}")
    return MemoryDriver(max_size=max_size, clock=clock, policy=policy)  # type: ignore[call-arg]


def _replay(ev: _Events, max_size: int | None, ttl: float | None, policy: str, progress: Any) -> _Result:
    """One tier: the region's memory store, read cache-aside."""
    clock = _TraceClock()
    store = _store(max_size, clock, policy)
    get, put, forget = store.get, store.put, store.forget
    lt_of, mean_lt = ev.key_load_time.get, ev.mean_load_time
    times, keys, ops = ev.time, ev.key, ev.op
    res = _Result()
    lookups = hits = 0
    load_time = 0.0
    for start, stop in _chunks(len(ev), progress):
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


def _replay_tiers(ev: _Events, max_size: int | None, ttl: float | None, policy: str, l1_ttl: float | None,
                  l1_max_size: int | None, progress: Any) -> _Result:
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
    res = _Result()
    lookups = hits = l1_hits = 0
    load_time = 0.0

    def fill(k: int, expires: float, now: float) -> None:
        deadline = expires if not l1_ttl or expires < now + l1_ttl else now + l1_ttl
        put1(k, deadline, None if deadline == INF else deadline - now)

    for start, stop in _chunks(len(ev), progress):
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


def _replay_opt(ev: _Events, max_size: int | None, ttl: float | None, progress: Any) -> _Result:
    """Belady's optimum: on a miss with a full cache, drop the entry whose next useful read is the
    farthest (an entry that expires before its next read is worth nothing), or do not keep the new one
    if it is that entry. An upper bound for any policy at this size and TTL."""
    times, keys, ops = ev.time, ev.key, ev.op
    n = len(ev)
    # next_use[i]: index of the next read of keys[i] that can hit a copy written at or kept past i;
    # a put or delete of the key first ends the copy's use (n: never)
    next_use = [n] * n
    last: dict[int, int] = {}
    for i in range(n - 1, -1, -1):
        k = keys[i]
        j = last.get(k)
        if j is not None and ops[j] == GET:
            next_use[i] = j
        if ops[i] != LOAD:
            last[k] = i
    cap = INF if max_size is None else max_size
    lt_of, mean_lt = ev.key_load_time.get, ev.mean_load_time
    cached: dict[int, tuple[float, int]] = {}  # key -> (deadline, priority)
    heap: list[tuple[int, int]] = []  # (-priority, key): stale items are skipped
    res = _Result()
    lookups = hits = evictions = expirations = 0
    load_time = 0.0

    def priority(i: int, deadline: float) -> int:
        j = next_use[i]
        return j if j < n and times[j] < deadline else n + i  # n + i: useless, unique

    for start, stop in _chunks(n, progress):
        for i in range(start, stop):
            op = ops[i]
            k = keys[i]
            t = times[i]
            if op == GET:
                lookups += 1
                got = cached.get(k)
                if got is not None and got[0] > t:
                    hits += 1
                    p = priority(i, got[0])
                    cached[k] = (got[0], p)
                    heapq.heappush(heap, (-p, k))
                    continue
                if got is not None:
                    expirations += 1
                load_time += lt_of(k, mean_lt)
            elif op == DELETE:
                cached.pop(k, None)
                continue
            elif op != PUT:
                continue
            deadline = INF if ttl is None else t + ttl
            p = priority(i, deadline)
            if k not in cached and len(cached) >= cap:
                while True:  # the farthest live entry
                    neg, victim = heap[0]
                    held = cached.get(victim)
                    if held is None or held[1] != -neg:
                        heapq.heappop(heap)
                        continue
                    break
                if -neg < p:  # the new entry is the least useful: keep the cache as it is
                    continue
                heapq.heappop(heap)
                del cached[victim]
                evictions += 1
            cached[k] = (deadline, p)
            heapq.heappush(heap, (-p, k))
            if len(heap) > 4 * len(cached) + 64:  # drop stale items now and then
                heap = [(-p2, k2) for k2, (_, p2) in cached.items()]
                heapq.heapify(heap)
    res.lookups, res.hits, res.load_time = lookups, hits, load_time
    res.evictions, res.expirations = evictions, expirations
    return res


# -- the stack-distance curve -------------------------------------------------------------------
def _earlier_greater(values: np.ndarray) -> np.ndarray:
    """For each ``values[i]`` (distinct non-negative ints), how many ``values[j]``, ``j < i``, are
    greater. A wavelet-style pass per bit, each O(n) in numpy: at bit ``b``, inside each group of
    values sharing the bits above ``b`` (kept in original order by stable partitions), an element with
    bit ``b`` = 0 is below every earlier element with bit ``b`` = 1."""
    import numpy as np

    n = len(values)
    dt = np.int32 if n < 2**31 - 1 else np.int64
    counts = np.zeros(n, dtype=dt)
    if n < 2:
        return counts.astype(np.int64)
    w = values.astype(dt)
    idx = np.arange(n, dtype=dt)
    ar = np.arange(n, dtype=dt)
    new_group = np.empty(n, dtype=bool)
    new_group[0] = True
    w_next, idx_next, counts_next = np.empty_like(w), np.empty_like(idx), np.empty_like(counts)
    for b in range(int(w.max()).bit_length() - 1, -1, -1):
        group = w >> (b + 1)
        bit = (w >> b) & 1
        np.not_equal(group[1:], group[:-1], out=new_group[1:])
        starts = np.flatnonzero(new_group)
        gid = np.cumsum(new_group, dtype=dt)
        gid -= 1
        start = starts[gid]
        ones_excl = np.cumsum(bit, dtype=dt)
        ones_excl -= bit
        ones_before = ones_excl - ones_excl[start]  # earlier ones in the same group
        zero = bit == 0
        counts += np.where(zero, ones_before, 0)
        zeros_in_group = np.add.reduceat(1 - bit, starts)[gid]
        # the stable partition: in each group, its zeros, then its ones
        pos = np.where(zero, ar - ones_before, start + zeros_in_group + ones_before)
        w_next[pos] = w
        idx_next[pos] = idx
        counts_next[pos] = counts
        w, w_next = w_next, w
        idx, idx_next = idx_next, idx
        counts, counts_next = counts_next, counts
    out = np.empty(n, dtype=np.int64)
    out[idx] = counts
    return out


def _stack_distances(keys: np.ndarray, ops: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The LRU stack distance of every ``get`` that can hit (1 = most recent), the number of gets and
    the number of distinct keys. Gets and puts move a key to the top; a delete makes the key's next
    access a first access (its old place in the stack is kept: an approximation)."""
    import numpy as np

    keep = ops != LOAD
    if not keep.all():
        keys, ops = keys[keep], ops[keep]
    n = len(keys)
    # previous access of the same key: positions sorted by key, in time order within a key
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    same = ordered[1:] == ordered[:-1]
    distinct = n - int(same.sum())
    prev = np.full(n, -1, dtype=np.int64)
    prev[order[1:][same]] = order[:-1][same]
    deleted = ops == DELETE
    access = ~deleted
    if deleted.any():
        prev[access & np.isin(prev, np.flatnonzero(deleted))] = -1  # after a delete: a first access
    positions = np.flatnonzero(access)
    # renumber accesses only (deletes take no place in the stack)
    rank = np.cumsum(access) - 1
    p = prev[positions]
    reuse_prev = np.where(p >= 0, rank[np.maximum(p, 0)], -1)
    i = np.arange(len(positions))
    reused = reuse_prev >= 0
    greater = np.zeros(len(positions), dtype=np.int64)
    greater[reused] = _earlier_greater(reuse_prev[reused])
    distance = i - reuse_prev - greater
    is_get = ops[positions] == GET
    return distance[reused & is_get], int(is_get.sum()), distinct


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
        distance, lookups, distinct = _stack_distances(keys, ops)
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
    known = getattr(MemoryDriver, "policies", None) or getattr(MemoryDriver, "POLICIES", None)
    store = tuple(known) if known else ("lru",)
    return (*store, *BOUNDS)


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

    events = {name: _Events(trace, code) for name, code in regions}
    bar = _progress_bar(sum(len(e) for e in events.values()) * len(combos), progress)
    rows = []
    try:
        for name, ev in events.items():
            for pol, size, t, lt, ls in combos:
                if pol == "opt":
                    res = _replay_opt(ev, scaled(size), t, bar)
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
