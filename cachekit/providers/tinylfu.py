"""W-TinyLFU eviction for the memory store (``policy = "tinylfu"``).

The design follows Caffeine (Einziger, Friedman, Manes: "TinyLFU: A Highly Efficient Cache Admission
Policy"; Caffeine's ``FrequencySketch`` and ``BoundedLocalCache``):

- an **admission window**: a small LRU (1 % of the capacity to start with) where every new key enters,
  so a burst of new keys can still earn hits before it has to prove itself;
- a **segmented main**: an SLRU of *probation* (20 %) and *protected* (80 %); a hit in probation
  promotes the key to protected, whose overflow is demoted back to probation;
- **admission**: when the window overflows, its least recent key (the candidate) goes to the main only
  if its estimated frequency beats the main's victim (the least recent key of probation); otherwise the
  candidate is evicted. One-hit wonders therefore do not push frequent keys out, and a scan of new keys
  flows through the window without touching the main;
- a **count-min sketch** of 4 rows of 8-bit counters (saturating at 15, like Caffeine's 4-bit ones),
  updated conservatively (only the smallest counters grow), behind a doorkeeper Bloom filter that
  takes each key's first access, estimates how often each key was requested recently. After
  ``10 * capacity`` counted accesses every counter is **halved** and the doorkeeper emptied (aging),
  so yesterday's hot keys give way to today's;
- an **adaptive window** (Caffeine's hill climber): the hit ratio of each sample period is compared with
  the previous one and the window grows or shrinks in the direction that helped, with a decaying step
  (recency-skewed workloads get a larger window, frequency-skewed ones a smaller one).

Counts follow Caffeine: a hit and an insert each count one access of the key; a miss that is not
followed by a ``put`` counts nothing (so misses cost nothing).

>>> from cachekit.providers.memory import MemoryDriver
>>> d = MemoryDriver(max_size=100, policy="tinylfu")
>>> d.put("a", 1)
True
>>> d.get("a"), d.policy
(1, 'tinylfu')
"""

from __future__ import annotations

import random
from collections import OrderedDict
from typing import Any

from .memory import MemoryDriver

__all__ = ["CountMinSketch", "TinyLFUMemoryDriver", "WTinyLFU"]

_MASK64 = (1 << 64) - 1
_C1 = 0x9E3779B97F4A7C15  # the 64-bit golden ratio (Fibonacci hashing)
_HALF = bytes(i >> 1 for i in range(256))
#: counters saturate here (Caffeine's counters are 4 bits)
MAX_COUNT = 15


class CountMinSketch:
    """Approximate access counts of keys, with a doorkeeper and periodic halving ("aging").

    ``width`` counters per row (a power of two, at least 4 * ``capacity``), four rows in one
    ``bytearray``; a key's count is the least of its four counters. In front of them a **doorkeeper**
    (a Bloom filter of about 8 bits per counted access) absorbs each key's first access, so keys seen
    once in a period never load the counters. After ``sample_size`` counted accesses (default
    ``10 * capacity``) every counter is halved and the doorkeeper is emptied.

    >>> s = CountMinSketch(capacity=16, sample_size=1000)
    >>> for _ in range(3): s.increment("k")
    >>> s.frequency("k"), s.frequency("never")
    (3, 0)
    """

    __slots__ = ("additions", "door", "door_mask", "mask", "resets", "sample_size", "table", "width")

    def __init__(self, capacity: int, sample_size: int | None = None) -> None:
        width = 64
        while width < 4 * capacity:
            width <<= 1
        self.width = width
        self.mask = width - 1
        self.table = bytearray(4 * width)
        self.sample_size = sample_size if sample_size is not None else max(10 * capacity, 10)
        bits = 512
        while bits < 8 * self.sample_size:
            bits <<= 1
        self.door = bytearray(bits >> 3)
        self.door_mask = bits - 1
        #: counted accesses since the last halving
        self.additions = 0
        #: how many times the counters were halved
        self.resets = 0

    def frequency(self, key: Any) -> int:
        """The estimated count of ``key`` since the last halving (never below the true count)."""
        t, m, w = self.table, self.mask, self.width
        h = hash(key)
        g = (h * _C1) & _MASK64
        dm, door = self.door_mask, self.door
        x, y = g & dm, (g >> 32) & dm
        seen = 1 if door[x >> 3] & (1 << (x & 7)) and door[y >> 3] & (1 << (y & 7)) else 0
        a, b, c, d = t[h & m], t[w + (h >> 32 & m)], t[2 * w + (g >> 40 & m)], t[3 * w + (g >> 20 & m)]
        if b < a:
            a = b
        if d < c:
            c = d
        return (a if a < c else c) + seen

    def increment(self, key: Any) -> None:
        """Count one access of ``key``: the first one in the doorkeeper, the next ones in the counters
        (conservative update: only the smallest counters grow)."""
        h = hash(key)
        g = (h * _C1) & _MASK64
        dm, door = self.door_mask, self.door
        x, y = g & dm, (g >> 32) & dm
        bx, by = 1 << (x & 7), 1 << (y & 7)
        x >>= 3
        y >>= 3
        if not (door[x] & bx and door[y] & by):
            door[x] |= bx
            door[y] |= by
        else:
            t, m, w = self.table, self.mask, self.width
            i0, i1, i2, i3 = h & m, w + (h >> 32 & m), 2 * w + (g >> 40 & m), 3 * w + (g >> 20 & m)
            a, b, c, d = t[i0], t[i1], t[i2], t[i3]
            low = a if a < b else b
            if c < low:
                low = c
            if d < low:
                low = d
            if low >= MAX_COUNT:
                return
            low += 1
            if a < low:
                t[i0] = low
            if b < low:
                t[i1] = low
            if c < low:
                t[i2] = low
            if d < low:
                t[i3] = low
        self.additions += 1
        if self.additions >= self.sample_size:
            self.age()

    def age(self) -> None:
        """Halve every counter (one C-level pass over the table) and empty the doorkeeper."""
        self.table = self.table.translate(_HALF)
        self.door = bytearray(len(self.door))
        self.additions //= 2
        self.resets += 1


