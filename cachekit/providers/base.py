"""The driver contract: four required methods, everything else optional with working defaults.

A driver stores opaque Python objects under string keys. It knows nothing of regions, TTL policy,
tags or stats: the runtime above it owns those. ``get`` returns :data:`MISSING` (or ``None``) for
"nothing here"; the runtime wraps every value in an envelope, so a cached ``None`` is never confused
with a miss.
"""

from __future__ import annotations

import asyncio
import fnmatch
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, ClassVar, Final

__all__ = ["CALL", "MISSING", "CacheDriver", "time_left"]

#: The region call running in this context (``runtime/deadline.py``'s ``Call``; ``None`` outside one).
#: Its ``until`` is when the running store call's share of the call's budget ends (``time.monotonic()``
#: seconds), so a driver can shorten its socket timeouts to it: see :func:`time_left`.
CALL: ContextVar[Any] = ContextVar("cachekit_call", default=None)


def time_left() -> float | None:
    """Seconds left of the current region call's store budget; ``None`` (or ``inf``) when unbounded."""
    within = CALL.get()
    return None if within is None else within.until - time.monotonic()


class _Missing:
    """The type of :data:`MISSING`; falsy, a singleton, survives pickling as itself."""

    __slots__ = ()
    _instance: ClassVar[_Missing | None] = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()
"""What a driver returns for "nothing here". Never a valid cached value."""


