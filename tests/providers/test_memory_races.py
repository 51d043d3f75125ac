"""The memory store's writes racing each other, by behaviour (never timing).

Every value below is written by one ``put`` only, so a value that a thread has seen replaced and then
sees again was written twice: the store wrote it again after another write (a ``put`` rewritten
under the lock after a racing one had returned, or an increment undone). Real threads; the GIL
switch interval is made tiny so that they interleave inside the store's methods.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

import pytest
from threaded import run_threads, switch_often  # noqa: F401 - the fixture is autouse

from cachekit import FakeClock
from cachekit.providers.base import MISSING
from cachekit.providers.memory import MemoryDriver

NOW = 1000.0


def churn(d: MemoryDriver, stop: threading.Event) -> Callable[[], None]:
    """Read-modify-writes on a key of their own, racing the writes under test."""
    def run() -> None:
        while not stop.is_set():
            d.increment("churn")
    return run


def follow(d: MemoryDriver, keys: list[str], first: Callable[[str, int], None],
           then: Callable[[str, int], None], stop: threading.Event) -> None:
    """``first`` writes each key in turn; another thread waits until it sees that write, then runs
    ``then`` on the key; a third moves the sequence meanwhile (read-modify-writes elsewhere)."""
    marks = [d.peek(k) for k in keys]

    def leader() -> None:
        for i, k in enumerate(keys):
            first(k, i)

    def follower() -> None:
        try:
            for i, k in enumerate(keys):
                while d.peek(k) is marks[i]:  # until the leader's write is visible
                    pass
                then(k, i)
        finally:
            stop.set()

    run_threads(leader, follower, churn(d, stop))


@pytest.mark.parametrize("policy", ["lru", "tinylfu"])
def test_an_increment_that_read_a_put_is_never_undone_by_it(policy: str) -> None:
    """A put of 1000 and, once it is visible, an increment that reads it and returns 1001. The
    increment came after the put: the key must end at 1001 (the put written again over the
    increment would lose it; ``increment`` is documented atomic)."""
    d = MemoryDriver(max_size=None, clock=FakeClock(NOW), policy=policy)
    keys = [f"n{i}" for i in range(20000)]
    for k in keys:
        d.put(k, 0)
    returned: dict[str, int] = {}
    follow(d, keys, lambda k, i: d.put(k, 1000), lambda k, i: returned.__setitem__(k, d.increment(k)),
           threading.Event())
    assert set(returned.values()) == {1001}
    lost = [k for k in keys if d.get(k) != 1001]
    assert not lost, f"{len(lost)} increments undone by the put they read, e.g. {lost[:3]} -> {d.get(lost[0])}"


@pytest.mark.parametrize("policy", ["lru", "tinylfu"])
@pytest.mark.parametrize("fresh", [True, False], ids=["insert", "overwrite"])
def test_a_put_seen_and_overwritten_never_comes_back(policy: str, fresh: bool) -> None:
    """One thread writes ``("first", i)`` (a new key, or over an old value); another waits until it
    sees it, then writes ``("second", i)``. The second put replaced the first, which was already
    visible: the first must not come back (were it written again under the lock, after its lock-free
    write, it would land over the second)."""
    d = MemoryDriver(max_size=None, clock=FakeClock(NOW), policy=policy)
    keys = [f"n{i}" for i in range(20000)]
    if not fresh:
        for k in keys:
            d.put(k, ("old", 0))
    follow(d, keys, lambda k, i: d.put(k, ("first", i)), lambda k, i: d.put(k, ("second", i)),
           threading.Event())
    back = [k for k in keys if d.get(k) != ("second", int(k[1:]))]
    assert not back, f"{len(back)} overwritten puts came back, e.g. {back[:3]} -> {d.get(back[0])}"


def test_a_write_whose_destructor_runs_an_increment_keeps_the_increment() -> None:
    """The interleaving of the thread tests, placed exactly: the value a put replaces has a
    ``__del__`` (it runs inside the put, right after its write, as a finalizer or a thread switch
    could) that increments the key. The increment read the put's value, so it comes after the put."""
    d = MemoryDriver(max_size=None, clock=FakeClock(NOW))
    seen: list[int] = []

    class Finalized:
        def __del__(self) -> None:
            seen.append(d.increment("k"))

    d.put("k", Finalized())
    d.put("k", 5)
    assert seen == [6]
    assert d.get("k") == 6


def test_puts_racing_forget_flush_resize_and_expiry_keep_the_store_consistent() -> None:
    """Overwrites and inserts race forgets, flushes, live resizes and the removal of expired entries;
    afterwards every cell is one a put wrote (value and deadline together), the bound holds once a
    calm write has evicted, and the LRU bookkeeping never raised (``move_to_end`` of a key that left)."""
    clock = FakeClock(NOW)
    d = MemoryDriver(max_size=40, clock=clock)
    keys = [f"k{i}" for i in range(60)]
    stop = threading.Event()
    seq = itertools.count()

    def putter() -> None:
        for r in range(400):
            for k in keys[r % 3::3]:
                v = next(seq)
                # an odd value expires at once, an even one lives: the deadline is a function of the value
                d.put_until(k, v, NOW - 1 if v % 2 else NOW + 60)

    def reader() -> None:
        while not stop.is_set():
            for k in keys:
                v = d.get(k)
                assert v is MISSING or v % 2 == 0, v

    def disturber() -> None:
        for r in range(300):
            d.forget(keys[r % 60])
            if r % 50 == 0:
                d.flush()
            if r % 70 == 0:
                d.resize(20 if r % 140 == 0 else 40)

    def putters() -> None:
        try:
            run_threads(putter, putter, disturber)
        finally:
            stop.set()

    run_threads(putters, reader)
    for cell in list(d.data.values()):
        assert (cell[0] % 2 == 0) == (cell[-1] == NOW + 60), cell
    d.resize(40)
    d.put("calm", 0)
    assert len(d) <= 40 and d.get("calm") == 0


def test_a_write_whose_destructor_writes_the_key_again_keeps_the_later_write() -> None:
    """As above, with a read-modify-write elsewhere (it moves the store's sequence) and then a put of
    the same key: that put came after the first one's write, so its value is the one that stays."""
    d = MemoryDriver(max_size=None, clock=FakeClock(NOW))

    class Finalized:
        def __del__(self) -> None:
            d.increment("elsewhere")
            d.put("k", "later")

    d.put("k", Finalized())
    d.put("k", "first")
    assert d.get("k") == "later"
    assert d.get("elsewhere") == 1


def test_finalizers_that_use_the_store_during_lock_free_writes_do_not_deadlock() -> None:
    """A read-modify-write waits for the lock-free writes in flight; such a write may run a finalizer
    (of the value it replaced) that takes the store's lock or runs a read-modify-write itself. The
    wait holds no lock, so everything finishes, and every increment counts."""
    d = MemoryDriver(max_size=50, clock=FakeClock(NOW))
    rounds = 3000

    class Finalized:
        def __del__(self) -> None:
            d.increment("finalized")
            d.forget("gone")

    def writer(name: str) -> Callable[[], None]:
        def run() -> None:
            for i in range(rounds):
                d.put(f"{name}{i % 10}", Finalized())
        return run

    def incrementer() -> None:
        for _ in range(rounds):
            d.increment("counted")

    worker = threading.Thread(target=run_threads, args=(writer("a"), writer("b"), incrementer, incrementer))
    worker.start()
    worker.join(120)
    assert not worker.is_alive(), "deadlocked"
    assert d.get("counted") == 2 * rounds
    assert d.get("finalized") == 2 * rounds - 20  # every replaced value finalized once (20 keys hold one each)
