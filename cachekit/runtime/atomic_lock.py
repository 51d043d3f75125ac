"""Atomic locks (Laravel's ``Cache::lock``): a named lock in a region's store, held by an owner token.

>>> from cachekit import Cache
>>> _ = Cache.fake()
>>> lock = Cache.lock("report", seconds=10)
>>> lock.get()
True
>>> Cache.lock("report", seconds=10).get()   # another owner: refused
False
>>> lock.release()
True
>>> with Cache.lock("report", seconds=10):
...     pass                                  # held inside, released after (even on an exception)

The store does the atomic work through its driver (:meth:`CacheDriver.acquire_lock`): Redis ``SET NX
PX`` and a compare-and-delete script, memcached ``add`` and ``gets``/``cas``, the file store under
its cross-process key lock, process memory under a lock. Only the owner token releases; a lock whose
holder died frees itself after ``seconds``. The loader lock of ``lock = true`` regions is the same.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import LockTimeoutError

if TYPE_CHECKING:
    from ..providers.base import CacheDriver

__all__ = ["Lock", "new_owner"]

#: first and longest pause between two tries of ``block`` (doubling in between)
_FIRST_PAUSE, _LONGEST_PAUSE = 0.005, 0.1


def new_owner() -> str:
    """A fresh owner token, unique across processes and machines."""
    return secrets.token_hex(16)


class Lock:
    """A named lock held for ``seconds`` by an ``owner`` token (a fresh random one by default).

    - ``get()`` -> ``True`` when acquired now; ``get(callback)`` runs it under the lock and releases
      (``False`` when the lock was not free);
    - ``block(wait)`` tries for up to ``wait`` seconds, then raises :class:`~cachekit.LockTimeoutError`;
      ``block(wait, callback)`` runs it under the lock and releases;
    - ``release()`` -> ``True`` if this owner held it; ``force_release()`` frees it whoever holds it;
    - ``with lock:`` / ``async with lock:`` acquire (waiting up to ``wait``, default ``seconds``) and
      release on the way out, exception or not; async twins ``aget``, ``ablock``, ``arelease``.
    """

    def __init__(self, driver: CacheDriver, key: str, seconds: float, owner: str | None = None,
                 *, name: str | None = None, wait: float | None = None) -> None:
        if not seconds > 0:
            raise ValueError(f"a lock needs seconds > 0, not {seconds!r}")
        self.driver = driver
        self.key = key
        self.name = name if name is not None else key
        self.seconds = float(seconds)
        self.wait = self.seconds if wait is None else float(wait)
        self._owner = owner if owner is not None else new_owner()

    @property
    def owner(self) -> str:
        """The owner token: pass it to ``Cache.restore_lock(name, owner)`` to release from elsewhere."""
        return self._owner

    def __repr__(self) -> str:
        return f"<Lock {self.name!r} seconds={self.seconds:g} owner={self._owner[:8]}…>"

    # -- sync ---------------------------------------------------------------------------------
    def acquire(self) -> bool:
        return bool(self.driver.acquire_lock(self.key, self._owner, self.seconds))

    def get(self, callback: Callable[[], Any] | None = None) -> Any:
        """Acquire without waiting: ``True``/``False``; with ``callback``, its result under the lock
        (released after) or ``False`` when the lock was taken."""
        if not self.acquire():
            return False
        if callback is None:
            return True
        try:
            return callback()
        finally:
            self.release()

    def block(self, wait: float, callback: Callable[[], Any] | None = None) -> Any:
        """Acquire, trying for up to ``wait`` seconds; raise :class:`LockTimeoutError` past it."""
        deadline = time.monotonic() + wait
        pause = _FIRST_PAUSE
        while not self.acquire():
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockTimeoutError(f"lock {self.name!r} not acquired within {wait:g} s")
            time.sleep(min(pause, left))
            pause = min(pause * 2, _LONGEST_PAUSE)
        if callback is None:
            return True
        try:
            return callback()
        finally:
            self.release()

    def release(self) -> bool:
        """Release if this owner holds the lock; ``True`` when released."""
        return bool(self.driver.release_lock(self.key, self._owner))

    def force_release(self) -> None:
        """Release the lock whoever holds it."""
        self.driver.force_release_lock(self.key)

    def held(self) -> bool:
        """``True`` while this owner holds the lock."""
        return self.driver.lock_owner(self.key) == self._owner

    def __enter__(self) -> Lock:
        self.block(self.wait)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- async --------------------------------------------------------------------------------
    async def aget(self, callback: Callable[[], Any] | None = None) -> Any:
        """:meth:`get` without blocking the loop; ``callback`` may be a coroutine function."""
        if not await asyncio.to_thread(self.acquire):
            return False
        return await self._arun(callback)

    async def ablock(self, wait: float, callback: Callable[[], Any] | None = None) -> Any:
        deadline = time.monotonic() + wait
        pause = _FIRST_PAUSE
        while not await asyncio.to_thread(self.acquire):
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockTimeoutError(f"lock {self.name!r} not acquired within {wait:g} s")
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, _LONGEST_PAUSE)
        return await self._arun(callback)

    async def _arun(self, callback: Callable[[], Any] | None) -> Any:
        if callback is None:
            return True
        try:
            result = callback()
            if asyncio.iscoroutine(result):
                result = await result
            return result
        finally:
            await self.arelease()

    async def arelease(self) -> bool:
        return await asyncio.to_thread(self.release)

    async def aforce_release(self) -> None:
        await asyncio.to_thread(self.force_release)

    async def __aenter__(self) -> Lock:
        await self.ablock(self.wait)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.arelease()
