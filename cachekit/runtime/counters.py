"""Counters of a region: ``increment`` / ``decrement`` and their async twins.

An unstamped counter in a shared store lives as a raw integer the server increments atomically.
A counter the server cannot increment — stamped with generations (tags, declared patterns, a
region flushed by generation) or on a store that signs its payloads (a raw integer carries no
signature) — is an entry envelope, incremented read-modify-write under the region's counter lock
(``locks.py``). In process memory the region's own lock is enough.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import CacheError, InvalidValueError
from ..providers.base import MISSING
from .deadline import acquire_within, aone_call, current, one_call, run_within, skipped
from .plans import drive
from .policy import INF

if TYPE_CHECKING:
    from .region import Region

    _Base = Region
else:
    _Base = object

__all__ = ["CounterMixin"]


class CounterMixin(_Base):
    """The counters of :class:`~cachekit.runtime.region.Region` (mixed into it)."""

    def increment(self, key: str, amount: int = 1) -> int | None:
        """Add ``amount`` (a missing key starts at 0); atomic in the process, and on the server for
        Redis and memcached. Returns the new value, or ``None`` when the store failed. A counter
        written through tags keeps them (``tags([...]).increment`` stamps it; a tag flush drops it)."""
        return self.count(key, amount, ())

    @one_call
    def count(self, key: str, amount: int, tags: tuple[str, ...]) -> int | None:
        self.policy.check_key(key)
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise InvalidValueError(f"increment amount must be an int, not {type(amount).__name__}")
        try:
            return self._increment(key, amount, tags)
        finally:
            self._l1_forget(key)  # after the change in L2, so no read in flight can park the old value

    def _increment(self, key: str, amount: int, tags: tuple[str, ...] = ()) -> int | None:
        tier = self.l2
        if self._server_counts and not tags and not self._gen_keys(key, ()):
            try:
                # within the call's deadline: a failure costs the rest of the budget, not another timeout
                result = run_within(tier, tier.driver.increment, tier.key(key), amount, None)
            except Exception as exc:
                return self._increment_refused(key, amount, exc)
            if tier.down:
                tier.recovered()
            self.stats.sets += 1
            return result  # type: ignore[no-any-return]
        return self._increment_locked(key, amount, tags)

    def _increment_refused(self, key: str, amount: int, exc: Exception) -> int | None:
        """The server would not increment ``key``: it holds an entry envelope (a value written
        through tags, say), which is incremented like a stamped counter, keeping its stamps; else
        the failure counts as one."""
        tier = self.l2
        held = tier.call(MISSING, tier.driver.get, tier.key(key))
        if type(held) in (tuple, list):
            return self._increment_locked(key, amount, ())
        if tier.down:
            return None  # the read failed too, and was counted
        return tier.failed(exc, None)

    def _increment_locked(self, key: str, amount: int, tags: tuple[str, ...]) -> int | None:
        # waiting behind other threads' increments is bounded by this call's deadline (deadline.py)
        if not acquire_within(self.l2, self._lock):
            return skipped(self.l2, current(), None)  # type: ignore[arg-type]
        try:
            # A generation-stamped counter (tags, memcached regions, declared patterns) or a signed one is
            # an envelope the server cannot increment: read-modify-write under a cross-process lock instead.
            if not self._locks.acquire_counter(key):
                self.stats.errors += 1
                return None
            try:
                return self._increment_entry(key, amount, tags)
            finally:
                self._locks.release_counter(key)
        finally:
            self._lock.release()

    def _increment_entry(self, key: str, amount: int, tags: tuple[str, ...] = ()) -> int | None:
        entry = self._fetch(key, tags)
        now = self._now()
        if entry is MISSING or entry[1] <= now:
            base, expires, kept = 0, INF, None
        else:
            base, expires, kept = entry[0], entry[1], entry[2]  # a local entry carries the store's deadline too
            if not isinstance(base, int) or isinstance(base, bool):
                raise CacheError(f"cannot increment {key!r}: it holds a {type(base).__name__}, not an int")
        new = base + amount
        if not self.policy.enabled:
            return None
        ttl = None if expires == INF else expires - now
        # the new value carries the stamps the old one had (its tags), plus those of ``tags``
        if not self._stored(key, new, ttl, tags, drive(self.l2, self._store_plan(key, new, ttl, tags, kept))):
            return None
        return new  # type: ignore[no-any-return]

    def decrement(self, key: str, amount: int = 1) -> int | None:
        """Subtract ``amount`` (a missing key starts at 0)."""
        return self.increment(key, -amount)

    @aone_call
    async def aincrement(self, key: str, amount: int = 1) -> int | None:
        tier = self.l2
        if not self._server_counts or self._near is not None or self._gen_keys(key, ()):
            return await self.off_loop(self.increment, key, amount)  # type: ignore[no-any-return]
        self.policy.check_key(key)
        try:
            result = await tier.driver.aincrement(tier.key(key), amount, None)
        except Exception as exc:  # an envelope (a tagged value) or a failure: see _increment_refused
            return await self.off_loop(self._increment_refused, key, amount, exc)  # type: ignore[no-any-return]
        if tier.down:
            tier.recovered()
        self.stats.sets += 1
        return result  # type: ignore[no-any-return]

    async def adecrement(self, key: str, amount: int = 1) -> int | None:
        return await self.aincrement(key, -amount)

