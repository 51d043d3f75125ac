"""Redis provider on redis-py: one server, a Sentinel-managed primary, or a Redis Cluster.

Values are encoded by a :class:`~cachekit.serializers.Serializer` (raw ints as decimal ASCII, so
``INCRBY`` works on counters); TTLs are set by the server (``SET ... PX``). Every round trip is bounded
by the configured timeouts and retried with exponential backoff on connection errors; whatever still
fails is raised as :class:`~cachekit.errors.ProviderError` with the redis-py exception as ``__cause__``
(the runtime decides whether to swallow it). ``flush`` deletes only the keys under the driver's
namespace, on every primary of a cluster.

>>> from cachekit.config.models import RedisProviderConfig
>>> driver = RedisDriver(RedisProviderConfig(url="redis://:s3cret@localhost:6379/0"), namespace="app:")
>>> driver.shared, driver.can_scan        # nothing is connected until the first command
(True, True)
>>> driver                                # the password is never shown
<RedisDriver redis://:**********@localhost:6379/0 namespace='app:'>
"""

from __future__ import annotations

import fnmatch
import math
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import ProviderError, UnsupportedOperation, ValueTooLargeError, require
from .base import MISSING, CacheDriver

if TYPE_CHECKING:
    from ..config.models import RedisProviderConfig
    from ..serializers import Serializer

__all__ = ["RedisDriver"]

