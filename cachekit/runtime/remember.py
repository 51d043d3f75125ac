"""``remember``: the cached value, or the loader's, stored — once per key under concurrency.

Concurrent callers of one key run the loader once: threads wait on the first caller, tasks await
its future (``singleflight.py``); with ``lock = true`` one process loads while the others poll the
store (``locks.py``). Past its fresh TTL but inside ``stale_ttl``, a value is served while one
caller refreshes it in the background (a thread, or a task of the running loop). The sync and
async twins share this machinery, so they live together here.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..providers.base import MISSING
from .deadline import aone_call, one_call
from .policy import FOREVER
from .region_async import Stale, is_async_callable

if TYPE_CHECKING:
    from .region import Region

    _Base = Region
else:
    _Base = object

__all__ = ["RememberMixin"]


class RememberMixin(_Base):
    """The loaders of :class:`~cachekit.runtime.region.Region` (mixed into it)."""

    def set_trace(self, tracer: Any) -> None:
        """Record every access of this region into ``tracer`` (``None``: stop); see ``Runtime.trace``.
        The fast path is off while a trace runs (it sees every access)."""
        self.stats.trace = tracer
        self.configure(self.policy, self.l2, self.l1)  # type: ignore[attr-defined]

    def remember(self, key: str, ttl: Any, callback: Callable[[], Any], *, tags: tuple[str, ...] = ()) -> Any:
        """The cached value, or ``callback()`` stored for ``ttl`` and returned.

        Concurrent callers for one key run the callback once (threads and asyncio tasks). An async
        callback gives an awaitable; the resolved value, never a coroutine, is cached.
        """
        if is_async_callable(callback):
            return self.aremember(key, ttl, callback, tags=tags)
        if self._fast and not tags:
            value = self._fast_hit(key)
            if value is not MISSING:
                return value
        return self._remember(key, ttl, callback, tags)

    @one_call
    def _remember(self, key: str, ttl: Any, callback: Callable[[], Any], tags: tuple[str, ...]) -> Any:
        """:meth:`remember` past the fast path: one call (one deadline) on a shared store."""
        self.policy.check_key(key)
        ttl_s = self.policy.ttl_for(key, ttl)  # a bad TTL raises before any I/O
        value = self.lookup(key, tags, allow_stale=True)
        if type(value) is Stale:
            self._refresh_in_background(key, ttl, callback, tags)
            return value.value
        if value is not MISSING:
            return value

        def load() -> Any:
            again = self._fetch(key, tags)
            if again is not MISSING and again[1] > self._now():
                return again[0]
            started = time.perf_counter()
            try:
                result = callback()
            except BaseException:
                self.stats.load_failures += 1
                raise
            if inspect.isawaitable(result):
                return self._finish_async(key, ttl_s, result, tags)
            self.stats.loaded(key, time.perf_counter() - started)
            self.policy.check_key(key)
            self.store(key, result, ttl_s, tags)
            return result

        return self._singleflight.do(self._flight_key(key), lambda: self._locks.load(key, load, self._fresh))

    def remember_call(self, key: str, ttl: Any, fn: Callable[..., Any], args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> Any:
        """``remember(key, ttl, lambda: fn(*args, **kwargs))`` that builds the loader only on a miss
        (what ``@cached`` calls: an in-process hit costs no closure)."""
        if self._fast:  # Region._fast_hit, inlined: this is every @cached hit
            entry = self._data_get(key)
            if entry is not None and entry[1] > self._now() and entry[2] is None:
                if self._mem.lru_active:
                    try:
                        self._mark_used(key)
                    except KeyError:  # removed by another thread meanwhile
                        pass
                self.stats.hits += 1
                return entry[0]
        return self.remember(key, ttl, lambda: fn(*args, **kwargs))

    def remember_forever(self, key: str, callback: Callable[[], Any]) -> Any:
        """:meth:`remember` without expiry (single flight and the cross-process lock included)."""
        return self.remember(key, FOREVER, callback)

    def _fresh(self, key: str) -> Any:
        """What another process stored meanwhile (the loader lock polls it), or MISSING."""
        entry = self._fetch(key, ())
        return entry[0] if entry is not MISSING and entry[1] > self._now() else MISSING

    async def _afresh(self, key: str) -> Any:
        return await asyncio.to_thread(self._fresh, key)

    def _flight_key(self, key: str) -> str:
        return f"{self.name}\x00{key}"

    def _finish_async(self, key: str, ttl: float | None, awaitable: Awaitable[Any], tags: tuple[str, ...]) -> Any:
        async def finish() -> Any:
            value = await awaitable
            self.stats.loads += 1
            self.store(key, value, ttl, tags)
            return value

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return finish()
        return asyncio.ensure_future(finish())  # a task: awaitable by every waiting caller

    def _refresh_in_background(self, key: str, ttl: Any, callback: Callable[[], Any], tags: tuple[str, ...]) -> None:
        with self._lock:
            if key in self._refreshing:
                return
            self._refreshing.add(key)

        def refresh() -> None:
            try:
                # with ``lock = true``, one process refreshes; the others keep serving the stale value
                release = self._locks.try_acquire(key)
                if release is None:
                    return
                try:
                    self.store(key, callback(), self.policy.ttl_for(key, ttl), tags)
                    self.stats.loads += 1
                finally:
                    release()
            except Exception:
                self.stats.errors += 1
                self.stats.load_failures += 1
            finally:
                with self._lock:
                    self._refreshing.discard(key)

        threading.Thread(target=refresh, name=f"cachekit-refresh-{key}", daemon=True).start()

    @aone_call
    async def aremember(self, key: str, ttl: Any, callback: Callable[[], Any], *,
                        tags: tuple[str, ...] = ()) -> Any:
        """Async ``remember``: ``callback`` may be sync or async; the loader runs once per key."""
        self.policy.check_key(key)
        ttl_s = self.policy.ttl_for(key, ttl)  # a bad TTL raises before any I/O
        value = await self.alookup(key, tags, allow_stale=True)
        if type(value) is Stale:
            self._arefresh(key, ttl, callback, tags)
            return value.value
        if value is not MISSING:
            return value

        async def load() -> Any:
            again = await self._afetch(key, tags)
            if again is not MISSING and again[1] > self._now():
                return again[0]
            started = time.perf_counter()
            try:
                result = callback()
                if inspect.isawaitable(result):
                    result = await result
            except BaseException:
                self.stats.load_failures += 1
                raise
            self.stats.loaded(key, time.perf_counter() - started)
            await self.astore(key, result, ttl_s, tags)
            return result

        return await self._singleflight.ado(self._flight_key(key), lambda: self._locks.aload(key, load, self._afresh))

    async def aremember_call(self, key: str, ttl: Any, fn: Callable[..., Any], args: tuple[Any, ...],
                             kwargs: dict[str, Any]) -> Any:
        """The async twin of :meth:`remember_call` (``@async_cached``)."""
        if self._fast:
            value = self._fast_hit(key)
            if value is not MISSING:
                return value
        return await self.aremember(key, ttl, lambda: fn(*args, **kwargs))

    def _arefresh(self, key: str, ttl: Any, callback: Callable[[], Any], tags: tuple[str, ...]) -> None:
        if key in self._refreshing:
            return
        self._refreshing.add(key)

        async def refresh() -> None:
            try:
                release = await self.off_loop(self._locks.try_acquire, key)  # see _refresh_in_background
                if release is None:
                    return
                try:
                    result = callback()
                    if inspect.isawaitable(result):
                        result = await result
                    await self.astore(key, result, self.policy.ttl_for(key, ttl), tags)
                    self.stats.loads += 1
                finally:
                    await self.off_loop(release)
            except Exception:
                self.stats.errors += 1
                self.stats.load_failures += 1
            finally:
                self._refreshing.discard(key)

        self._spawn(refresh())

