"""Input that must not grow memory or reach across namespaces: region names, tags, generations."""

from __future__ import annotations

from typing import Any

import pytest

from cachekit import CacheConfig, CacheError
from cachekit.config import parse_config
from cachekit.errors import ConfigError


# -- names that cannot be namespaced ------------------------------------------------------------
@pytest.mark.parametrize(("name", "why"), [("a:b", "':'"), ("__x", "'__'"), ("", "non-empty")])
def test_declared_region_names_that_cannot_be_namespaced_are_rejected_at_validation(name: str, why: str) -> None:
    text = f'[cache]\nprefix = "app"\n\n[regions."{name}"]\nttl = 60\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, file="app.toml", environ={})
    item = info.value.errors[0]
    assert item.path.startswith("regions.") and item.line == 4 and why in item.message


def test_a_default_region_that_cannot_be_namespaced_is_rejected_at_validation() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config('[cache]\ndefault_region = "a:b"\n', file="app.toml", environ={})
    assert [(e.path, e.line) for e in info.value.errors] == [("cache.default_region", 2)]


@pytest.mark.parametrize("name", ["a:b", "__gen__", "", 3])
def test_adhoc_region_names_that_cannot_be_namespaced_raise_a_clear_error(name: Any) -> None:
    rt = CacheConfig().compile()
    try:
        with pytest.raises(CacheError, match="invalid region name"):
            rt.region(name)
    finally:
        rt.close()


def test_a_prefix_with_glob_characters_never_lists_or_flushes_another_prefix(redis_server: Any) -> None:
    def runtime(prefix: str) -> Any:
        return CacheConfig(cache={"prefix": prefix},
                           providers={"redis": {"type": "redis", "url": redis_server.url}},
                           regions={"default": {"provider": "redis"}}).compile()

    mine, other = runtime("a?"), runtime("ab")
    try:
        other.region().put("k", "theirs")
        mine.region().put("k", "mine")
        assert mine.region().keys() == ["k"]
        assert mine.region().flush()
        assert other.region().get("k") == "theirs"
        assert redis_server.client().exists("ab:default:k")
    finally:
        mine.close()
        other.close()


# -- in-process generations ---------------------------------------------------------------------
def test_in_process_tag_generations_are_bounded() -> None:
    from cachekit.runtime.generations import MAX_LOCAL_GENERATIONS

    rt = CacheConfig(regions={"default": {"provider": "memory", "max_size": 100}}).compile()
    try:
        r = rt.region()
        for i in range(MAX_LOCAL_GENERATIONS + 5_000):
            r.tags([f"t{i}"]).put(f"k{i % 50}", i)
        assert len(r.l2.generations) <= MAX_LOCAL_GENERATIONS
        r.tags(["a"]).put("x", 1)
        r.flush()
        assert len(r.l2.generations) == 0
    finally:
        rt.close()


def test_evicting_a_flushed_tags_generation_never_revives_its_entries() -> None:
    from cachekit.runtime.generations import MAX_LOCAL_GENERATIONS

    rt = CacheConfig(regions={"default": {"provider": "memory", "max_size": 100}}).compile()
    try:
        r = rt.region()
        r.tags(["T"]).put("old", "before the flush")
        r.tags(["T"]).flush()
        assert r.get("old") is None
        for i in range(MAX_LOCAL_GENERATIONS + 10):  # T's generation is pushed out of the map
            r.tags([f"other{i}"]).flush()
        assert r.l2.generations.get("tag:T") is None
        assert r.get("old") is None
        assert r.tags(["T"]).get("old") is None
        r.tags(["T"]).put("new", 1)  # T starts again at a value no old entry carries
        assert r.get("new") == 1 and r.get("old") is None
    finally:
        rt.close()


# -- generation keys in shared stores -----------------------------------------------------------
def _redis_runtime(url: str, prefix: str = "app", **region: Any) -> Any:
    return CacheConfig(cache={"prefix": prefix},
                       providers={"redis": {"type": "redis", "url": url}},
                       regions={"default": {"provider": "redis", "ttl": 60, **region}}).compile()


