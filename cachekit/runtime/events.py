"""Cache events (Laravel's CacheHit/CacheMissed/KeyWritten/KeyForgotten, aiocache's plugins).

``runtime.on("hit" | "miss" | "write" | "forget" | "invalidate", listener)`` calls
``listener(event)`` with a :class:`CacheEvent` (``.kind``, ``.region``, ``.key``, ``.ttl`` for writes)
and returns an unsubscribe callable.

No cost while nobody listens: regions run their plain class, fast path included. The first listener
switches every region of the runtime to :class:`EventfulRegion` (the same object, an instrumented
class that takes the full path and emits); the last unsubscribe switches them back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..providers.base import MISSING
from .region import Region
from .region_async import ASK_L2, Stale

__all__ = ["EVENT_KINDS", "CacheEvent", "EventfulRegion", "Events"]

log = logging.getLogger("cachekit")

EVENT_KINDS = ("hit", "miss", "write", "forget", "invalidate")


@dataclass(frozen=True)
class CacheEvent:
    """What a listener gets: the ``kind``, the ``region`` name, the ``key`` (``None`` for a whole
    region's invalidation) and, for writes, the ``ttl`` in seconds (``None``: no expiry)."""

    kind: str
    region: str
    key: str | None
    ttl: float | None = None


class Events:
    """The listeners of one runtime; ``regions()`` lists every region it has built so far."""

    def __init__(self, regions: Callable[[], Iterable[Region]]) -> None:
        self._regions = regions
        self._lock = threading.Lock()
        self.listeners: dict[str, list[Callable[[CacheEvent], Any]]] = {k: [] for k in EVENT_KINDS}
        #: ``True`` while any listener is registered (regions are instrumented)
        self.active = False

    def on(self, kind: str, listener: Callable[[CacheEvent], Any]) -> Callable[[], None]:
        if kind not in self.listeners:
            raise ValueError(f"unknown cache event {kind!r}; choose one of {', '.join(EVENT_KINDS)}")
        if not callable(listener):
            raise TypeError("an event listener must be callable")
        with self._lock:
            self.listeners[kind] = [*self.listeners[kind], listener]
            if not self.active:
                self.active = True
                for region in list(self._regions()):
                    self.instrument(region)

        def unsubscribe() -> None:
            with self._lock:
                self.listeners[kind] = [f for f in self.listeners[kind] if f is not listener]
                if self.active and not any(self.listeners.values()):
                    self.active = False
                    for region in list(self._regions()):
                        _plain(region)

        return unsubscribe

    def instrument(self, region: Region) -> None:
        if type(region) is Region:
            _switch(region, EventfulRegion)

    def emit(self, kind: str, region: str, key: str | None, ttl: float | None = None) -> None:
        listeners = self.listeners[kind]
        if not listeners:
            return
        event = CacheEvent(kind, region, key, ttl)
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # a listener's bug must not fail the cache operation
                log.exception("cachekit event listener %r failed on %s", listener, kind)


def _plain(region: Region) -> None:
    if type(region) is EventfulRegion:
        _switch(region, Region)


def _switch(region: Region, cls: type[Region]) -> None:
    """Make ``region`` a ``cls`` (same object, same data) and let it set its paths up again."""
    region.__class__ = cls
    region.configure(region.policy, region.l2, region.l1)


#: the plain region's methods this class extends (its own private hooks, by name: a subclass's business)
_BASE = vars(Region)


class EventfulRegion(Region):
    """A region whose runtime has event listeners: the full path, with an event per operation."""

    def configure(self, policy: Any, l2: Any, l1: Any) -> None:
        super().configure(policy, l2, l1)
        self._fast = False  # every read through lookup, every write through _stored: both report

    def _before_fetch(self, key: str) -> Any:
        found = _BASE["_before_fetch"](self, key)
        if found is not ASK_L2:
            self._events.emit("miss" if found is MISSING else "hit", self.name, key)
        return found

    def _settle(self, key: str, entry: Any, allow_stale: bool, epoch: int) -> Any:
        found = _BASE["_settle"](self, key, entry, allow_stale, epoch)
        self._events.emit("miss" if found is MISSING or isinstance(found, Stale) else "hit", self.name, key)
        return found

    def lookup_many(self, keys: list[str], tags: tuple[str, ...]) -> dict[str, Any]:
        if not self._batched:
            return super().lookup_many(keys, tags)  # key by key, through lookup
        found = super().lookup_many(keys, tags)
        for k in keys:
            self._events.emit("miss" if found.get(k, MISSING) is MISSING else "hit", self.name, k)
        return found

    async def alookup_many(self, keys: list[str], tags: tuple[str, ...]) -> dict[str, Any]:
        if not self._batched:
            return await super().alookup_many(keys, tags)  # key by key, through alookup
        found = await super().alookup_many(keys, tags)
        for k in keys:
            self._events.emit("miss" if found.get(k, MISSING) is MISSING else "hit", self.name, k)
        return found

    def _stored(self, key: str, value: Any, ttl: float | None, tags: tuple[str, ...], ok: bool) -> bool:
        done = _BASE["_stored"](self, key, value, ttl, tags, ok)
        if done:
            self._events.emit("write", self.name, key, ttl)
        return done

    def put_many(self, mapping: Mapping[str, Any], ttl: Any = None) -> bool:
        if self._put_one_by_one():
            return super().put_many(mapping, ttl)  # key by key, through put
        ok = super().put_many(mapping, ttl)
        if ok:
            for k in mapping:
                self._events.emit("write", self.name, k, self.policy.ttl_for(k, ttl))
        return ok

    async def aput_many(self, mapping: Mapping[str, Any], ttl: Any = None) -> bool:
        if self._put_one_by_one():
            return await super().aput_many(mapping, ttl)
        ok = await super().aput_many(mapping, ttl)
        if ok:
            for k in mapping:
                self._events.emit("write", self.name, k, self.policy.ttl_for(k, ttl))
        return ok

    def forget(self, key: str) -> bool:
        removed = super().forget(key)
        self._events.emit("forget", self.name, key)
        return removed

    async def aforget(self, key: str) -> bool:
        removed = await super().aforget(key)
        self._events.emit("forget", self.name, key)
        return removed

    def forget_many(self, keys: Iterable[str]) -> int:
        keys = list(keys)
        n = super().forget_many(keys)
        for k in keys:
            self._events.emit("forget", self.name, k)
        return n

    def flush(self) -> bool:
        done = super().flush()
        self._events.emit("invalidate", self.name, None)
        return done

    def bump(self, kind: str, names: Iterable[str]) -> int:
        names = list(names)
        count = super().bump(kind, names)
        self._events.emit("invalidate", self.name, None)
        return count
