"""Seed 000: every example of the Cache facade, as written, with `from cachekit import Cache`."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from dict_driver import DictDriver

from cachekit import MISSING, Cache, CacheError, Runtime
from cachekit.runtime.tier import LocalTier

pytestmark = pytest.mark.usefixtures("fake")  # a fresh fake runtime bound to Cache (conftest)


def test_put_get_has_forget_flush() -> None:
    Cache.put("key", "value", ttl=3600)
    assert Cache.get("key") == "value"
    assert Cache.get("nope", default="fallback") == "fallback"
    assert Cache.has("key")
    Cache.forget("key")
    assert not Cache.has("key")
    Cache.put("a", 1)
    Cache.put("b", 2)
    assert Cache.flush()
    assert Cache.get_many(["a", "b"]) == {"a": None, "b": None}


def test_stored_none_is_a_hit_not_a_miss(fake: Runtime) -> None:
    Cache.put("nothing", None)
    assert Cache.has("nothing")
    assert Cache.get("nothing", default="fallback") is None
    calls: list[int] = []
    assert Cache.remember("nothing", 60, lambda: calls.append(1)) is None
    assert calls == []


def test_ttl_expires_with_the_fake_clock(fake: Runtime) -> None:
    Cache.put("key", "value", ttl=10)
    fake.clock.advance(9.9)
    assert Cache.get("key") == "value"
    fake.clock.advance(0.2)
    assert Cache.get("key") is None
    assert not Cache.has("key")


def test_default_ttl_comes_from_the_region_policy(fake: Runtime) -> None:
    Cache.put("key", "value")
    fake.clock.advance(299)
    assert Cache.has("key")
    fake.clock.advance(2)
    assert not Cache.has("key")


@pytest.mark.parametrize("bad", [0, -1, -0.5, "10", True])
def test_invalid_ttl_is_a_clear_error(bad: Any) -> None:
    with pytest.raises(CacheError, match="ttl"):
        Cache.put("key", "value", ttl=bad)


def test_forever_survives_any_amount_of_time(fake: Runtime) -> None:
    Cache.forever("config", {"debug": False})
    fake.clock.advance(10 * 365 * 86400)
    assert Cache.get("config") == {"debug": False}


def test_remember_computes_once_then_serves_cache(fake: Runtime) -> None:
    calls: list[int] = []

    def fetch_users_from_db() -> list[str]:
        calls.append(1)
        return ["ada", "alan"]

    assert Cache.remember("users", 3600, lambda: fetch_users_from_db()) == ["ada", "alan"]
    assert Cache.remember("users", 3600, lambda: fetch_users_from_db()) == ["ada", "alan"]
    assert len(calls) == 1
    fake.clock.advance(3601)
    Cache.remember("users", 3600, fetch_users_from_db)
    assert len(calls) == 2


def test_remember_with_async_callback_is_awaitable_and_caches_the_value() -> None:
    calls: list[int] = []

    async def async_fetch_users() -> list[str]:
        calls.append(1)
        await asyncio.sleep(0)
        return ["ada"]

    async def main() -> None:
        users = await Cache.remember("users", 3600, async_fetch_users)
        assert users == ["ada"]
        again = await Cache.remember("users", 3600, async_fetch_users)
        assert again == ["ada"]

    asyncio.run(main())
    assert calls == [1]
    assert Cache.get("users") == ["ada"]  # the value, never a coroutine


def test_remember_with_lambda_returning_coroutine_caches_resolved_value() -> None:
    async def fetch() -> int:
        return 5

    async def main() -> Any:
        return await Cache.remember("n", 60, lambda: fetch())

    assert asyncio.run(main()) == 5
    assert Cache.get("n") == 5


def test_concurrent_remember_in_threads_calls_loader_once() -> None:
    calls: list[int] = []
    release = threading.Event()
    started = threading.Barrier(16)

    def slow_loader() -> str:
        calls.append(1)
        release.wait(5)
        return "loaded"

    results: list[str] = []

    def worker() -> None:
        started.wait()
        results.append(Cache.remember("hot", 60, slow_loader))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    # let every thread reach the single-flight wait before releasing the leader
    for _ in range(200):
        if calls:
            break
        threading.Event().wait(0.005)
    threading.Event().wait(0.05)
    release.set()
    for t in threads:
        t.join(5)
    assert calls == [1]
    assert results == ["loaded"] * 16


def test_concurrent_remember_in_asyncio_calls_loader_once() -> None:
    calls: list[int] = []

    async def loader() -> str:
        calls.append(1)
        await asyncio.sleep(0.01)
        return "v"

    async def main() -> list[Any]:
        region = Cache.region()
        return await asyncio.gather(*(region.aremember("k", 60, loader) for _ in range(50)))

    assert asyncio.run(main()) == ["v"] * 50
    assert calls == [1]


def test_loader_exception_is_not_cached_and_reaches_every_waiter() -> None:
    def boom() -> None:
        raise RuntimeError("db down")

    with pytest.raises(RuntimeError, match="db down"):
        Cache.remember("k", 60, boom)
    assert not Cache.has("k")
    assert Cache.remember("k", 60, lambda: 1) == 1


def test_get_many_and_put_many() -> None:
    Cache.put_many({"key1": "value1", "key2": "value2"}, ttl=3600)
    assert Cache.get_many(["key1", "key2", "key3"]) == {"key1": "value1", "key2": "value2", "key3": None}


def test_increment_and_decrement() -> None:
    Cache.put("visits", 0)
    assert Cache.increment("visits") == 1
    assert Cache.increment("visits", 5) == 6
    assert Cache.decrement("stock") == -1  # a missing key starts at 0
    assert Cache.decrement("stock", 10) == -11
    Cache.put("name", "ada")
    with pytest.raises(CacheError, match="not an int"):
        Cache.increment("name")


def test_increment_keeps_the_ttl(fake: Runtime) -> None:
    Cache.put("hits", 1, ttl=10)
    Cache.increment("hits")
    fake.clock.advance(11)
    assert Cache.get("hits") is None


def test_tags_seed_example() -> None:
    Cache.tags(["users", "active"]).put("user:1", {"id": 1})
    Cache.tags(["users", "active"]).put("user:2", {"id": 2})
    Cache.tags(["users", "inactive"]).put("user:3", {"id": 3})
    assert Cache.tags(["users", "active"]).get("user:1") == {"id": 1}

    Cache.tags(["active"]).flush()  # clears user:1, user:2
    assert Cache.get("user:1") is None
    assert Cache.get("user:2") is None
    assert Cache.get("user:3") == {"id": 3}

    Cache.tags(["users"]).flush()  # clears user:3 too
    assert Cache.get("user:3") is None


def test_tagged_key_is_still_readable_by_plain_get() -> None:
    Cache.tags(["users"]).put("user:9", "nine")
    assert Cache.get("user:9") == "nine"
    assert Cache.has("user:9")


def test_tag_flush_leaves_untagged_and_rewritten_entries() -> None:
    Cache.put("plain", 1)
    Cache.tags(["t"]).put("tagged", 1)
    Cache.tags(["t"]).flush()
    assert Cache.get("plain") == 1
    Cache.tags(["t"]).put("tagged", 2)  # written after the flush: fresh generation
    assert Cache.get("tagged") == 2


def test_tagged_remember_is_flushed_with_its_tag() -> None:
    assert Cache.tags(["users", "active"]).remember("active_users", 3600, lambda: [1, 2]) == [1, 2]
    Cache.tags(["users"]).flush()
    assert not Cache.has("active_users")


def test_store_redis_and_file_and_default_store(tmp_path: Any) -> None:
    Cache.store("redis").put("key", "value")
    Cache.store("file").put("key", "file-value")
    assert Cache.store("redis").get("key") == "value"
    assert Cache.store("file").get("key") == "file-value"
    assert Cache.get("key") is None  # the default store is a separate store
    Cache.set_default_store("redis")
    assert Cache.get("key") == "value"


def test_unknown_store_names_the_known_ones() -> None:
    with pytest.raises(CacheError, match=r"unknown provider 'redsi'.*did you mean 'redis'"):
        Cache.store("redsi")


def test_custom_store_with_four_methods_works_everywhere(fake: Runtime) -> None:
    driver = DictDriver()
    Cache.register_store("custom", driver)
    store = Cache.store("custom")
    assert store.put("key", "value")
    assert store.get("key") == "value"
    assert any(k.endswith(":key") for k in driver.data)  # namespaced under prefix:region:
    store.put("none", None)
    assert store.has("none") and store.get("none", "d") is None
    assert store.increment("n", 3) == 3
    store.tags(["x"]).put("t", 1)
    store.tags(["x"]).flush()
    assert store.get("t") is None
    assert store.remember("r", 60, lambda: "computed") == "computed"
    assert store.get_many(["key", "missing"]) == {"key": "value", "missing": None}
    store.put("ttl", 1, ttl=5)
    fake.clock.advance(6)
    assert store.get("ttl") is None


def test_custom_driver_returning_missing_sentinel_is_a_miss() -> None:
    class SentinelDriver(DictDriver):
        def get(self, key: str) -> Any:
            return self.data.get(key, MISSING)

    Cache.register_store("s", SentinelDriver())
    assert Cache.store("s").get("absent", "default") == "default"


def test_fake_assertions() -> None:
    Cache.put("key", "value")
    Cache.assert_has("key")
    Cache.assert_has("key", "value")
    Cache.assert_missing("other_key")
    with pytest.raises(AssertionError, match="missing"):
        Cache.assert_has("other_key")
    with pytest.raises(AssertionError, match="expected 'other'"):
        Cache.assert_has("key", "other")
    with pytest.raises(AssertionError, match="found 'value'"):
        Cache.assert_missing("key")


def test_fake_replaces_shared_stores_with_memory() -> None:
    runtime = Cache.fake()
    assert isinstance(runtime.store("redis").l2, LocalTier)  # never touches a real server


def test_oversize_and_bad_keys_are_clear_errors() -> None:
    with pytest.raises(CacheError, match="max_key_length"):
        Cache.put("k" * 5000, 1)
    with pytest.raises(CacheError, match="strings"):
        Cache.put(123, 1)  # type: ignore[arg-type]
    with pytest.raises(CacheError, match="empty"):
        Cache.put("", 1)


def test_user_service_complete_example() -> None:
    fetched: list[int] = []

    class UserService:
        CACHE_TTL = 3600

        async def get_user(self, user_id: int) -> Any:
            cache_key = f"user:{user_id}"
            return Cache.remember(cache_key, self.CACHE_TTL, lambda: self._fetch_user(user_id))

        def _fetch_user(self, user_id: int) -> dict[str, int]:
            fetched.append(user_id)
            return {"id": user_id}

        async def update_user(self, user_id: int, data: dict[str, Any]) -> dict[str, Any]:
            Cache.forget(f"user:{user_id}")
            Cache.tags(["users"]).flush()
            return data

        async def get_active_users(self) -> Any:
            return Cache.tags(["users", "active"]).remember("active_users", self.CACHE_TTL,
                                                            self._fetch_active_users)

        def _fetch_active_users(self) -> list[int]:
            return [1]

    async def main() -> None:
        svc = UserService()
        assert await svc.get_user(1) == {"id": 1}
        assert await svc.get_user(1) == {"id": 1}
        assert await svc.get_active_users() == [1]
        await svc.update_user(1, {})
        assert not Cache.has("active_users")
        assert await svc.get_user(1) == {"id": 1}

    asyncio.run(main())
    assert fetched == [1, 1]
