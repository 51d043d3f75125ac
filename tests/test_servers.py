"""The server fixtures give real, isolated, restartable servers."""

from __future__ import annotations

import socket

import pytest
from servers import HOST, ask

pytestmark = pytest.mark.timeout(60)


def _memcached(port: int, request: bytes) -> bytes:
    with socket.create_connection((HOST, port), timeout=5) as sock:
        sock.sendall(request)
        return sock.recv(65536)


def test_redis_server_answers_on_its_own_port(redis_server) -> None:
    assert redis_server.port != 6379
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    client = redis_server.client()
    try:
        assert client.set("k", "v")
        assert client.get("k") == b"v"
        assert client.config_get("save")["save"] == ""
    finally:
        client.close()


def test_redis_server_is_empty_at_the_start_of_each_test_part_1(redis_server) -> None:
    client = redis_server.client()
    try:
        assert client.dbsize() == 0
        client.set("left-behind", 1)
    finally:
        client.close()


def test_redis_server_is_empty_at_the_start_of_each_test_part_2(redis_server) -> None:
    client = redis_server.client()
    try:
        assert client.dbsize() == 0
    finally:
        client.close()


def test_redis_server_restarts_on_the_same_port(redis_server) -> None:
    port = redis_server.port
    redis_server.stop()
    assert not redis_server.running
    assert ask(port, b"PING\r\n") == b""
    redis_server.start()
    assert redis_server.port == port
    assert ask(port, b"PING\r\n").startswith(b"+PONG")


def test_redis_server_left_stopped_is_running_again_in_the_next_test_part_1(redis_server) -> None:
    redis_server.stop()
    assert not redis_server.running


def test_redis_server_left_stopped_is_running_again_in_the_next_test_part_2(redis_server) -> None:
    assert ask(redis_server.port, b"PING\r\n").startswith(b"+PONG")


def test_redis_cluster_spreads_keys_over_three_primaries(redis_cluster) -> None:
    assert len(redis_cluster.nodes) == 3
    assert redis_cluster.startup_nodes == [f"127.0.0.1:{port}" for _, port in redis_cluster.nodes]
    client = redis_cluster.client()
    try:
        for i in range(60):
            client.set(f"key:{i}", i)
        per_node = [ask(port, b"DBSIZE\r\n") for _, port in redis_cluster.nodes]
        counts = [int(answer.strip()[1:]) for answer in per_node]
        assert sum(counts) == 60
        assert all(count > 0 for count in counts)
        assert client.get("key:7") == b"7"
    finally:
        client.close()


def test_redis_cluster_is_empty_at_the_start_of_each_test(redis_cluster) -> None:
    assert all(ask(port, b"DBSIZE\r\n").strip() == b":0" for _, port in redis_cluster.nodes)
    assert all(b"cluster_state:ok" in ask(port, b"CLUSTER INFO\r\n") for _, port in redis_cluster.nodes)


def test_redis_sentinel_names_the_primary(redis_sentinel) -> None:
    import redis.sentinel

    host, port = redis_sentinel.sentinels[0].split(":")
    sentinel = redis.sentinel.Sentinel([(host, int(port))], socket_timeout=5)
    try:
        master = sentinel.discover_master(redis_sentinel.service_name)
        assert master == ("127.0.0.1", redis_sentinel.master.port)
    finally:
        for client in sentinel.sentinels:
            client.close()


def test_memcached_server_stores_and_is_flushed_per_test_part_1(memcached_server) -> None:
    assert memcached_server.address == f"127.0.0.1:{memcached_server.port}"
    assert _memcached(memcached_server.port, b"set k 0 0 1\r\nv\r\n") == b"STORED\r\n"
    assert _memcached(memcached_server.port, b"get k\r\n").startswith(b"VALUE k 0 1\r\nv\r\n")


def test_memcached_server_stores_and_is_flushed_per_test_part_2(memcached_server) -> None:
    assert _memcached(memcached_server.port, b"get k\r\n") == b"END\r\n"


def test_memcached_server_restarts_on_the_same_port(memcached_server) -> None:
    port = memcached_server.port
    memcached_server.stop()
    assert ask(port, b"version\r\n") == b""
    memcached_server.start()
    assert memcached_server.port == port
    assert ask(port, b"version\r\n").startswith(b"VERSION")


def test_memcached_pool_has_three_distinct_running_servers(memcached_pool) -> None:
    assert len(set(memcached_pool.servers)) == 3
    for address in memcached_pool.servers:
        port = int(address.rsplit(":", 1)[1])
        assert ask(port, b"version\r\n").startswith(b"VERSION")
