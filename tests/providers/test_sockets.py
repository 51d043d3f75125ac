"""Kernel socket timeouts (cachekit/providers/sockets.py) on the Redis driver's plain TCP connections:
one system call per read, the same timeouts, and a timeout still reported as a timeout."""

from __future__ import annotations

import socket
import struct
import sys
import time
from typing import Any

import pytest
from servers import need_module

need_module("redis")
import redis  # noqa: E402

from cachekit.errors import ProviderError  # noqa: E402
from cachekit.providers import sockets  # noqa: E402
from cachekit.providers.base import CALL  # noqa: E402
from cachekit.providers.redis import RedisDriver  # noqa: E402
from cachekit.runtime.deadline import Call  # noqa: E402

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kernel timeouts are used on Linux only")


def receive_timeout(sock: socket.socket) -> float:
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.calcsize("@ll"))
    seconds, micros = struct.unpack("@ll", raw)
    return seconds + micros / 1e6


def connection_socket(driver: RedisDriver) -> socket.socket:
    client = driver.clients.current
    pool = client.connection_pool
    (conn,) = list(pool._available_connections)
    return conn._sock  # type: ignore[no-any-return]


@linux_only
def test_a_redis_connection_blocks_with_the_kernels_timeouts(redis_server: Any) -> None:
    d = RedisDriver(url=redis_server.url, socket_timeout=0.75)
    try:
        d.put("k", "v")
        sock = connection_socket(d)
        assert sock.gettimeout() is None  # blocking: no poll before each read
        assert receive_timeout(sock) == pytest.approx(0.75, abs=0.005)
        assert d.get("k") == "v"
    finally:
        d.close()


@linux_only
def test_a_read_shortened_by_the_deadline_sets_the_timeout_back(redis_server: Any) -> None:
    d = RedisDriver(url=redis_server.url, socket_timeout=0.75)
    try:
        d.put("k", "v")
        within = Call()
        within.until = time.monotonic() + 0.3  # less than the socket timeout left in this call
        token = CALL.set(within)
        try:
            assert d.get("k") == "v"
        finally:
            CALL.reset(token)
        assert receive_timeout(connection_socket(d)) == pytest.approx(0.75, abs=0.005)
    finally:
        d.close()


def test_a_black_holed_read_ends_by_the_deadline_as_a_timeout() -> None:
    with socket.socket() as listener:  # accepts connections (kernel backlog), never replies
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        d = RedisDriver(host="127.0.0.1", port=listener.getsockname()[1], socket_timeout=2.0, retries=0)
        within = Call()
        within.until = time.monotonic() + 0.2
        token = CALL.set(within)
        start = time.monotonic()
        try:
            with pytest.raises(ProviderError, match="TimeoutError") as info:
                d.get("ck:a")
        finally:
            CALL.reset(token)
            d.close()
        assert time.monotonic() - start < 1.0  # the 0.2 s budget, not the 2 s socket timeout
        assert isinstance(info.value.__cause__, redis.TimeoutError)


def test_only_plain_tcp_sockets_get_kernel_timeouts() -> None:
    a, b = socket.socketpair()  # AF_UNIX
    with a, b:
        a.settimeout(1.0)
        assert not sockets.use_kernel_timeouts(a, 1.0)
        assert a.gettimeout() == 1.0
    with socket.socket() as tcp:
        tcp.settimeout(1.0)
        assert not sockets.use_kernel_timeouts(tcp, None)  # no timeout configured: left alone
        assert tcp.gettimeout() == 1.0
        assert sockets.use_kernel_timeouts(tcp, 1.0) is sockets.KERNEL_TIMEOUTS


@linux_only
def test_limit_sets_python_timeouts_on_a_socket_in_pythons_mode() -> None:
    with socket.socket() as tcp:
        tcp.settimeout(2.0)
        sockets.limit(tcp, 0.5)
        assert tcp.gettimeout() == 0.5
        tcp.settimeout(None)
        sockets.limit(tcp, 0.25)
        assert tcp.gettimeout() is None
        assert receive_timeout(tcp) == pytest.approx(0.25, abs=0.005)
        sockets.limit(tcp, 0.0000001)  # never 0 0, which would mean no limit at all
        assert receive_timeout(tcp) > 0