def test_redis_generation_keys_expire_after_the_entries_that_carry_them(redis_server: Any) -> None:
    rt = _redis_runtime(redis_server.url)
    server = redis_server.client()
    try:
        r = rt.region()
        for i in range(50):
            r.tags([f"tag{i}"]).put(f"k{i}", i)
        gen_keys = server.keys("app:__gen__:default:*")
        assert len(gen_keys) == 50
        ttls = {server.ttl(k) for k in gen_keys}
        assert all(60 <= t <= 120 for t in ttls), ttls  # at least the entries' TTL, never without expiry
        r.tags(["tag0"]).put("long", 1, ttl=5000)  # a longer entry refreshes its tag's generation key
        assert server.ttl("app:__gen__:default:tag:tag0") >= 5000
        r.tags(["tag1"]).put("short", 1, ttl=1)  # a shorter one never shortens it
        assert server.ttl("app:__gen__:default:tag:tag1") >= 60
        r.tags(["forever"]).forever("f", 1)  # an entry without expiry: its generation has none either
        assert server.ttl("app:__gen__:default:tag:forever") == -1
        r.tags(["never-written"]).flush()  # flushing an unknown tag leaves no key behind
        assert not server.exists("app:__gen__:default:tag:never-written")
        assert r.tags(["tag2"]).get("k2") == 2
    finally:
        rt.close()


def test_redis_region_flush_removes_its_generation_keys_and_nothing_foreign(redis_server: Any) -> None:
    rt = _redis_runtime(redis_server.url)
    server = redis_server.client()
    try:
        server.set("foreign", "stays")
        server.set("app:__gen__:other:tag:t", 7)  # another region's generation
        r = rt.region()
        for i in range(20):
            r.tags([f"tag{i}", "all"]).put(f"k{i}", i)
        r.tags(["all"]).flush()
        assert server.keys("app:__gen__:default:*")
        assert r.flush()
        assert server.keys("app:__gen__:default:*") == []
        assert server.keys("app:default:*") == []
        assert server.get("foreign") == b"stays" and server.get("app:__gen__:other:tag:t") == b"7"
        r.tags(["all"]).put("again", 1)  # tags work again after the flush
        assert r.tags(["all"]).get("again") == 1
        r.tags(["all"]).flush()
        assert r.get("again") is None
    finally:
        rt.close()


def test_file_generation_keys_expire_once_no_entry_can_carry_them(tmp_path: Any) -> None:
    from cachekit import MISSING, FakeClock

    clock = FakeClock()
    rt = CacheConfig(providers={"files": {"type": "file", "path": str(tmp_path)}},
                     regions={"default": {"provider": "files", "ttl": 60}}).compile(clock=clock)
    try:
        r = rt.region()
        driver = r.l2.driver
        r.tags(["t"]).put("long", 1, ttl=10_000)
        r.tags(["u"]).put("short", 2, ttl=5)
        clock.advance(5_000)
        assert r.get("long") == 1  # its write kept its tag's generation alive as long as itself
        assert driver.get("cachekit:__gen__:default:tag:t") is not MISSING
        assert driver.get("cachekit:__gen__:default:tag:u") is MISSING  # expired: nothing carries it
        r.tags(["u"]).put("again", 3)  # the tag starts afresh
        assert r.get("again") == 3
        r.tags(["u"]).flush()
        assert r.get("again") is None and r.get("long") == 1
    finally:
        r.flush()
        rt.close()


def test_memcached_generation_keys_get_an_expiry(memcached_server: Any) -> None:
    from servers import ask

    rt = CacheConfig(cache={"prefix": "mc"},
                     providers={"mc": {"type": "memcached", "servers": [memcached_server.address]}},
                     regions={"default": {"provider": "mc", "ttl": 60}}).compile()
    try:
        r = rt.region()
        r.tags(["t"]).put("k", 1)
        for key in ("mc:__gen__:default:tag:t", "mc:__gen__:default:region:"):
            answer = ask(memcached_server.port, f"mg {key} t\r\n".encode())
            assert answer.startswith(b"HD t"), answer
            assert 60 <= int(answer.split()[1][1:]) <= 120, answer
        assert r.get("k") == 1
    finally:
        rt.close()