#: INCRBY, and PEXPIRE when the increment created the key: atomic on the server.
_INCREMENT_WITH_TTL = """
local existed = redis.call('EXISTS', KEYS[1])
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if existed == 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return value
"""
#: PEXPIRE ... GT for servers before Redis 7: extend a key's TTL, never shorten it, keep "no expiry".
_EXTEND_TTL = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl >= 0 and ttl < tonumber(ARGV[1]) then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return ttl
"""
_SCAN_COUNT = 1000
_UNLINK_BATCH = 1000
_GLOB_SPECIAL = "*?[]\\"


def _redis_errors() -> tuple[type[Exception], ...]:
    from redis.exceptions import RedisClusterException, RedisError

    return (RedisError, RedisClusterException)


def _px(ttl: float | None) -> int | None:
    """A TTL in seconds as Redis milliseconds; ``None`` (or infinity) means no expiry."""
    if ttl is None or ttl == math.inf:
        return None
    return max(1, int(ttl * 1000))  # a TTL <= 0 expires at once; PX 0 would be an error


def _host_port(address: str, default_port: int = 6379) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep:
        return address, default_port
    return host.strip("[]"), int(port)


def _escape_glob(text: str) -> str:
    return "".join("\\" + c if c in _GLOB_SPECIAL else c for c in text)


def _server_pattern(pattern: str) -> str:
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
                out.append(_escape_glob(pattern[i + 1]))
                i += 3
                continue
            out.append("*")
            break
        out.append("\\\\" if c == "\\" else c)
        i += 1
    return "".join(out)


class RedisDriver(CacheDriver):
    """A cache driver on Redis (standalone, Sentinel or Cluster), built from a ``RedisProviderConfig``.

    ``namespace`` is the key prefix this driver owns: :meth:`flush` deletes ``namespace*`` and nothing
    else (an empty namespace owns the whole database). The client is created on first use; use
    :meth:`from_client` to wrap a ``redis.Redis`` / ``RedisCluster`` you built yourself.
    """

    can_scan = True
    shared = True
    name = "redis"

    def __init__(
        self,
        config: RedisProviderConfig,
        serializer: Serializer | None = None,
        namespace: str = "",
    ) -> None:
        require("redis", "redis")
        #: The provider config the client is built from.
        self.config = config
        #: Encodes values to bytes and back (raw ints as decimal ASCII).
        self.serializer: Serializer = serializer if serializer is not None else _serializer_for(config)
        #: The key prefix this driver owns (``flush`` deletes ``namespace*`` only).
        self.namespace = namespace
        self.cluster = config.cluster
        self._max_value_size = config.max_value_size
        self._errors = _redis_errors()
        self._client: Any = None
        self._owns_client = True
        self._has_config = True
        self._sentinel: Any = None
        self._async_client: Any = None
        self._loop_clients: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._increment_script: Any = None
        self._extend_script: Any = None
        self._pexpire_gt = True  # False once the server refused PEXPIRE ... GT (before Redis 7)
        self._connect_lock = threading.Lock()

    @classmethod
    def from_client(
        cls,
        client: Any,
        serializer: Serializer | None = None,
        namespace: str = "",
        *,
        config: RedisProviderConfig | None = None,
    ) -> RedisDriver:
        """Wrap an existing ``redis.Redis`` or ``redis.cluster.RedisCluster`` (bytes responses).

        The client stays the caller's: :meth:`close` does not close it. ``config``, when given, supplies
        ``max_value_size`` and the settings of :meth:`async_client`.
        """
        require("redis", "redis")
        from redis.cluster import RedisCluster

        from ..config.models import RedisProviderConfig

        if client.get_encoder().decode_responses:
            raise ValueError("RedisDriver needs a client with decode_responses=False (payloads are bytes)")
        is_cluster = isinstance(client, RedisCluster)
        driver = cls(
            config or RedisProviderConfig(cluster=is_cluster),
            serializer=serializer,
            namespace=namespace,
        )
        driver.cluster = is_cluster
        driver._client = client
        driver._owns_client = False
        driver._has_config = config is not None
        return driver

    # -- client -------------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        """The redis-py client (``Redis`` or ``RedisCluster``), created on first use."""
        return self._client or self._connect()

    def _connect(self) -> Any:
        with self._connect_lock:
            if self._client is None:
                try:
                    self._client = self._build_client(asyncio=False)
                except self._errors as exc:
                    raise ProviderError(self._scrub(f"redis: cannot connect: {exc}")) from exc
            return self._client

    def _build_client(self, *, asyncio: bool) -> Any:
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

        cfg = self.config
        options: dict[str, Any] = {
            "socket_connect_timeout": cfg.connect_timeout,
            "socket_timeout": cfg.socket_timeout,
            # retries ConnectionError / TimeoutError only: a wrong command is not retried
            "retry": Retry(ExponentialBackoff(), cfg.retries),
            "max_connections": cfg.max_connections,
        }
        if cfg.username is not None:
            options["username"] = cfg.username
        if cfg.password is not None:
            options["password"] = cfg.password.get_secret_value()

        url = cfg.url.get_secret_value() if cfg.url else None
        if cfg.cluster:
            if cfg.startup_nodes:
                nodes = [_node(n.get_secret_value(), 6379) for n in cfg.startup_nodes]
                _credentials(options, nodes)  # redis://user:pw@node:port
                cluster_nodes = [cluster_lib.ClusterNode(n.host, n.port) for n in nodes]
                return cluster_lib.RedisCluster(startup_nodes=cluster_nodes, **options)
            if url:
                return cluster_lib.RedisCluster.from_url(url, **options)
            return cluster_lib.RedisCluster(host=cfg.host, port=cfg.port, **options)
        if cfg.sentinel:
            max_connections = options.pop("max_connections")
            nodes = [_node(s.get_secret_value(), 26379) for s in cfg.sentinel]
            # what redis-py gives the sentinels by default (the socket_* options), plus their own password
            sentinel_kwargs = {k: v for k, v in options.items() if k.startswith("socket_")}
            _credentials(sentinel_kwargs, nodes)
            sentinel = sentinel_lib.Sentinel([(n.host, n.port) for n in nodes], sentinel_kwargs=sentinel_kwargs,
                                             **options)
            if not asyncio:
                self._sentinel = sentinel
            return sentinel.master_for(cfg.service_name, db=cfg.db, max_connections=max_connections)
        if url:
            return lib.Redis.from_url(url, **options)
        return lib.Redis(host=cfg.host, port=cfg.port, db=cfg.db, **options)

    def async_client(self) -> Any:
        """A ``redis.asyncio`` client with the same settings, created on first call and then reused.

        Close it with :meth:`aclose`. Not available on a driver made by :meth:`from_client` without
        a ``config``.
        """
        if self._async_client is None:
            if not self._has_config:
                raise UnsupportedOperation("async_client() needs a config: from_client(client, config=...)")
            self._async_client = self._build_client(asyncio=True)
        return self._async_client

    async def aclose(self) -> None:
        """Close the client made by :meth:`async_client` and the running loop's client, then :meth:`close`.

        Clients of other event loops cannot be awaited from this one; they close with their loop.
        """
        import asyncio

        clients = [self._async_client, self._loop_clients.pop(asyncio.get_running_loop(), None)]
        self._async_client = None
        for client in clients:
            if client is not None:
                await client.aclose()
        self.close()

    def _loop_client(self) -> Any:
        """The asyncio client of the running event loop (redis.asyncio connections are loop-bound)."""
        import asyncio

        loop = asyncio.get_running_loop()
        client = self._loop_clients.get(loop)
        if client is None:
            if not self._has_config:
                raise UnsupportedOperation("async operations need a config: from_client(client, config=...)")
            client = self._loop_clients[loop] = self._build_client(asyncio=True)
        return client

    # -- native asyncio twins (the runtime's aget/aput/... use these) ------------------------
    async def aget(self, key: str) -> Any:
        try:
            data = await self._loop_client().get(key)
        except self._errors as exc:
            raise self._fail("get", exc) from exc
        return MISSING if data is None else self.serializer.loads(data)

    async def aget_many(self, keys: Iterable[str]) -> dict[str, Any]:
        keys = list(keys)
        if not keys:
            return {}
        client = self._loop_client()
        try:
            values = await (client.mget_nonatomic(keys) if self.cluster else client.mget(keys))
        except self._errors as exc:
            raise self._fail("get_many", exc) from exc
        loads = self.serializer.loads
        return {key: MISSING if data is None else loads(data) for key, data in zip(keys, values, strict=True)}

    async def aput(self, key: str, value: Any, ttl: float | None = None) -> bool:
        payload = self._encode(value)
        try:
            return bool(await self._loop_client().set(key, payload, px=_px(ttl)))
        except self._errors as exc:
            raise self._fail("put", exc) from exc

    async def aput_many(self, mapping: Mapping[str, Any], ttl: float | None = None) -> bool:
        if not mapping:
            return True
        payloads = [(key, self._encode(value)) for key, value in mapping.items()]
        px = _px(ttl)
        try:
            pipe = self._loop_client().pipeline(transaction=False)
            for key, payload in payloads:
                pipe.set(key, payload, px=px)
            return all(await pipe.execute())
        except self._errors as exc:
            raise self._fail("put_many", exc) from exc

    async def aforget(self, key: str) -> bool:
        try:
            return bool(await self._loop_client().unlink(key))
        except self._errors as exc:
            raise self._fail("forget", exc) from exc

    async def aadd(self, key: str, value: Any, ttl: float | None = None) -> bool:
        payload = self._encode(value)
        try:
            return bool(await self._loop_client().set(key, payload, nx=True, px=_px(ttl)))
        except self._errors as exc:
            raise self._fail("add", exc) from exc

    async def aincrement(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        px = _px(ttl)
        try:
            client = self._loop_client()
            if px is None:
                return int(await client.incrby(key, amount))
            return int(await client.eval(_INCREMENT_WITH_TTL, 1, key, amount, px))
        except self._errors as exc:
            raise self._fail("increment", exc) from exc

    def _fail(self, operation: str, exc: Exception) -> ProviderError:
        return ProviderError(self._scrub(f"redis {operation} failed: {type(exc).__name__}: {exc}"))

    def _scrub(self, message: str) -> str:
        """``message`` (built from a redis-py exception) without the config's passwords."""
        from ..config.secrets import scrub

        cfg = self.config
        secrets = [cfg.password.get_secret_value() if cfg.password else None]
        for url in [cfg.url, *cfg.startup_nodes, *cfg.sentinel]:
            if url is not None:
                secrets += url.url_secrets()
        return scrub(message, secrets)

    def _encode(self, value: Any) -> bytes:
        payload = self.serializer.dumps(value)
        limit = self._max_value_size
        if limit is not None and len(payload) > limit:
            raise ValueTooLargeError(f"encoded value is {len(payload)} bytes; max_value_size is {limit}")
        return payload

    # -- required -------------------------------------------------------------------------------
    def get(self, key: str) -> Any:
        """The stored object, or :data:`MISSING`."""
        try:
            data = (self._client or self._connect()).get(key)
        except self._errors as exc:
            raise self._fail("get", exc) from exc
        if data is None:
            return MISSING
        return self.serializer.loads(data)

    def put(self, key: str, value: Any, ttl: float | None = None) -> bool:
        """``SET key payload [PX ttl]``."""
        payload = self._encode(value)
        try:
            return bool((self._client or self._connect()).set(key, payload, px=_px(ttl)))
        except self._errors as exc:
            raise self._fail("put", exc) from exc

    def forget(self, key: str) -> bool:
        """``UNLINK key``; ``True`` if the key existed."""
        try:
            return bool((self._client or self._connect()).unlink(key))
        except self._errors as exc:
            raise self._fail("forget", exc) from exc

    def flush(self) -> bool:
        """Delete every key under the namespace (``SCAN MATCH namespace*`` + batched ``UNLINK``)."""
        client = self._client or self._connect()
        pattern = _escape_glob(self.namespace) + "*"
        batch: list[bytes] = []
        try:
            for key in self._scan_server(client, pattern):
                batch.append(key)
                if len(batch) >= _UNLINK_BATCH:
                    client.unlink(*batch)
                    batch.clear()
            if batch:
                client.unlink(*batch)
        except self._errors as exc:
            raise self._fail("flush", exc) from exc
        return True

    # -- optional -------------------------------------------------------------------------------
    def has(self, key: str) -> bool:
        """``EXISTS key``."""
        try:
            return bool((self._client or self._connect()).exists(key))
        except self._errors as exc:
            raise self._fail("has", exc) from exc

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """One ``MGET`` (on a cluster: one ``MGET`` per slot, pipelined per node)."""
        keys = list(keys)
        if not keys:
            return {}
        client = self._client or self._connect()
        try:
            values = client.mget_nonatomic(keys) if self.cluster else client.mget(keys)
        except self._errors as exc:
            raise self._fail("get_many", exc) from exc
        loads = self.serializer.loads
        return {key: MISSING if data is None else loads(data) for key, data in zip(keys, values, strict=True)}

    def put_many(self, mapping: Mapping[str, Any], ttl: float | None = None) -> bool:
        """One pipeline of ``SET key payload [PX ttl]``."""
        if not mapping:
            return True
        payloads = [(key, self._encode(value)) for key, value in mapping.items()]
        px = _px(ttl)
        try:
            pipe = (self._client or self._connect()).pipeline(transaction=False)
            for key, payload in payloads:
                pipe.set(key, payload, px=px)
            return all(pipe.execute())
        except self._errors as exc:
            raise self._fail("put_many", exc) from exc

    def delete_many(self, keys: Iterable[str]) -> int:
        """``UNLINK k1 k2 ...`` (split by slot on a cluster); the number of keys that existed."""
        keys = list(keys)
        if not keys:
            return 0
        try:
            return int((self._client or self._connect()).unlink(*keys))
        except self._errors as exc:
            raise self._fail("delete_many", exc) from exc

    def add(self, key: str, value: Any, ttl: float | None = None) -> bool:
        """``SET key payload NX [PX ttl]``: ``True`` when stored, ``False`` when the key existed."""
        payload = self._encode(value)
        try:
            return bool((self._client or self._connect()).set(key, payload, nx=True, px=_px(ttl)))
        except self._errors as exc:
            raise self._fail("add", exc) from exc

    def increment(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        """``INCRBY`` on the server (atomic); a key created by the increment expires after ``ttl``."""
        px = _px(ttl)
        try:
            client = self._client or self._connect()
            if px is None:
                return int(client.incrby(key, amount))
            script = self._increment_script
            if script is None:
                script = self._increment_script = client.register_script(_INCREMENT_WITH_TTL)
            return int(script(keys=[key], args=[amount, px]))
        except self._errors as exc:
            raise self._fail("increment", exc) from exc

    def decrement(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        """``INCRBY key -amount`` (see :meth:`increment`)."""
        return self.increment(key, -amount, ttl)

    def extend_ttl(self, keys: Iterable[str], ttl: float | None) -> bool:
        """``PEXPIRE key ms GT`` (a Lua script before Redis 7), or ``PERSIST`` for ``None``, pipelined."""
        from redis.exceptions import ResponseError

        keys = list(keys)
        if not keys:
            return True
        px = _px(ttl)
        client = self._client or self._connect()
        try:
            if px is None or self._pexpire_gt:
                pipe = client.pipeline(transaction=False)
                for key in keys:
                    if px is None:
                        pipe.persist(key)
                    else:
                        pipe.pexpire(key, px, gt=True)
                try:
                    pipe.execute()
                    return True
                except ResponseError as exc:
                    if px is None or ("syntax" not in str(exc).lower() and "argument" not in str(exc).lower()):
                        raise
                    self._pexpire_gt = False  # an older server: use the script from now on
            script = self._extend_script
            if script is None:
                script = self._extend_script = client.register_script(_EXTEND_TTL)
            for key in keys:
                script(keys=[key], args=[px])
        except self._errors as exc:
            raise self._fail("extend_ttl", exc) from exc
        return True

    def scan(self, pattern: str) -> Iterator[str]:
        """Keys matching the ``fnmatch`` ``pattern``, from every primary; each key once."""
        client = self._client or self._connect()
        seen: set[str] = set()
        try:
            for raw in self._scan_server(client, _server_pattern(pattern)):
                key = raw.decode("utf-8", "surrogateescape")
                if key not in seen and fnmatch.fnmatchcase(key, pattern):
                    seen.add(key)
                    yield key
        except self._errors as exc:
            raise self._fail("scan", exc) from exc

    def _scan_server(self, client: Any, match: str) -> Iterator[bytes]:
        if self.cluster:
            return client.scan_iter(match=match, count=_SCAN_COUNT, target_nodes=client.PRIMARIES)
        return client.scan_iter(match=match, count=_SCAN_COUNT)

    def close(self) -> None:
        """Close the connections of a client this driver created; it reconnects if used again.

        A client given to :meth:`from_client` is left open: it belongs to the caller.
        """
        if not self._owns_client:
            return
        with self._connect_lock:
            client, self._client = self._client, None
            sentinel, self._sentinel = self._sentinel, None
            self._increment_script = self._extend_script = None
        if client is None:
            return
        client.close()
        if sentinel is not None:
            for sentinel_client in sentinel.sentinels:
                sentinel_client.close()

    def ping(self) -> float:
        """``PING``; seconds taken."""
        start = time.perf_counter()
        try:
            (self._client or self._connect()).ping()
        except self._errors as exc:
            raise self._fail("ping", exc) from exc
        return time.perf_counter() - start

    @property
    def signed(self) -> bool:
        """``True`` when the serializer signs payloads and rejects unsigned ones."""
        return self.serializer.signed

    def __repr__(self) -> str:
        cfg = self.config
        if not self._has_config:
            where = "from_client"
        elif cfg.cluster:
            where = f"cluster {','.join(map(str, cfg.startup_nodes)) or cfg.url or f'{cfg.host}:{cfg.port}'}"
        elif cfg.sentinel:
            where = f"sentinel {cfg.service_name}@{','.join(map(str, cfg.sentinel))}"
        else:
            where = str(cfg.url) if cfg.url else f"{cfg.host}:{cfg.port}/{cfg.db}"  # str(): password masked
        return f"<RedisDriver {where} namespace={self.namespace!r}>"


class _Node(NamedTuple):
    host: str
    port: int
    username: str | None = None
    password: str | None = None


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
    """Take the first node's credentials into ``options`` where the config did not set them."""
    node = next((n for n in nodes if n.password is not None), None)
    if node is not None:
        options.setdefault("password", node.password)
        if node.username:
            options.setdefault("username", node.username)


def _serializer_for(config: RedisProviderConfig) -> Serializer:
    from .registry import serializer_for

    return serializer_for(config)
