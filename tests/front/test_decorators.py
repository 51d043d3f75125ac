"""Seed 003 decorators: cached, async_cached, invalidate_cache, cache_aside (imported from cachekit)."""

from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
import sys
import textwrap
import threading
from dataclasses import dataclass
from datetime import date, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from fake_db import FakeDB

from cachekit import (
    Cache,
    CacheConfig,
    CacheError,
    FakeClock,
    Runtime,
    async_cached,
    cache_aside,
    cache_key,
    cached,
    invalidate_cache,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "decorators.md"


pytestmark = pytest.mark.usefixtures("fake")  # a fresh fake runtime bound to Cache (conftest)


# -- the seed, as written -----------------------------------------------------------------------


async def test_seed_decorator_example_runs_as_written() -> None:
    db = FakeDB()

    @cached(ttl=300, key_prefix="user")
    def get_user(user_id):  # type: ignore[no-untyped-def]
        # This function's return value will be cached for 300 seconds
        return db.get_user(user_id)

    @async_cached(ttl=300, key_prefix="user")
    async def get_user_async(user_id):  # type: ignore[no-untyped-def]
        # This async function's return value will be cached for 300 seconds
        return await db.get_user_async(user_id)

    @invalidate_cache(patterns=["user:*"])
    def update_user(user_id, data):  # type: ignore[no-untyped-def]
        # This function will invalidate all cache keys matching the pattern "user:*"
        return db.update_user(user_id, data)

    assert get_user(123) == {"id": 123, "name": "Ada"}
    assert get_user(123) == {"id": 123, "name": "Ada"}
    assert await get_user_async(123) == {"id": 123, "name": "Ada"}  # same key "user:123": a hit
    assert db.calls == [("get_user", 123)]
    Cache.assert_has("user:123")

    update_user(123, {"name": "Grace"})
    Cache.assert_missing("user:123")
    assert await get_user_async(123) == {"id": 123, "name": "Grace"}
    assert get_user(123) == {"id": 123, "name": "Grace"}
    assert db.calls == [("get_user", 123), ("update_user", 123), ("get_user_async", 123)]


async def test_seed_cache_aside_example_runs_as_written() -> None:
    db = FakeDB()
    user_id = 123

    # Define a function to load data if not in cache
    async def load_user(user_id):  # type: ignore[no-untyped-def]
        return await db.get_user_async(user_id)

    # Use the cache-aside pattern
    user = await cache_aside(
        key=f"user:{user_id}",
        loader=lambda: load_user(user_id),
        ttl=300,
        region="users"
    )
    again = await cache_aside(key=f"user:{user_id}", loader=lambda: load_user(user_id), ttl=300, region="users")
    assert user == again == {"id": 123, "name": "Ada"}
    assert db.calls == [("get_user_async", 123)]
    Cache.assert_has("user:123", region="users")


# -- keys -----------------------------------------------------------------------------------------


def test_key_of_simple_arguments_is_readable() -> None:
    @cached(key_prefix="user")
    def get_user(user_id: int) -> int:
        return user_id

    assert get_user.key(1) == "user:1"
    assert cache_key("search", "shoes", sort="price", page=2) == "search:shoes:page=2:sort=price"
    assert cache_key("day", date(2024, 5, 1), None, True, 1.5) == "day:!date.2024-05-01:!None:!True:!float.1.5"


def test_positional_keyword_and_default_calls_share_one_key() -> None:
    calls: list[int] = []

    @cached(key_prefix="user")
    def get_user(user_id: int, verbose: bool = False) -> int:
        calls.append(user_id)
        return user_id

    assert get_user.key(1) == get_user.key(user_id=1) == get_user.key(1, verbose=False) == "user:1:!False"
    get_user(1)
    get_user(user_id=1)
    get_user(1, False)
    assert calls == [1]
    assert get_user.key(1, verbose=True) != get_user.key(1)


def test_keyword_only_and_var_keyword_arguments_are_sorted_k_equals_v() -> None:
    @cached(key_prefix="search")
    def search(term: str, *, page: int = 1, **filters: Any) -> list[str]:
        return []

    assert search.key("shoes", size=42, color="red") == "search:shoes:color=red:page=1:size=42"
    assert search.key("shoes", color="red", size=42) == search.key("shoes", size=42, color="red")


def test_separators_in_string_arguments_are_escaped_so_keys_do_not_collide() -> None:
    @cached(key_prefix="p")
    def f(*parts: str) -> None:
        return None

    assert f.key("a:b") == "p:a%3Ab"
    assert f.key("a:b") != f.key("a", "b")
    assert f.key("k=v") != cache_key("p", k="v")
    assert f.key("with space") == "p:with%20space"


def test_complex_arguments_become_a_short_digest() -> None:
    big = {"filters": list(range(1000)), "sort": {"by": "name"}}
    key = cache_key("report", big)
    assert key.startswith("report:!dict#")
    assert len(key) < 60
    assert cache_key("report", {"b": 1, "a": 2}) == cache_key("report", {"a": 2, "b": 1})
    assert cache_key("report", {"a": 1}) != cache_key("report", {"a": 2})
    assert cache_key("t", [1, 2]) != cache_key("t", (1, 2))
    assert cache_key("long", "x" * 500).startswith("long:!str#")


def test_default_prefix_is_module_and_qualified_name() -> None:
    @cached()
    def compute(x: int) -> int:
        return x

    assert compute.key(3) == f"{__name__}.{compute.__qualname__}:3"


def test_very_long_keys_keep_their_prefix_and_are_digested() -> None:
    key = cache_key("p", *["word"] * 100)
    assert key.startswith("p:!#") and len(key) < 60


class Color(Enum):
    RED = "red"


@dataclass
class Point:
    x: int
    y: int


_KEY_SCRIPT = """
import sys
from dataclasses import dataclass
from enum import Enum
from cachekit import cache_key

class Color(Enum):
    RED = "red"

@dataclass
class Point:
    x: int
    y: int

print(cache_key("k", {"b": {3, 1, 2}, "a": frozenset({"x", "y", "z"})}))
print(cache_key("k", {"s": {"alpha", "beta", "gamma", "delta"}}, Point(1, 2), Color.RED))
print(cache_key("k", "plain", 7, tag=("a", 1.5)))
"""


def test_keys_are_the_same_in_every_process_and_hash_seed() -> None:
    outputs = []
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", textwrap.dedent(_KEY_SCRIPT)], env=env, check=True,
                              capture_output=True, text=True, timeout=60)
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1] == outputs[2]
    assert len(outputs[0].splitlines()) == 3
    assert outputs[0].splitlines()[2].startswith("k:plain:7:tag=!tuple#")


