"""The direct path of a shared tier: a plain shared region's ``get`` and ``put`` in one store call.

A region with a shared L2 and no L1, no stamps to write, no trace and no event listeners
(``Region._direct``) reads and writes through :meth:`DirectPath.read` and :meth:`DirectPath.write`,
mixed into :class:`~cachekit.runtime.tier.SharedTier`. Each makes its one driver call under a
deadline of its own (``ErrorPolicy.call_once``), counts the hit, miss or set, and times the call as
``Recorder.observe`` would (inline). An entry written with tags has its generations read under the
same deadline (``drive_on``).
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from ..providers.base import MISSING
from ..stats import Histogram
from .plans import drive_on
from .policy import INF

__all__ = ["DirectPath"]


class DirectPath:
    """``read`` and ``write`` of a region on the direct path (mixed into ``SharedTier``, whose slots
    and methods they use: ``driver``, ``namespace``, ``stats``, ``call_once``, ``failed``...)."""

    __slots__ = ()

    def read(self, key: str) -> Any:
        """The fresh value of ``key`` or MISSING, counted as a hit or a miss, in one GET timed by a
        ``perf_counter`` pair; an entry written with tags has its generations read too."""
        tier: Any = self
        pending = frozenset(tier.pending) if tier.pending else None  # see SharedTier.fetch_plan
        stats = tier.stats
        started = perf_counter()
        try:
            full = tier.namespace + key
            entry = tier.call_once(MISSING, tier.driver.get, full)
            if type(entry) is not tuple or len(entry) != 3:  # an envelope passes as is (entry() would)
                entry = tier.entry(entry)
            if entry is not MISSING and entry[2] and \
                    not drive_on(tier, tier.current_plan(entry[2], {}, pending), started):
                entry = MISSING
        finally:  # timed as Recorder.timed would, without its wrapper frame
            if stats.timing:  # Recorder.observe, inline
                h = stats.latency.get("get")
                (stats.latency.setdefault("get", Histogram()) if h is None else h).add(perf_counter() - started)
        if entry is MISSING or entry[1] <= tier.now():
            stats.misses += 1
            return MISSING
        stats.hits += 1
        return entry[0]

    def write(self, key: str, value: Any, ttl: float | None, stale_ttl: float | None) -> bool:
        """Store ``value`` for ``ttl`` seconds (served stale ``stale_ttl`` more), counted as a set:
        ``put_plan`` of an unstamped entry in one PUT, timed by a ``perf_counter`` pair."""
        tier: Any = self
        if type(value) is int and tier.raw_ints:  # raw, so the server increments it (see put_plan)
            life = ttl
        elif ttl is None:
            value, life = (value, INF, None), None
        else:
            value, life = (value, tier.now() + ttl, None), ttl + (stale_ttl or 0)
        stats = tier.stats
        started = perf_counter()
        try:
            full = tier.namespace + key
            ok = tier.call_once(False, tier.driver.put, full, value, life)
        finally:
            if stats.timing:  # Recorder.observe, inline
                h = stats.latency.get("put")
                (stats.latency.setdefault("put", Histogram()) if h is None else h).add(perf_counter() - started)
        if ok:
            stats.sets += 1
            return True
        return False
