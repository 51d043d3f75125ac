"""Cache events (issue 15 item 2): runtime.on(kind, listener), one CacheEvent per operation."""

from __future__ import annotations

from typing import Any

import pytest

from cachekit import Cache, CacheConfig, CacheEvent, Region, Runtime
from cachekit.runtime.events import EventfulRegion


@pytest.fixture
def rt() -> Runtime:
    runtime = CacheConfig(**{"cache": {"default_region": "default"},
                             "regions": {"default": {"provider": "memory", "ttl": 60}}}).compile()
    yield runtime
    runtime.close()


def test_hit_miss_write_forget_and_invalidate_reach_their_listeners(rt: Runtime) -> None:
    seen: list[CacheEvent] = []
    for kind in ("hit", "miss", "write", "forget", "invalidate"):
        rt.on(kind, seen.append)
    r = rt.region()
    assert r.get("a") is None
    r.put("a", 1, ttl=30)
    assert r.get("a") == 1
    r.forget("a")
    r.flush()
    assert [(e.kind, e.region, e.key) for e in seen] == [
        ("miss", "default", "a"), ("write", "default", "a"), ("hit", "default", "a"),
        ("forget", "default", "a"), ("invalidate", "default", None)]
    assert seen[1].ttl == 30.0
    assert seen[0].ttl is None


def test_remember_emits_a_miss_a_write_then_a_hit(rt: Runtime) -> None:
    kinds: list[str] = []
    for kind in ("hit", "miss", "write"):
        rt.on(kind, lambda e: kinds.append(e.kind))
    r = rt.region()
    assert r.remember("k", 60, lambda: 5) == 5
    assert r.remember("k", 60, lambda: 6) == 5
    assert kinds[0] == "miss" and "write" in kinds and kinds[-1] == "hit"


def test_no_listener_keeps_the_plain_region_and_its_fast_path(rt: Runtime) -> None:
    r = rt.region()
    assert type(r) is Region and r._fast
    off = rt.on("hit", lambda e: None)
    assert type(r) is EventfulRegion and not r._fast
    late = rt.region("late")  # built after the first listener: instrumented too
    assert type(late) is EventfulRegion
    off()
    assert type(r) is Region and r._fast
    assert type(late) is Region


def test_unsubscribe_stops_the_events(rt: Runtime) -> None:
    seen: list[Any] = []
    off = rt.on("write", seen.append)
    rt.region().put("a", 1)
    off()
    rt.region().put("b", 2)
    assert [e.key for e in seen] == ["a"]


def test_a_failing_listener_does_not_fail_the_operation(rt: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    def bad(event: CacheEvent) -> None:
        raise ValueError("listener bug")

    rt.on("write", bad)
    assert rt.region().put("a", 1) is True
    assert rt.region().get("a") == 1
    assert "listener" in caplog.text


def test_an_unknown_kind_is_refused(rt: Runtime) -> None:
    with pytest.raises(ValueError, match="unknown cache event"):
        rt.on("hits", print)


def test_tag_flush_and_invalidate_emit_invalidate(rt: Runtime) -> None:
    seen: list[CacheEvent] = []
    rt.on("invalidate", seen.append)
    rt.region().tags(["users"]).put("u", 1)
    rt.region().tags(["users"]).flush()
    assert [e.region for e in seen] == ["default"]


def test_the_facade_on(rt: Runtime) -> None:
    Cache.configure(rt)
    try:
        seen: list[CacheEvent] = []
        Cache.on("miss", seen.append)
        Cache.get("nothing")
        assert [(e.kind, e.key) for e in seen] == [("miss", "nothing")]
    finally:
        Cache.reset()


def test_events_on_a_shared_store(redis_server: Any) -> None:
    rt = CacheConfig(**{"cache": {"prefix": "ev"}, "providers": {"redis": {"url": redis_server.url}},
                        "regions": {"default": {"provider": "redis", "ttl": 60}}}).compile()
    try:
        seen: list[CacheEvent] = []
        for kind in ("hit", "miss", "write", "forget"):
            rt.on(kind, seen.append)
        r = rt.region()
        r.get("x")
        r.put("x", 1, ttl=10)
        r.get("x")
        r.get_many(["x", "y"])
        r.forget("x")
        assert [(e.kind, e.key) for e in seen] == [
            ("miss", "x"), ("write", "x"), ("hit", "x"), ("hit", "x"), ("miss", "y"), ("forget", "x")]
        assert seen[1].ttl == 10.0
    finally:
        rt.close()


async def test_async_operations_emit_events(rt: Runtime) -> None:
    seen: list[str] = []
    for kind in ("hit", "miss", "write", "forget"):
        rt.on(kind, lambda e: seen.append(e.kind))
    r = rt.region()
    await r.aget("a")
    await r.aput("a", 1)
    await r.aget("a")
    await r.aforget("a")
    assert seen == ["miss", "write", "hit", "forget"]


async def test_async_batched_reads_and_writes_on_a_shared_store(redis_server: Any) -> None:
    rt = CacheConfig(**{"cache": {"prefix": "eva"}, "providers": {"redis": {"url": redis_server.url}},
                        "regions": {"default": {"provider": "redis", "ttl": 60}}}).compile()
    try:
        seen: list[tuple[str, str | None, float | None]] = []
        for kind in ("hit", "miss", "write"):
            rt.on(kind, lambda e: seen.append((e.kind, e.key, e.ttl)))
        r = rt.region()
        await r.aput_many({"a": 1, "b": 2}, ttl=20)
        await r.aget_many(["a", "c"])
        assert seen == [("write", "a", 20.0), ("write", "b", 20.0), ("hit", "a", None), ("miss", "c", None)]
    finally:
        rt.close()