def test_format_string_key_binds_parameters_with_defaults() -> None:
    @cached(key="user:{user_id}:{lang}")
    def profile(user_id: int, lang: str = "en") -> str:
        return f"{user_id}-{lang}"

    assert profile.key(1) == "user:1:en"
    assert profile.key(user_id=2, lang="fr") == "user:2:fr"
    assert profile(1) == "1-en"
    Cache.assert_has("user:1:en", "1-en")


def test_format_string_key_naming_an_unknown_parameter_fails_at_decoration() -> None:
    with pytest.raises(CacheError, match="'uid', which is not a parameter"):
        @cached(key="user:{uid}")
        def f(user_id: int) -> int:
            return user_id


def test_callable_key_gets_the_call_arguments() -> None:
    @cached(key=lambda user, **kw: f"user:{user['id']}")
    def f(user: dict[str, Any]) -> str:
        return user["name"]

    assert f({"id": 5, "name": "Ada"}) == "Ada"
    Cache.assert_has("user:5", "Ada")


def test_key_prefix_and_key_together_are_refused() -> None:
    with pytest.raises(CacheError, match="key_prefix or key"):
        cached(key_prefix="a", key="b")(lambda: None)


def test_self_is_left_out_of_the_key_and_methods_expose_helpers_through_the_instance() -> None:
    class Repo:
        def __init__(self) -> None:
            self.loads = 0

        @cached(key_prefix="repo")
        def find(self, item_id: int) -> int:
            self.loads += 1
            return item_id * self.loads

    a, b = Repo(), Repo()
    assert a.find(3) == 3
    assert b.find(3) == 3  # same key: the instance is not part of it, b's method did not run
    assert b.loads == 0
    assert a.find.key(3) == "repo:3"
    assert a.find.invalidate(3) is True
    assert a.find(3) == 6  # a.loads == 2
    assert b.find.refresh(3) == 3  # runs on b (b.loads == 1) and replaces the entry
    assert a.find(3) == 3
    assert a.loads == 2 and b.loads == 1


