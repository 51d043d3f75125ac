"""Regions on memcached (flushed by generation) whose writes are stamped with the generation this process
last saw and checked in the same round trip (``plans.write_one``, ``SharedTier.put_stamped_plan``), and
whose reads take the generation with the entry (``plans.read_one``, ``read_many``), attacked: another
runtime flushing between this one's writes and reads, a generation evicted or the server restarted,
tags and declared pattern rules, the async API, a deadline that ends between the ``set``'s answer and the
``get``'s. Never a value written before a flush returned is served after it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from faultproxy import FaultProxy
from servers import need_module

from cachekit import CacheConfig, Runtime

need_module("pymemcache")


def runtime(servers: list[str], *, rules: bool = False, **cache: Any) -> Runtime:
    extra: dict[str, Any] = {}
    if rules:
        extra["rules"] = [{"name": "frag", "strategy": "pattern_based", "pattern": "frag:*", "regions": ["default"]}]
    return CacheConfig(cache={"prefix": "sf", **cache}, providers={"mc": {"type": "memcached", "servers": servers}},
                       regions={"default": {"provider": "mc", "ttl": 60}}, **extra).compile()


@pytest.fixture(params=["one", "pool"])
def servers(request: pytest.FixtureRequest) -> list[str]:
    if request.param == "one":
        return [request.getfixturevalue("memcached_server").address]
    return list(request.getfixturevalue("memcached_pool").servers)


@pytest.fixture(params=[False, True], ids=["plain", "rules"])
def two(servers: list[str], request: pytest.FixtureRequest) -> Iterator[tuple[Runtime, Runtime]]:
    a, b = runtime(servers, rules=request.param), runtime(servers, rules=request.param)  # b: another process
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def read_all(region: Any, keys: list[str]) -> list[dict[str, Any]]:
    """Every way a region reads ``keys``: get, get_many, aget, aget_many."""
    async def aread() -> list[dict[str, Any]]:
        one = {k: await region.aget(k, "-") for k in keys}
        return [one, await region.aget_many(keys, "-")]

    return [{k: region.get(k, "-") for k in keys}, region.get_many(keys, "-"), *asyncio.run(aread())]


def test_a_flush_by_another_runtime_hides_every_value_written_before_it(two: tuple[Runtime, Runtime]) -> None:
    a, b = two
    ra, rb = a.region(), b.region()
    keys = ["k", "frag:1", "t"]
    for round_ in range(4):
        assert ra.put("k", ("k", round_)) and ra.put("frag:1", ("f", round_))
        assert ra.tags("tag").put("t", ("t", round_))
        assert read_all(rb, keys) == [{"k": ("k", round_), "frag:1": ("f", round_), "t": ("t", round_)}] * 4
        if round_ == 1 and rb.policy.pattern_rules:
            b.invalidate(pattern="frag:*")  # the rule's generation moves too
        if round_ == 2:
            rb.tags("tag").flush()
        rb.clear()
        for r in (ra, rb):
            assert read_all(r, keys) == [dict.fromkeys(keys, "-")] * 4
        # a's known generation is old now: its next writes are stamped with it, seen moved, written again
        assert ra.put("k", ("k2", round_)) and asyncio.run(ra.aput("frag:1", ("f2", round_)))
        assert read_all(rb, ["k", "frag:1"]) == [{"k": ("k2", round_), "frag:1": ("f2", round_)}] * 4


def test_a_rule_or_tag_flush_hides_only_what_it_covers(servers: list[str]) -> None:
    with runtime(servers, rules=True) as a, runtime(servers, rules=True) as b:
        _rule_or_tag_flush(a, b)


def _rule_or_tag_flush(a: Runtime, b: Runtime) -> None:
    ra, rb = a.region(), b.region()
    assert ra.put("frag:1", 1) and ra.put("other", 2) and ra.tags("x").put("tx", 3)
    assert ra.put("frag:1", 1)  # stamped in one round trip now
    b.invalidate(pattern="frag:*")
    assert read_all(ra, ["frag:1", "other", "tx"]) == [{"frag:1": "-", "other": 2, "tx": 3}] * 4
    rb.tags("x").flush()
    assert read_all(ra, ["frag:1", "other", "tx"]) == [{"frag:1": "-", "other": 2, "tx": "-"}] * 4
    assert ra.put("frag:1", 4) and ra.tags("x").put("tx", 5)
    assert read_all(rb, ["frag:1", "other", "tx"]) == [{"frag:1": 4, "other": 2, "tx": 5}] * 4


def _evict(region: Any, gen_key: str) -> None:
    assert region.l2.driver.forget(gen_key)  # what memcached's LRU does to a cold counter


def test_an_evicted_generation_never_lets_an_old_entry_be_served(two: tuple[Runtime, Runtime]) -> None:
    a, b = two
    ra, rb = a.region(), b.region()
    gen_key = ra._region_gen
    assert ra.put("k", "v1") and ra.put("k", "v2") and rb.put("j", "j1") and rb.put("j", "j2")
    _evict(ra, gen_key)
    for r in (ra, rb):  # the entries stamped with the evicted value are misses, whoever reads
        assert read_all(r, ["k", "j"]) == [{"k": "-", "j": "-"}] * 4
    # both runtimes still know the evicted value: their writes are seen moved and made again, with a new one
    assert ra.put("k", "v3") and rb.put("j", "j3")
    assert read_all(ra, ["k", "j"]) == read_all(rb, ["k", "j"]) == [{"k": "v3", "j": "j3"}] * 4
    # a flush while the generation is evicted (an increment of an absent counter) hides them too
    _evict(ra, gen_key)
    rb.clear()
    assert read_all(ra, ["k", "j"]) == [{"k": "-", "j": "-"}] * 4
    assert ra.put("k", "v4") and read_all(rb, ["k"]) == [{"k": "v4"}] * 4


def test_a_restarted_server_never_serves_an_entry_as_current_after_a_flush(memcached_server: Any) -> None:
    a, b = runtime([memcached_server.address]), runtime([memcached_server.address])
    try:
        ra, rb = a.region(), b.region()
        for round_ in range(3):
            assert ra.put("k", ("a", round_)) and rb.put("j", ("b", round_))
            assert ra.put("k", ("a", round_)) and rb.put("j", ("b", round_))  # one round trip each now
            memcached_server.stop()
            memcached_server.start()
            for r in (ra, rb):
                assert read_all(r, ["k", "j"]) == [{"k": "-", "j": "-"}] * 4
            # both still hold the generation from before the restart: seen moved, written with a new one
            puts = [ra.put("k", ("a2", round_)), rb.put("j", ("b2", round_))]
            assert puts in ([True, True], [False, True], [True, False])  # a stale pooled connection: one fails
            ra.put("k", ("a2", round_))
            rb.put("j", ("b2", round_))
            assert read_all(ra, ["k", "j"]) == [{"k": ("a2", round_), "j": ("b2", round_)}] * 4
            rb.clear()
            assert read_all(ra, ["k", "j"]) == [{"k": "-", "j": "-"}] * 4
    finally:
        a.close()
        b.close()


def test_concurrent_writers_never_leave_a_value_from_before_a_flush(memcached_server: Any) -> None:
    # writers in two runtimes write increasing numbers; after each flush returns, no read may see a
    # number whose write had finished before the flush began
    a, b, c = (runtime([memcached_server.address]) for _ in range(3))
    done = {"a": -1, "b": -1}
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(name: str, rt: Runtime) -> None:
        r = rt.region()
        i = 0
        try:
            while not stop.is_set():
                i += 1
                if r.put("k", (name, i)):
                    done[name] = i
                time.sleep(0.001)  # a read right after a flush often comes before the next write
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n, rt)) for n, rt in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    try:
        rc = c.region()
        for _ in range(60):
            before = dict(done)
            rc.clear()
            for got in (rc.get("k"), rc.get_many(["k"])["k"]):
                if got is not None:
                    name, i = got
                    assert i > before[name], (got, before)
    finally:
        stop.set()
        for t in threads:
            t.join()
        for rt in (a, b, c):
            rt.close()
    assert not errors


def test_a_deadline_ending_between_the_sets_answer_and_the_gets_leaves_nothing_behind(memcached_server: Any) -> None:
    # memcached answers the fused set + get in one write; the proxy lets the set's answer through at once
    # and holds the get's past the call's budget: the put fails (counted), its connection is dropped, and
    # the late answer is never read as another command's
    with FaultProxy(memcached_server.host, memcached_server.port) as proxy:
        cfg = CacheConfig(cache={"prefix": "sf", "call_timeout": 0.15},
                          providers={"mc": {"type": "memcached", "servers": [proxy.address], "timeout": 1.0}},
                          regions={"default": {"provider": "mc", "ttl": 60}})
        with cfg.compile() as rt, runtime([memcached_server.address]) as other:
            r, ro = rt.region(), other.region()
            assert r.put("k", "v") and r.put("k", "w") and r.put("g", "x")
            proxy.split_answers(rb"(?s)^set .*\r\nget ", hold=0.4)
            errors = rt.stats.rows()[0]["errors"]
            assert r.put("k", "late") is False
            assert proxy.splits == 1 and rt.stats.rows()[0]["errors"] == errors + 1
            proxy.restore()
            for i in range(5):
                assert r.get("g") == "x"
                assert r.put(f"n{i}", i) and r.get_many([f"n{i}", "g"]) == {f"n{i}": i, "g": "x"}
            assert r.get("k") == ro.get("k") == "late"  # the set landed before its answer, stamped current
            ro.clear()
            assert r.get("k") is None and r.get_many(["k", "g"]) == {"k": None, "g": None}
            asyncio.run(_split_async(r, proxy))
            assert ro.get("k2") in (None, "async")
            assert r.put("k3", 3) and ro.get("k3") == 3


async def _split_async(r: Any, proxy: FaultProxy) -> None:
    assert await r.aput("warm", 0)
    proxy.split_answers(rb"(?s)^set .*\r\nget ", hold=0.4)
    assert await r.aput("k2", "async") is False
    proxy.restore()
    assert await r.aget("warm") == 0 and await r.aget_many(["warm"]) == {"warm": 0}



def test_hashed_keys_and_tag_names_are_stamped_and_checked_the_same(two: tuple[Runtime, Runtime]) -> None:
    a, b = two
    ra, rb = a.region(), b.region()
    keys = ["é k", "a b", "k" * 300, "plain", "tab\tkey", "\x00nul"]  # stored under hashed, framed keys
    view = ra.tags("ta g", "é", "t" * 300)
    for k in keys:
        assert ra.put(k, k) and ra.put(k, k + "2")  # the second: one round trip
    assert read_all(rb, keys) == [{k: k + "2" for k in keys}] * 4
    rb.clear()
    assert read_all(ra, keys) == [dict.fromkeys(keys, "-")] * 4
    for k in keys:
        assert view.put(k, "t" + k) and view.put(k, "t2" + k)
    assert read_all(rb, keys) == [{k: "t2" + k for k in keys}] * 4
    rb.tags("é").flush()
    assert read_all(ra, keys) == [dict.fromkeys(keys, "-")] * 4
    for k in keys:
        assert view.put(k, "t3" + k)
    b.invalidate(tags=["t" * 300])
    assert read_all(ra, keys) == [dict.fromkeys(keys, "-")] * 4


def test_a_value_memcached_refuses_as_too_large_fails_the_put_and_the_key_reads_as_a_miss(
        memcached_server: Any) -> None:
    cfg = CacheConfig(cache={"prefix": "sf"},
                      providers={"mc": {"type": "memcached", "servers": [memcached_server.address],
                                        "max_value_size": 4 * 1024 * 1024}},  # over the server's 1 MiB items
                      regions={"default": {"provider": "mc", "ttl": 60}})
    with cfg.compile() as rt:
        r = rt.region()
        assert r.put("k", "old") and r.put("k", "old2") and r.put("g", 1)
        errors = rt.stats.rows()[0]["errors"]
        assert r.put("k", "x" * (1024 * 1024 + 1)) is False  # the fused set refused, its get answer behind it
        assert asyncio.run(r.aput("k", "x" * (1024 * 1024 + 1))) is False
        assert rt.stats.rows()[0]["errors"] == errors + 2
        assert not r.l2.down  # an oversize value is not an outage
        assert read_all(r, ["k", "g"]) == [{"k": "-", "g": 1}] * 4  # memcached dropped the old value
        assert r.put("k", "new") and r.get("k") == "new"


def test_writers_and_flushes_in_one_runtime_never_leave_a_value_from_before_a_flush(memcached_server: Any) -> None:
    # the flushing runtime writes too: its advance drops the generation it knew while its own writers
    # may be reading the old one
    with runtime([memcached_server.address]) as a:
        done = [-1, -1]
        stop = threading.Event()
        r = a.region()

        def writer(n: int) -> None:
            i = 0
            while not stop.is_set():
                i += 1
                if r.put("k", (n, i)):
                    done[n] = i

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        try:
            for _ in range(60):
                before = list(done)
                r.clear()
                for got in (r.get("k"), r.get_many(["k"])["k"]):
                    assert got is None or got[1] > before[got[0]], (got, before)
        finally:
            stop.set()
            for t in threads:
                t.join()
