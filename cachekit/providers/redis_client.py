"""Building redis-py clients for the Redis driver, and turning their errors into ``ProviderError``.

:class:`RedisOptions` holds the plain connection options (a standalone server by ``url`` or
``host``/``port``/``db``, a Sentinel-managed primary, or a Cluster) and builds a sync or an asyncio client
from them. :class:`RedisClients` keeps the clients of one driver: the sync one, created on first use, and
one asyncio client per event loop (``redis.asyncio`` connections are bound to the loop that opened them).
:func:`provider_errors` is the one place where a redis-py exception becomes a
:class:`~cachekit.errors.ProviderError`, with every password the options know scrubbed from the message.

A standalone sync client's plain TCP connections read each answer (and connect) with their timeouts
shortened to what is left of the current region call's deadline (:func:`~cachekit.providers.base.time_left`,
kept by ``runtime/deadline.py``), through redis-py's per-read ``timeout`` (redis-py 5.1 and later); other
connection kinds (TLS, unix sockets, Sentinel, Cluster, asyncio) keep their configured timeouts, so a
call on them may overrun its deadline by one operation timeout. On Linux those plain TCP connections
wait with the kernel's socket timeouts (:mod:`~cachekit.providers.sockets`: one system call per read).

redis-py is imported only when a client is built or an error is caught.
"""

from __future__ import annotations

import functools
import inspect
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic
from typing import Any, NamedTuple, TypeVar

from ..errors import ProviderError, UnsupportedOperation
from .base import CALL, time_left
from .sockets import limit, use_kernel_timeouts

__all__ = ["RedisClients", "RedisOptions", "as_timeout", "provider_errors", "redis_errors", "redis_glob_escape",
           "server_pattern"]

_GLOB_SPECIAL = "*?[]\\"

F = TypeVar("F", bound=Callable[..., Any])


@functools.cache
def redis_errors() -> tuple[type[Exception], ...]:
    """The exceptions redis-py raises for a failed command (imported on first use)."""
    from redis.exceptions import RedisClusterException, RedisError

    return (RedisError, RedisClusterException)


def as_timeout(exc: Exception) -> Exception:
    """``exc``, or a redis-py ``TimeoutError`` caused by it when it is the ``ConnectionError`` redis-py
    raises for a read that ran past the kernel's socket timeout (``sockets.py``: ``BlockingIOError`` on a
    blocking socket means exactly that), so a timeout reads as one whichever timeouts the socket has."""
    if isinstance(exc.__context__, BlockingIOError):
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        if isinstance(exc, RedisConnectionError) and not isinstance(exc, RedisTimeoutError):
            timeout = RedisTimeoutError("Timeout reading from socket")
            timeout.__cause__ = exc
            return timeout
    return exc


