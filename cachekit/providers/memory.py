"""The in-process store: a dict of references, thread-safe, LRU-bounded, enumerable."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..clock import Clock, SystemClock
from .base import MISSING, CacheDriver

__all__ = ["POLICIES", "MemoryDriver"]

#: eviction policies of the memory store: "lru" (the default) and "tinylfu" (W-TinyLFU, in .tinylfu)
POLICIES = ("lru", "tinylfu")


class MemoryDriver(CacheDriver):
    """A thread-safe in-memory store with per-key TTL and LRU eviction past ``max_size``.

    Values are kept by reference (no serialization). Reads are lock-free (a single dict
    lookup under the GIL); writes take a lock so eviction and size stay consistent.
    LRU order is maintained once the store is half full ("approximate LRU"): below that,
    no eviction can happen soon, so hits skip the bookkeeping.

    >>> d = MemoryDriver(max_size=2)
    >>> d.put("a", 1); d.put("b", 2); d.get("a"); d.put("c", 3)
    True
    True
    1
    True
    >>> d.get("b") is MISSING   # least recently used, evicted
    True
    """

    can_scan = True
    #: the eviction policy; ``MemoryDriver(policy="tinylfu")`` builds a ``TinyLFUMemoryDriver``
    policy = "lru"

    def __new__(cls, *args: Any, policy: str = "lru", **kwargs: Any) -> MemoryDriver:
        if policy not in POLICIES:
            raise ValueError(f"unknown memory policy {policy!r}; choose one of {', '.join(POLICIES)}")
        if policy == "tinylfu" and cls is MemoryDriver:
            from .tinylfu import TinyLFUMemoryDriver

            cls = TinyLFUMemoryDriver
        return super().__new__(cls)

    def __init__(self, max_size: int | None = 10_000, clock: Clock | None = None, policy: str = "lru") -> None:
        self.max_size = max_size
        self.clock: Clock = clock or SystemClock()
        self._now = self.clock.now
        self.data: OrderedDict[str, Any] = OrderedDict()
        self.expiry: dict[str, float] = {}
        self.evictions = 0
        self.expirations = 0  # entries found expired and dropped (the simulator and stats read it)
        #: True once LRU order must be kept on reads (store more than half full).
        self.lru_active = False
        self._lock = threading.RLock()
        #: atomic locks: key -> (owner, deadline), apart from the entries
        self._held: dict[str, tuple[str, float]] = {}
        self._half = (max_size // 2) if max_size else None
        #: the stored value or ``None``, without expiry check or LRU touch: the region's hit path,
        #: which checks its entry's own deadline (a bound ``dict.get``: one C call)
        self.peek = self.data.get

    def resize(self, max_size: int | None) -> None:
        """Change the bound live (a hot-applied ``max_size``); entries past it go at once."""
        with self._lock:
            self.max_size = max_size
            self._half = half = (max_size // 2) if max_size else None
            if half is not None and len(self.data) > half:
                self.lru_active = True
                self._evict()

    # -- required -------------------------------------------------------------------------
    def get(self, key: str) -> Any:
        value = self.data.get(key, MISSING)
        if value is MISSING:
            return MISSING
        deadline = self.expiry.get(key)
        if deadline is not None and deadline <= self._now():
            self._expire(key)
            return MISSING
        if self.lru_active:
            self.touch(key)
        return value

    def put(self, key: str, value: Any, ttl: float | None = None) -> bool:
        return self.put_until(key, value, None if ttl is None else self._now() + ttl)

    def put_until(self, key: str, value: Any, deadline: float | None) -> bool:
        """:meth:`put` with an absolute ``deadline`` on this store's clock (``None``: no expiry):
        the region's write, which has read the clock for its entry's own ``expires_at``.

        Overwriting a key leaves the size unchanged: nothing to evict; its LRU position moves
        only once LRU order is kept (the store half full, as for hits)."""
        data = self.data
        lock = self._lock
        lock.acquire()
        try:
            if key in data:
                data[key] = value
                if self.lru_active:
                    data.move_to_end(key)
            else:
                data[key] = value
                half = self._half
                if half is not None and len(data) > half:
                    self.lru_active = True
                    if len(data) > self.max_size:  # type: ignore[operator]
                        self._evict()
            if deadline is not None:
                self.expiry[key] = deadline
            elif key in self.expiry:
                del self.expiry[key]
        finally:
            lock.release()
        return True

    def forget(self, key: str) -> bool:
        with self._lock:
            self.expiry.pop(key, None)
            return self.data.pop(key, MISSING) is not MISSING

    def flush(self) -> bool:
        with self._lock:
            self.data.clear()
            self.expiry.clear()
            self.lru_active = False
        return True

    # -- optional -------------------------------------------------------------------------
    def has(self, key: str) -> bool:
        return self.get(key) is not MISSING

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        get = self.get
        return {key: get(key) for key in keys}

    def put_many(self, mapping: Mapping[str, Any], ttl: float | None = None) -> bool:
        with self._lock:
            for key, value in mapping.items():
                self.put(key, value, ttl)
        return True

    def delete_many(self, keys: Iterable[str]) -> int:
        with self._lock:
            return sum(1 for key in keys if self.forget(key))

    def add(self, key: str, value: Any, ttl: float | None = None) -> bool:
        with self._lock:
            if self.get(key) is not MISSING:
                return False
            return self.put(key, value, ttl)

    def acquire_lock(self, key: str, owner: str, ttl: float) -> bool:
        """Locks live apart from the entries (a region flush or eviction never frees one)."""
        with self._lock:
            held = self._held.get(key)
            if held is not None and held[1] > self._now():
                return False
            self._held[key] = (owner, self._now() + ttl)
            return True

    def release_lock(self, key: str, owner: str) -> bool:
        with self._lock:
            held = self._held.get(key)
            if held is None or held[0] != owner or held[1] <= self._now():
                return False
            del self._held[key]
            return True

    def force_release_lock(self, key: str) -> bool:
        with self._lock:
            return self._held.pop(key, None) is not None

    def lock_owner(self, key: str) -> str | None:
        held = self._held.get(key)
        return held[0] if held is not None and held[1] > self._now() else None

    def increment(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        with self._lock:
            current = self.get(key)
            new = (0 if current is MISSING else int(current)) + amount
            keep_deadline = self.expiry.get(key) if current is not MISSING else None
            self.put(key, new, ttl)
            if ttl is None and keep_deadline is not None:
                self.expiry[key] = keep_deadline
            return new

    def extend_ttl(self, keys: Iterable[str], ttl: float | None) -> bool:
        with self._lock:
            deadline = None if ttl is None else self._now() + ttl
            for key in keys:
                if key not in self.data or key not in self.expiry:  # absent, or no expiry already
                    continue
                if deadline is None:
                    del self.expiry[key]
                elif self.expiry[key] < deadline:
                    self.expiry[key] = deadline
        return True

    def scan(self, pattern: str) -> Iterator[str]:
        with self._lock:
            keys = list(self.data)
        return self._match(pattern, keys)

    def __len__(self) -> int:
        return len(self.data)

    # -- internals ------------------------------------------------------------------------
    def touch(self, key: str) -> None:
        """Mark ``key`` most recently used."""
        try:
            self.data.move_to_end(key)
        except KeyError:  # removed by another thread between lookup and touch
            pass

    def _expire(self, key: str) -> None:
        with self._lock:
            deadline = self.expiry.get(key)
            if deadline is not None and deadline <= self._now():
                self.data.pop(key, None)
                del self.expiry[key]
                self.expirations += 1

    def _evict(self) -> None:
        data, expiry = self.data, self.expiry
        while len(data) > self.max_size:  # type: ignore[operator]
            key, _ = data.popitem(last=False)
            expiry.pop(key, None)
            self.evictions += 1