class WTinyLFU:
    """The eviction policy over keys only: the store holds the values and removes what it is told.

    ``insert(key)`` returns the keys to evict; ``hit(key)`` records an access; ``remove(key)``
    forgets a key the store dropped itself (delete, expiry).

    >>> p = WTinyLFU(3)
    >>> [p.insert(k) for k in "abc"]
    [[], [], []]
    >>> p.insert("d")   # full: the window's candidate "c" ties with the main's victim "a" and loses
    ['c']
    """

    #: Caffeine's hill-climber constants
    STEP_PERCENT = 0.0625
    STEP_DECAY = 0.98
    RESTART_THRESHOLD = 0.05

    def __init__(self, capacity: int, *, window: float = 0.01, adaptive: bool = True,
                 sample_size: int | None = None, seed: int = 0) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.window: OrderedDict[Any, None] = OrderedDict()
        self.probation: OrderedDict[Any, None] = OrderedDict()
        self.protected: OrderedDict[Any, None] = OrderedDict()
        self.sketch = CountMinSketch(capacity, sample_size)
        self.adaptive = adaptive
        self._random = random.Random(seed)
        self._set_window(max(1, round(capacity * window)))
        # hill climber
        self.hits = 0
        self.misses = 0
        self.period = self.sketch.sample_size
        self.previous_hit_rate = 0.0
        self.step = -self.STEP_PERCENT * capacity  # as Caffeine: first try a smaller window

    def _set_window(self, size: int) -> None:
        cap = self.capacity
        self.window_max = min(max(1, size), max(1, cap - 1)) if cap > 1 else 1
        self.protected_max = int(0.8 * (cap - self.window_max))

    def __len__(self) -> int:
        return len(self.window) + len(self.probation) + len(self.protected)

    def __contains__(self, key: Any) -> bool:
        return key in self.window or key in self.probation or key in self.protected

    # -- events from the store --------------------------------------------------------------
    def hit(self, key: Any) -> None:
        """``key`` was read (or overwritten) while cached."""
        self.sketch.increment(key)
        protected = self.protected
        if key in protected:
            protected.move_to_end(key)
        elif key in self.probation:
            del self.probation[key]
            protected[key] = None
            if len(protected) > self.protected_max:
                demoted, _ = protected.popitem(last=False)
                self.probation[demoted] = None
        elif key in self.window:
            self.window.move_to_end(key)
        self.hits += 1
        if self.adaptive and self.hits + self.misses >= self.period:
            self.climb()

    def insert(self, key: Any) -> list[Any]:
        """A new ``key`` was stored: place it in the window; return the keys to evict."""
        self.sketch.increment(key)
        window, probation, protected = self.window, self.probation, self.protected
        window[key] = None
        evicted: list[Any] = []
        total = len(window) + len(probation) + len(protected)
        cap = self.capacity
        while len(window) > self.window_max:
            candidate, _ = window.popitem(last=False)
            if total <= cap:
                probation[candidate] = None
                continue
            if probation:
                victim, segment = next(iter(probation)), probation
            elif protected:
                victim, segment = next(iter(protected)), protected
            else:
                evicted.append(candidate)
                total -= 1
                continue
            if self.admit(candidate, victim):
                del segment[victim]
                evicted.append(victim)
                probation[candidate] = None
            else:
                evicted.append(candidate)
            total -= 1
        while total > cap:  # only after a resize: give up the least recent keys
            segment = probation or protected or window
            victim, _ = segment.popitem(last=False)
            evicted.append(victim)
            total -= 1
        self.misses += 1
        if self.adaptive and self.hits + self.misses >= self.period:
            self.climb()
        return evicted

    def remove(self, key: Any) -> None:
        """The store dropped ``key`` itself (delete, expiry)."""
        for segment in (self.window, self.probation, self.protected):
            if key in segment:
                del segment[key]
                return

    def clear(self) -> None:
        """The store was flushed: drop every key, keep the frequency history."""
        self.window.clear()
        self.probation.clear()
        self.protected.clear()

    # -- decisions ---------------------------------------------------------------------------
    def admit(self, candidate: Any, victim: Any) -> bool:
        """Whether ``candidate`` (leaving the window) replaces ``victim`` (the main's least recent)."""
        sketch = self.sketch
        candidate_freq = sketch.frequency(candidate)
        victim_freq = sketch.frequency(victim)
        if candidate_freq > victim_freq:
            return True
        # Caffeine's defence against hash flooding: a warm candidate sometimes wins a tie it would lose
        return candidate_freq >= 6 and self._random.getrandbits(7) == 0

    def climb(self) -> None:
        """One hill-climbing step: move the window size in the direction that raised the hit ratio."""
        samples = self.hits + self.misses
        hit_rate = self.hits / samples if samples else 0.0
        change = hit_rate - self.previous_hit_rate
        amount = self.step if change >= 0 else -self.step
        if abs(change) >= self.RESTART_THRESHOLD:
            self.step = self.STEP_PERCENT * self.capacity * (1 if amount >= 0 else -1)
        else:
            self.step = self.STEP_DECAY * amount
        self.previous_hit_rate = hit_rate
        self.hits = self.misses = 0
        self.resize_window(self.window_max + int(amount))

    def resize_window(self, size: int) -> None:
        """Set the window's share and move keys across (none is evicted): a larger window takes the
        main's least recent keys, a smaller one hands its least recent keys to probation."""
        self._set_window(size)
        window, probation, protected = self.window, self.probation, self.protected
        while len(window) > self.window_max:
            key, _ = window.popitem(last=False)
            probation[key] = None
        room = self.window_max - len(window)
        while room > 0 and len(window) + len(probation) + len(protected) >= self.capacity:
            segment = probation or protected
            if not segment:
                break
            key, _ = segment.popitem(last=False)
            window[key] = None
            room -= 1
        while len(protected) > self.protected_max:
            key, _ = protected.popitem(last=False)
            probation[key] = None


