"""Generations of an in-process (private memory) tier: a bounded LRU map ``gen_key -> int``.

Values come from one counter per region that only goes up, and a generation dropped from the map
(evicted past ``max_size``, or cleared by a region flush) is simply absent: an entry stamped with it
reads as a miss, and the next write gets a fresh value no old entry carries. So evicting a tag's
generation never makes an entry written before that tag's flush readable again; it can only turn an
entry of a long-unused tag into a miss.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .policy import Policy

__all__ = ["MAX_LOCAL_GENERATIONS", "LocalGenerations", "generation_life"]

#: generations (distinct tags and pattern rules) an in-process region remembers
MAX_LOCAL_GENERATIONS = 10_000


class LocalGenerations:
    """The generations of one private region; writes take a lock, reads do not."""

    __slots__ = ("_counter", "_lock", "_map", "max_size")

    def __init__(self, max_size: int = MAX_LOCAL_GENERATIONS) -> None:
        self.max_size = max_size
        self._map: OrderedDict[str, int] = OrderedDict()
        self._counter = 0
        self._lock = threading.Lock()

    def get(self, gen_key: str) -> int | None:
        """The current generation, ``None`` when unknown (entries stamped with it are misses)."""
        return self._map.get(gen_key)

    def stamp(self, gen_key: str) -> int:
        """The generation a new entry is stamped with (created if unknown, marked recently used)."""
        with self._lock:
            gen = self._map.get(gen_key)
            if gen is None:
                return self._set(gen_key)
            self._map.move_to_end(gen_key)
            return gen

    def advance(self, gen_key: str) -> None:
        """Invalidate every entry stamped with ``gen_key``."""
        with self._lock:
            self._set(gen_key)

    def clear(self) -> None:
        """Forget every generation (the counter keeps going: old stamps never match again)."""
        with self._lock:
            self._map.clear()

    def __len__(self) -> int:
        return len(self._map)

    def _set(self, gen_key: str) -> int:
        self._counter += 1
        gens = self._map
        gens[gen_key] = self._counter
        gens.move_to_end(gen_key)
        while len(gens) > self.max_size:
            gens.popitem(last=False)
        return self._counter


def generation_life(policy: Policy, keep: float | None) -> float | None:
    """How long a shared generation key must live for an entry kept ``keep`` seconds: at least that,
    and at least the region's longest default lifetime (memcached cannot extend a TTL, only set it)."""
    if keep is None:
        return None
    if policy.ttl is None:
        return keep
    longest = max([policy.ttl, *(t for _, t in policy.ttl_rules)]) + (policy.stale_ttl or 0)
    return max(keep, longest)
