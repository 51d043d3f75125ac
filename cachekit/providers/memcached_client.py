"""The pymemcache clients of the memcached driver, and per-call socket timeouts.

One server gets a pooled client, several a hashing client with a pool per server; both build their
connections as :class:`BoundedClient`, a pymemcache ``Client`` whose commands run with the socket and
connect timeouts shortened to what is left of the current region call's budget
(:func:`~cachekit.providers.base.time_left`, kept by ``runtime/deadline.py``). A store call that starts
with 0.05 s of the call's budget left waits 0.05 s for its answer, not the whole ``timeout``; so a
region call on a slow or cut store ends within its deadline, as a Redis one does. Outside a region
call, or with more than ``timeout`` left (and more than ``connect_timeout`` when it must connect), a
command runs as pymemcache runs it.

On Linux a connection's socket blocks, with the kernel's send and receive timeouts set to ``timeout``
(:mod:`~cachekit.providers.sockets`), not Python's socket timeout, which polls before every read and
write: one system call per read instead of two (about 1.4 us of a 19 us loopback round trip). A
timeout then raises ``BlockingIOError`` (``EAGAIN``) where Python's raises ``TimeoutError``; the driver
reports both as a timeout. The connect itself keeps ``connect_timeout`` (pymemcache's, Python's), and a
TLS connection keeps Python's timeouts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import require
from .base import CALL, time_left
from .sockets import limit, use_kernel_timeouts

__all__ = ["BoundedClient", "build_client", "expire_time"]

_base: Any = require("pymemcache.client.base", "memcached")
_hash: Any = require("pymemcache.client.hash", "memcached")

#: the shortest timeout a command is given (a budget nearly spent still gets one answer's worth)
_FLOOR = 0.005
# the three commands every pymemcache request goes through
_fetch = _base.Client._fetch_cmd
_store = _base.Client._store_cmd
_misc = _base.Client._misc_cmd
_UnknownError = _base.MemcacheUnknownError
_ClosedError = _base.MemcacheUnexpectedCloseError
#: a connection the server closed (a restart, an idle timeout): the pool's other idle ones are as old
_STALE = (_ClosedError, BrokenPipeError, ConnectionResetError, ConnectionAbortedError)
#: bytes asked of the socket at a time (pymemcache asks 4096: a get_many of 100 entries took four reads)
_RECV = 65536


def expire_time(ttl: float | None) -> int:
    """memcached's ``exptime`` for a TTL in seconds: 0 = never, -1 = already expired. memcached reads an
    expiry above 30 days as an absolute Unix time, computed from this machine's clock."""
    if ttl is None or ttl == math.inf:
        return 0
    if not ttl > 0:  # also NaN
        return -1
    seconds = math.ceil(ttl)
    if seconds <= 30 * 24 * 3600:
        return seconds
    return min(math.ceil(time.time() + ttl), 2**31 - 1)


def _keys_line(keys: list[str]) -> bytes | None:
    """``k1 k2 ...`` for a ``get`` of ``keys``, or ``None`` when one is not a valid memcached key (not
    ASCII, empty, whitespace, NUL, over 250 bytes: pymemcache's ``check_key`` then raises its error).
    The checks run over the joined line in C, not key by key as ``check_key`` does."""
    try:
        names = [k.encode("ascii") for k in keys]
    except (AttributeError, UnicodeError):
        return None
    line = b" ".join(names)
    parts = line.split()
    # a key with whitespace splits into more parts; an empty key, or a space at a key's start or end,
    # leaves a line the parts joined again do not give back
    if len(parts) != len(names) or b" ".join(parts) != line or b"\0" in line or max(map(len, names)) > 250:
        return None
    return line


def _more(sock: Any, buf: bytearray, pos: int) -> int:
    """Drop what was read before ``pos``, append the next bytes from ``sock``; the new ``pos`` (0)."""
    del buf[:pos]
    chunk = sock.recv(_RECV)
    if not chunk:
        raise _ClosedError()
    buf += chunk
    return 0


def _read_line(sock: Any, buf: bytearray, pos: int) -> tuple[bytes, int]:
    """The next line of the answer (without ``\\r\\n``), and where the one after it starts."""
    while True:
        end = buf.find(b"\r\n", pos)
        if end >= 0:
            return bytes(buf[pos:end]), end + 2
        pos = _more(sock, buf, pos)


