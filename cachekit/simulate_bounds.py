"""The simulator's bounds and the replay's shared pieces: Belady's optimum (:func:`replay_opt`), the
LRU stack distances behind :func:`cachekit.simulate.lru_curve`, the counts a replay returns
(:class:`Result`) and the chunked walk that drives a progress bar (:func:`chunks`).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .trace import DELETE, GET, LOAD, PUT, RegionEvents

if TYPE_CHECKING:
    import numpy as np

INF = math.inf
_CHUNK = 1 << 16


class Result:
    __slots__ = ("evictions", "expirations", "hits", "l1_hits", "load_time", "lookups")

    def __init__(self) -> None:
        self.lookups = self.hits = self.l1_hits = self.evictions = self.expirations = 0
        self.load_time = 0.0


def chunks(n: int, progress: Any) -> Iterator[tuple[int, int]]:
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        yield start, stop
        if progress is not None:
            progress.update(stop - start)



def replay_opt(ev: RegionEvents, max_size: int | None, ttl: float | None, progress: Any) -> Result:
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
    res = Result()
    lookups = hits = evictions = expirations = 0
    load_time = 0.0

    def priority(i: int, deadline: float) -> int:
        j = next_use[i]
        return j if j < n and times[j] < deadline else n + i  # n + i: useless, unique

    for start, stop in chunks(n, progress):
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
def earlier_greater(values: np.ndarray) -> np.ndarray:
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


def stack_distances(keys: np.ndarray, ops: np.ndarray) -> tuple[np.ndarray, int, int]:
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
    greater[reused] = earlier_greater(reuse_prev[reused])
    distance = i - reuse_prev - greater
    is_get = ops[positions] == GET
    return distance[reused & is_get], int(is_get.sum()), distinct
