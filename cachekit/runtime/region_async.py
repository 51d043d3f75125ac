"""The async twins of a region's repository API (``aget``, ``aput``, ``aremember``...).

One logic, two I/O: reads and writes of a shared store run the same sans-IO plans as the sync
methods (``plans.py``) with the driver's async methods; what has no async driver method runs off
the event loop in a worker thread, except on an in-process store, where nothing blocks.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from inspect import CO_COROUTINE
from types import FunctionType, MethodType
from typing import TYPE_CHECKING, Any

from ..providers.base import MISSING
from .deadline import aone_call
from .plans import adrive, put_many_plan

if TYPE_CHECKING:
    from .region import Region

    _Base = Region
else:
    _Base = object

__all__ = ["ASK_L2", "AsyncRegionMixin", "Stale", "is_async_callable"]

#: what ``Region._before_fetch`` answers when L2 must be asked (no L1 hit, region enabled)
ASK_L2: Any = object()


def is_async_callable(fn: Any) -> bool:
    """``True`` for coroutine functions, partials of them and objects with an ``async __call__``."""
    kind = type(fn)
    if kind is FunctionType or kind is MethodType:  # the common case, answered from the code flags
        return bool(fn.__code__.co_flags & CO_COROUTINE)
    while hasattr(fn, "func"):  # functools.partial
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    return not inspect.isroutine(fn) and inspect.iscoroutinefunction(type(fn).__call__)  # type: ignore[operator]


class Stale:
    """A value past its fresh TTL but inside ``stale_ttl``: served while one caller refreshes."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class AsyncRegionMixin(_Base):
    """The async half of :class:`~cachekit.runtime.region.Region` (mixed into it)."""

    @aone_call
    async def alookup(self, key: str, tags: tuple[str, ...], *, allow_stale: bool = False) -> Any:
        hit = self._before_fetch(key)
        if hit is not ASK_L2:
            return hit
        near = self._near
        epoch = 0 if near is None else near.epoch
        return self._settle(key, await self._afetch(key, tags), allow_stale, epoch)

    async def _afetch(self, key: str, tags: tuple[str, ...]) -> Any:
        self.policy.check_key(key)
        return await self.l2.afetch(key, self._gen_keys(key, tags))

    @aone_call
    async def alookup_many(self, keys: list[str], tags: tuple[str, ...]) -> dict[str, Any]:
        if not self._batched:
            return {k: await self.alookup(k, tags) for k in keys}
        found = await adrive(self.l2, self._many_plan(keys, tags))
        if found is None:
            return {k: await self.alookup(k, tags) for k in keys}
        return found  # type: ignore[no-any-return]

    @aone_call
    async def astore(self, key: str, value: Any, ttl: float | None, tags: tuple[str, ...]) -> bool:
        if not self.policy.enabled:
            return False
        return self._stored(key, value, ttl, tags, await adrive(self.l2, self._store_plan(key, value, ttl, tags)))

    @aone_call
    async def aput_many(self, mapping: Mapping[str, Any], ttl: Any = None) -> bool:
        """Async :meth:`put_many`."""
        if self._put_one_by_one():
            return bool(await self.off_loop(self.put_many, dict(mapping), ttl))
        plan = put_many_plan(self.l2, self.policy, self.stats, self._now(), mapping, ttl)
        return await adrive(self.l2, plan)  # type: ignore[no-any-return]

    async def off_loop(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` in a worker thread, or inline when the region lives in process
        memory (nothing there blocks)."""
        return await self.l2.off_loop(fn, *args, **kwargs)

    async def aget(self, key: str, default: Any = None) -> Any:
        """Async :meth:`get` (native asyncio on Redis; a worker thread on memcached and file)."""
        if self._fast:
            return self.get(key, default)
        value = await self.alookup(key, ())
        return default if value is MISSING else value

    async def ahas(self, key: str) -> bool:
        return (await self.alookup(key, ())) is not MISSING

    async def aput(self, key: str, value: Any, ttl: Any = None) -> bool:
        self.policy.check_key(key)
        return await self.astore(key, value, self.policy.ttl_for(key, ttl), ())

    async def aforever(self, key: str, value: Any) -> bool:
        self.policy.check_key(key)
        return await self.astore(key, value, None, ())

    @aone_call
    async def aforget(self, key: str) -> bool:
        self.policy.check_key(key)
        removed = await self.l2.aforget(key)
        self._l1_forget(key)
        self.stats.deletes += 1
        return removed

    @aone_call
    async def aflush(self) -> bool:
        return bool(await self.off_loop(self.flush))

    async def aget_many(self, keys: Iterable[str], default: Any = None) -> dict[str, Any]:
        keys = list(keys)
        found = await self.alookup_many(keys, ())
        return {k: (default if found[k] is MISSING else found[k]) for k in keys}

