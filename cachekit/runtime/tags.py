"""Tagged views of a region: ``region.tags([...])`` writes entries that carry the tags, and
``.flush()`` invalidates every entry carrying any of them, in O(1) per tag (generations)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import CacheError
from ..providers.base import MISSING

if TYPE_CHECKING:
    from .region import Region

__all__ = ["TaggedCache"]


class TaggedCache:
    """Writes through this view carry the tags; ``flush()`` invalidates entries with any of them.

    A tagged entry is still the same key: ``Cache.get('user:1')`` finds it.
    """

    def __init__(self, region: Region, tags: tuple[str, ...]) -> None:
        for t in tags:
            if not isinstance(t, str) or not t:
                raise CacheError(f"tags are non-empty strings, not {t!r}")
        self.region = region
        self.tag_names = tags

    def put(self, key: str, value: Any, ttl: Any = None) -> bool:
        r = self.region
        r.policy.check_key(key)
        return r.store(key, value, r.policy.ttl_for(key, ttl), self.tag_names)

    set = put

    def forever(self, key: str, value: Any) -> bool:
        self.region.policy.check_key(key)
        return self.region.store(key, value, None, self.tag_names)

    def get(self, key: str, default: Any = None) -> Any:
        value = self.region.lookup(key, self.tag_names)
        return default if value is MISSING else value

    def has(self, key: str) -> bool:
        return self.region.lookup(key, self.tag_names) is not MISSING

    def get_many(self, keys: Iterable[str], default: Any = None) -> dict[str, Any]:
        keys = list(keys)
        found = self.region.lookup_many(keys, self.tag_names)
        return {k: (default if found[k] is MISSING else found[k]) for k in keys}

    def put_many(self, mapping: Mapping[str, Any], ttl: Any = None) -> bool:
        ok = True
        for k, v in mapping.items():
            ok = self.put(k, v, ttl) and ok
        return ok

    def remember(self, key: str, ttl: Any, callback: Callable[[], Any]) -> Any:
        return self.region.remember(key, ttl, callback, tags=self.tag_names)

    async def aremember(self, key: str, ttl: Any, callback: Callable[[], Any]) -> Any:
        return await self.region.aremember(key, ttl, callback, tags=self.tag_names)

    async def aput(self, key: str, value: Any, ttl: Any = None) -> bool:
        r = self.region
        r.policy.check_key(key)
        return await r.astore(key, value, r.policy.ttl_for(key, ttl), self.tag_names)

    async def aget(self, key: str, default: Any = None) -> Any:
        value = await self.region.alookup(key, self.tag_names)
        return default if value is MISSING else value

    async def aflush(self) -> bool:
        return bool(await self.region.off_loop(self.flush))

    def forget(self, key: str) -> bool:
        return self.region.forget(key)

    def increment(self, key: str, amount: int = 1) -> int | None:
        """Add ``amount``; the counter carries these tags (a flush of any of them drops it)."""
        return self.region.count(key, amount, self.tag_names)

    def decrement(self, key: str, amount: int = 1) -> int | None:
        return self.increment(key, -amount)

    def flush(self) -> bool:
        """Invalidate every entry carrying any of these tags, in this region, in O(1) per tag."""
        return self.region.flush_tags(self.tag_names)

    def __repr__(self) -> str:
        return f"<TaggedCache {list(self.tag_names)} on {self.region!r}>"