def _read_values(client: Any, sock: Any, buf: bytearray, pos: int, by_name: dict[bytes, str]) -> dict[str, bytes]:
    """The ``VALUE name flags size`` answers of a ``get`` up to its ``END``: ``{key asked: bytes}``."""
    found: dict[str, bytes] = {}
    while True:
        line, pos = _read_line(sock, buf, pos)
        if line == b"END":
            return found
        parts = line.split()
        if len(parts) != 4 or parts[0] != b"VALUE" or parts[1] not in by_name or not parts[3].isdigit():
            client._raise_errors(line, b"get")  # ERROR, CLIENT_ERROR, SERVER_ERROR: pymemcache's exceptions
            raise _UnknownError(line[:32])
        stop = pos + int(parts[3])
        while len(buf) < stop + 2:
            chunk = sock.recv(_RECV)
            if not chunk:
                raise _ClosedError()
            buf += chunk
        found[by_name[parts[1]]] = bytes(buf[pos:stop])
        pos = stop + 2


def _get_values(client: Any, cmd: bytes, by_name: dict[bytes, str]) -> dict[str, bytes]:
    """Send ``cmd`` (a ``get``) and read its values; on any error the connection is closed."""
    try:
        if client.sock is None:
            client._connect()
        sock = client.sock
        sock.sendall(cmd)
        return _read_values(client, sock, bytearray(), 0, by_name)
    except BaseException:
        client.close()
        raise


def _set_then_get(client: Any, key: str, data: bytes, expire: int, keys: list[str]) -> tuple[bool, dict[str, Any]]:
    """``set key`` then ``get keys``, sent in one write on ``client``'s connection: memcached answers the
    commands of a connection in order, so the ``get`` reads what the server holds once the ``set`` is
    applied. ``(stored, {key: bytes})``; on any error the connection is closed (its answers unread)."""
    line = _keys_line([key, *keys])
    if line is None or client.key_prefix:
        raise _base.MemcacheIllegalInputError(f"invalid key among {[key, *keys]!r}")
    name, _, names = line.partition(b" ")
    cmd = b"set %s 0 %d %d\r\n%s\r\n" % (name, expire, len(data), data)
    if names:  # no key to read: the set alone (memcached answers a bare ``get`` with ERROR)
        cmd += b"get " + names + b"\r\n"
    by_name = dict(zip(names.split(b" "), keys, strict=True)) if names else {}
    try:
        if client.sock is None:
            client._connect()
        sock = client.sock
        sock.sendall(cmd)
        buf = bytearray()
        line, pos = _read_line(sock, buf, 0)
        if line != b"STORED" and line != b"NOT_STORED":
            client._raise_errors(line, b"set")
            raise _UnknownError(line[:32])
        return line == b"STORED", _read_values(client, sock, buf, pos, by_name) if by_name else {}
    except BaseException:
        client.close()
        raise


class BoundedClient(_base.Client):  # type: ignore[misc]
    """A pymemcache ``Client`` whose commands wait no longer than the current region call's deadline.

    pymemcache sends every command through ``_fetch_cmd``, ``_store_cmd`` or ``_misc_cmd`` on
    ``self.sock``; a pooled client serves one thread at a time, so setting its timeouts around one
    command is safe. A connection made inside the command (the first, or after a cut) connects with
    the shortened ``connect_timeout`` too.
    """

    def _bounded(self, command: Callable[..., Any], args: Any, kwargs: Any) -> Any:
        left = time_left()
        timeout = self.timeout
        connect_timeout = self.connect_timeout
        if left is None or timeout is None or (left >= timeout and (
                self.sock is not None or (connect_timeout is not None and left >= connect_timeout))):
            return command(self, *args, **kwargs)  # neither the answer nor a connect can outwait the budget
        left = max(left, _FLOOR)
        self.timeout = min(timeout, left)
        self.connect_timeout = left if connect_timeout is None else min(connect_timeout, left)
        sock = self.sock
        if sock is not None:
            limit(sock, left)
        try:
            return command(self, *args, **kwargs)
        finally:
            self.timeout = timeout
            self.connect_timeout = connect_timeout
            sock = self.sock  # None if the command failed (pymemcache closes it), or a new one
            if sock is not None:
                limit(sock, timeout)

    def _connect(self) -> None:
        """pymemcache's connect; then, on Linux, a blocking socket with the kernel's timeouts (module doc)."""
        super()._connect()
        sock = self.sock
        if sock is not None and self.tls_context is None:
            use_kernel_timeouts(sock, self.timeout)

    def _fetch_cmd(self, *args: Any, **kwargs: Any) -> Any:
        if CALL.get() is None:  # outside a region call: as pymemcache runs it
            return _fetch(self, *args, **kwargs)
        return self._bounded(_fetch, args, kwargs)

    def _store_cmd(self, *args: Any, **kwargs: Any) -> Any:
        if CALL.get() is None:
            return _store(self, *args, **kwargs)
        return self._bounded(_store, args, kwargs)

    def _misc_cmd(self, *args: Any, **kwargs: Any) -> Any:
        if CALL.get() is None:
            return _misc(self, *args, **kwargs)
        return self._bounded(_misc, args, kwargs)

    def get_many(self, keys: Any) -> dict[str, bytes]:
        """pymemcache's ``get_many`` (values as stored bytes: the driver's serializer reads them) without its
        per-key ``check_key`` and per-value parsing calls; any key pymemcache would refuse goes to it."""
        keys = list(keys)
        line = _keys_line(keys) if keys and not self.key_prefix else None
        if line is None:
            return super().get_many(keys)
        cmd = b"get " + line + b"\r\n"
        by_name = dict(zip(line.split(b" "), keys, strict=True))
        if CALL.get() is None:
            return _get_values(self, cmd, by_name)
        return self._bounded(_get_values, (cmd, by_name), {})  # type: ignore[no-any-return]

    get_multi = get_many

    def set_then_get(self, key: str, data: bytes, expire: int, keys: list[str]) -> tuple[bool, dict[str, Any]]:
        """:func:`_set_then_get`: a ``set`` and a ``get`` in one round trip, bounded as the other commands."""
        if CALL.get() is None:
            return _set_then_get(self, key, data, expire, keys)
        return self._bounded(_set_then_get, (key, data, expire, keys), {})


