"""The in-process store: a dict of references, thread-safe, LRU-bounded, enumerable."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from ..clock import Clock, SystemClock
from .base import MISSING, CacheDriver

INF = float("inf")

__all__ = ["POLICIES", "MemoryDriver"]

#: eviction policies of the memory store: "lru" (the default) and "tinylfu" (W-TinyLFU, in .tinylfu)
POLICIES = ("lru", "tinylfu")


class MemoryDriver(CacheDriver):
    """A thread-safe in-memory store with per-key TTL and LRU eviction past ``max_size``.

    Values are kept by reference (no serialization), each in one *cell*: a tuple whose first item
    is the value and whose last is its deadline (absolute on the store's clock, ``inf``: none),
    ``(value, deadline)`` for :meth:`put`; a caller may keep its own fields between them
    (:meth:`put_cell`: the region's entries). A value and its deadline are written together by one
    dict assignment, so no reader or writer can pair one write's value with another's deadline.
    Reads are lock-free (one dict lookup under the GIL); every change (a write, an eviction, a
    read-modify-write such as ``increment``, ``add`` or ``extend_ttl``, dropping an expired entry)
    takes the store's lock, so changes happen one at a time.
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
        self.clock: Clock = clock or SystemClock()
        self._now = self.clock.now
        #: key -> cell ``(value, ..., deadline)``, one object per write
        self.data: OrderedDict[str, tuple[Any, ...]] = OrderedDict()
        self.evictions = 0
        self.expirations = 0  # entries found expired and dropped (the simulator and stats read it)
        #: True once LRU order must be kept on reads (store more than half full).
        self.lru_active = False
        self._lock = threading.RLock()
        #: atomic locks: key -> (owner, deadline), apart from the entries
        self._held: dict[str, tuple[str, float]] = {}
        self._set_bound(max_size)
        #: the cell or ``None``, without expiry check or LRU touch: the region's hit path, which
        #: checks its entry's own deadline (a bound ``dict.get``: one C call)
        self.peek = self.data.get
        #: mark a key most recently used, for readers that bypass :meth:`get` (the region's hit
        #: path, once ``lru_active``): ``OrderedDict.move_to_end``, one C call, which raises
        #: ``KeyError`` if the key left meanwhile (the caller ignores it)
        self.mark_used: Callable[[str], Any] = self.data.move_to_end

    def _set_bound(self, max_size: int | None) -> None:
        self.max_size = max_size
        self._half = (max_size // 2) if max_size else None

    def resize(self, max_size: int | None) -> None:
        """Change the bound live (a hot-applied ``max_size``); entries past it go at once."""
        with self._lock:
            self._set_bound(max_size)
            half = self._half
            if half is not None and len(self.data) > half:
                self.lru_active = True
                self._evict()

    # -- required -------------------------------------------------------------------------
    def get(self, key: str) -> Any:
        cell = self.get_cell(key)
        return MISSING if cell is MISSING else cell[0]

    def get_cell(self, key: str) -> Any:
        """The whole cell of a fresh entry (a hit: LRU order kept), or ``MISSING``."""
        cell = self.data.get(key)
        if cell is None:
            return MISSING
        if cell[-1] <= self._now():
            self._expire(key)
            return MISSING
        if self.lru_active:
            self.touch(key)
        return cell

    def put(self, key: str, value: Any, ttl: float | None = None) -> bool:
        return self.put_until(key, value, None if ttl is None else self._now() + ttl)

    def put_until(self, key: str, value: Any, deadline: float | None) -> bool:
        """:meth:`put` with an absolute ``deadline`` on this store's clock (``None``: no expiry)."""
        return self.put_cell(key, (value, INF if deadline is None else deadline))

    def put_cell(self, key: str, cell: tuple[Any, ...]) -> bool:
        """Store ``cell`` as it is: a tuple whose first item is the value :meth:`get` returns and
        whose last is the deadline (absolute on this store's clock, ``inf``: none); the items between
        are the caller's (the region's write: its entry ``(value, expires_at, stamps, deadline)``,
        which its hit path reads with :attr:`peek`).

        The cell is one object, stored by one dict assignment, so the value and its deadline always
        travel together; the write takes the store's lock, as every change does, so writes, evictions
        and read-modify-writes (``increment``, ``add``, ``extend_ttl``) happen one at a time. Overwriting
        a key leaves the size unchanged: nothing to evict; its LRU position moves only once LRU order
        is kept (the store half full, as for hits)."""
        data = self.data
        lock = self._lock
        lock.acquire()
        try:  # the lock is reentrant: increment and add write through here with it held
            data[key] = cell
            if self.lru_active:
                data.move_to_end(key)
            else:
                half = self._half
                if half is not None and len(data) > half:
                    self.lru_active = True
            if self.max_size is not None and len(data) > self.max_size:
                self._evict()
        finally:
            lock.release()
        return True

    def forget(self, key: str) -> bool:
        with self._lock:
            return self.data.pop(key, None) is not None

    def flush(self) -> bool:
        with self._lock:
            self.data.clear()
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
            now = self._now()
            cell = self.data.get(key)
            live = cell is not None and cell[-1] > now
            if cell is not None and not live:
                self.expirations += 1
            new = (int(cell[0]) if live else 0) + amount  # type: ignore[index]
            # one read of the cell: the new value keeps the deadline read with the old one
            self.put_cell(key, (new, now + ttl if ttl is not None else cell[-1] if live else INF))  # type: ignore[index]
            return new

    def extend_ttl(self, keys: Iterable[str], ttl: float | None) -> bool:
        with self._lock:
            deadline = INF if ttl is None else self._now() + ttl
            data = self.data
            for key in keys:
                cell = data.get(key)
                if cell is not None and cell[-1] < deadline:  # absent, or no expiry already: left alone
                    data[key] = (*cell[:-1], deadline)
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
            cell = self.data.get(key)
            if cell is not None and cell[-1] <= self._now():
                del self.data[key]
                self.expirations += 1

    def _evict(self) -> None:
        data = self.data
        while len(data) > self.max_size:  # type: ignore[operator]
            data.popitem(last=False)
            self.evictions += 1
