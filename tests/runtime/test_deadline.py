"""Issue 12 item 2: one deadline per call. A region call on a shared store spends at most one
operation timeout (plus ``[cache] call_timeout``'s margin) on a store that is down, black-holed or
slow: once a store call failed in the call, or the call spent its budget, the rest of the call skips
the store. Fail-open answers are unchanged; ``on_error = "raise"`` raises once; the next call tries
the store again."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from faultproxy import FaultProxy
from servers import need_module

from cachekit import CacheConfig, ProviderError
from cachekit.config import parse_config

TIMEOUT = 0.2


@pytest.fixture
def proxy(redis_server: Any) -> Iterator[FaultProxy]:
    need_module("redis")
    with FaultProxy(redis_server.host, redis_server.port) as p:
        yield p


def config(proxy: FaultProxy, *, on_error: str = "ignore", retries: int = 0, l1: bool = False,
           **cache: Any) -> CacheConfig:
    region: dict[str, Any] = {"provider": "store", "ttl": 60, "lock": True}
    if l1:
        region["l1"] = {"provider": "memory", "ttl": 8}
    return CacheConfig(
        cache={"prefix": "deadline", **cache},
        providers={"store": {"type": "redis", "url": f"redis://{proxy.address}/0", "connect_timeout": TIMEOUT,
                             "socket_timeout": TIMEOUT, "retries": retries, "on_error": on_error}},
        regions={"default": region},
        bus={"enabled": l1, **({"provider": "store"} if l1 else {})},
    )


def timed(fn: Any) -> tuple[Any, float]:
    started = time.monotonic()
    value = fn()
    return value, time.monotonic() - started


@pytest.mark.parametrize("l1", [False, True], ids=["plain", "l1"])
def test_every_call_against_a_blackholed_store_takes_one_operation_timeout(proxy: FaultProxy, l1: bool) -> None:
    with config(proxy, l1=l1).compile() as runtime:
        region = runtime.region()
        region.get("warm-up")
        proxy.blackhole()
        proxy.cut()
        calls = {
            "remember": lambda: region.remember("user:1", 60, lambda: "loaded") == "loaded",
            "get": lambda: region.get("user:1", "d") == "d",
            "put": lambda: region.put("user:1", "v") is False,
            "add": lambda: region.add("user:2", "v") is False,
            "tags.put": lambda: region.tags("t").put("user:3", "v") is False,
            "increment": lambda: region.increment("n") is None,
            "aremember": lambda: asyncio.run(region.aremember("user:4", 60, lambda: "x")) == "x",
            "aput": lambda: asyncio.run(region.aput("user:4", "v")) is False,
        }
        for name, call in calls.items():
            ok, took = timed(call)
            assert ok, name
            # one store call's timeout (the first fails, the rest are skipped) plus a margin
            assert took < TIMEOUT + 0.25, f"{name} took {took:.2f}s"


def test_the_retry_budget_is_spent_once_per_call(proxy: FaultProxy) -> None:
    # retries = 2: the failed store call itself takes up to three attempts; the later ones are not made
    with config(proxy, retries=2).compile() as runtime:
        region = runtime.region()
        region.get("warm-up")
        proxy.blackhole()
        proxy.cut()
        _, one_get = timed(lambda: region.get("a"))
        value, one_remember = timed(lambda: region.remember("b", 60, lambda: "loaded"))
        assert value == "loaded"
        # before: a remember made four store calls (read, lock, read again, write), each with its retries
        assert one_remember < one_get + 0.3, (one_get, one_remember)


def test_a_slow_store_stops_a_call_at_its_budget_and_the_next_call_tries_again(proxy: FaultProxy) -> None:
    with config(proxy, call_timeout=0.05).compile() as runtime:
        region = runtime.region()
        assert region.put("k", "v")
        proxy.set_latency(0.03)  # each round trip ~0.06 s: answered, but the call's budget is 0.05 s
        value, took = timed(lambda: region.remember("slow", 60, lambda: "loaded"))
        assert value == "loaded"
        assert took < 0.5
        errors = runtime.stats.rows()[0]["errors"]
        assert errors >= 1  # the store calls skipped past the budget are counted
        proxy.restore()
        assert region.remember("slow", 60, lambda: "again") == "again"  # nothing was stored...
        assert region.get("slow") == "again"  # ...and the next call reaches the store: not marked dead
        assert region.l2.down is False


def test_on_error_raise_raises_once_and_the_store_is_tried_again_next_call(proxy: FaultProxy) -> None:
    with config(proxy, on_error="raise").compile() as runtime:
        region = runtime.region()
        region.get("warm-up")
        proxy.blackhole()
        proxy.cut()
        started = time.monotonic()
        with pytest.raises(ProviderError):
            region.remember("user:1", 60, lambda: "loaded")
        assert time.monotonic() - started < TIMEOUT + 0.25
        proxy.restore()
        assert region.put("user:1", "back") is True
        assert region.get("user:1") == "back"


def test_call_timeout_is_a_documented_duration_with_a_default() -> None:
    assert CacheConfig().cache.call_timeout is None  # default: the provider's operation timeout + 0.1 s
    cfg = parse_config('[cache]\ncall_timeout = "250ms"\n', environ={})
    assert cfg.cache.call_timeout == 0.25
    with parse_config('[providers.r]\ntype = "redis"\nurl = "redis://127.0.0.1:1/0"\nsocket_timeout = 0.3\n'
                      '[regions.default]\nprovider = "r"\n', environ={}).compile() as runtime:
        assert runtime.region().l2.budget == pytest.approx(0.4)
    with cfg.compile() as runtime:
        assert runtime.region().l2.budget == 0.25 or runtime.region().l2.remote is False


def _memcached_config(server: Any, **cache: Any) -> CacheConfig:
    return CacheConfig(
        cache={"prefix": "deadline", **cache},
        providers={"store": {"type": "memcached", "servers": [server.address], "connect_timeout": TIMEOUT,
                             "timeout": TIMEOUT}},
        regions={"default": {"provider": "store", "ttl": 60}},
    )


def test_an_increment_waits_for_a_held_counter_lock_no_longer_than_its_deadline(memcached_server: Any) -> None:
    # a memcached counter is stamped with the region's generation: a read-modify-write under the store's
    # counter lock. A holder that died (or whose release was skipped past its own deadline) leaves the lock
    # for COUNTER_LOCK_SECONDS (5 s); the store answers every poll at once, so only the pauses add up
    need_module("pymemcache")
    with _memcached_config(memcached_server).compile() as runtime:
        region = runtime.region()
        assert region.increment("n") == 1
        tier = region.l2
        assert tier.driver.add(tier.counter_lock_key("n"), 1, 5.0)  # the lost holder's lock
        value, took = timed(lambda: region.increment("n"))
        assert value is None  # not incremented: counted as an error
        assert took < TIMEOUT + 0.1 + 0.3, f"increment took {took:.2f}s (the deadline is {TIMEOUT + 0.1:g}s)"
        tier.driver.forget(tier.counter_lock_key("n"))
        assert region.increment("n") == 2


def test_threads_queued_behind_slow_increments_wait_no_longer_than_their_deadline(memcached_server: Any) -> None:
    # eight threads increment through one region while every store call takes ~0.1 s: the region's process
    # lock serialises them, and before, each waited for all the increments queued before it (up to 2.4 s)
    need_module("pymemcache")
    with FaultProxy(memcached_server.host, memcached_server.port) as proxy, \
            _memcached_config(proxy).compile() as runtime:
        region = runtime.region()
        assert region.increment("warm-up") == 1
        proxy.set_latency(0.025)  # a round trip ~0.05 s: an increment (4 round trips) fits in 0.3 s alone
        worst = [0.0] * 8

        def count(i: int) -> None:
            for _ in range(3):
                _, took = timed(lambda: region.increment(f"n{i}"))
                worst[i] = max(worst[i], took)

        threads = [threading.Thread(target=count, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        proxy.restore()
    # the deadline (0.3 s) plus one store call in flight (0.2 s) plus a margin for a loaded 2-CPU machine
    assert max(worst) < TIMEOUT + 0.1 + TIMEOUT + 0.3, worst


def test_a_memcached_call_waits_for_an_answer_no_longer_than_what_is_left_of_its_deadline(
    memcached_server: Any,
) -> None:
    # timeout = 1 s, but the call's budget is 0.1 s: the store call's socket (and connect) timeouts are
    # shortened to the budget left (memcached_client.BoundedClient), so a black-holed get ends in ~0.1 s
    need_module("pymemcache")
    with FaultProxy(memcached_server.host, memcached_server.port) as proxy:
        cfg = CacheConfig(
            cache={"prefix": "deadline", "call_timeout": 0.1},
            providers={"store": {"type": "memcached", "servers": [proxy.address], "connect_timeout": 1.0,
                                 "timeout": 1.0}},
            regions={"default": {"provider": "store", "ttl": 60}},
        )
        with cfg.compile() as runtime:
            region = runtime.region()
            assert region.put("k", "v")
            proxy.blackhole()
            proxy.cut()
            for name, call in {"get": lambda: region.get("k", "d") == "d",
                               "put": lambda: region.put("k", "w") is False}.items():
                ok, took = timed(call)
                assert ok, name
                assert took < 0.1 + 0.4, f"{name} took {took:.2f}s: the 1 s socket timeout was not shortened"
            proxy.restore()
            proxy.set_latency(0.1)  # a round trip of ~0.2 s: over the call's budget, under the socket timeout
            driver = region.l2.driver
            # outside a region call the driver waits its full timeout again: the shortening was undone
            assert driver.put("deadline:direct", "x", 60) is True
            assert driver.get("deadline:direct") == "x"


def test_a_memcached_connect_that_never_completes_waits_no_longer_than_the_call_budget() -> None:
    # connect_timeout (3 s) over timeout (0.5 s) and the default budget (timeout + 0.1 s): the budget left
    # at the first command is over `timeout` but under `connect_timeout`, and the connect must still be
    # shortened to it. A listener whose accept queue is full drops further SYNs: a connect that hangs.
    import socket

    need_module("pymemcache")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    queued = []
    for _ in range(8):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        queued.append(s)
    cfg = CacheConfig(cache={"prefix": "deadline"},
                      providers={"store": {"type": "memcached", "servers": [f"127.0.0.1:{port}"],
                                           "connect_timeout": 3.0, "timeout": 0.5}},
                      regions={"default": {"provider": "store", "ttl": 60}})
    try:
        with cfg.compile() as runtime:
            region = runtime.region()
            assert region.l2.budget == pytest.approx(0.6)
            for name, call in {"get": lambda: region.get("k", "d") == "d", "put": lambda: region.put("k", 1) is False,
                               "get_many": lambda: region.get_many(["k"], "d") == {"k": "d"}}.items():
                ok, took = timed(call)
                assert ok, name
                assert took < 0.6 + 0.9, f"{name} took {took:.2f}s: the 3 s connect_timeout was not shortened"
    finally:
        for s in (*queued, listener):
            s.close()


def test_a_redis_call_waits_for_an_answer_no_longer_than_what_is_left_of_its_deadline(proxy: FaultProxy) -> None:
    # the same on Redis: a standalone client's reads use redis-py's per-read timeout, set to the budget left
    cfg = CacheConfig(
        cache={"prefix": "deadline", "call_timeout": 0.1},
        providers={"store": {"type": "redis", "url": f"redis://{proxy.address}/0", "connect_timeout": 1.0,
                             "socket_timeout": 1.0, "retries": 0}},
        regions={"default": {"provider": "store", "ttl": 60}},
    )
    with cfg.compile() as runtime:
        region = runtime.region()
        assert region.put("k", "v")
        proxy.blackhole()
        proxy.cut()
        for name, call in {"get": lambda: region.get("k", "d") == "d",
                           "put": lambda: region.put("k", "w") is False,
                           # a server-side INCRBY, whose failure the region handles itself
                           "increment": lambda: region.increment("n") is None}.items():
            ok, took = timed(call)
            assert ok, name
            assert took < 0.1 + 0.4, f"{name} took {took:.2f}s: the 1 s socket timeout was not shortened"
        proxy.restore()
        proxy.cut()
        proxy.set_latency(0.1)  # a round trip of ~0.2 s: over the call's budget, under the socket timeout
        driver = region.l2.driver
        # outside a region call the driver waits its full timeout again
        assert driver.put("deadline:direct", ("x", float("inf"), None), 60) is True
        assert driver.get("deadline:direct") == ("x", float("inf"), None)