class CacheDriver:
    """Base class of cache drivers.

    A subclass must implement :meth:`get`, :meth:`put`, :meth:`forget` and :meth:`flush`;
    it then works everywhere (facade, regions, tags, invalidation by generations).
    The other methods have correct, if not optimal, defaults; override them when the store
    can do better (one round trip for ``get_many``, a server-side atomic ``increment``...).

    Keys arrive fully namespaced (``prefix:region:key``). ``ttl`` is in seconds (float) or
    ``None`` for "no expiry"; a driver should expire the key after ``ttl`` where it can, but the
    runtime enforces expiry itself, so a driver that ignores ``ttl`` is still correct.
    """

    #: ``True`` when :meth:`scan` can enumerate keys (memory, file, redis; not memcached).
    can_scan: ClassVar[bool] = False
    #: ``True`` when :meth:`put_then_get` is one round trip (memcached on one server): the runtime then
    #: writes a stamped entry with the generations it last saw and reads them back in that round trip.
    fused_put_get: ClassVar[bool] = False
    #: Name used in stats and error messages; the runtime sets it to the provider name.
    name: str = "custom"

    @property
    def signed(self) -> bool:
        """``True`` when the driver authenticates what it reads (a signing key): the runtime then stores
        no raw integers in it and rejects those it finds at its keys."""
        return False

    _default_lock: threading.Lock

    # -- required -------------------------------------------------------------------------
    def get(self, key: str) -> Any:
        """Return the stored object or :data:`MISSING` / ``None`` when there is none."""
        raise NotImplementedError

    def put(self, key: str, value: Any, ttl: float | None = None) -> bool:
        """Store ``value`` under ``key``; return ``True`` on success."""
        raise NotImplementedError

    def forget(self, key: str) -> bool:
        """Delete ``key``; return ``True`` if it existed (drivers that cannot tell return ``True``)."""
        raise NotImplementedError

    def flush(self) -> bool:
        """Delete every key this driver owns (never keys of other tenants of a shared server)."""
        raise NotImplementedError

    # -- optional, with defaults ----------------------------------------------------------
    def has(self, key: str) -> bool:
        value = self.get(key)
        return value is not MISSING and value is not None

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Return ``{key: object or MISSING}`` for every key asked."""
        out: dict[str, Any] = {}
        for key in keys:
            value = self.get(key)
            out[key] = MISSING if value is None else value
        return out

    def get_values(self, keys: list[str]) -> list[Any]:
        """The objects of ``keys`` in their order, MISSING for an absent one: :meth:`get_many` as a list
        (a driver whose store answers a list overrides it and skips the mapping)."""
        got = self.get_many(keys)
        return [got.get(k, MISSING) for k in keys]

    def put_many(self, mapping: Mapping[str, Any], ttl: float | None = None) -> bool:
        ok = True
        for key, value in mapping.items():
            ok = self.put(key, value, ttl) and ok
        return ok

    def delete_many(self, keys: Iterable[str]) -> int:
        return sum(1 for key in keys if self.forget(key))

    def add(self, key: str, value: Any, ttl: float | None = None) -> bool:
        """Store only if absent; ``True`` when stored. Atomic in the process by default."""
        with self._lock():
            if self.has(key):
                return False
            return self.put(key, value, ttl)

    def increment(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        """Add ``amount`` to an integer stored raw under ``key`` (a missing key counts as 0).

        The default is atomic within the process only; shared stores override it with a
        server-side operation.
        """
        with self._lock():
            current = self.get(key)
            base = 0 if current is MISSING or current is None else int(current)
            new = base + amount
            self.put(key, new, ttl)
            return new

    def decrement(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        return self.increment(key, -amount, ttl)

    def extend_ttl(self, keys: Iterable[str], ttl: float | None) -> bool:
        """Make each existing key in ``keys`` live at least ``ttl`` more seconds (``None``: no expiry),
        never shortening it; absent keys stay absent. The runtime keeps its generation keys alive this
        way as long as the entries stamped with them.

        The default does nothing and returns ``False`` (a read-and-rewrite could undo a concurrent
        increment): generation keys then keep the TTL they were created or advanced with, and an entry
        that outlives its generation key reads as a miss (never as a stale hit).
        """
        return False

    def put_then_get(self, key: str, value: Any, ttl: float | None, keys: list[str]) -> tuple[bool, dict[str, Any]]:
        """:meth:`put`, then :meth:`get_many` of ``keys`` once the write is applied: ``(stored, {key: object
        or MISSING})``. A driver that can send both in one round trip sets :attr:`fused_put_get`."""
        return self.put(key, value, ttl), self.get_many(keys)

    def scan(self, pattern: str) -> Iterator[str]:
        """Yield keys matching the glob ``pattern`` (``fnmatch`` syntax).

        Drivers that cannot enumerate keys raise :class:`~cachekit.errors.UnsupportedOperation`.
        """
        from ..errors import UnsupportedOperation

        raise UnsupportedOperation(f"provider {self.name!r} cannot enumerate keys for pattern {pattern!r}")

    def close(self) -> None:
        """Release connections and files. Safe to call twice."""

    def ping(self) -> float:
        """Round-trip a probe key; return seconds taken. Raises on failure."""
        import time

        start = time.perf_counter()
        probe = "__cachekit_ping__"
        self.put(probe, b"1", 5)
        self.forget(probe)
        return time.perf_counter() - start

    # -- atomic locks ----------------------------------------------------------------------
    # An owner token (a string) under ``key`` for ``ttl`` seconds: acquired only if absent (or
    # expired), released only by its owner. The defaults store ``(owner, deadline)`` with ``add`` (so
    # a driver that ignores TTLs still frees a lock on time) and compare-and-delete under the
    # driver's lock: atomic within the process. Shared stores override them with server-side atomics.
    def acquire_lock(self, key: str, owner: str, ttl: float) -> bool:
        """Hold the lock ``key`` for ``owner`` for ``ttl`` seconds; ``False`` if someone holds it."""
        import time

        if self.add(key, (owner, time.time() + ttl), ttl):
            return True
        with self._lock():
            current = self.get(key)
            if _lock_holder(current) is not None:
                return False
            return self.put(key, (owner, time.time() + ttl), ttl)  # an expired holder's: take it over

    def release_lock(self, key: str, owner: str) -> bool:
        """Release ``key`` if ``owner`` holds it; ``True`` when released."""
        with self._lock():
            if _lock_holder(self.get(key)) != owner:
                return False
            return self.forget(key)

    def force_release_lock(self, key: str) -> bool:
        """Release ``key`` whoever holds it."""
        return self.forget(key)

    def lock_owner(self, key: str) -> str | None:
        """The owner token holding ``key``, or ``None`` when it is free."""
        return _lock_holder(self.get(key))

    # -- async twins ----------------------------------------------------------------------
    # Defaults run the sync method in a worker thread; drivers with an asyncio client (Redis)
    # override them with native coroutines.
    async def aget(self, key: str) -> Any:
        return await asyncio.to_thread(self.get, key)

    async def aget_many(self, keys: Iterable[str]) -> dict[str, Any]:
        return await asyncio.to_thread(self.get_many, list(keys))

    async def aput(self, key: str, value: Any, ttl: float | None = None) -> bool:
        return await asyncio.to_thread(self.put, key, value, ttl)

    async def aput_many(self, mapping: Mapping[str, Any], ttl: float | None = None) -> bool:
        return await asyncio.to_thread(self.put_many, dict(mapping), ttl)

    async def aforget(self, key: str) -> bool:
        return await asyncio.to_thread(self.forget, key)

    async def aadd(self, key: str, value: Any, ttl: float | None = None) -> bool:
        return await asyncio.to_thread(self.add, key, value, ttl)

    async def aincrement(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        return await asyncio.to_thread(self.increment, key, amount, ttl)

    async def aextend_ttl(self, keys: Iterable[str], ttl: float | None) -> bool:
        return await asyncio.to_thread(self.extend_ttl, list(keys), ttl)

    async def aput_then_get(self, key: str, value: Any, ttl: float | None,
                            keys: list[str]) -> tuple[bool, dict[str, Any]]:
        return await asyncio.to_thread(self.put_then_get, key, value, ttl, list(keys))

    async def aclose(self) -> None:
        """Release connections, the asyncio ones included. Safe to call twice."""
        self.close()

    # -- helpers --------------------------------------------------------------------------
    def _lock(self) -> threading.Lock:
        lock = self.__dict__.get("_default_lock")
        if lock is None:
            lock = self.__dict__.setdefault("_default_lock", threading.Lock())
        return lock

    @staticmethod
    def _match(pattern: str, keys: Iterable[str]) -> Iterator[str]:
        return (k for k in keys if fnmatch.fnmatchcase(k, pattern))


def _lock_holder(value: Any) -> str | None:
    """The owner in a default lock value ``(owner, deadline)`` while it lasts, else ``None``."""
    import time

    if type(value) is tuple and len(value) == 2 and isinstance(value[0], str) and value[1] > time.time():
        return value[0]
    return None