def test_ignored_parameters_are_left_out_of_the_key() -> None:
    @cached(key_prefix="user", ignore=["session"])
    def get_user(session: object, user_id: int) -> int:
        return user_id

    assert get_user.key(object(), 4) == "user:4"
    with pytest.raises(CacheError, match="not parameters"):
        cached(ignore=["nope"])(get_user.__wrapped__)


# -- caching behaviour ----------------------------------------------------------------------------


def test_cached_none_is_a_hit() -> None:
    calls: list[int] = []

    @cached(key_prefix="none")
    def nothing(x: int) -> None:
        calls.append(x)

    assert nothing(1) is None
    assert nothing(1) is None
    assert calls == [1]


def test_exceptions_are_not_cached() -> None:
    calls: list[int] = []

    @cached(key_prefix="boom")
    def boom(x: int) -> int:
        calls.append(x)
        if len(calls) == 1:
            raise ValueError("first call fails")
        return x

    with pytest.raises(ValueError):
        boom(1)
    assert boom(1) == 1
    assert calls == [1, 1]


def test_ttl_expires_with_the_fake_clock(fake: Runtime) -> None:
    calls: list[int] = []

    @cached(ttl=timedelta(seconds=10), key_prefix="t")
    def f(x: int) -> int:
        calls.append(x)
        return x

    f(1)
    fake.clock.advance(9)
    f(1)
    fake.clock.advance(2)
    f(1)
    assert calls == [1, 1]


def test_invalid_ttl_fails_at_decoration() -> None:
    with pytest.raises(CacheError, match="greater than 0"):
        cached(ttl=-1)


def test_runtime_is_resolved_at_call_time() -> None:
    calls: list[int] = []

    @cached(key_prefix="late")
    def f(x: int) -> int:
        calls.append(x)
        return x

    f(1)
    f(1)
    Cache.fake()  # a new runtime: the decorated function now caches there
    f(1)
    assert calls == [1, 1]
    Cache.assert_has("late:1")


def test_explicit_runtime_and_region_are_used() -> None:
    runtime = CacheConfig(regions={"users": {"ttl": 60}}).compile(clock=FakeClock())

    @cached(key_prefix="user", region="users", runtime=runtime)
    def get_user(user_id: int) -> str:
        return f"user {user_id}"

    assert get_user(1) == "user 1"
    assert runtime.region("users").get("user:1") == "user 1"
    Cache.assert_missing("user:1")
    assert get_user.region() is runtime.region("users")
    runtime.close()


def test_bare_decorator_without_parentheses_works() -> None:
    @cached
    def f(x: int) -> int:
        return x + 1

    assert f(1) == 2
    Cache.assert_has(f.key(1), 2)


def test_disabled_cache_runs_the_function_every_time(fake: Runtime) -> None:
    fake.config.cache.enabled = False
    fake.apply()
    calls: list[int] = []

    @cached(key_prefix="d")
    def f(x: int) -> int:
        calls.append(x)
        return x

    f(1)
    f(1)
    assert calls == [1, 1]


def test_tags_are_carried_and_flushable() -> None:
    calls: list[int] = []

    @cached(key_prefix="user", tags=["users", "user-{user_id}"])
    def get_user(user_id: int) -> int:
        calls.append(user_id)
        return user_id

    get_user(1)
    get_user(2)
    Cache.tags(["user-1"]).flush()
    get_user(1)
    get_user(2)
    assert calls == [1, 2, 1]
    Cache.tags("users").flush()
    get_user(2)
    assert calls == [1, 2, 1, 2]