@pytest.mark.parametrize("native", [True, False], ids=["pexpire-gt", "script-before-redis-7"])
def test_redis_extend_ttl_extends_and_never_shortens(redis_server: Any, native: bool) -> None:
    from cachekit.providers.redis import RedisDriver

    driver = RedisDriver(url=redis_server.url, namespace="x:")
    driver._pexpire_gt = native
    server = redis_server.client()
    try:
        driver.put("x:short", 1, 10)
        driver.put("x:long", 1, 1000)
        driver.put("x:forever", 1, None)
        assert driver.extend_ttl(["x:short", "x:long", "x:forever", "x:absent"], 100)
        assert 90 < server.ttl("x:short") <= 100
        assert 990 < server.ttl("x:long") <= 1000
        assert server.ttl("x:forever") == -1 and not server.exists("x:absent")
        assert driver.extend_ttl(["x:short"], None)
        assert server.ttl("x:short") == -1
    finally:
        driver.flush()
        driver.close()


# -- ad-hoc regions -----------------------------------------------------------------------------
def _adhoc_runtime(limit: int, **cache: Any) -> Any:
    return CacheConfig(cache={"max_adhoc_regions": limit, **cache},
                       regions={"users": {"ttl": 60}}).compile()


def test_fifty_thousand_adhoc_region_names_keep_at_most_the_bound_live() -> None:
    import gc

    rt = _adhoc_runtime(100)
    try:
        users = rt.region("users")
        default = rt.region()
        for i in range(50_000):
            r = rt.region(f"r{i}")
            r.put("k", i)
            r.get("k")
            if i % 100 == 0:
                r.remember("loaded", 60, lambda: 1)
        del r
        gc.collect()
        live = rt.regions()
        assert len(live) <= 100 + 2
        assert "users" in live and rt.region("users") is users and rt.region() is default  # never dropped
        assert len(rt._evicted) == 0 and not rt.singleflight._calls
        rows = rt.stats.rows()
        assert len(rows) <= 100 + 3  # the live regions and one row for the dropped ones
        totals = rt.stats.totals()
        assert totals["sets"] == 50_500 and totals["hits"] == 50_000  # nothing lost from the totals
        assert any(row["region"] == "(evicted ad-hoc regions)" for row in rows)
    finally:
        rt.close()


def test_a_recently_used_adhoc_region_is_kept_and_the_least_recent_dropped() -> None:
    rt = _adhoc_runtime(3)
    try:
        rt.region()
        rt.region("a").put("k", "a")
        for name in ["b", "a", "c", "a", "d"]:
            rt.region(name)
        assert set(rt.regions()) == {"users", "default", "a", "c", "d"}  # "b" was the least recent
    finally:
        rt.close()


def test_a_dropped_adhoc_region_still_held_stays_one_region_and_is_invalidated() -> None:
    rt = _adhoc_runtime(2)
    try:
        held = rt.region("held")  # as a decorator keeps its region
        held.tags(["t"]).put("k", 1)
        held.put("plain", 2)
        for i in range(10):
            rt.region(f"other{i}")
        assert "held" not in rt.regions()
        rt.invalidate(tags=["t"])  # reaches the dropped region too
        assert held.get("k") is None
        assert rt.region("held") is held  # taken back, not rebuilt next to it
        assert rt.region("held").get("plain") == 2
        rt.invalidate(region="held")
        assert held.get("plain") is None
    finally:
        rt.close()


def test_max_adhoc_regions_is_validated() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("[cache]\nmax_adhoc_regions = 0\n", file="app.toml", environ={})
    assert info.value.errors[0].path == "cache.max_adhoc_regions" and info.value.errors[0].line == 2


def test_async_tagged_writes_give_generation_keys_an_expiry_too(redis_server: Any) -> None:
    import asyncio

    rt = _redis_runtime(redis_server.url)
    try:
        asyncio.run(rt.region().tags(["t"]).aput("k", 1))
        assert 60 <= redis_server.client().ttl("app:__gen__:default:tag:t") <= 120
    finally:
        rt.close()


def test_redis_match_pattern_keeps_an_escaped_namespace_literal() -> None:
    from cachekit.providers.redis_client import server_pattern as _server_pattern
    from cachekit.runtime.policy import escape_glob

    assert _server_pattern(escape_glob("app:a*?[x]\\:") + "k?") == "app:a\\*\\?\\[x]\\\\:k?"
    assert _server_pattern("app:r:[ab]*") == "app:r:*"  # a real class: filtered on the client
