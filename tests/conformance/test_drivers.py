"""The driver contract, one suite run on every driver: memory, file, Redis, Redis Cluster, Memcached (one
server and a pool) and a custom driver that implements only the four required methods.

Each subclass builds its driver (keys under ``ck:``). What only some stores can do lives in mixins, so a
store is never collected for a case it cannot pass: :class:`KeepsStoredNone`, :class:`EnumeratesKeys`
(scan and flush) and :class:`SharedStore` (a second driver on the same store, server-side counters).
Behaviour specific to one driver (Sentinel, cluster topology, memcached pools and key hashing, the file
layout, server-side TTLs) stays in that driver's test file.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from dict_driver import DictDriver

from cachekit import FakeClock
from cachekit.errors import ProviderError, UnsupportedOperation
from cachekit.providers.base import MISSING, CacheDriver

ENTRY = ("value", math.inf, (("ck:default:__gen__:tag:users", 3),))


class DriverConformance:
    #: what ``get`` answers for "nothing here" (the contract allows ``MISSING`` or ``None``)
    absent: ClassVar[Any] = MISSING

    @pytest.fixture
    def driver(self) -> Iterator[CacheDriver]:
        raise NotImplementedError

    def test_put_then_get_round_trips_an_entry_tuple(self, driver: CacheDriver) -> None:
        assert driver.put("ck:a", ENTRY) is True
        assert driver.get("ck:a") == ENTRY

    def test_get_of_an_absent_key_is_nothing(self, driver: CacheDriver) -> None:
        assert driver.get("ck:absent") is self.absent
        assert driver.has("ck:absent") is False

    def test_put_overwrites_and_forget_says_whether_the_key_existed(self, driver: CacheDriver) -> None:
        driver.put("ck:k", "one")
        driver.put("ck:k", "two")
        assert driver.get("ck:k") == "two"
        assert driver.has("ck:k") is True
        assert driver.forget("ck:k") is True
        assert driver.forget("ck:k") is False
        assert driver.has("ck:k") is False
        assert driver.get("ck:k") is self.absent

    def test_falsy_values_are_stored(self, driver: CacheDriver) -> None:
        values = {"ck:zero": 0, "ck:empty": "", "ck:false": False, "ck:list": [], "ck:bytes": b""}
        for key, value in values.items():
            driver.put(key, value)
        for key, value in values.items():
            got = driver.get(key)
            assert got == value and type(got) is type(value), key
            assert driver.has(key), key

    def test_get_many_returns_every_asked_key_with_missing_for_absent_ones(self, driver: CacheDriver) -> None:
        driver.put("ck:1", ENTRY)
        driver.put("ck:2", 2)
        assert driver.get_many(["ck:1", "ck:2", "ck:3"]) == {"ck:1": ENTRY, "ck:2": 2, "ck:3": MISSING}
        assert driver.get_many([]) == {}

    def test_put_many_stores_every_item_and_delete_many_counts_the_existing_ones(self, driver: CacheDriver) -> None:
        items = {f"ck:item:{i}": ("v", i) for i in range(30)}
        assert driver.put_many(items, ttl=60) is True
        assert driver.get_many(list(items)) == items
        assert driver.delete_many([*list(items)[:10], "ck:never-written"]) == 10
        remaining = driver.get_many(list(items))
        assert [k for k, v in remaining.items() if v is MISSING] == list(items)[:10]
        assert driver.delete_many([]) == 0

    def test_add_stores_only_when_the_key_is_absent(self, driver: CacheDriver) -> None:
        assert driver.add("ck:lock", "first", ttl=30) is True
        assert driver.add("ck:lock", "second", ttl=30) is False
        assert driver.get("ck:lock") == "first"
        driver.forget("ck:lock")
        assert driver.add("ck:lock", "third") is True

    def test_increment_counts_from_zero_and_reads_back_as_int(self, driver: CacheDriver) -> None:
        assert driver.increment("ck:n", 5) == 5
        assert driver.decrement("ck:n", 2) == 3
        assert driver.increment("ck:n") == 4
        assert driver.get("ck:n") == 4 and type(driver.get("ck:n")) is int
        driver.put("ck:gen", 41)  # a raw int put by the driver is a counter
        assert driver.increment("ck:gen", 8) == 49

    def test_decrement_below_zero_is_exact_and_counts_back_up(self, driver: CacheDriver) -> None:
        assert driver.increment("ck:c", 2) == 2
        assert driver.decrement("ck:c", 5) == -3
        assert driver.get("ck:c") == -3
        assert driver.increment("ck:c", 10) == 7
        assert driver.decrement("ck:fresh", 4) == -4

    @pytest.mark.parametrize(("amount", "ttl"), [(1, None), (1, 60.0), (-1, None)],
                             ids=["up", "up-with-ttl", "down-below-zero"])
    def test_increments_from_8_threads_are_atomic(self, driver: CacheDriver, amount: int, ttl: float | None) -> None:
        barrier = threading.Barrier(8)
        errors: list[BaseException] = []

        def work() -> None:
            try:
                barrier.wait()
                for _ in range(100):
                    driver.increment("ck:counter", amount, ttl)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert driver.get("ck:counter") == 800 * amount

    def test_ping_returns_the_seconds_taken(self, driver: CacheDriver) -> None:
        elapsed = driver.ping()
        assert isinstance(elapsed, float) and 0 < elapsed < 1

    def test_close_is_idempotent_and_the_driver_works_after_it(self, driver: CacheDriver) -> None:
        driver.put("ck:a", 1)
        driver.close()
        driver.close()
        assert driver.get("ck:a") == 1
        assert driver.put("ck:b", 2) and driver.get("ck:b") == 2


    # -- atomic locks (issue 15 item 1): the driver primitives under Cache.lock ----------------
    def test_a_lock_is_acquired_once_and_released_only_by_its_owner(self, driver: CacheDriver) -> None:
        assert driver.acquire_lock("ck:__lock__:job", "alice", 30) is True
        assert driver.acquire_lock("ck:__lock__:job", "bob", 30) is False
        assert driver.lock_owner("ck:__lock__:job") == "alice"
        assert driver.release_lock("ck:__lock__:job", "bob") is False  # not the owner: still held
        assert driver.acquire_lock("ck:__lock__:job", "carol", 30) is False
        assert driver.release_lock("ck:__lock__:job", "alice") is True
        assert driver.lock_owner("ck:__lock__:job") is None
        assert driver.release_lock("ck:__lock__:job", "alice") is False  # released already
        assert driver.acquire_lock("ck:__lock__:job", "bob", 30) is True

    def test_force_release_frees_a_lock_whoever_holds_it(self, driver: CacheDriver) -> None:
        assert driver.acquire_lock("ck:__lock__:f", "alice", 30) is True
        driver.force_release_lock("ck:__lock__:f")
        assert driver.acquire_lock("ck:__lock__:f", "bob", 30) is True
        assert driver.release_lock("ck:__lock__:f", "alice") is False
        assert driver.lock_owner("ck:__lock__:f") == "bob"


class KeepsStoredNone:
    """Stores that tell a stored ``None`` from "nothing here" (every built-in one)."""

    def test_stored_none_is_a_hit_not_a_miss(self, driver: CacheDriver) -> None:
        driver.put("ck:none", None)
        assert driver.get("ck:none") is None
        assert driver.has("ck:none") is True
        assert driver.get_many(["ck:none"]) == {"ck:none": None}


class EnumeratesKeys:
    """Stores that can list their keys (``can_scan``): scan with ``fnmatch`` globs, flush what they own."""

    def test_the_driver_says_it_can_scan(self, driver: CacheDriver) -> None:
        """The flag the runtime reads (pattern invalidation by scan) says what ``scan`` does."""
        driver.put("ck:scanned", 1)
        assert driver.can_scan is True
        assert list(driver.scan("ck:scan*")) == ["ck:scanned"]

    def test_scan_yields_matching_keys_as_str(self, driver: CacheDriver) -> None:
        assert list(driver.scan("ck:*")) == []
        driver.put_many({"ck:user:1": 1, "ck:user:2": 2, "ck:user:10": 10, "ck:post:1": 1})
        found = list(driver.scan("ck:user:*"))
        assert all(type(k) is str for k in found)
        assert sorted(found) == ["ck:user:1", "ck:user:10", "ck:user:2"]
        assert sorted(driver.scan("ck:user:?")) == ["ck:user:1", "ck:user:2"]
        assert sorted(driver.scan("*:1")) == ["ck:post:1", "ck:user:1"]
        assert list(driver.scan("CK:*")) == []  # case-sensitive

    def test_flush_removes_every_key(self, driver: CacheDriver) -> None:
        driver.put_many({f"ck:k{i}": i for i in range(50)})
        assert driver.flush() is True
        assert list(driver.scan("*")) == []
        assert set(driver.get_many([f"ck:k{i}" for i in range(50)]).values()) == {MISSING}
        assert driver.put("ck:after", 1) and driver.get("ck:after") == 1


class SharedStore:
    """Stores whose data outlives the driver object and is shared by every driver on the same store."""

    @pytest.fixture
    def second(self) -> Iterator[CacheDriver]:
        """Another driver on the same store."""
        raise NotImplementedError

    def test_a_second_driver_on_the_same_store_sees_writes_counters_and_deletes(
        self, driver: CacheDriver, second: CacheDriver
    ) -> None:
        driver.put("ck:a", ENTRY)
        assert second.get("ck:a") == ENTRY
        driver.increment("ck:n", 3)
        assert second.increment("ck:n", 4) == 7
        assert driver.get("ck:n") == 7
        assert second.add("ck:a", "other") is False
        second.forget("ck:a")
        assert driver.get("ck:a") is MISSING

    def test_increments_from_two_drivers_are_atomic(self, driver: CacheDriver, second: CacheDriver) -> None:
        def work(d: CacheDriver) -> None:
            for _ in range(100):
                d.increment("ck:both")

        threads = [threading.Thread(target=work, args=(d,)) for d in (driver, second) * 2]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert driver.get("ck:both") == 400

    def test_a_lock_excludes_a_second_driver_on_the_same_store(self, driver: CacheDriver, second: CacheDriver) -> None:
        assert driver.acquire_lock("ck:__lock__:both", "one", 30) is True
        assert second.acquire_lock("ck:__lock__:both", "two", 30) is False
        assert second.release_lock("ck:__lock__:both", "two") is False
        assert second.lock_owner("ck:__lock__:both") == "one"
        assert second.release_lock("ck:__lock__:both", "one") is True  # the owner's token, from elsewhere
        assert driver.acquire_lock("ck:__lock__:both", "three", 30) is True

    def test_only_one_of_many_racing_drivers_gets_a_lock(self, driver: CacheDriver, second: CacheDriver) -> None:
        won: list[str] = []

        def race(d: CacheDriver, owner: str) -> None:
            if d.acquire_lock("ck:__lock__:race", owner, 30):
                won.append(owner)

        threads = [threading.Thread(target=race, args=(d, f"o{i}")) for i, d in enumerate((driver, second) * 4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(won) == 1

    def test_increment_of_a_non_integer_value_is_a_provider_error_and_keeps_the_value(
        self, driver: CacheDriver
    ) -> None:
        driver.put("ck:entry", ENTRY)
        with pytest.raises(ProviderError, match="not an integer"):
            driver.increment("ck:entry")
        assert driver.get("ck:entry") == ENTRY


# -- the stores ---------------------------------------------------------------------------------------
class TestMemoryDriver(KeepsStoredNone, EnumeratesKeys, DriverConformance):
    @pytest.fixture
    def driver(self) -> Iterator[CacheDriver]:
        from cachekit.providers.memory import MemoryDriver

        yield MemoryDriver(max_size=None, clock=FakeClock())


class TestMinimalCustomDriver(DriverConformance):
    """Only ``get put forget flush``: every other method is the base class's default."""

    absent = None  # this driver answers None for "nothing here", as the contract allows

    @pytest.fixture
    def driver(self) -> Iterator[CacheDriver]:
        yield DictDriver()


