"""The memcached client's own wire paths (``memcached_client.py``: ``get_many``, ``set_then_get``, the kernel
socket timeouts) against a real memcached, a server that answers part of an answer then stalls or hangs
up, and several servers: an answer cut short or too late never leaves a connection out of step (the
next command reads its own answer), a key pymemcache refuses is refused the same, and what memcached
itself answers (an item over its size limit) reaches the caller as the driver's error."""

from __future__ import annotations

import socket
import struct
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from servers import need_module

need_module("pymemcache")

from pymemcache.client.base import Client  # noqa: E402
from pymemcache.exceptions import MemcacheIllegalInputError  # noqa: E402

from cachekit.errors import ProviderError, ValueTooLargeError  # noqa: E402
from cachekit.providers.base import CALL, MISSING  # noqa: E402
from cachekit.providers.memcached import MemcachedDriver  # noqa: E402
from cachekit.providers.memcached_client import BoundedClient, build_client  # noqa: E402
from cachekit.providers.sockets import limit  # noqa: E402
from cachekit.runtime.deadline import Call  # noqa: E402

KERNEL = sys.platform.startswith("linux")


class Scripted:
    """A server on a free loopback port whose first connection reads one request and answers ``first``
    (then hangs up if ``hang_up``, else stays silent until ``release`` is set, then sends ``late``);
    every later connection is relayed to ``target`` (a real memcached)."""

    def __init__(self, target: tuple[str, int], first: bytes, *, hang_up: bool = False, late: bytes = b"") -> None:
        self.target, self.first, self.hang_up, self.late = target, first, hang_up, late
        self.release = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        self.first_closed = threading.Event()  # the client closed the scripted connection
        self.threads: list[threading.Thread] = []
        self._spawn(self._accept)

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            self._spawn(self._script if self.connections == 1 else self._relay, conn)

    def _script(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(1 << 20)
            conn.sendall(self.first)
            if self.hang_up:
                return
            self.release.wait(10)
            try:
                conn.sendall(self.late)  # an answer too late: a connection still in use would read it next
                conn.settimeout(5)
                while conn.recv(65536):  # until the client closes it
                    pass
                self.first_closed.set()
            except OSError:
                self.first_closed.set()

    def _relay(self, conn: socket.socket) -> None:
        upstream = socket.create_connection(self.target)

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while chunk := src.recv(65536):
                    dst.sendall(chunk)
            except OSError:
                pass
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        self._spawn(pump, conn, upstream)
        self._spawn(pump, upstream, conn)

    def close(self) -> None:
        self.release.set()
        self.listener.close()


@pytest.fixture
def target(memcached_server: Any) -> tuple[str, int]:
    return (memcached_server.host, memcached_server.port)


@pytest.fixture
def stock(target: tuple[str, int]) -> Iterator[Any]:
    client = Client(target, timeout=2)
    yield client
    client.close()


def scripted(target: tuple[str, int], first: bytes, **kw: Any) -> Scripted:
    return Scripted(target, first, **kw)


def within(seconds: float) -> Any:
    """A region call's deadline ``seconds`` from now, as the runtime sets it (``Call.until``)."""
    import time

    call = Call()
    call.until = time.monotonic() + seconds
    return CALL.set(call)


# -- an answer cut short, or too late ------------------------------------------------------------
@pytest.mark.parametrize("first", [
    b"STORED\r\nVALUE g 0 4\r\nre",  # mid-value
    b"STORED\r\nVALUE g 0 4\r\nreal\r\nEN",  # mid-line, after a whole value
    b"STOR",  # mid-line, the set's answer
    b"",  # nothing at all
])
def test_a_fused_write_cut_mid_answer_is_retried_once_on_a_fresh_connection(target: Any, stock: Any,
                                                                            first: bytes) -> None:
    stock.set("g", b"7", noreply=False)
    server = scripted(target, first, hang_up=True)
    driver = MemcachedDriver([server.address], timeout=1, connect_timeout=1)
    try:
        assert driver.put_then_get("k", "v", 60, ["g"]) == (True, {"g": 7})  # the retry, relayed to memcached
        assert server.connections == 2
        assert stock.get("k") is not None
        assert driver.get_many(["g", "k"]) == {"g": 7, "k": "v"}  # in step on the pooled connection
    finally:
        driver.close()
        server.close()


@pytest.mark.parametrize("op", ["get_many", "put_then_get", "get"])
def test_an_answer_past_the_deadline_drops_the_connection_and_the_next_command_reads_its_own(
        target: Any, stock: Any, op: str) -> None:
    # the first part of the answer comes at once, the rest only after the deadline: the connection that
    # waited for it is closed, and the late bytes are never read as the answer of a later command
    stock.set_many({"g": b"7", "a": b"1", "b": b"2"}, noreply=False)
    first = {"get_many": b"VALUE g 0 1\r\n7\r\n", "put_then_get": b"STORED\r\n", "get": b"VALUE a 0 1\r\n"}[op]
    late = {"get_many": b"END\r\n", "put_then_get": b"VALUE g 0 1\r\n9\r\nEND\r\n", "get": b"1\r\nEND\r\n"}[op]
    server = scripted(target, first, late=late)
    driver = MemcachedDriver([server.address], timeout=1, connect_timeout=1)
    try:
        token = within(0.15)
        try:
            with pytest.raises(ProviderError, match="timed out"):
                if op == "get_many":
                    driver.get_many(["g", "a"])
                elif op == "put_then_get":
                    driver.put_then_get("k", "v", 60, ["g"])
                else:
                    driver.get("a")
        finally:
            CALL.reset(token)
        assert driver.client.idle == []  # closed, not pooled
        server.release.set()  # the late answer now arrives on the old connection, if anyone reads it
        assert server.first_closed.wait(5)
        for _ in range(3):
            assert driver.get_many(["a", "b"]) == {"a": 1, "b": 2}
            assert driver.put_then_get("k", "w", 60, ["g", "b"]) == (True, {"g": 7, "b": 2})
            assert driver.get("a") == 1
    finally:
        driver.close()
        server.close()


# -- what memcached answers -------------------------------------------------------------------------
def test_a_set_memcached_refuses_as_too_large_raises_and_the_get_answer_behind_it_is_not_read_next(
        memcached_server: Any) -> None:
    driver = MemcachedDriver([memcached_server.address], timeout=2, max_value_size=None)
    try:
        assert driver.put("g", 7) and driver.put("k", "old")
        big = "x" * (1024 * 1024 + 10)  # over memcached's default 1 MiB item size
        for _ in range(3):
            with pytest.raises(ValueTooLargeError, match="too large"):
                driver.put_then_get("k", big, 60, ["g", "k"])
            assert driver.get_many(["g", "k"]) == {"g": 7, "k": MISSING}  # memcached drops the old value
            assert driver.put_then_get("k", "new", 60, ["g"]) == (True, {"g": 7})
            assert driver.get("k") == "new"
    finally:
        driver.close()


def test_put_then_get_of_no_key_is_the_put(memcached_server: Any) -> None:
    driver = MemcachedDriver([memcached_server.address], timeout=2)
    try:
        assert driver.put_then_get("k", "v", 60, []) == (True, {})
        assert driver.get("k") == "v"
        assert driver.get_many([]) == {}
    finally:
        driver.close()


@pytest.mark.parametrize("size", [0, 1, 65_535, 65_536, 65_537, 300_000, 1_000_000])
def test_values_over_several_reads_and_holding_protocol_lines_come_back_whole(target: Any, stock: Any,
                                                                              size: int) -> None:
    client = build_client([f"{target[0]}:{target[1]}"], timeout=2, connect_timeout=2, no_delay=True)
    try:
        value = (b"\r\nEND\r\nSTORED\r\nVALUE g 0 1\r\n" * (size // 29 + 1))[:size]
        stock.set("g", b"\r\nEND\r\n", noreply=False)
        assert client.set_then_get("k", value, 0, ["g", "k", "absent", "k"]) == (
            True, {"g": b"\r\nEND\r\n", "k": value})
        assert client.get_many(["k", "g", "k"]) == {"k": value, "g": b"\r\nEND\r\n"} == stock.get_many(["k", "g"])
        assert client.get("g") == b"\r\nEND\r\n"  # in step
    finally:
        client.close()


# -- keys ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["a\tb", "a\x0bb", "a\x0cb", "a\rb", " a", "a ", "\x1f", "\x7f", "k" * 250,
                                 "k" * 251, "é" * 2, "\u2028", b"bytes", 7, None])
def test_a_batch_with_any_key_answers_as_pymemcache(target: Any, stock: Any, key: Any) -> None:
    ours = BoundedClient(target, timeout=2)
    try:
        stock.set("ok", b"v", noreply=False)

        def outcome(client: Any, keys: list[Any]) -> Any:
            try:
                return client.get_many(keys)
            except Exception as exc:  # compared
                return type(exc)

        for keys in (["ok", key], [key], [key, "ok", key]):
            assert outcome(ours, keys) == outcome(stock, keys)
        assert ours.get_many(["ok"]) == {"ok": b"v"}  # in step
        if outcome(stock, [key]) is not MemcacheIllegalInputError and not isinstance(key, (bytes, int, type(None))):
            assert ours.set_then_get("ok", b"w", 0, [key])[0] and ours.get("ok") == b"w"
            return
        with pytest.raises((MemcacheIllegalInputError, TypeError)):
            ours.set_then_get("ok", b"w", 0, [key])
        with pytest.raises((MemcacheIllegalInputError, TypeError)):
            ours.set_then_get(key, b"w", 0, ["ok"])
        assert stock.get("ok") == b"v"  # nothing sent
    finally:
        ours.close()


def test_the_driver_hashes_every_key_memcached_would_refuse(memcached_server: Any) -> None:
    driver = MemcachedDriver([memcached_server.address], namespace="ns:", timeout=2)
    keys = ["ns:a b", "ns:é", "ns:\x00", "ns:" + "k" * 300, "ns:tab\t", "ns:ok", "ns:ok", "ns:h:x", ""]
    try:
        for i, k in enumerate(keys):
            assert driver.put_then_get(k, i, 60, keys)[0]
        got = driver.get_many(keys)
        assert got == {k: i for i, k in enumerate(keys)}
    finally:
        driver.close()


# -- timeouts --------------------------------------------------------------------------------------------
@pytest.mark.skipif(not KERNEL, reason="kernel socket timeouts: Linux only")
@pytest.mark.parametrize("seconds", [1e-9, 0.0049, 0.005, 0.9999999999, 1.0, 2.5, 1e-6])
def test_a_kernel_timeout_is_never_zero_and_never_below_what_was_asked(seconds: float) -> None:
    fmt = struct.Struct("@ll")
    with socket.socket() as sock:
        limit(sock, seconds)
        for opt in (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO):
            whole, micros = fmt.unpack(sock.getsockopt(socket.SOL_SOCKET, opt, fmt.size))
            assert (whole, micros) != (0, 0)  # 0 0 would be: wait forever
            assert whole + micros / 1e6 >= min(seconds, 0.9999999)


@pytest.mark.skipif(not KERNEL, reason="kernel socket timeouts: Linux only")
def test_a_spent_budget_still_gets_the_floor_and_the_socket_gets_its_timeout_back(target: Any) -> None:
    fmt = struct.Struct("@ll")
    client = BoundedClient(target, timeout=0.5, connect_timeout=1)
    seen: list[tuple[int, int]] = []
    try:
        assert client.get_many(["x"]) == {}
        real = client.sock
        client.sock = _Spy(real, lambda: seen.append(fmt.unpack(real.getsockopt(socket.SOL_SOCKET,
                                                                                  socket.SO_RCVTIMEO, fmt.size))))
        token = within(-1.0)  # the budget is already spent
        try:
            assert client.get_many(["x"]) == {}
        finally:
            CALL.reset(token)
        assert seen and all(w == 0 and 4000 <= m < 20_000 for w, m in seen)  # the 5 ms floor, kernel-rounded
        assert fmt.unpack(real.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, fmt.size))[1] >= 500_000
    finally:
        client.close()