def _pooled(name: str) -> Callable[..., Any]:
    """A pool method running ``BoundedClient.<name>`` on an idle connection (a new one if none is idle);
    a connection whose command failed is closed and dropped, as pymemcache's ``destroy_on_fail`` does,
    and one the server closed drops the other idle ones too: the driver's one retry then connects anew."""
    command = getattr(BoundedClient, name)

    def run(self: _PooledClient, *args: Any, **kwargs: Any) -> Any:
        idle = self.idle
        try:
            client = idle.pop()
        except IndexError:
            client = self._create_client()
        try:
            result = command(client, *args, **kwargs)
        except BaseException as exc:
            client.close()
            if isinstance(exc, _STALE):
                self.close_idle()
            raise
        idle.append(client)
        return result

    run.__name__ = run.__qualname__ = name
    return run


class _PooledClient(_base.PooledClient):  # type: ignore[misc]
    """pymemcache's ``PooledClient`` on a plain list of idle connections: ``list.pop`` and ``append`` are
    atomic, so taking and returning a connection costs two C calls, not the stock pool's context manager
    and lock (a tenth of a loopback ``get``). Unbounded, as the stock pool is by default."""

    client_class = BoundedClient

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: idle connections, the most recently used last
        self.idle: list[Any] = []

    get = _pooled("get")
    set = _pooled("set")
    add = _pooled("add")
    delete = _pooled("delete")
    get_many = _pooled("get_many")
    set_many = _pooled("set_many")
    gets = _pooled("gets")
    cas = _pooled("cas")
    incr = _pooled("incr")
    touch = _pooled("touch")
    flush_all = _pooled("flush_all")
    version = _pooled("version")
    set_then_get = _pooled("set_then_get")

    def close(self) -> None:
        """Close every idle connection (one in use is closed when it next fails, or reused)."""
        self.close_idle()
        super().close()

    def close_idle(self) -> None:
        """Close and drop every idle connection."""
        idle = self.idle
        while idle:
            try:
                client = idle.pop()
            except IndexError:
                break
            client.close()


class _NoFailoverHashClient(_hash.HashClient):  # type: ignore[misc]
    """``HashClient`` without its failover: every error reaches the caller and no server leaves the ring.

    The stock client answers a default (a miss, a failed set) without an error while a server is in
    its retry window, then remaps the server's keys to the others; the failure bookkeeping is also
    not thread-safe. The driver wants errors it can report and keys that stay where they hash. Each
    server gets a :class:`_PooledClient` (built as the client of a non-pooling ``HashClient``), as one
    server does: the same pool, and a restart's stale connections dropped together.
    """

    client_class = _PooledClient

    def _safely_run_func(self, client: Any, func: Callable[..., Any], default_val: Any,
                         *args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    def _safely_run_set_many(self, client: Any, values: Any, *args: Any, **kwargs: Any) -> Any:
        return client.set_many(values, *args, **kwargs)


def build_client(servers: Iterable[str], **options: Any) -> Any:
    """A pooled client for one server, a hashing client with a pool per server for several."""
    servers = list(servers)
    if len(servers) == 1:
        return _PooledClient(_base.normalize_server_spec(servers[0]), **options)
    return _NoFailoverHashClient(servers, use_pooling=False, **options)  # a _PooledClient each (client_class)