def test_invalidate_and_refresh_of_a_sync_function() -> None:
    version = {"n": 0}

    @cached(key_prefix="v")
    def current(x: int) -> int:
        version["n"] += 1
        return version["n"]

    assert current(1) == 1
    assert current(1) == 1
    assert current.refresh(1) == 2
    assert current(1) == 2
    assert current.invalidate(1) is True
    assert current.invalidate(1) is False
    assert current(1) == 3


async def test_invalidate_and_refresh_of_an_async_function() -> None:
    version = {"n": 0}

    @async_cached(key_prefix="v")
    async def current(x: int) -> int:
        version["n"] += 1
        return version["n"]

    assert await current(1) == 1
    refreshed = current.refresh(1)
    assert inspect.isawaitable(refreshed)
    assert await refreshed == 2
    assert await current(1) == 2
    assert current.invalidate(1) is True
    assert await current(1) == 3
    assert await current.ainvalidate(1) is True
    assert await current(1) == 4


def test_async_decorated_functions_look_like_coroutine_functions() -> None:
    @cached(key_prefix="a")
    async def via_cached(x: int) -> int:
        return x

    @async_cached(key_prefix="b")
    async def via_async_cached(x: int) -> int:
        return x

    for fn in (via_cached, via_async_cached):
        assert inspect.iscoroutinefunction(fn.__call__)
        assert inspect.signature(fn).parameters.keys() == {"x"}
    assert asyncio.run(via_cached(5)) == 5


def test_async_cached_refuses_a_plain_function() -> None:
    with pytest.raises(CacheError, match="async def"):
        @async_cached()
        def f() -> None:
            return None


async def test_fifty_concurrent_calls_run_the_async_function_once() -> None:
    calls: list[int] = []
    release = asyncio.Event()

    @async_cached(ttl=60, key_prefix="slow")
    async def slow(x: int) -> int:
        calls.append(x)
        await release.wait()
        return x * 10

    tasks = [asyncio.create_task(slow(7)) for _ in range(50)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*tasks)
    assert results == [70] * 50
    assert calls == [7]


def test_concurrent_threads_run_the_sync_function_once() -> None:
    calls: list[int] = []
    barrier = threading.Barrier(8)
    gate = threading.Event()

    @cached(ttl=60, key_prefix="slow")
    def slow(x: int) -> int:
        calls.append(x)
        gate.wait(5)
        return x

    results: list[int] = []

    def worker() -> None:
        barrier.wait()
        results.append(slow(1))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    while not calls:
        threading.Event().wait(0.001)
    gate.set()
    for t in threads:
        t.join(10)
    assert results == [1] * 8
    assert calls == [1]


def test_a_second_runtime_on_the_same_redis_finds_the_decorated_result(redis_server: Any) -> None:
    config = CacheConfig(providers={"r": {"type": "redis", "url": redis_server.url}},
                         regions={"shared": {"provider": "r", "ttl": 60}})
    first, second = config.compile(), config.compile()
    calls: list[str] = []

    def report(name: str, filters: dict[str, Any]) -> list[str]:
        calls.append(name)
        return [name, *sorted(filters)]

    in_first = cached(key_prefix="report", region="shared", runtime=first)(report)
    in_second = cached(key_prefix="report", region="shared", runtime=second)(report)
    assert in_first("weekly", {"b": 1, "a": 2}) == ["weekly", "a", "b"]
    assert in_second("weekly", {"a": 2, "b": 1}) == ["weekly", "a", "b"]
    assert calls == ["weekly"]
    assert in_second.invalidate("weekly", {"a": 2, "b": 1}) is True
    in_first("weekly", {"a": 2, "b": 1})
    assert calls == ["weekly", "weekly"]
    first.close()
    second.close()


# -- invalidate_cache -----------------------------------------------------------------------------


