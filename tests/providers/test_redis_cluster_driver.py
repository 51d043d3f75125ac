"""RedisDriver against a real 3-primary Redis Cluster."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import pytest
from servers import ask, need_module

redis = need_module("redis")

from cachekit.providers.base import MISSING  # noqa: E402
from cachekit.providers.redis import RedisDriver  # noqa: E402

pytestmark = pytest.mark.timeout(60)

NS = "ck:"
ENTRY = ("value", math.inf, None)


@pytest.fixture
def driver(redis_cluster: Any) -> Iterator[RedisDriver]:
    d = RedisDriver(cluster=True, startup_nodes=redis_cluster.startup_nodes, namespace=NS)
    yield d
    d.close()


@pytest.fixture
def raw(redis_cluster: Any) -> Iterator[Any]:
    client = redis_cluster.client()
    yield client
    client.close()


def keys_per_primary(redis_cluster: Any) -> list[int]:
    """DBSIZE of every primary, asked directly (not through the cluster client)."""
    return [int(ask(port, b"DBSIZE\r\n").strip()[1:]) for _, port in redis_cluster.nodes]


def primaries_holding(raw: Any, keys: list[str]) -> set[str]:
    return {raw.get_node_from_key(k).name for k in keys}


def test_ttl_is_expired_by_the_cluster_node(driver: RedisDriver, raw: Any) -> None:
    driver.put("ck:short", ENTRY, ttl=0.05)
    assert 0 < raw.pttl("ck:short") <= 50
    deadline = time.monotonic() + 3
    while raw.exists("ck:short") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert driver.get("ck:short") is MISSING


def test_get_many_reads_keys_spread_over_several_primaries(driver: RedisDriver, raw: Any) -> None:
    keys = [f"ck:k{i}" for i in range(100)]
    assert len(primaries_holding(raw, keys)) == 3
    driver.put_many({k: i for i, k in enumerate(keys[:80])})
    for node in raw.get_primaries():
        raw.config_resetstat(target_nodes=node)

    values = driver.get_many(keys)

    assert [values[k] for k in keys[:80]] == list(range(80))
    assert all(values[k] is MISSING for k in keys[80:])
    stats = [raw.info("commandstats", target_nodes=node) for node in raw.get_primaries()]
    assert all("cmdstat_get" not in s for s in stats)  # MGET per slot, never one GET per key
    assert all("cmdstat_mget" in s for s in stats)


def test_put_many_sets_expiries_on_every_primary(driver: RedisDriver, raw: Any, redis_cluster: Any) -> None:
    mapping = {f"ck:k{i}": ("v", i, None) for i in range(60)}
    assert driver.put_many(mapping, ttl=30) is True
    assert driver.get_many(mapping) == mapping
    assert all(0 < raw.pttl(k) <= 30_000 for k in mapping)
    assert all(count > 0 for count in keys_per_primary(redis_cluster))


def test_increment_with_and_without_ttl(driver: RedisDriver, raw: Any) -> None:
    assert driver.increment("ck:plain", 2) == 2
    assert driver.decrement("ck:plain") == 1
    assert driver.increment("ck:timed", 5, ttl=30) == 5
    assert 0 < raw.pttl("ck:timed") <= 30_000
    assert raw.pttl("ck:plain") == -1
    assert driver.get("ck:timed") == 5


def test_raw_ints_are_incrby_able_on_the_cluster(driver: RedisDriver, raw: Any) -> None:
    driver.put("ck:gen", 9)
    assert raw.incrby("ck:gen", 1) == 10
    assert driver.get("ck:gen") == 10


def test_scan_finds_matching_keys_on_every_primary(driver: RedisDriver, raw: Any) -> None:
    keys = [f"ck:user:{i}" for i in range(90)]
    driver.put_many(dict.fromkeys(keys, 1))
    driver.put("ck:post:1", 1)
    assert len(primaries_holding(raw, keys)) == 3
    assert sorted(driver.scan("ck:user:*")) == sorted(keys)


def test_flush_deletes_the_namespace_on_every_primary_and_leaves_foreign_keys(
    driver: RedisDriver, raw: Any, redis_cluster: Any
) -> None:
    driver.put_many({f"ck:k{i}": i for i in range(1500)})  # several UNLINK batches
    foreign = [f"other:{i}" for i in range(30)]
    for key in foreign:
        raw.set(key, b"foreign")
    before = keys_per_primary(redis_cluster)
    assert sum(1 for count in before if count > 0) > 1

    assert driver.flush() is True

    assert list(driver.scan("ck:*")) == []
    assert sum(keys_per_primary(redis_cluster)) == len(foreign)
    assert all(raw.get(key) == b"foreign" for key in foreign)


def test_cluster_from_url_and_from_client(redis_cluster: Any, raw: Any) -> None:
    host, port = redis_cluster.nodes[0]
    by_url = RedisDriver(cluster=True, url=f"redis://{host}:{port}", namespace=NS)
    try:
        by_url.put("ck:a", ENTRY)
        wrapped = RedisDriver.from_client(raw, namespace=NS)
        assert wrapped.cluster is True
        assert wrapped.get_many(["ck:a", "ck:b"]) == {"ck:a": ENTRY, "ck:b": MISSING}
    finally:
        by_url.close()


def test_cluster_client_gets_the_configured_timeouts(redis_cluster: Any) -> None:
    d = RedisDriver(cluster=True, startup_nodes=redis_cluster.startup_nodes, socket_timeout=0.3,
                    connect_timeout=0.6, max_connections=9)
    try:
        node = d.client.get_primaries()[0]
        pool = node.redis_connection.connection_pool
        assert pool.connection_kwargs["socket_timeout"] == 0.3
        assert pool.connection_kwargs["socket_connect_timeout"] == 0.6
        assert pool.max_connections == 9
        assert d.ping() > 0
    finally:
        d.close()


async def test_cluster_async_client_reads_what_the_driver_wrote(redis_cluster: Any) -> None:
    d = RedisDriver(cluster=True, startup_nodes=redis_cluster.startup_nodes)
    try:
        d.put("ck:a", 7)
        assert await d.async_client().get("ck:a") == b"7"
    finally:
        await d.aclose()
        d.close()
