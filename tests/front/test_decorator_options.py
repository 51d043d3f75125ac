"""Decorator options (issue 15 item 3): unless=, condition=, version=, key_func=, duration-string TTLs,
f.uncached(...) and f.refresh(...)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cachekit import Cache, CacheError, async_cached, cached

pytestmark = pytest.mark.usefixtures("fake")


def test_unless_keeps_none_out_of_the_cache() -> None:
    calls: list[int] = []

    @cached(ttl=60, key_prefix="u", unless=lambda r: r is None)
    def find(user_id: int) -> Any:
        calls.append(user_id)
        return None if user_id == 0 else {"id": user_id}

    assert find(0) is None and find(0) is None
    assert calls == [0, 0]  # not cached: run again
    Cache.assert_missing("u:0")
    assert find(1) == {"id": 1} and find(1) == {"id": 1}
    assert calls == [0, 0, 1]


def test_condition_caches_only_what_it_approves() -> None:
    calls: list[int] = []

    @cached(ttl=60, key_prefix="c", condition=lambda r: r > 10)
    def double(n: int) -> int:
        calls.append(n)
        return n * 2

    double(3), double(3), double(8), double(8)
    assert calls == [3, 3, 8]
    Cache.assert_has("c:8", 16)
    Cache.assert_missing("c:3")


def test_refresh_respects_unless_and_drops_the_old_entry() -> None:
    answer: dict[str, Any] = {"v": 1}

    @cached(ttl=60, key_prefix="r", unless=lambda r: r is None)
    def get(k: str) -> Any:
        return answer["v"]

    assert get("a") == 1
    answer["v"] = 2
    assert get("a") == 1  # cached
    assert get.refresh("a") == 2 and get("a") == 2  # refresh: run and store
    answer["v"] = None
    assert get.refresh("a") is None
    Cache.assert_missing("r:a")  # a result not to cache replaces no entry with it, and keeps no stale one


def test_version_changes_the_key_and_a_bump_leaves_old_entries_unread() -> None:
    calls: list[str] = []

    def make(version: int) -> Any:
        @cached(ttl=60, key_prefix="report", version=version)
        def report(day: str) -> str:
            calls.append(day)
            return f"v{version}:{day}"
        return report

    v1 = make(1)
    assert v1.key("mon") == "report:v1:mon"
    assert v1("mon") == "v1:mon"
    v2 = make(2)
    assert v2("mon") == "v2:mon"  # not the v1 entry
    assert calls == ["mon", "mon"]
    tmpl = cached(key="user:{uid}", version=3)(lambda uid: uid)
    assert tmpl.key(5) == "user:5:v3"


def test_key_func_builds_the_whole_key() -> None:
    @cached(ttl=60, key_func=lambda user, *, lang="en": f"greet:{user}:{lang}")
    def greet(user: str, *, lang: str = "en") -> str:
        return f"{lang}:{user}"

    assert greet("bob", lang="fr") == "fr:bob"
    assert greet.key("bob", lang="fr") == "greet:bob:fr"
    Cache.assert_has("greet:bob:fr", "fr:bob")
    assert cached(key_func=lambda x: f"k{x}", version=2)(lambda x: x).key(1) == "k1:v2"
    with pytest.raises(CacheError, match="key or key_func"):
        cached(key="a", key_func=lambda: "b")


def test_ttl_as_a_duration_string() -> None:
    @cached(ttl="5m", key_prefix="d")
    def f(x: int) -> int:
        return x

    assert f.ttl == 300.0
    f(1)
    value, expires = Cache.region().entry("d:1")
    assert value == 1 and 299 < expires - Cache.region().now() <= 300
    assert async_cached(ttl="1h30m")(_coro).ttl == 5400.0
    with pytest.raises(CacheError, match="not a duration"):
        cached(ttl="soon")


async def _coro(x: int) -> int:
    return x


def test_uncached_calls_the_function_without_the_cache() -> None:
    calls: list[int] = []

    @cached(ttl=60, key_prefix="n")
    def f(x: int) -> int:
        calls.append(x)
        return x + len(calls)

    assert f(1) == 2
    assert f.uncached(1) == 3  # ran again, read nothing
    assert f(1) == 2  # and stored nothing
    assert calls == [1, 1]

    class Repo:
        @cached(ttl=60, key_prefix="m")
        def find(self, x: int) -> int:
            calls.append(x)
            return x

    assert Repo().find.uncached(9) == 9 and calls[-1] == 9
    Cache.assert_missing("m:9")


def test_concurrent_callers_share_a_result_kept_out_of_the_cache() -> None:
    import threading
    import time

    calls: list[int] = []

    @cached(ttl=60, key_prefix="s", unless=lambda r: r is None)
    def slow(x: int) -> None:
        calls.append(x)
        time.sleep(0.2)
        return None

    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(slow(1))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [None] * 4
    assert len(calls) < 4  # single flight still holds


def test_async_unless_version_uncached_and_refresh() -> None:
    calls: list[int] = []

    @async_cached(ttl="10s", key_prefix="a", version="7", unless=lambda r: r < 0)
    async def score(x: int) -> int:
        calls.append(x)
        return x

    async def main() -> None:
        assert await score(-1) == -1 and await score(-1) == -1
        assert await score(2) == 2 and await score(2) == 2
        assert await score.uncached(2) == 2
        assert await score.refresh(3) == 3

    asyncio.run(main())
    assert calls == [-1, -1, 2, 2, 3]
    assert score.key(2) == "a:v7:2"
    Cache.assert_has("a:v7:2", 2)
    Cache.assert_has("a:v7:3", 3)
    Cache.assert_missing("a:v7:-1")