def test_invalidate_cache_pattern_template_uses_the_call_arguments() -> None:
    Cache.put("user:1", "a")
    Cache.put("user:2", "b")

    @invalidate_cache(patterns=["user:{user_id}"])
    def update(user_id: int) -> str:
        return "done"

    assert update(1) == "done"
    Cache.assert_missing("user:1")
    Cache.assert_has("user:2")


def test_invalidate_cache_does_nothing_when_the_function_raises() -> None:
    Cache.put("user:1", "a")

    @invalidate_cache(patterns=["user:*"])
    def update(user_id: int) -> None:
        raise RuntimeError("db down")

    with pytest.raises(RuntimeError):
        update(1)
    Cache.assert_has("user:1")


def test_invalidate_cache_by_tags_and_region() -> None:
    Cache.tags("users").put("user:1", "a")
    Cache.region("other").tags("users").put("user:1", "b")

    @invalidate_cache(tags=["users"], region="default")
    def update() -> None:
        return None

    update()
    Cache.assert_missing("user:1")
    Cache.assert_has("user:1", "b", region="other")


def test_invalidate_cache_events_fire_rules_with_the_call_arguments() -> None:
    config = CacheConfig(rules=[{"name": "user-update-rule", "strategy": "event_based",
                                 "events": ["user_updated"], "pattern": "user:{user_id}"}])
    runtime = Cache.configure(config.compile(clock=FakeClock()))
    runtime.region().put("user:1", "a")
    runtime.region().put("user:2", "b")

    @invalidate_cache(events=["user_updated"])
    def update_user(user_id: int, data: dict[str, Any]) -> bool:
        return True

    assert update_user(2, {"name": "x"}) is True
    Cache.assert_has("user:1")
    Cache.assert_missing("user:2")
    runtime.close()


async def test_invalidate_cache_on_an_async_function() -> None:
    Cache.put("user:1", "a")
    Cache.put("post:1", "p")

    @invalidate_cache(patterns="user:*")
    async def update(user_id: int) -> int:
        await asyncio.sleep(0)
        return user_id

    assert inspect.iscoroutinefunction(update)
    assert await update(1) == 1
    Cache.assert_missing("user:1")
    Cache.assert_has("post:1")


def test_invalidate_cache_template_naming_a_missing_parameter_says_so() -> None:
    @invalidate_cache(patterns=["user:{user_id}"])
    def update(uid: int) -> None:
        return None

    with pytest.raises(CacheError, match="needs 'user_id'"):
        update(1)


# -- cache_aside ------------------------------------------------------------------------------------


async def test_cache_aside_accepts_sync_and_async_loaders() -> None:
    async def async_loader() -> str:
        return "async"

    assert await cache_aside("a", async_loader) == "async"
    assert await cache_aside("b", lambda: "sync") == "sync"
    assert await cache_aside("b", lambda: "other") == "sync"
    assert Cache.get("a") == "async"


async def test_cache_aside_loads_once_under_concurrency_and_carries_tags() -> None:
    calls: list[int] = []

    async def load() -> int:
        calls.append(1)
        await asyncio.sleep(0.01)
        return 42

    results = await asyncio.gather(*[cache_aside("answer", load, ttl=60, tags=["t"]) for _ in range(20)])
    assert results == [42] * 20
    assert calls == [1]
    Cache.tags("t").flush()
    Cache.assert_missing("answer")


def test_hits_answered_on_the_fast_path_are_counted_and_keep_lru_order() -> None:
    rt = Runtime(CacheConfig(regions={"default": {"ttl": 60, "max_size": 2}}), clock=FakeClock())
    calls: list[int] = []

    @cached(runtime=rt)
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    try:
        assert square(1) == 1 and square(2) == 4
        assert square(1) == 1  # a hit: 1 becomes the most recently used
        assert square(3) == 9  # evicts 2, the least recently used, not 1
        assert square(1) == 1 and calls == [1, 2, 3]
        assert square(2) == 4 and calls == [1, 2, 3, 2]
        stats = rt.region().stats
        assert (stats.hits, stats.misses, stats.loads) == (2, 4, 4)
    finally:
        rt.close()