class TestFileDriver(SharedStore, KeepsStoredNone, EnumeratesKeys, DriverConformance):
    @pytest.fixture
    def driver(self, tmp_path: Path) -> Iterator[CacheDriver]:
        from cachekit.providers.file import FileDriver

        d = FileDriver(tmp_path / "store")
        yield d
        d.close()

    @pytest.fixture
    def second(self, tmp_path: Path) -> Iterator[CacheDriver]:
        from cachekit.providers.file import FileDriver

        d = FileDriver(tmp_path / "store")
        yield d
        d.close()


class TestRedisDriver(SharedStore, KeepsStoredNone, EnumeratesKeys, DriverConformance):
    @pytest.fixture
    def options(self, redis_server: Any) -> dict[str, Any]:
        return {"url": redis_server.url}

    @pytest.fixture
    def driver(self, options: dict[str, Any]) -> Iterator[CacheDriver]:
        yield from self._driver(options)

    @pytest.fixture
    def second(self, options: dict[str, Any]) -> Iterator[CacheDriver]:
        yield from self._driver(options)

    @staticmethod
    def _driver(options: dict[str, Any]) -> Iterator[CacheDriver]:
        pytest.importorskip("redis")
        from cachekit.providers.redis import RedisDriver

        d = RedisDriver(namespace="ck:", **options)
        yield d
        d.close()


