"""Issue 14 item 3: the direct path of a Redis region (no L1, no stamps to write, no trace, no event
listeners): ``get``, ``put`` and ``get_many`` make their one store call without the plan machinery or a
deadline context of their own. What needs the store again (an entry written with tags, an unreadable
payload in a batch) runs on under one deadline charged with the first store call's time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from faultproxy import FaultProxy
from servers import need_module

from cachekit import CacheConfig, ProviderError, Runtime


def _config(url: str, **region: Any) -> CacheConfig:
    return CacheConfig(cache={"prefix": "direct"},
                       providers={"store": {"type": "redis", "url": url, "socket_timeout": 0.5}},
                       regions={"default": {"provider": "store", "ttl": 60, **region}})


@pytest.fixture
def rt(redis_server: Any) -> Iterator[Runtime]:
    need_module("redis")
    with _config(redis_server.url).compile() as runtime:
        yield runtime


def test_a_plain_redis_region_takes_the_direct_path_and_the_others_do_not(redis_server: Any) -> None:
    need_module("redis")
    with _config(redis_server.url).compile() as runtime:
        region = runtime.region()
        assert region._direct
        with runtime.trace():
            assert not region._direct  # a trace sees every access
        assert region._direct
        runtime.on("hit", lambda event: None)
        assert not runtime.region()._direct  # listeners see every read and write
    with _config(redis_server.url, l1={"provider": "memory", "ttl": 5}).compile() as runtime:
        assert not runtime.region()._direct
    with _config(redis_server.url, flush="generation").compile() as runtime:
        assert not runtime.region()._direct  # every entry carries the region's generation


def test_get_put_get_many_count_and_time_as_the_full_path_does(rt: Runtime) -> None:
    region = rt.region()
    assert region.put("a", {"x": 1}) is True
    assert region.put("n", 41) is True  # a raw int: the server increments it
    assert region.increment("n") == 42
    assert region.put("none", None) is True
    assert region.get("a") == {"x": 1} and region.get("none", "d") is None and region.get("b", "d") == "d"
    assert region.get_many(["a", "none", "b"], "d") == {"a": {"x": 1}, "none": None, "b": "d"}
    stats = region.stats
    assert (stats.hits, stats.misses, stats.sets, stats.errors) == (4, 2, 4, 0)  # the increment is a write
    assert stats.latency["get"].count == 3 and stats.latency["put"].count == 3


def test_a_tagged_entry_read_by_get_and_get_many_has_its_generation_checked(rt: Runtime) -> None:
    region = rt.region()
    region.tags("t").put("k", "v")
    region.put("plain", "p")
    assert region.get("k") == "v"
    assert region.get_many(["k", "plain"]) == {"k": "v", "plain": "p"}
    region.tags("t").flush()
    assert region.get("k", "gone") == "gone"
    assert region.get_many(["k", "plain"], "gone") == {"k": "gone", "plain": "p"}


def test_an_unreadable_payload_in_a_batch_is_one_miss_and_the_others_are_served(rt: Runtime, redis_server: Any) -> None:
    region = rt.region()
    region.put_many({"a": 1.5, "b": "two"})
    redis_server.client().set("direct:default:bad", b"\x00garbage")
    assert region.get_many(["a", "bad", "b"], "d") == {"a": 1.5, "bad": "d", "b": "two"}
    assert region.stats.errors == 2  # the batch, then the bad key read alone
    assert (region.stats.hits, region.stats.misses) == (2, 1)


def test_a_batch_of_fresh_entries_and_a_mixed_batch_answer_alike(rt: Runtime) -> None:
    """get_many settles the usual batch (every key a fresh entry without stamps) in C loops: the same
    answers and counts as key by key, duplicates included; anything else (a miss, an expired entry, a
    raw int, a stamped entry) goes through the loop."""
    region = rt.region()
    values = {f"k{i}": {"i": i, "tags": ["a"], "s": "x"} for i in range(20)}
    region.put_many(values)
    keys = [*values, "k3"]
    assert region.get_many(keys) == values
    assert (region.stats.hits, region.stats.misses) == (21, 0)
    clock = [time.time()]
    region._now = region.l2.now = lambda: clock[0]  # the entries are read later than they were written
    region.put("short", "s", ttl=5)
    region.put("n", 7)
    region.tags("t").put("tagged", "t")
    clock[0] += 10
    assert region.get_many(["k1", "short", "n", "tagged", "absent"], "d") == \
        {"k1": values["k1"], "short": "d", "n": 7, "tagged": "t", "absent": "d"}
    assert (region.stats.hits, region.stats.misses) == (24, 2)
    clock[0] += 1000  # past every entry's expiry (the store keeps them: its clock did not move)
    assert region.get_many(list(values), "d") == dict.fromkeys(values, "d")


@pytest.fixture
def proxy(redis_server: Any) -> Iterator[FaultProxy]:
    need_module("redis")
    with FaultProxy(redis_server.host, redis_server.port) as p:
        yield p


def test_the_generation_read_after_a_slow_first_call_is_skipped_past_the_budget(proxy: FaultProxy) -> None:
    config = _config(f"redis://{proxy.address}/0")
    config.cache.call_timeout = 0.05
    with config.compile() as runtime:
        region = runtime.region()
        assert region._direct
        region.tags("t").put("k", "v")
        assert region.get("k") == "v" and region.get_many(["k"]) == {"k": "v"}
        proxy.set_latency(0.03)  # each round trip ~0.06 s: the first answers, the call's budget is spent
        started = time.monotonic()
        assert region.get("k", "skipped") == "skipped"
        assert region.get_many(["k"], "skipped") == {"k": "skipped"}
        assert time.monotonic() - started < 0.5
        assert region.stats.errors == 2  # one skipped generation read per call
        proxy.restore()
        assert region.get("k") == "v" and region.l2.down is False


@pytest.mark.parametrize("on_error", ["ignore", "raise"])
def test_a_refused_store_fails_open_or_raises_typed_errors_counted_and_timed(on_error: str) -> None:
    need_module("redis")
    config = CacheConfig(cache={"prefix": "direct"}, regions={"default": {"provider": "store", "ttl": 60}},
                         providers={"store": {"type": "redis", "url": "redis://127.0.0.1:1/0", "retries": 0,
                                              "on_error": on_error}})
    with config.compile() as runtime:
        region = runtime.region()
        assert region._direct
        calls = {"get": lambda: region.get("k", "d") == "d", "put": lambda: region.put("k", "v") is False,
                 "get_many": lambda: region.get_many(["a", "b"], "d") == {"a": "d", "b": "d"}}
        for name, call in calls.items():
            if on_error == "raise":
                with pytest.raises(ProviderError, match="redis"):
                    call()
            else:
                assert call(), name
        stats = region.stats
        assert stats.errors == 3 and stats.sets == 0 and stats.hits == 0
        assert stats.latency["get"].count == 1 and stats.latency["put"].count == 1  # timed, failed or not


def test_the_first_direct_call_after_an_outage_replays_its_invalidations(proxy: FaultProxy) -> None:
    """read and write open their deadline inline (runtime/direct.py): a failure there marks the store
    down, and the call that finds it back replays the invalidations it missed before answering."""
    config = _config(f"redis://{proxy.address}/0")
    config.providers["store"].retries = 0
    config.cache.call_timeout = 0.3
    with config.compile() as runtime:
        region = runtime.region()
        assert region._direct and region.l2.breaker is None
        region.tags("t").put("k", "v")
        proxy.blackhole()
        started = time.monotonic()
        assert region.put("other", 1) is False  # write: fails open within its deadline
        region.tags("t").flush()  # its advance fails: pending until the store is back
        assert time.monotonic() - started < 3
        assert region.l2.down and region.l2.pending
        proxy.restore()
        proxy.cut()  # the black-holed connections are dropped; the next call reconnects
        assert region.get("k", "gone") == "gone"  # recovered inline: the tag's advance replayed first
        assert not region.l2.down and not region.l2.pending
        assert region.put("k", "w") is True and region.get("k") == "w"


def test_inside_a_region_call_in_progress_the_direct_path_joins_its_deadline(rt: Runtime) -> None:
    from cachekit.providers.base import CALL
    from cachekit.runtime.deadline import Call

    region = rt.region()
    within = Call()
    token = CALL.set(within)
    try:
        assert region.put("k", "v") is True and region.get("k") == "v"
        assert within.spent > 0  # both store calls were charged to the call in progress
    finally:
        CALL.reset(token)
