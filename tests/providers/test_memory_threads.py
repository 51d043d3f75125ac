"""The memory store under threads, by behaviour (never timing).

A value and its deadline live in one cell written by one dict assignment: no interleaving can serve
one write's value under another write's deadline, a read-modify-write never brings back a value an
overwrite replaced, and the size bound holds once the writers are done. The GIL switch interval is
made tiny so that threads interleave inside the store's methods.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from threaded import run_threads, switch_often  # noqa: F401 - the fixture is autouse

from cachekit import FakeClock
from cachekit.providers.base import MISSING
from cachekit.providers.memory import MemoryDriver

NOW = 1000.0
LIVE, DEAD = NOW + 1000, NOW - 1  # deadlines: far ahead, already past


@pytest.mark.parametrize("policy", ["lru", "tinylfu"])
def test_a_value_is_never_served_under_another_writes_deadline(policy: str) -> None:
    """Writers alternate a live value (deadline ahead) and a dead one (deadline past) on one key.
    Were value and deadline written apart, a dead value would pair with a live deadline and be served
    (or a live value with a dead deadline), as a lock-free write to two dicts did."""
    d = MemoryDriver(max_size=4, clock=FakeClock(NOW), policy=policy)
    for k in "abc":  # more than half full: overwrites move keys in LRU order too
        d.put_until(k, ("live", -1), LIVE)
    rounds = 20_000
    done = threading.Event()

    def writer(n: int) -> Callable[[], None]:
        def write() -> None:
            for _ in range(rounds):
                d.put_until("a", ("live", n), LIVE)
                d.put_until("a", ("dead", n), DEAD)
        return write

    def reader() -> None:
        while not done.is_set():
            value = d.get("a")
            assert value is MISSING or value[0] == "live", value
            cell = d.peek("a")
            if cell is not None:  # the raw cell: its value and its deadline belong to one write
                assert (cell[0][0] == "live") == (cell[-1] == LIVE), cell

    def writers() -> None:
        try:
            run_threads(writer(1), writer(2), writer(3))
        finally:
            done.set()

    run_threads(writers, reader, reader)
    cell = d.peek("a")
    assert cell is None or (cell[0][0] == "live") == (cell[-1] == LIVE)
    assert d.get("b") == ("live", -1) and len(d) <= 4


@pytest.mark.parametrize("change", ["extend_ttl", "increment", "add"])
def test_a_read_modify_write_never_brings_back_a_replaced_value(change: str) -> None:
    """One thread overwrites a key with 0, 1, 2 ... (lock-free) while others run read-modify-writes
    that keep the value (``increment`` by 0, ``extend_ttl``, ``add`` of a present key): once a put
    has returned, its value is the one there (until the next put), never an older one that a
    read-modify-write read before it and wrote after it."""
    d = MemoryDriver(max_size=100, clock=FakeClock(NOW))
    last = 50_000
    d.put("k", 0, ttl=60)
    modify: dict[str, Callable[[], Any]] = {
        "extend_ttl": lambda: d.extend_ttl(["k"], 120),
        "increment": lambda: d.increment("k", 0),
        "add": lambda: d.add("k", -1, ttl=60),
    }
    stop, running = threading.Event(), threading.Event()

    def writer() -> None:
        running.wait(5)
        try:
            for i in range(1, last + 1):
                d.put("k", i, ttl=60)
                assert d.get("k") == i
        finally:
            stop.set()

    def modifier() -> None:
        while not stop.is_set():
            modify[change]()
            running.set()

    run_threads(writer, modifier, modifier)
    assert d.get("k") == last


def test_the_size_bound_holds_with_overwrites_evictions_and_forgets_racing() -> None:
    d = MemoryDriver(max_size=50, clock=FakeClock(NOW))
    hot = [f"k{i}" for i in range(50)]
    for k in hot:
        d.put(k, 0)

    def overwriter() -> None:
        for r in range(60):
            for k in hot:
                d.put(k, r, ttl=60)

    def inserter() -> None:
        for i in range(3000):
            d.put(f"new{i}", i)

    def forgetter() -> None:
        for _ in range(40):
            for k in hot[::3]:
                d.forget(k)

    run_threads(overwriter, overwriter, inserter, forgetter)
    assert len(d) <= 50
    assert all(cell[-1] in (NOW + 60, float("inf")) for cell in d.data.values())
    d.put("one-more", 1)  # a calm write after the storm: the bound is exact again
    assert len(d) <= 50 and d.get("one-more") == 1