class TestRedisClusterDriver(TestRedisDriver):
    @pytest.fixture
    def options(self, redis_cluster: Any) -> dict[str, Any]:
        return {"cluster": True, "startup_nodes": list(redis_cluster.startup_nodes)}


class TestMemcachedDriver(SharedStore, KeepsStoredNone, DriverConformance):
    @pytest.fixture
    def servers(self, memcached_server: Any) -> list[str]:
        return [memcached_server.address]

    @pytest.fixture
    def driver(self, servers: list[str]) -> Iterator[CacheDriver]:
        yield from self._driver(servers)

    @pytest.fixture
    def second(self, servers: list[str]) -> Iterator[CacheDriver]:
        yield from self._driver(servers)

    @staticmethod
    def _driver(servers: list[str]) -> Iterator[CacheDriver]:
        pytest.importorskip("pymemcache")
        from cachekit.providers.memcached import MemcachedDriver

        d = MemcachedDriver(servers, namespace="ck:", timeout=2)
        yield d
        d.close()

    def test_the_driver_says_it_cannot_scan(self, driver: CacheDriver) -> None:
        """The flag the runtime reads says what ``scan`` does: a store that cannot list keys refuses."""
        assert driver.can_scan is False
        with pytest.raises(UnsupportedOperation, match="cannot enumerate keys"):
            list(driver.scan("ck:*"))


class TestMemcachedPoolDriver(TestMemcachedDriver):
    @pytest.fixture
    def servers(self, memcached_pool: Any) -> list[str]:
        return list(memcached_pool.servers)