def provider_errors(operation: str) -> Callable[[F], F]:
    """Decorate a method of an object with ``scrub(message)``: a redis-py error it raises becomes a
    :class:`ProviderError` ``"redis <operation> failed: <type>: <message>"`` (passwords scrubbed), with
    the redis-py exception as ``__cause__``. Works on plain methods, coroutines and generators."""

    def fail(owner: Any, exc: Exception) -> ProviderError:
        exc = as_timeout(exc)
        error = ProviderError(owner.scrub(f"redis {operation} failed: {type(exc).__name__}: {exc}"))
        error.__cause__ = exc
        return error

    def decorate(method: F) -> F:
        if inspect.iscoroutinefunction(method):
            @functools.wraps(method)
            async def coroutine(self: Any, *args: Any, **kwargs: Any) -> Any:
                try:
                    return await method(self, *args, **kwargs)
                except redis_errors() as exc:  # evaluated only when something was raised
                    raise fail(self, exc)  # noqa: B904 - fail() sets the cause

            return coroutine  # type: ignore[return-value]
        if inspect.isgeneratorfunction(method):
            @functools.wraps(method)
            def generator(self: Any, *args: Any, **kwargs: Any) -> Any:
                try:
                    yield from method(self, *args, **kwargs)
                except redis_errors() as exc:
                    raise fail(self, exc)  # noqa: B904 - fail() sets the cause

            return generator  # type: ignore[return-value]

        @functools.wraps(method)
        def plain(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except redis_errors() as exc:
                raise fail(self, exc)  # noqa: B904 - fail() sets the cause

        return plain  # type: ignore[return-value]

    return decorate


def redis_glob_escape(text: str) -> str:
    """``text`` as a literal in a Redis ``MATCH`` pattern."""
    return "".join("\\" + c if c in _GLOB_SPECIAL else c for c in text)


def server_pattern(pattern: str) -> str:
    """A Redis ``MATCH`` pattern selecting a superset of the keys the ``fnmatch`` ``pattern`` selects.

    ``*`` and ``?`` mean the same in both; a ``[...]`` class differs (``[!x]`` vs ``[^x]``, escapes),
    so from the first ``[`` on the server only filters by the literal prefix.
    """
    out = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "[":
            # a one-character class (``[*]``, ``[?]``, ``[[]``: an escaped namespace) is that literal
            if i + 2 < n and pattern[i + 2] == "]" and pattern[i + 1] not in "!]":
                out.append(redis_glob_escape(pattern[i + 1]))
                i += 3
                continue
            out.append("*")
            break
        out.append("\\\\" if c == "\\" else c)
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class RedisOptions:
    """How to reach Redis: the plain keyword options of :class:`~cachekit.providers.redis.RedisDriver`.

    ``cluster``: a Redis Cluster, through ``startup_nodes`` (or ``url``, or ``host``/``port``);
    ``sentinel``: the addresses of Sentinels that monitor ``service_name``; else one server at ``url``
    (``redis://``, ``rediss://``, ``unix://``) or ``host``/``port``/``db``. Node and sentinel addresses are
    ``host:port``, ``user:password@host:port`` or ``redis://...`` URLs. Timeouts are in seconds; connection
    errors are retried ``retries`` times with exponential backoff.
    """

    url: str | None = None
    host: str = "localhost"
    port: int = 6379
    db: int = 0
    username: str | None = None
    password: str | None = None
    cluster: bool = False
    startup_nodes: tuple[str, ...] = ()
    sentinel: tuple[str, ...] = ()
    service_name: str = "mymaster"
    connect_timeout: float = 1.0
    socket_timeout: float = 1.0
    retries: int = 2
    max_connections: int = 50

    def secrets(self) -> list[str]:
        """Every credential these options hold (password, and those inside URLs), for :meth:`scrub`."""
        from ..config.secrets import SecretUrl

        found: list[str] = [self.password] if self.password else []
        for url in [self.url, *self.startup_nodes, *self.sentinel]:
            if url:
                found += SecretUrl(url).url_secrets()
        return found

    def scrub(self, message: str) -> str:
        """``message`` (built from a redis-py exception) without these options' passwords."""
        from ..config.secrets import scrub

        return scrub(message, self.secrets())

    def where(self) -> str:
        """Where the client connects, passwords masked (for ``repr``)."""
        from ..config.secrets import mask_url

        if self.cluster:
            nodes = ",".join(map(mask_url, self.startup_nodes))
            return f"cluster {nodes or (mask_url(self.url) if self.url else f'{self.host}:{self.port}')}"
        if self.sentinel:
            return f"sentinel {self.service_name}@{','.join(map(mask_url, self.sentinel))}"
        return mask_url(self.url) if self.url else f"{self.host}:{self.port}/{self.db}"

    def build(self, *, asyncio: bool) -> tuple[Any, Any]:
        """A new client (``redis.Redis``, ``RedisCluster`` or a Sentinel's primary), and the ``Sentinel``
        object behind it (``None`` unless ``sentinel``), from ``redis.asyncio`` when ``asyncio``."""
        if asyncio:
            import redis.asyncio as lib
            from redis.asyncio import cluster as cluster_lib
            from redis.asyncio import sentinel as sentinel_lib
            from redis.asyncio.retry import Retry
        else:
            import redis as lib
            from redis import cluster as cluster_lib
            from redis import sentinel as sentinel_lib
            from redis.retry import Retry
        from redis.backoff import ExponentialBackoff

        options: dict[str, Any] = {
            "socket_connect_timeout": self.connect_timeout,
            "socket_timeout": self.socket_timeout,
            # retries ConnectionError / TimeoutError only: a wrong command is not retried
            "retry": Retry(ExponentialBackoff(), self.retries),
            "max_connections": self.max_connections,
        }
        if self.username is not None:
            options["username"] = self.username
        if self.password is not None:
            options["password"] = self.password

        if self.cluster:
            if self.startup_nodes:
                nodes = [_node(n, 6379) for n in self.startup_nodes]
                _credentials(options, nodes)  # redis://user:pw@node:port
                cluster_nodes = [cluster_lib.ClusterNode(n.host, n.port) for n in nodes]
                return cluster_lib.RedisCluster(startup_nodes=cluster_nodes, **options), None
            if self.url:
                return cluster_lib.RedisCluster.from_url(self.url, **options), None
            return cluster_lib.RedisCluster(host=self.host, port=self.port, **options), None
        if self.sentinel:
            max_connections = options.pop("max_connections")
            nodes = [_node(s, 26379) for s in self.sentinel]
            # what redis-py gives the sentinels by default (the socket_* options), plus their own password
            sentinel_kwargs = {k: v for k, v in options.items() if k.startswith("socket_")}
            _credentials(sentinel_kwargs, nodes)
            sentinel = sentinel_lib.Sentinel([(n.host, n.port) for n in nodes], sentinel_kwargs=sentinel_kwargs,
                                             **options)
            return sentinel.master_for(self.service_name, db=self.db, max_connections=max_connections), sentinel
        if self.url:
            client = lib.Redis.from_url(self.url, **options)
        else:
            client = lib.Redis(host=self.host, port=self.port, db=self.db, **options)
        if not asyncio:
            _bound_timeouts(client)
        return client, None


class RedisClients:
    """The clients of one driver: a sync client made on first use, and one asyncio client per event loop.

    Built from ``options``; or around a ``client`` that belongs to the caller (then :meth:`close` leaves it
    open, and asyncio clients exist only when ``options`` are given too).
    """

    def __init__(self, options: RedisOptions | None, client: Any = None) -> None:
        self.options = options
        #: ``False`` for a client given by the caller: :meth:`close` leaves it open
        self.owned = client is None
        #: the sync client once made (or given), else ``None``: what the driver's hot paths read first
        self.current: Any = client
        self._sentinel: Any = None
        self._async_client: Any = None
        self._loop_clients: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def scrub(self, message: str) -> str:
        return self.options.scrub(message) if self.options is not None else message

    @property
    def connected(self) -> Any:
        """The sync client if it exists, else ``None``."""
        return self.current

    def sync(self) -> Any:
        """The sync client, created on first use (a connection failure is a :class:`ProviderError`)."""
        client = self.current
        if client is not None:
            return client
        with self._lock:
            if self.current is None:
                options = self._need_options("a client")
                try:
                    self.current, self._sentinel = options.build(asyncio=False)
                except redis_errors() as exc:
                    raise ProviderError(self.scrub(f"redis: cannot connect: {exc}")) from exc
            return self.current

    def async_client(self) -> Any:
        """An asyncio client for the caller, created on first call and then reused (see :meth:`aclose`)."""
        if self._async_client is None:
            self._async_client = self._need_options("async_client()").build(asyncio=True)[0]
        return self._async_client

    def loop_client(self) -> Any:
        """The asyncio client of the running event loop, created on first use in that loop."""
        import asyncio

        loop = asyncio.get_running_loop()
        client = self._loop_clients.get(loop)
        if client is None:
            client = self._loop_clients[loop] = self._need_options("async operations").build(asyncio=True)[0]
        return client

    @property
    def loop_count(self) -> int:
        """How many event loops have an asyncio client open."""
        return len(self._loop_clients)

    def _need_options(self, what: str) -> RedisOptions:
        if self.options is None:
            raise UnsupportedOperation(f"{what} needs connection options: from_client(client, url=..., ...)")
        return self.options

    def close(self) -> None:
        """Close the sync client (if this object made it) and the Sentinel connections behind it."""
        if not self.owned:
            return
        with self._lock:
            client, self.current = self.current, None
            sentinel, self._sentinel = self._sentinel, None
        if client is None:
            return
        client.close()
        if sentinel is not None:
            for sentinel_client in sentinel.sentinels:
                sentinel_client.close()

    async def aclose(self) -> None:
        """Close the client of :meth:`async_client` and the running loop's client.

        Clients of other event loops cannot be awaited from this one; they close with their loop.
        """
        import asyncio

        clients = [self._async_client, self._loop_clients.pop(asyncio.get_running_loop(), None)]
        self._async_client = None
        for client in clients:
            if client is not None:
                await client.aclose()


class _Node(NamedTuple):
    host: str
    port: int
    username: str | None = None
    password: str | None = None


def _host_port(address: str, default_port: int = 6379) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep:
        return address, default_port
    return host.strip("[]"), int(port)


def _node(address: str, default_port: int) -> _Node:
    """``host:port``, ``user:password@host:port`` or ``redis://[user:password@]host[:port]``."""
    if "@" not in address and "://" not in address:
        return _Node(*_host_port(address, default_port))
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(address if "://" in address else f"redis://{address}")
    return _Node(parts.hostname or "localhost", parts.port or default_port,
                 unquote(parts.username) if parts.username else None,
                 unquote(parts.password) if parts.password is not None else None)


def _credentials(options: dict[str, Any], nodes: list[_Node]) -> None:
    """Take the first node's credentials into ``options`` where the options did not set them."""
    node = next((n for n in nodes if n.password is not None), None)
    if node is not None:
        options.setdefault("password", node.password)
        if node.username:
            options.setdefault("username", node.username)


#: the shortest read or connect timeout given to a command (a budget nearly spent still gets one answer)
_FLOOR = 0.005


@functools.cache
def _bounded_connection() -> type | None:
    """``redis.Connection`` with its reads and connects bounded by the region call's deadline (``None``:
    this redis-py has no per-read timeout)."""
    from redis.connection import Connection

    if "timeout" not in inspect.signature(Connection.read_response).parameters:
        return None

    class BoundedConnection(Connection):  # type: ignore[misc]
        def read_response(self, *args: Any, **kwargs: Any) -> Any:
            within = CALL.get()  # time_left(), inline: one read per command
            if within is not None:
                left = within.until - monotonic()
                timeout = self.socket_timeout
                if timeout is not None and left < timeout and "timeout" not in kwargs:
                    sock = self._sock
                    if sock is None or sock.gettimeout() is not None:  # Python's timeouts: redis-py's own
                        kwargs["timeout"] = max(left, _FLOOR)
                    else:  # the kernel's (sockets.py): shortened for this read, then set back
                        limit(sock, max(left, _FLOOR))
                        try:
                            return super().read_response(*args, **kwargs)
                        finally:
                            if self._sock is sock:  # not closed meanwhile
                                limit(sock, timeout)
            return super().read_response(*args, **kwargs)

        def _connect(self) -> Any:
            left = time_left()
            timeout = self.socket_connect_timeout
            if left is None or timeout is None or left >= timeout:
                sock = super()._connect()
            else:
                self.socket_connect_timeout = max(left, _FLOOR)
                try:
                    sock = super()._connect()
                finally:
                    self.socket_connect_timeout = timeout
            use_kernel_timeouts(sock, self.socket_timeout)  # one system call per read (sockets.py)
            return sock

    return BoundedConnection


def _bound_timeouts(client: Any) -> None:
    """Make a standalone client's plain TCP connections :func:`_bounded_connection`'s (a no-op for any
    other connection class)."""
    from redis.connection import Connection

    pool = getattr(client, "connection_pool", None)
    bounded = _bounded_connection()
    if bounded is not None and pool is not None and pool.connection_class is Connection:
        pool.connection_class = bounded
