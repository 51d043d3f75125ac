"""A stamped put on memcached in one round trip (``SharedTier.put_stamped_plan``): the entry is stamped
with the generations this process last saw and written together with a read of them; a generation that
moved meanwhile (a flush from another runtime) never leaves a stale entry served."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from cachekit import CacheConfig, Runtime
from cachekit.providers.base import MISSING


def runtime(servers: list[str], **region: Any) -> Runtime:
    return CacheConfig(cache={"prefix": "sp"}, providers={"mc": {"type": "memcached", "servers": servers}},
                       regions={"default": {"provider": "mc", "ttl": 60, **region}}).compile()


@pytest.fixture(params=["one", "pool"])
def servers(request: pytest.FixtureRequest) -> list[str]:
    if request.param == "one":
        return [request.getfixturevalue("memcached_server").address]
    return list(request.getfixturevalue("memcached_pool").servers)


@pytest.fixture
def two(servers: list[str]) -> Iterator[tuple[Runtime, Runtime]]:
    a, b = runtime(servers), runtime(servers)  # b: another process
    try:
        yield a, b
    finally:
        a.close()
        b.close()


class Spy:
    """Counts the driver calls of a region's store."""

    def __init__(self, driver: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        for name in ("get", "get_many", "put", "add", "extend_ttl", "put_then_get"):
            original = getattr(driver, name)

            def spied(*args: Any, _name: str = name, _original: Any = original) -> Any:
                self.calls.append(_name)
                return _original(*args)

            monkeypatch.setattr(driver, name, spied)


def test_a_put_after_a_flush_from_another_runtime_is_a_hit_with_the_new_value(two: tuple[Runtime, Runtime]) -> None:
    a, b = two
    ra, rb = a.region(), b.region()
    assert ra.put("k", "old") and ra.put("k", "older")  # the second put stamps with what the first saw
    assert ra.get("k") == "older" and rb.get("k") == "older"
    rb.clear()
    assert ra.get("k") is None
    assert ra.put("k", "new")  # stamped with the old generation first: seen moved, written again
    assert ra.get("k") == "new" and rb.get("k") == "new"
    assert ra.put("k2", "fast")  # the current generation is known again
    assert ra.get("k2") == "fast" and rb.get("k2") == "fast"


def test_a_put_is_one_driver_call_once_the_generation_is_known(memcached_server: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with runtime([memcached_server.address]) as rt:
        r = rt.region()
        assert r.put("warm", 0)  # the first put reads the generation (and creates it)
        spy = Spy(r.l2.driver, monkeypatch)
        for i in range(5):
            assert r.put(f"k{i}", i)
        assert spy.calls == ["put_then_get"] * 5
        assert [r.get(f"k{i}") for i in range(5)] == list(range(5))


def test_a_flush_between_the_write_and_the_read_rewrites_the_entry(two: tuple[Runtime, Runtime],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = two
    ra, rb = a.region(), b.region()
    assert ra.put("warm", 0)
    driver = ra.l2.driver
    written: list[Any] = []

    def racing(key: str, value: Any, ttl: Any, keys: list[str]) -> Any:
        stored = driver.put(key, value, ttl)  # the write lands...
        written.append(value)
        rb.clear()  # ...another runtime flushes the region before the generation is read back
        return stored, driver.get_many(keys)

    monkeypatch.setattr(driver, "put_then_get", racing)
    assert ra.put("k", "v")
    assert len(written) == 1  # the raced write; then the usual way (a plain put) wrote it again
    assert ra.get("k") == "v" and rb.get("k") == "v"
    # the raced entry, had it stayed, would be a miss: its stamp is the generation before the flush
    ((gen_key, stale),) = written[0][2]
    assert ra.l2.driver.get(gen_key) not in (stale, MISSING)
    assert ra.l2.alive[gen_key][0] != stale


def test_a_stale_cached_generation_is_never_served(two: tuple[Runtime, Runtime]) -> None:
    a, b = two
    ra, rb = a.region(), b.region()
    for round_ in range(5):
        assert ra.put("k", ("a", round_))
        rb.clear()  # a's cached generation is now old
        assert ra.get("k") is None and rb.get("k") is None
        assert ra.put("j", ("a", round_))  # stamped with the old value: seen moved, written again
        assert ra.get("j") == ("a", round_) and rb.get("j") == ("a", round_)
        ra.clear()  # a flush by a itself: its own cache is dropped at once
        assert ra.get("j") is None
        assert rb.put("j", ("b", round_)) and ra.get("j") == ("b", round_)


def test_tags_and_a_region_generation_both_checked(two: tuple[Runtime, Runtime]) -> None:
    a, b = two
    ra, rb = a.region(), b.region()
    view_a, view_b = ra.tags("t"), rb.tags("t")
    assert view_a.put("k", 1) and view_a.put("k", 2)
    assert rb.get("k") == 2
    view_b.flush()
    assert ra.get("k") is None
    assert view_a.put("k", 3)
    assert ra.get("k") == 3 and rb.get("k") == 3


def test_an_async_put_takes_the_same_way(two: tuple[Runtime, Runtime]) -> None:
    a, b = two
    ra, rb = a.region(), b.region()

    async def main() -> Any:
        assert await ra.aput("k", 1)
        assert await ra.aput("k", 2)
        rb.clear()
        assert await ra.aput("k", 3)
        return await ra.aget("k")

    assert asyncio.run(main()) == 3
    assert rb.get("k") == 3


def test_a_put_on_a_stopped_server_fails_and_counts(memcached_server: Any) -> None:
    with runtime([memcached_server.address]) as rt:
        r = rt.region()
        assert r.put("k", 1) and r.put("k", 2)
        memcached_server.stop()
        errors = rt.stats.rows()[0]["errors"]
        assert r.put("k", 3) is False
        assert rt.stats.rows()[0]["errors"] == errors + 1
        memcached_server.start()
        assert r.put("k", 4)
        assert r.get("k") == 4


def test_a_put_cut_short_by_its_deadline_leaves_no_answer_behind(memcached_server: Any) -> None:
    # the set's and the get's answers come back on one connection: one that timed out between them is
    # closed, so the next command never reads the previous one's leftovers
    from faultproxy import FaultProxy

    with FaultProxy(memcached_server.host, memcached_server.port) as proxy:
        cfg = CacheConfig(cache={"prefix": "sp", "call_timeout": 0.1},
                          providers={"mc": {"type": "memcached", "servers": [proxy.address], "timeout": 1.0}},
                          regions={"default": {"provider": "mc", "ttl": 60}})
        with cfg.compile() as rt:
            r = rt.region()
            assert r.put("k", "v") and r.put("k", "w")
            proxy.set_latency(0.2)  # over the call's budget: the fused put times out
            assert r.put("k", "late") is False
            proxy.restore()
            for i in range(5):
                assert r.put(f"n{i}", i)
                assert r.get(f"n{i}") == i
            assert r.get("k") in ("w", "late")  # the late write may have landed, as a set may


def test_reads_take_the_direct_path_with_the_region_generation_in_the_same_round_trip(
        two: tuple[Runtime, Runtime], monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = two
    ra, rb = a.region(), b.region()
    assert ra._direct_read and not ra._direct  # reads go direct; writes carry the region's generation
    assert ra.put("k", 1) and ra.put("j", None) and ra.tags("t").put("tagged", 2)
    spy = Spy(ra.l2.driver, monkeypatch)
    assert ra.get("k") == 1 and ra.get("j", "d") is None and ra.get("absent", "d") == "d"
    assert ra.get_many(["k", "j", "absent"], "d") == {"k": 1, "j": None, "absent": "d"}
    assert spy.calls == ["get_many"] * 4  # the entry (or entries) and the region's generation, together
    del spy.calls[:]
    assert ra.get("tagged") == 2  # its tag's generation is read after, under the same deadline
    assert spy.calls == ["get_many", "get_many"]
    stats = ra.stats
    assert (stats.hits, stats.misses) == (5, 2)
    rb.clear()
    assert ra.get("k", "d") == "d" and ra.get("tagged", "d") == "d"
    assert ra.get_many(["k", "j"], "d") == {"k": "d", "j": "d"}
    assert rb.tags("t").put("tagged", 3) and ra.get("tagged") == 3
    rb.tags("t").flush()
    assert ra.get("tagged", "d") == "d" and ra.get_many(["tagged"], "d") == {"tagged": "d"}