class TinyLFUMemoryDriver(MemoryDriver):
    """``MemoryDriver(policy="tinylfu")``: the memory store with W-TinyLFU eviction.

    Same data layout, TTL semantics and thread-safety as the LRU store; the eviction policy object
    (``self.eviction``, a :class:`WTinyLFU`) decides what leaves. Hits take the write lock (the
    policy's queues move on every hit), so a hit costs more than an LRU hit.
    """

    policy = "tinylfu"
    eviction: WTinyLFU | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # readers that bypass get() (the region's fast path) report hits through touch()
        self.lru_active = self.eviction is not None
        self.mark_used = self.touch

    @property  # type: ignore[override]
    def max_size(self) -> int | None:
        return self._max_size

    @max_size.setter
    def max_size(self, size: int | None) -> None:
        self._max_size = size
        ev = self.eviction
        self.lru_active = size is not None
        if size is None:
            self.eviction = None
        elif ev is None or ev.capacity != size:
            self.eviction = new = WTinyLFU(size)
            data = getattr(self, "data", None)
            if data:  # resized on a hot config apply: keep the most recent keys
                for key in list(data):
                    for victim in new.insert(key):
                        data.pop(victim, None)
                        self.evictions += 1

    def put_cell(self, key: str, cell: tuple[Any, ...]) -> bool:
        """Always under the lock: the policy's queues move on every write."""
        with self._lock:
            self._store(key, cell)
        return True

    def _store(self, key: str, cell: tuple[Any, ...]) -> None:
        data = self.data
        ev = self.eviction
        fresh = key not in data
        data[key] = cell
        if ev is not None:
            if not fresh:
                ev.hit(key)
            else:
                for victim in ev.insert(key):
                    data.pop(victim, None)
                    self.evictions += 1

    def forget(self, key: str) -> bool:
        with self._lock:
            if self.eviction is not None:
                self.eviction.remove(key)
            return super().forget(key)

    def flush(self) -> bool:
        with self._lock:
            if self.eviction is not None:
                self.eviction.clear()
            super().flush()
            self.lru_active = self.eviction is not None
        return True

    def touch(self, key: str) -> None:
        """Record an access of ``key``."""
        with self._lock:
            if self.eviction is not None and key in self.data:
                self.eviction.hit(key)

    def _expire(self, key: str) -> None:
        with self._lock:
            had = key in self.data
            super()._expire(key)
            if had and key not in self.data and self.eviction is not None:
                self.eviction.remove(key)

    def _evict(self) -> None:  # the policy evicts on insert; nothing is ever over the bound
        pass
