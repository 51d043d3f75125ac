"""The memory store's write path: put_until's absolute deadline, overwrites, LRU order, resize."""

from __future__ import annotations

from cachekit import FakeClock
from cachekit.providers.base import MISSING
from cachekit.providers.memory import MemoryDriver


def test_put_until_expires_at_its_absolute_deadline() -> None:
    clock = FakeClock(1000.0)
    d = MemoryDriver(clock=clock)
    assert d.put_until("a", 1, 1010.0) is True
    assert d.put_until("b", 2, None) is True
    clock.advance(9.9)
    assert d.get("a") == 1
    clock.advance(0.1)
    assert d.get("a") is MISSING and d.expirations == 1
    assert d.get("b") == 2
    d.put("b", 3, ttl=5)  # put: the clock read once, the same deadline
    assert d.data["b"] == (3, clock() + 5)
    d.put("b", 4)  # no ttl: the old deadline goes
    assert d.data["b"] == (4, float("inf"))


def test_overwriting_at_the_bound_evicts_nothing_and_moves_the_key_once_lru_is_kept() -> None:
    d = MemoryDriver(max_size=4)
    for k in "abcd":
        d.put(k, k)
    assert d.lru_active and len(d) == 4
    d.put("a", "A")  # an overwrite: same size, "a" is now the most recent
    assert len(d) == 4 and d.evictions == 0
    d.put("e", "e")  # a new key: the least recent ("b") goes
    assert d.get("b") is MISSING and d.get("a") == "A" and d.evictions == 1


def test_below_half_full_an_overwrite_keeps_the_order_as_a_hit_does() -> None:
    d = MemoryDriver(max_size=10)
    for k in "abc":
        d.put(k, k)
    assert not d.lru_active
    d.put("a", "A")
    assert list(d.data) == ["a", "b", "c"]  # no bookkeeping until eviction is near
    d.get("a")
    assert list(d.data) == ["a", "b", "c"]


def test_resize_below_the_size_evicts_at_once() -> None:
    d = MemoryDriver(max_size=10)
    for i in range(6):
        d.put(f"k{i}", i)
    d.resize(3)
    assert len(d) == 3 and d.evictions == 3 and d.lru_active
    assert [d.get(f"k{i}") for i in range(6)] == [MISSING, MISSING, MISSING, 3, 4, 5]
    d.resize(None)
    for i in range(20):
        d.put(f"n{i}", i)
    assert len(d) == 23


def test_the_tinylfu_store_takes_the_same_write() -> None:
    clock = FakeClock(0.0)
    d = MemoryDriver(max_size=100, clock=clock, policy="tinylfu")
    assert d.put_until("a", 1, 5.0) is True
    d.put("a", 2, ttl=10)  # an overwrite: a hit for the policy
    assert d.data["a"] == (2, 10.0)
    clock.advance(10)
    assert d.get("a") is MISSING
