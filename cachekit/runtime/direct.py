"""The direct path of a shared tier: a plain shared region's ``get`` and ``put`` in one store call.

A region with a shared L2 and no L1, no stamps to write, no trace and no event listeners
(``Region._direct``) reads and writes through :meth:`DirectPath.read` and :meth:`DirectPath.write`,
mixed into :class:`~cachekit.runtime.tier.SharedTier`. Each makes its one driver call under a
deadline of its own, opened inline: what ``ErrorPolicy.call_once`` does (``error_policy.py``), without
its frame, when no region call is in progress and the provider has no circuit breaker (else through
``call_once`` itself). Each counts the hit, miss or set, and times the call as ``Recorder.observe``
would (inline). An entry written with tags has its generations read under the same deadline (``drive_on``).
"""

from __future__ import annotations

from time import monotonic, perf_counter
from typing import Any

from ..providers.base import CALL, MISSING
from ..stats import Histogram
from .deadline import Call
from .plans import drive_on
from .policy import INF

__all__ = ["DirectPath"]

_INF = float("inf")


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
            if tier.breaker is None and CALL.get() is None:  # call_once, inline: one frame less per call
                within = Call()
                within.until = monotonic() + tier.budget  # a driver shortens its socket timeouts to it
                token = CALL.set(within)
                try:
                    entry = tier.driver.get(full)
                except Exception as exc:
                    within.until = _INF
                    within.spent = perf_counter() - started
                    entry = tier.failed(exc, MISSING, within)
                else:
                    if tier.down:
                        within.until = _INF
                        within.spent = perf_counter() - started
                        tier.answered()
                finally:
                    CALL.reset(token)
            else:
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
            if tier.breaker is None and CALL.get() is None:  # call_once, inline (see read)
                within = Call()
                within.until = monotonic() + tier.budget
                token = CALL.set(within)
                try:
                    ok = tier.driver.put(full, value, life)
                except Exception as exc:
                    within.until = _INF
                    within.spent = perf_counter() - started
                    ok = tier.failed(exc, False, within)
                else:
                    if tier.down:
                        within.until = _INF
                        within.spent = perf_counter() - started
                        tier.answered()
                finally:
                    CALL.reset(token)
            else:
                ok = tier.call_once(False, tier.driver.put, full, value, life)
        finally:
            if stats.timing:  # Recorder.observe, inline
                h = stats.latency.get("put")
                (stats.latency.setdefault("put", Histogram()) if h is None else h).add(perf_counter() - started)
        if ok:
            stats.sets += 1
            return True
        return False