class _Spy:
    def __init__(self, sock: socket.socket, on_recv: Any) -> None:
        self.sock, self.on_recv = sock, on_recv

    def recv(self, n: int) -> bytes:
        self.on_recv()
        return self.sock.recv(n)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


def test_a_tls_connection_keeps_pythons_timeouts(target: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl

    wrapped: list[Any] = []

    class Context(ssl.SSLContext):
        def wrap_socket(self, sock: Any, **kw: Any) -> Any:  # no TLS server here: the plain socket
            wrapped.append(sock)
            return sock

    client = BoundedClient(target, timeout=0.5, connect_timeout=1, tls_context=Context(ssl.PROTOCOL_TLS_CLIENT))
    try:
        assert client.get_many(["x"]) == {}
        assert wrapped and client.sock.gettimeout() == 0.5
        token = within(0.2)
        try:
            assert client.get_many(["x"]) == {}
        finally:
            CALL.reset(token)
        assert client.sock.gettimeout() == 0.5
    finally:
        client.close()


# -- several servers ---------------------------------------------------------------------------------
def test_several_servers_answer_as_pymemcache_and_a_fused_write_is_a_put_and_a_get(memcached_pool: Any) -> None:
    driver = MemcachedDriver(memcached_pool.servers, timeout=2)
    try:
        values = {f"k{i}": "v" * (i * 131 % 70_000) for i in range(200)}
        assert driver.put_many(values, 60)
        keys = [*values, "absent", "k1"]
        assert driver.get_many(keys) == {**values, "absent": MISSING}
        token = within(0.5)  # the same, bounded
        try:
            assert driver.get_many(keys) == {**values, "absent": MISSING}
            assert driver.put_then_get("k1", "new", 60, ["k2", "k1"]) == (True, {"k2": values["k2"], "k1": "new"})
        finally:
            CALL.reset(token)
        assert driver.put_then_get("z", 1, 60, []) == (True, {})
        for member in memcached_pool.members:  # every server got some of the keys
            stock = Client((member.host, member.port), timeout=2)
            try:
                assert stock.stats()[b"curr_items"] > 0
            finally:
                stock.close()
    finally:
        driver.close()


def test_a_cut_while_reading_a_big_value_on_several_servers_is_retried(memcached_pool: Any) -> None:
    driver = MemcachedDriver(memcached_pool.servers, timeout=2)
    try:
        assert driver.put("big", "x" * 500_000, 60)
        assert driver.get_many(["big", "absent"]) == {"big": "x" * 500_000, "absent": MISSING}
        member = next(m for m in memcached_pool.members  # restart the server holding it: a stale connection
                      if Client((m.host, m.port), timeout=2).get("big") is not None)
        member.stop()
        member.start()
        assert driver.get_many(["big", "absent"]) == {"big": MISSING, "absent": MISSING}  # retried once
        assert driver.put_then_get("big", "y" * 200_000, 60, ["big"]) == (True, {"big": "y" * 200_000})
    finally:
        driver.close()


@pytest.mark.parametrize("servers", ["one", "several"])
@pytest.mark.parametrize("op", ["get", "get_many", "put_then_get"])
def test_after_a_restart_a_pool_of_several_stale_connections_fails_no_call(request: Any, op: str,
                                                                          servers: str) -> None:
    # the driver retries a call that found its pooled connection closed by the server once: on a fresh
    # connection, not on the next idle one, which the restart closed as well
    if servers == "one":
        memcached_server = request.getfixturevalue("memcached_server")
        driver = MemcachedDriver([memcached_server.address], timeout=2)
    else:
        pool = request.getfixturevalue("memcached_pool")
        driver = MemcachedDriver(pool.servers, timeout=2)
    try:
        assert driver.put("k", 1)
        barrier = threading.Barrier(3)

        def use() -> None:
            barrier.wait()
            for _ in range(100):
                driver.get("k")

        threads = [threading.Thread(target=use) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if servers == "one":
            assert len(driver.client.idle) >= 2, "the threads never overlapped: one pooled connection"
            memcached_server.stop()
            memcached_server.start()
        else:  # restart the server holding "k"
            (holder,) = [c for c in driver.client.clients.values() if c.get("k") is not None]
            assert len(holder.idle) >= 2, "the threads never overlapped: one pooled connection"
            (memcached_server,) = [m for m in pool.members if (m.host, m.port) == holder.server]
            memcached_server.stop()
            memcached_server.start()
        call = {"get": lambda: driver.get("k"), "get_many": lambda: driver.get_many(["k"])["k"],
                "put_then_get": lambda: driver.put_then_get("k", 2, 60, ["k"])[1]["k"]}[op]
        assert call() == (2 if op == "put_then_get" else MISSING)
        assert driver.get("k") == (2 if op == "put_then_get" else MISSING)
    finally:
        driver.close()
