"""Cross-process locks of one region in its shared store, with sync and async faces.

Two uses. The *loader lock* (``lock = true`` on a region): one process runs a ``remember`` loader
for a key while the others poll the store for its result, up to ``lock_timeout`` (then they load
themselves: a lost lock holder must not stall everybody). The *counter lock*: an increment that
the server cannot do (a stamped or signed counter is an envelope) is a read-modify-write under it.
The loader lock is an atomic lock (:class:`~cachekit.Lock`'s driver primitives: an owner token,
released only by its owner); the counter lock an ``add``-based key. Both have a TTL, so a crashed
holder frees them on expiry. A region on an
in-process store gets :class:`NoLocks`: its single-flight and its own lock already cover it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..providers.base import MISSING
from .atomic_lock import new_owner
from .deadline import pause_within

if TYPE_CHECKING:
    from .tier import SharedTier

__all__ = ["COUNTER_LOCK_SECONDS", "NoLocks", "RegionLocks"]

#: how long a read-modify-write increment waits for the counter lock (less: what is left of the call's
#: deadline), and how long the lock lives if its holder dies (an increment is two round trips)
COUNTER_LOCK_SECONDS = 5.0
#: first and longest pause between two polls of the loader lock (doubling in between)
_FIRST_PAUSE, _LONGEST_PAUSE = 0.005, 0.1


def _no_release() -> None:
    pass


class NoLocks:
    """The locks of a region on an in-process store: the loader runs at once, every lock is free."""

    def load(self, key: str, load: Callable[[], Any], fresh: Callable[[str], Any]) -> Any:
        return load()

    async def aload(self, key: str, load: Callable[[], Awaitable[Any]],
                    afresh: Callable[[str], Awaitable[Any]]) -> Any:
        return await load()

    def try_acquire(self, key: str) -> Callable[[], None] | None:
        return _no_release

    def acquire_counter(self, key: str) -> bool:
        return True

    def release_counter(self, key: str) -> None:
        pass


class RegionLocks(NoLocks):
    """The loader lock (when ``enabled``) and the counter lock of one region in its shared tier.

    ``fresh(key)`` / ``afresh(key)`` return the value another process stored meanwhile, or MISSING.
    """

    def __init__(self, tier: SharedTier, *, enabled: bool, timeout: float) -> None:
        self.tier = tier
        self.enabled = enabled
        self.timeout = timeout

    def load(self, key: str, load: Callable[[], Any], fresh: Callable[[str], Any]) -> Any:
        if not self.enabled:
            return load()
        tier = self.tier
        lock_key = tier.lock_key(key)
        deadline = time.monotonic() + self.timeout
        pause = _FIRST_PAUSE
        owner = new_owner()
        while True:
            if tier.call(False, tier.driver.acquire_lock, lock_key, owner, self.timeout):
                try:
                    return load()
                finally:
                    tier.call(False, tier.driver.release_lock, lock_key, owner)
            value = fresh(key)
            if value is not MISSING:
                return value
            if time.monotonic() > deadline or tier.down or tier.skipping():
                return load()
            time.sleep(pause)
            pause = min(pause * 2, _LONGEST_PAUSE)

    async def aload(self, key: str, load: Callable[[], Awaitable[Any]],
                    afresh: Callable[[str], Awaitable[Any]]) -> Any:
        if not self.enabled:
            return await load()
        tier = self.tier
        lock_key = tier.lock_key(key)
        deadline = time.monotonic() + self.timeout
        pause = _FIRST_PAUSE
        owner = new_owner()
        while True:
            if await asyncio.to_thread(tier.call, False, tier.driver.acquire_lock, lock_key, owner, self.timeout):
                try:
                    return await load()
                finally:
                    await asyncio.to_thread(tier.call, False, tier.driver.release_lock, lock_key, owner)
            value = await afresh(key)
            if value is not MISSING:
                return value
            if time.monotonic() > deadline or tier.down or tier.skipping():
                return await load()
            await asyncio.sleep(pause)
            pause = min(pause * 2, _LONGEST_PAUSE)

    def try_acquire(self, key: str) -> Callable[[], None] | None:
        """The loader lock for a background refresh, without waiting: its release, or ``None`` when
        another process holds it (and so refreshes). Regions without ``lock`` always get it."""
        if not self.enabled:
            return _no_release
        tier = self.tier
        lock_key = tier.lock_key(key)
        owner = new_owner()
        if not tier.call(False, tier.driver.acquire_lock, lock_key, owner, self.timeout):
            return None
        return lambda: tier.call(False, tier.driver.release_lock, lock_key, owner)

    def acquire_counter(self, key: str) -> bool:
        """Wait up to :data:`COUNTER_LOCK_SECONDS` for the counter lock of ``key``; ``False`` when it
        did not come (or the store is down)."""
        tier = self.tier
        lock_key = tier.counter_lock_key(key)
        deadline = time.monotonic() + COUNTER_LOCK_SECONDS
        while not tier.call(False, tier.driver.add, lock_key, 1, COUNTER_LOCK_SECONDS):
            if time.monotonic() > deadline or tier.down or tier.skipping():
                return False
            pause_within(tier, 0.001)  # inside a region call, the wait counts against its deadline
        return True

    def release_counter(self, key: str) -> None:
        tier = self.tier
        tier.call(False, tier.driver.forget, tier.counter_lock_key(key))
