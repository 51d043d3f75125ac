"""One behavioural suite, run on every store: memory, file, Redis, Redis Cluster, Memcached, custom.

Each subclass says how to build a config for its store; every test goes through the public
runtime API, so what is proven here is what a user gets.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest
from dict_driver import DictDriver

from cachekit import CacheConfig, FakeClock, Runtime


class LockCases:
    """Atomic locks (issue 15 item 1) through ``region.lock`` / ``runtime.lock``, on every store."""

    #: a lock's life in these cases, and how long to wait for it to expire (memcached counts whole seconds)
    lock_seconds: ClassVar[float] = 0.3
    lock_expiry_wait: ClassVar[float] = 0.8

    def test_only_the_owner_releases_and_force_release_frees_it(self, rt: Runtime) -> None:
        first = rt.lock("report", seconds=30)
        assert first.get() is True
        other = rt.lock("report", seconds=30)
        assert other.owner != first.owner
        assert other.get() is False
        assert other.release() is False  # not the holder
        assert rt.lock("report", seconds=30).get() is False  # still held
        assert rt.restore_lock("report", first.owner).release() is True  # the owner's token from elsewhere
        assert other.get() is True
        other.force_release()
        assert first.get() is True and first.held()
        assert first.release() is True

    def test_a_region_lock_and_a_store_lock_are_alike(self, rt: Runtime) -> None:
        lock = rt.region("other").lock("job", seconds=30)
        assert lock.get() is True
        assert rt.region("other").lock("job", seconds=30).get() is False
        assert rt.region("other").lock("job", 30, owner=lock.owner).release() is True
        store = rt.store(rt.region().provider)
        assert store.lock("s", 30).get() is True
        assert store.lock("s", 30).get() is False

    def test_an_expired_lock_is_free_again(self, rt: Runtime) -> None:
        import time

        assert rt.lock("short", seconds=self.lock_seconds).get() is True
        assert rt.lock("short", seconds=30).get() is False
        time.sleep(self.lock_expiry_wait)
        assert rt.lock("short", seconds=30).get() is True

    def test_block_times_out_with_lock_timeout_error(self, rt: Runtime) -> None:
        from cachekit import LockTimeoutError

        assert rt.lock("busy", seconds=30).get() is True
        with pytest.raises(LockTimeoutError, match="busy"):
            rt.lock("busy", seconds=30).block(0.2)

    def test_get_and_block_with_a_callback_run_it_under_the_lock_and_release(self, rt: Runtime) -> None:
        lock = rt.lock("cb", seconds=30)
        assert lock.get(lambda: rt.lock("cb", 30).get()) is False  # held while the callback runs
        assert lock.block(1, lambda: "done") == "done"
        assert rt.lock("cb", seconds=30).get() is True  # released after

    def test_the_context_manager_releases_on_an_exception(self, rt: Runtime) -> None:
        with pytest.raises(RuntimeError, match="boom"), rt.lock("ctx", seconds=30):
            assert rt.lock("ctx", seconds=30).get() is False
            raise RuntimeError("boom")
        assert rt.lock("ctx", seconds=30).get() is True

    async def test_async_with_and_async_twins(self, rt: Runtime) -> None:
        async with rt.lock("async", seconds=30) as lock:
            assert await rt.lock("async", seconds=30).aget() is False
            assert lock.held()
        second = rt.lock("async", seconds=30)
        assert await second.ablock(1) is True
        assert await second.arelease() is True


class StoreConformance(LockCases):
    #: whether ad-hoc glob patterns can be scanned
    can_scan: ClassVar[bool] = True
    #: the regions' ``flush`` setting (None: the store's default)
    region_flush: ClassVar[str | None] = None

    @pytest.fixture
    def provider(self, request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
        raise NotImplementedError

    @pytest.fixture
    def config_data(self, provider: dict[str, Any], request: pytest.FixtureRequest) -> dict[str, Any]:
        prefix = "ck" + request.node.name.replace("[", "").replace("]", "")[-20:].replace("_", "")
        return {
            "cache": {"prefix": prefix, "default_region": "default"},
            "providers": {"store": provider},
            "regions": {"default": {"provider": "store", "ttl": 60, "flush": self.region_flush},
                        "other": {"provider": "store", "flush": self.region_flush}},
            "rules": [
                {"name": "user-data", "strategy": "pattern_based", "pattern": "user:*"},
                {"name": "user-update", "strategy": "event_based", "events": ["user_updated"],
                 "pattern": "profile:{user_id}"},
            ],
        }

    def make_runtime(self, config_data: dict[str, Any], clock: FakeClock | None = None) -> Runtime:
        return CacheConfig(**config_data).compile(clock=clock)

    @pytest.fixture
    def rt(self, config_data: dict[str, Any]) -> Runtime:
        runtime = self.make_runtime(config_data)
        yield runtime
        try:
            runtime.region("default").flush()
            runtime.region("other").flush()
        finally:
            runtime.close()

    # -- facade operations ----------------------------------------------------------------
    def test_put_get_has_forget(self, rt: Runtime) -> None:
        r = rt.region()
        assert r.put("key", {"a": [1, 2]})
        assert r.get("key") == {"a": [1, 2]}
        assert r.has("key")
        assert r.forget("key")
        assert not r.has("key")
        assert r.get("key", "fallback") == "fallback"

    def test_stored_none_is_a_hit(self, rt: Runtime) -> None:
        r = rt.region()
        r.put("none", None)
        assert r.has("none")
        assert r.get("none", "fallback") is None

    def test_ttl_expiry_by_runtime_clock(self, config_data: dict[str, Any]) -> None:
        clock = FakeClock()
        runtime = self.make_runtime(config_data, clock)
        try:
            r = runtime.region()
            r.put("short", "v", ttl=5)
            r.put("long", "v", ttl=500)
            clock.advance(6)
            assert r.get("short") is None
            assert r.get("long") == "v"
        finally:
            runtime.region().flush()
            runtime.close()

    def test_get_many_put_many(self, rt: Runtime) -> None:
        r = rt.region()
        assert r.put_many({f"k{i}": i for i in range(20)}, ttl=60)
        got = r.get_many([f"k{i}" for i in range(22)])
        assert got == {**{f"k{i}": i for i in range(20)}, "k20": None, "k21": None}

    def test_get_many_all_hits_misses_and_stored_none(self, rt: Runtime) -> None:
        r = rt.region()
        keys = [f"m{i}" for i in range(30)]
        assert r.put_many({k: {"i": i} for i, k in enumerate(keys)}, ttl=60)
        r.put("m7", None)
        r.tags("t").put("m8", "tagged")  # an entry with a generation stamp, read by a plain get_many
        every = r.get_many([*keys, "m3"], default="absent")  # every key a hit (one repeated)
        assert every == {**{k: {"i": i} for i, k in enumerate(keys)}, "m7": None, "m8": "tagged"}
        assert list(every) == keys
        r.forget("m2")
        r.tags("t").flush()  # m8's stamp is behind now: a miss
        some = r.get_many(keys, default="absent")
        assert some["m2"] == "absent" and some["m8"] == "absent" and some["m7"] is None
        assert some["m0"] == {"i": 0} and some["m29"] == {"i": 29}
        assert r.get_many([]) == {}

    def test_remember_and_forever(self, rt: Runtime) -> None:
        r = rt.region()
        calls: list[int] = []
        assert r.remember("r", 60, lambda: calls.append(1) or "x") == "x"
        assert r.remember("r", 60, lambda: calls.append(1) or "x") == "x"
        assert calls == [1]
        r.forever("f", 1)
        assert r.get("f") == 1

    def test_increment_decrement_from_threads(self, rt: Runtime) -> None:
        r = rt.region()
        r.put("visits", 0)
        assert r.increment("visits") == 1
        assert r.increment("visits", 5) == 6
        assert r.decrement("stock", 3) == -3

        def work() -> None:
            for _ in range(100):
                r.increment("counter")

        threads = [threading.Thread(target=work) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert r.get("counter") == 600

    def test_tags_any_of_flush(self, rt: Runtime) -> None:
        r = rt.region()
        r.tags(["users", "active"]).put("user:1", 1)
        r.tags(["users", "inactive"]).put("user:3", 3)
        r.put("plain", 0)
        assert r.get("user:1") == 1
        r.tags(["active"]).flush()
        assert r.get("user:1") is None
        assert r.get("user:3") == 3
        r.tags(["users"]).flush()
        assert r.get("user:3") is None
        assert r.get("plain") == 0

    def test_a_counter_behaves_like_any_value_under_tags(self, rt: Runtime) -> None:
        r = rt.region()
        # written through tags: stamped, so a flush of the tag removes it
        assert r.tags(["stats"]).increment("hits") == 1
        assert r.tags(["stats"]).increment("hits", 4) == 5
        assert r.get("hits") == 5
        r.tags(["stats"]).flush()
        assert r.get("hits") is None
        # a key written with tags can be incremented, and keeps its tags
        r.tags(["users"]).put("logins", 10)
        assert r.increment("logins") == 11
        assert r.decrement("logins", 2) == 9
        assert r.get("logins") == 9 and r.stats.errors == 0
        r.tags(["users"]).flush()
        assert r.get("logins") is None
        # an untagged counter is untouched by tag flushes
        assert r.increment("plain") == 1
        r.tags(["stats"]).flush()
        assert r.get("plain") == 1 and r.stats.errors == 0

    async def test_async_increment_of_a_tagged_value(self, rt: Runtime) -> None:
        r = rt.region()
        r.tags(["users"]).put("n", 1)
        assert await r.aincrement("n", 2) == 3
        r.tags(["users"]).flush()
        assert r.get("n") is None and r.stats.errors == 0

    def test_declared_pattern_rule(self, rt: Runtime) -> None:
        r = rt.region()
        r.put("user:1", 1)
        r.put("order:1", 2)
        rt.invalidate(pattern="user:*")
        assert r.get("user:1") is None
        assert r.get("order:1") == 2

    def test_event_rule_with_parameters(self, rt: Runtime) -> None:
        r = rt.region()
        r.put("profile:1", "a")
        r.put("profile:2", "b")
        rt.emit("user_updated", user_id=1)
        assert r.get("profile:1") is None
        assert r.get("profile:2") == "b"

    def test_region_flush_is_scoped(self, rt: Runtime) -> None:
        rt.region("default").put("k", 1)
        rt.region("other").put("k", 2)
        assert rt.region("default").flush()
        assert rt.region("default").get("k") is None
        assert rt.region("other").get("k") == 2

    def test_adhoc_pattern(self, rt: Runtime) -> None:
        from cachekit import UnsupportedOperation

        r = rt.region()
        r.put("order:1", 1)
        r.put("order:2", 2)
        r.put("item:1", 3)
        if not self.can_scan:
            with pytest.raises(UnsupportedOperation, match="pattern_based"):
                rt.invalidate(pattern="order:*")
            return
        assert rt.invalidate(pattern="order:*").count == 2
        assert r.get("order:1") is None
        assert r.get("item:1") == 3

    def test_a_user_key_that_looks_internal_is_an_ordinary_key(self, rt: Runtime) -> None:
        r = rt.region()
        assert r.put("__gen__x", 1) and r.put("__lock__y", 2)
        if self.can_scan:
            assert sorted(r.keys()) == ["__gen__x", "__lock__y"]
        assert r.flush()
        assert r.get("__gen__x") is None and r.get("__lock__y") is None
        if self.can_scan and self.region_flush != "generation":  # by generation: dead keys stay, unread
            assert r.keys() == []

    def test_region_names_with_glob_characters_list_and_flush_only_themselves(self, rt: Runtime) -> None:
        names = ["ab", "a*", "*", "a?", "[ab]", "a\\b"]
        try:
            for name in names:
                rt.region(name).tags(["t"]).put("k", name)  # its tag's generation must survive too
                rt.region(name).put("k2", name)
            if self.can_scan:
                for name in names:
                    assert sorted(rt.region(name).keys()) == ["k", "k2"], name
                    assert rt.region(name).keys("k?") == ["k2"], name
            for name in ["*", "a*", "a?", "[ab]"]:
                assert rt.region(name).flush()
                assert rt.region(name).get("k") is None
                assert rt.region("ab").get("k") == "ab", f"flushing {name!r} removed region 'ab'"
                assert rt.region("a\\b").get("k") == "a\\b"
        finally:
            for name in names:
                rt.region(name).flush()

    def test_region_flush_deletes_keys_or_advances_the_generation(self, rt: Runtime) -> None:
        r = rt.region()
        r.put("a", 1)
        r.put("b", 2)
        preview = rt.invalidate(region="default", dry_run=True)
        by_generation = self.region_flush == "generation" or not self.can_scan
        if by_generation:  # O(1): one increment, whatever the region holds
            assert preview.generations == {"default": ["region"]} and not preview.keys
        else:
            assert sorted(preview.keys["default"]) == ["a", "b"] and not preview.generations
        assert r.get("a") == 1  # a dry run changes nothing
        assert r.flush()
        assert r.get("a") is None and r.get("b") is None
        r.put("a", 3)  # a region flushed by generation takes new entries at once
        assert r.get("a") == 3


class SharedStoreCases:
    """Cases for stores that outlive a process: a second runtime, or a second process, on the same config
    sees the same data. In-process stores (memory, the custom DictDriver) do not mix this in."""

    @pytest.fixture
    def peer(self, config_data: dict[str, Any], rt: Runtime) -> Runtime:
        """A second runtime on the same config, so on the same store."""
        runtime = self.make_runtime(config_data)  # type: ignore[attr-defined]
        yield runtime
        runtime.close()

    def test_a_lock_excludes_a_second_runtime_on_the_same_store(self, rt: Runtime, peer: Runtime) -> None:
        held = rt.lock("nightly", seconds=30)
        assert held.get() is True
        assert peer.lock("nightly", seconds=30).get() is False
        assert peer.lock("nightly", seconds=30).release() is False
        assert peer.restore_lock("nightly", held.owner).release() is True
        assert peer.lock("nightly", seconds=30).get() is True
        assert held.get() is False

    def test_second_process_sees_writes_and_invalidations(self, rt: Runtime, config_data: dict[str, Any]) -> None:
        rt.region().put("from-parent", {"n": 1})
        rt.region().put("user:1", 1)
        rt.region().put("profile:3", 3)
        rt.region("other").put("k", 1)
        rt.region().tags(["t"]).put("tagged", 1)
        code = (
            "import json, sys; from cachekit import CacheConfig;"
            "rt = CacheConfig(**json.loads(sys.argv[1])).compile();"
            "r = rt.region(); r.tags(['t']).flush(); print(json.dumps(r.get('from-parent')));"
            "r.put('from-child', 2); rt.invalidate(pattern='user:*'); rt.emit('user_updated', user_id=3);"
            "rt.region('other').flush(); rt.close()"
        )
        out = subprocess.run([sys.executable, "-c", code, json.dumps(config_data)],
                             capture_output=True, text=True, check=True)
        assert json.loads(out.stdout) == {"n": 1}
        assert rt.region().get("from-child") == 2
        assert rt.region().get("tagged") is None
        assert rt.region().get("user:1") is None
        assert rt.region().get("profile:3") is None
        assert rt.region("other").get("k") is None

    def test_second_runtime_sees_writes_and_invalidations(self, rt: Runtime, peer: Runtime) -> None:
        rt.region().put("shared", "v1")
        assert peer.region().get("shared") == "v1"
        rt.region().tags(["t"]).put("tagged", 1)
        assert peer.region().get("tagged") == 1
        peer.region().tags(["t"]).flush()
        assert rt.region().get("tagged") is None
        rt.region().put("user:7", 7)
        peer.invalidate(pattern="user:*")
        assert rt.region().get("user:7") is None
        rt.region().put("profile:9", 9)
        peer.emit("user_updated", user_id=9)
        assert rt.region().get("profile:9") is None
        rt.region().put("gone", 1)
        peer.region().flush()
        assert rt.region().get("gone") is None


class InProcessStoreCases:
    """Cases for in-process stores: each runtime has a store of its own."""

    def test_a_second_runtime_on_the_same_config_has_its_own_store(
        self, rt: Runtime, config_data: dict[str, Any]
    ) -> None:
        other = self.make_runtime(config_data)  # type: ignore[attr-defined]
        try:
            rt.region().put("mine", 1)
            assert other.region().get("mine") is None
            other.region().put("theirs", 2)
            assert rt.region().get("theirs") is None
            other.region().flush()
            assert rt.region().get("mine") == 1
        finally:
            other.close()


class TestMemory(InProcessStoreCases, StoreConformance):
    @pytest.fixture
    def provider(self) -> dict[str, Any]:
        return {"type": "memory"}


class TestMemoryTinyLFU(TestMemory):
    """The same guarantees with W-TinyLFU eviction (``policy = "tinylfu"``)."""

    @pytest.fixture
    def provider(self) -> dict[str, Any]:
        return {"type": "memory", "policy": "tinylfu"}

    def test_store_is_tinylfu(self, rt: Runtime) -> None:
        assert rt.region().l2.driver.policy == "tinylfu"


class TestFile(SharedStoreCases, StoreConformance):
    @pytest.fixture
    def provider(self, tmp_path: Path) -> dict[str, Any]:
        return {"type": "file", "path": str(tmp_path / "store")}


class TestCustomDriver(InProcessStoreCases, StoreConformance):
    can_scan = False

    @pytest.fixture
    def provider(self) -> dict[str, Any]:
        return {"type": "memory"}

    def make_runtime(self, config_data: dict[str, Any], clock: FakeClock | None = None) -> Runtime:
        data = {**config_data, "providers": {}}
        data["regions"] = {name: {**rc, "provider": "custom"} for name, rc in config_data["regions"].items()}
        runtime = CacheConfig(**{k: v for k, v in data.items() if k != "regions"}).compile(clock=clock)
        runtime.register_store("custom", DictDriver())
        for name, rc in data["regions"].items():
            runtime.update_region(name, **rc)
        return runtime


class TestRedis(SharedStoreCases, StoreConformance):
    @pytest.fixture
    def provider(self, redis_server: Any) -> dict[str, Any]:
        return {"type": "redis", "url": redis_server.url}


class TestRedisCluster(SharedStoreCases, StoreConformance):
    @pytest.fixture
    def provider(self, redis_cluster: Any) -> dict[str, Any]:
        return {"type": "redis", "cluster": True, "startup_nodes": list(redis_cluster.startup_nodes)}


class TestMemcached(SharedStoreCases, StoreConformance):
    lock_seconds, lock_expiry_wait = 1, 2.2
    can_scan = False

    @pytest.fixture
    def provider(self, memcached_server: Any) -> dict[str, Any]:
        return {"type": "memcached", "servers": [memcached_server.address]}


class TestMemcachedPool(SharedStoreCases, StoreConformance):
    lock_seconds, lock_expiry_wait = 1, 2.2
    can_scan = False

    @pytest.fixture
    def provider(self, memcached_pool: Any) -> dict[str, Any]:
        return {"type": "memcached", "servers": list(memcached_pool.servers)}


class TestFileFlushByGeneration(TestFile):
    region_flush = "generation"


class TestRedisFlushByGeneration(TestRedis):
    region_flush = "generation"


class TestRedisClusterFlushByGeneration(TestRedisCluster):
    region_flush = "generation"
