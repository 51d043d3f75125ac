"""CacheItemService and the get/set/delete_cache_item shortcuts: the cached items of regions."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..providers.base import MISSING
from ..runtime.policy import INF
from ._plumbing import _region, _Service
from ._result import Result, T, _Failure, _guard
from .types import CacheItem

if TYPE_CHECKING:
    from ..runtime.region import Region
    from ..runtime.runtime import Runtime


def _item(rt: Runtime, region: Region, key: str, value: Any, expires: float | None) -> CacheItem:
    if expires is None or expires == INF:
        return CacheItem(key=key, value=value, region=region.name)
    return CacheItem(key=key, value=value, region=region.name,
                     expires_at=datetime.fromtimestamp(expires, tz=timezone.utc),
                     ttl=max(0.0, expires - rt.clock.now()))


def _expiry(region: Region, key: str) -> float | None:
    """When the entry of ``key`` expires (``None``: never or unknown)."""
    try:
        entry = region.entry(key)
    except Exception:
        return None
    return None if entry is None else entry[1]


async def _in_thread(region: Region, fn: Callable[..., T], *args: Any) -> T:
    return await region.off_loop(fn, *args)  # type: ignore[no-any-return]


class CacheItemService(_Service):
    """Get, set and delete cached items; clear regions; invalidate by pattern."""

    async def get_item(self, key: str, region_name: str | None = None) -> Result[CacheItem | None]:
        """``Result.ok(CacheItem)`` on a hit, ``Result.ok(None)`` on a miss (a cached ``None``
        is a hit: ``result.value.value is None``)."""

        async def work() -> CacheItem | None:
            rt = self.runtime
            region = _region(rt, region_name)
            value = await region.aget(key, MISSING)
            if value is MISSING:
                return None
            return _item(rt, region, key, value, await _in_thread(region, _expiry, region, key))

        return await _guard(work)

    async def set_item(self, key: str, value: Any, ttl_seconds: float | None = None,
                       region_name: str | None = None, tags: Iterable[str] = ()) -> Result[CacheItem]:
        """Store ``value`` for ``ttl_seconds`` (default: the region's TTL), optionally tagged."""

        async def work() -> CacheItem:
            rt = self.runtime
            region = _region(rt, region_name)
            ttl = region.policy.ttl_for(key, ttl_seconds)
            names = [tags] if isinstance(tags, str) else list(tags)
            if names:
                stored = await _in_thread(region, region.tags(names).put, key, value, ttl_seconds)
            else:
                stored = await region.aput(key, value, ttl_seconds)
            if not stored:
                if not region.policy.enabled:
                    raise _Failure(f"caching is disabled for region {region.name!r}; nothing stored",
                                   "disabled")
                raise _Failure(f"provider {region.provider!r} did not store {key!r} (the failure is "
                               "counted in the region's errors)", "provider")
            return _item(rt, region, key, value, None if ttl is None else rt.clock.now() + ttl)

        return await _guard(work)

    async def delete_item(self, key: str, region_name: str | None = None) -> Result[bool]:
        """Forget ``key``; the value says whether it was cached."""

        async def work() -> bool:
            return await _region(self.runtime, region_name).aforget(key)

        return await _guard(work)

    async def has_item(self, key: str, region_name: str | None = None) -> Result[bool]:
        """Whether a fresh entry exists."""

        async def work() -> bool:
            return await _region(self.runtime, region_name).ahas(key)

        return await _guard(work)

    async def clear(self, region_name: str | None = None) -> Result[dict[str, Any]]:
        """Remove every entry of one region, or of every region (``None``)."""

        def work() -> dict[str, Any]:
            rt = self.runtime
            if region_name is not None:
                _region(rt, region_name)
            result = rt.invalidate(region=region_name)
            return {"regions": sorted({*result.keys, *result.generations}), "keys": result.keys,
                    "generations": result.generations, "count": result.count}

        return await _guard(lambda: asyncio.to_thread(work))

    async def invalidate_pattern(self, pattern: str,
                                 region_name: str | None = None) -> Result[dict[str, Any]]:
        """Invalidate keys matching a glob (or a declared pattern rule's pattern, in O(1))."""

        def work() -> dict[str, Any]:
            rt = self.runtime
            if region_name is not None:
                _region(rt, region_name)
            result = rt.invalidate(pattern=pattern, region=region_name)
            return {"pattern": pattern, "keys": result.keys, "generations": result.generations,
                    "count": result.count}

        return await _guard(lambda: asyncio.to_thread(work))


async def get_cache_item(key: str, region_name: str | None = None, *,
                         runtime: Runtime | None = None) -> Result[CacheItem | None]:
    """The cached item of ``key``: ``result.value`` is ``None`` on a miss, else ``result.value.value``
    is the cached value."""
    return await CacheItemService(runtime).get_item(key, region_name)


async def set_cache_item(key: str, value: Any, ttl_seconds: float | None = None,
                         region_name: str | None = None, *, tags: Iterable[str] = (),
                         runtime: Runtime | None = None) -> Result[CacheItem]:
    """Store ``value`` under ``key`` for ``ttl_seconds`` (default: the region's TTL)."""
    return await CacheItemService(runtime).set_item(key, value, ttl_seconds, region_name, tags)


async def delete_cache_item(key: str, region_name: str | None = None, *,
                            runtime: Runtime | None = None) -> Result[bool]:
    """Forget ``key``; ``result.value`` says whether it was cached."""
    return await CacheItemService(runtime).delete_item(key, region_name)
