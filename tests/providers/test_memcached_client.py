"""The memcached driver's own protocol paths (``memcached_client.py``): ``get_many`` without pymemcache's
per-key checks and ``set_then_get`` (a set and a get in one round trip) answer as pymemcache does, and
close a connection whose answer went wrong."""

from __future__ import annotations

import socket
import struct
import sys
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from servers import need_module

need_module("pymemcache")

from pymemcache.client.base import Client  # noqa: E402
from pymemcache.exceptions import (  # noqa: E402
    MemcacheIllegalInputError,
    MemcacheServerError,
    MemcacheUnexpectedCloseError,
    MemcacheUnknownError,
)

from cachekit.providers.memcached_client import BoundedClient, build_client  # noqa: E402


@pytest.fixture
def clients(memcached_server: Any) -> Any:
    server = (memcached_server.host, memcached_server.port)
    ours, stock = BoundedClient(server, timeout=2), Client(server, timeout=2)
    yield ours, stock
    ours.close()
    stock.close()


def test_get_many_answers_as_pymemcache(clients: Any) -> None:
    ours, stock = clients
    values = {f"k{i}": (b"v%d" % i) * (i * 37 % 500) for i in range(300)}  # some empty, spread over reads
    values["big"] = b"x" * 300_000 + b"\r\nEND\r\n" + b"y" * 70_000  # several socket reads, protocol inside
    stock.set_many(values, noreply=False)
    keys = [*values, "absent", "k1"]
    assert ours.get_many(keys) == stock.get_many(keys) == values
    assert ours.get_many([]) == stock.get_many([]) == {}
    assert ours.get_many(["absent"]) == {}
    assert ours.get("k3") == values["k3"]  # the connection is still in step


@pytest.mark.parametrize("key", ["a b", "a\nb", "é", "", "a\x00b", "k" * 251])
def test_a_key_pymemcache_refuses_is_refused_the_same(clients: Any, key: str) -> None:
    ours, stock = clients

    def outcome(client: Any) -> Any:
        try:
            return client.get_many(["ok", key])
        except Exception as exc:  # compared
            return type(exc)

    assert outcome(ours) == outcome(stock)  # an error for all but the empty key, which pymemcache sends
    assert outcome(ours) == {} or outcome(ours) is MemcacheIllegalInputError
    with pytest.raises(MemcacheIllegalInputError):
        ours.set_then_get("ok", b"v", 0, [key])


def test_set_then_get_stores_then_reads(memcached_server: Any) -> None:
    pool = build_client([memcached_server.address], timeout=2, connect_timeout=2, no_delay=True)
    try:
        pool.set("gen", b"7", noreply=False)
        assert pool.set_then_get("entry", b"payload", 60, ["gen", "entry", "absent"]) == (
            True, {"gen": b"7", "entry": b"payload"})
        assert pool.get("entry") == b"payload"
    finally:
        pool.close()


class FakeSocket:
    """Answers ``reply`` in chunks of ``size`` bytes, then end of stream."""

    def __init__(self, reply: bytes, size: int = 7) -> None:
        self.reply, self.size, self.closed = reply, size, False

    def sendall(self, data: bytes) -> None:
        pass

    def recv(self, n: int) -> bytes:
        chunk, self.reply = self.reply[:min(n, self.size)], self.reply[min(n, self.size):]
        return chunk

    def settimeout(self, timeout: Any) -> None:
        pass

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("reply, error", [
    (b"VALUE a 0 3\r\nabc\r\nEND\r\n", None),
    (b"VALUE a 0 3\r\nabc\r\nVALUE zz 0 1\r\nz\r\nEND\r\n", MemcacheUnknownError),  # a key not asked
    (b"VALUE a 0 x\r\nabc\r\nEND\r\n", MemcacheUnknownError),
    (b"SERVER_ERROR out of memory\r\n", MemcacheServerError),
    (b"VALUE a 0 3\r\nab", MemcacheUnexpectedCloseError),  # cut mid-value
    (b"VALUE a 0 3\r\nabc\r\nEN", MemcacheUnexpectedCloseError),
    (b"STORED\r\n", MemcacheUnknownError),
])
def test_a_wrong_answer_raises_and_closes_the_connection(reply: bytes, error: Any) -> None:
    client = BoundedClient(("127.0.0.1", 1))
    sock = client.sock = FakeSocket(reply)
    if error is None:
        assert client.get_many(["a", "b"]) == {"a": b"abc"}
        assert client.sock is sock
        return
    with pytest.raises(error):
        client.get_many(["a", "b"])
    assert sock.closed and client.sock is None


@pytest.mark.parametrize("reply, error", [
    (b"STORED\r\nVALUE g 0 1\r\n5\r\nEND\r\n", None),
    (b"NOT_STORED\r\nEND\r\n", None),
    (b"SERVER_ERROR object too large for cache\r\nEND\r\n", MemcacheServerError),
    (b"STORED\r\n", MemcacheUnexpectedCloseError),
    (b"VALUE g 0 1\r\n5\r\nEND\r\n", MemcacheUnknownError),
])
def test_set_then_get_reads_both_answers_or_closes(reply: bytes, error: Any) -> None:
    client = BoundedClient(("127.0.0.1", 1))
    sock = client.sock = FakeSocket(reply, size=5)
    if error is None:
        stored, found = client.set_then_get("k", b"v", 0, ["g"])
        assert (stored, found) == ((True, {"g": b"5"}) if reply.startswith(b"STORED") else (False, {}))
        return
    with pytest.raises(error):
        client.set_then_get("k", b"v", 0, ["g"])
    assert sock.closed and client.sock is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kernel socket timeouts: Linux only")
def test_a_connection_blocks_with_the_kernel_timeouts_and_a_silent_server_times_out(memcached_server: Any) -> None:
    from faultproxy import FaultProxy

    from cachekit.errors import ProviderError
    from cachekit.providers.memcached import MemcachedDriver

    client = BoundedClient((memcached_server.host, memcached_server.port), timeout=0.25, connect_timeout=1)
    try:
        assert client.get_many(["absent"]) == {}
        assert client.sock.gettimeout() is None  # blocking: no poll before each read
        timeval = client.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.calcsize("@ll"))
        seconds, micros = struct.unpack("@ll", timeval)
        assert seconds == 0 and 250_000 <= micros <= 260_000  # rounded up to the kernel's clock tick
    finally:
        client.close()
    with FaultProxy(memcached_server.host, memcached_server.port) as proxy:
        driver = MemcachedDriver([proxy.address], timeout=0.25, connect_timeout=1)
        try:
            assert driver.get("k") is not None
            proxy.blackhole()
            started = time.monotonic()
            with pytest.raises(ProviderError, match="timed out"):
                driver.get("k")
            assert 0.2 < time.monotonic() - started < 1.0
            proxy.restore()
            assert driver.put("k", 1) and driver.get("k") == 1  # a fresh connection, in step
        finally:
            driver.close()


@settings(max_examples=300, deadline=None)
@given(keys=st.lists(st.text(max_size=8) | st.sampled_from(["ns:h:x", "ns:a", "k" * 200, "k" * 201, "a\x00b", "a b"])
                     | st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12),
                     max_size=6))
def test_a_batch_of_keys_gets_the_storage_keys_one_by_one_would(keys: list[str]) -> None:
    from cachekit.providers.memcached import MemcachedDriver

    driver = MemcachedDriver(["127.0.0.1:1"], namespace="ns:")
    assert driver._storage_keys(keys) == {driver.storage_key(k): k for k in keys}
