"""Redis provider on redis-py: one server, a Sentinel-managed primary, or a Redis Cluster.

Values are encoded by a :class:`~cachekit.serializers.Serializer` (raw ints as decimal ASCII, so
``INCRBY`` works on counters); TTLs are set by the server (``SET ... PX``). Every round trip is bounded
by the configured timeouts and retried with exponential backoff on connection errors; whatever still
fails is raised as :class:`~cachekit.errors.ProviderError` with the redis-py exception as ``__cause__``
(the runtime decides whether to swallow it). ``flush`` deletes only the keys under the driver's
namespace, on every primary of a cluster.

>>> driver = RedisDriver(url="redis://:s3cret@localhost:6379/0", namespace="app:")
>>> driver.can_scan                       # nothing is connected until the first command
True
>>> driver                                # the password is never shown
<RedisDriver redis://:**********@localhost:6379/0 namespace='app:'>
"""

from __future__ import annotations

import fnmatch
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ProviderError, ValueTooLargeError, require
from .base import MISSING, CacheDriver
from .redis_client import (
    RedisClients,
    RedisOptions,
    as_timeout,
    provider_errors,
    redis_errors,
    redis_glob_escape,
    server_pattern,
)

if TYPE_CHECKING:
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

#: delete KEYS[1] only if it holds ARGV[1] (an atomic lock's release by its owner)
_RELEASE_IF_OWNER = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


def _px(ttl: float | None) -> int | None:
    """A TTL in seconds as Redis milliseconds; ``None`` (or infinity) means no expiry."""
    if ttl is None or ttl == math.inf:
        return None
    return max(1, int(ttl * 1000))  # a TTL <= 0 expires at once; PX 0 would be an error


def _failed(driver: RedisDriver, operation: str, exc: Exception) -> ProviderError:
    """What ``provider_errors`` raises for ``exc`` (get, put, get_many catch it inline: one frame less)."""
    exc = as_timeout(exc)
    error = ProviderError(driver.scrub(f"redis {operation} failed: {type(exc).__name__}: {exc}"))
    error.__cause__ = exc
    return error


class RedisDriver(CacheDriver):
    """A cache driver on Redis (standalone, Sentinel or Cluster), from plain keyword options.

    The connection options are those of :class:`~cachekit.providers.redis_client.RedisOptions`
    (``url`` or ``host``/``port``/``db``, ``username``/``password``, ``cluster``/``startup_nodes``,
    ``sentinel``/``service_name``, timeouts, ``retries``, ``max_connections``). ``serializer`` encodes
    values (default: the redis default, see :func:`~cachekit.serializers.provider_serializer`);
    ``max_value_size`` refuses larger encoded values. ``namespace`` is the key prefix this driver owns:
    :meth:`flush` deletes ``namespace*`` and nothing else (an empty namespace owns the whole database).
    The client is created on first use; use :meth:`from_client` to wrap a ``redis.Redis`` /
    ``RedisCluster`` you built yourself.
    """

    can_scan = True
    name = "redis"

    def __init__(
        self,
        *,
        serializer: Serializer | None = None,
        namespace: str = "",
        max_value_size: int | None = None,
        url: str | None = None,
        host: str = "localhost",
        port: int = 6379,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        cluster: bool = False,
        startup_nodes: Iterable[str] = (),
        sentinel: Iterable[str] = (),
        service_name: str = "mymaster",
        connect_timeout: float = 1.0,
        socket_timeout: float = 1.0,
        retries: int = 2,
        max_connections: int = 50,
    ) -> None:
        require("redis", "redis")
        options = RedisOptions(
            url=url, host=host, port=port, db=db, username=username, password=password, cluster=cluster,
            startup_nodes=tuple(startup_nodes), sentinel=tuple(sentinel), service_name=service_name,
            connect_timeout=connect_timeout, socket_timeout=socket_timeout, retries=retries,
            max_connections=max_connections,
        )
        self._setup(RedisClients(options), serializer, namespace, max_value_size, cluster)

    def _setup(self, clients: RedisClients, serializer: Serializer | None, namespace: str,
               max_value_size: int | None, cluster: bool) -> None:
        if serializer is None:
            from ..serializers import provider_serializer

            serializer = provider_serializer("redis")
        #: Encodes values to bytes and back (raw ints as decimal ASCII).
        self.serializer: Serializer = serializer
        #: The key prefix this driver owns (``flush`` deletes ``namespace*`` only).
        self.namespace = namespace
        self.cluster = cluster
        #: The sync client and the asyncio clients (one per event loop) of this driver.
        self.clients = clients
        self._max_value_size = max_value_size
        self._increment_script: Any = None
        self._extend_script: Any = None
        self._pexpire_gt = True  # False once the server refused PEXPIRE ... GT (before Redis 7)
        # get, put and get_many send their command as the client's get/set/mget would (execute_command:
        # the same retries, deadline, parsing), without their argument handling: on a standalone or
        # Sentinel client cachekit built (a client given to from_client may override those methods)
        self._commands = clients.owned and not cluster

    @classmethod
    def from_client(
        cls,
        client: Any,
        serializer: Serializer | None = None,
        namespace: str = "",
        *,
        max_value_size: int | None = None,
        **options: Any,
    ) -> RedisDriver:
        """Wrap an existing ``redis.Redis`` or ``redis.cluster.RedisCluster`` (bytes responses).

        The client stays the caller's: :meth:`close` does not close it. Connection ``options`` (the
        constructor's), when given, are those of :meth:`async_client` and of the asyncio operations.
        """
        require("redis", "redis")
        from redis.cluster import RedisCluster

        if client.get_encoder().decode_responses:
            raise ValueError("RedisDriver needs a client with decode_responses=False (payloads are bytes)")
        is_cluster = isinstance(client, RedisCluster)
        redis_options = RedisOptions(**{"cluster": is_cluster, **options}) if options else None
        driver = cls.__new__(cls)
        driver._setup(RedisClients(redis_options, client), serializer, namespace, max_value_size, is_cluster)
        return driver

    # -- clients ------------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        """The redis-py client (``Redis`` or ``RedisCluster``), created on first use."""
        return self.clients.sync()

    def async_client(self) -> Any:
        """A ``redis.asyncio`` client with the same settings, created on first call and then reused.

        Close it with :meth:`aclose`. Not available on a driver made by :meth:`from_client` without
        connection options.
        """
        return self.clients.async_client()

    async def aclose(self) -> None:
        """Close the client made by :meth:`async_client` and the running loop's client, then :meth:`close`.

        Clients of other event loops cannot be awaited from this one; they close with their loop.
        """
        await self.clients.aclose()
        self.close()

    def scrub(self, message: str) -> str:
        """``message`` without the passwords of this driver's options (used by every error it raises)."""
        return self.clients.scrub(message)

    def _encode(self, value: Any) -> bytes:
        payload = self.serializer.dumps(value)
        limit = self._max_value_size
        if limit is not None and len(payload) > limit:
            raise ValueTooLargeError(f"encoded value is {len(payload)} bytes; max_value_size is {limit}")
        return payload

    def _decoded(self, keys: list[str], values: list[bytes | None]) -> dict[str, Any]:
        return dict(zip(keys, self.serializer.loads_many(values, MISSING), strict=True))

    def _set_pipeline(self, client: Callable[[], Any], mapping: Mapping[str, Any], ttl: float | None) -> Any:
        """A pipeline of ``SET key payload [PX ttl]`` on ``client()``, every value encoded first (one too
        large stores nothing)."""
        payloads = [(key, self._encode(value)) for key, value in mapping.items()]
        px = _px(ttl)
        pipe = client().pipeline(transaction=False)
        for key, payload in payloads:
            pipe.set(key, payload, px=px)
        return pipe

    # -- native asyncio twins (the runtime's aget/aput/... use these) ------------------------
    @provider_errors("get")
    async def aget(self, key: str) -> Any:
        data = await self.clients.loop_client().get(key)
        return MISSING if data is None else self.serializer.loads(data)

    @provider_errors("get_many")
    async def aget_many(self, keys: Iterable[str]) -> dict[str, Any]:
        keys = list(keys)
        if not keys:
            return {}
        client = self.clients.loop_client()
        values = await (client.mget_nonatomic(keys) if self.cluster else client.mget(keys))
        return self._decoded(keys, values)

    @provider_errors("put")
    async def aput(self, key: str, value: Any, ttl: float | None = None) -> bool:
        payload = self._encode(value)
        return bool(await self.clients.loop_client().set(key, payload, px=_px(ttl)))

    @provider_errors("put_many")
    async def aput_many(self, mapping: Mapping[str, Any], ttl: float | None = None) -> bool:
        if not mapping:
            return True
        return all(await self._set_pipeline(self.clients.loop_client, mapping, ttl).execute())

    @provider_errors("forget")
    async def aforget(self, key: str) -> bool:
        return bool(await self.clients.loop_client().unlink(key))

    @provider_errors("add")
    async def aadd(self, key: str, value: Any, ttl: float | None = None) -> bool:
        payload = self._encode(value)
        return bool(await self.clients.loop_client().set(key, payload, nx=True, px=_px(ttl)))

    @provider_errors("increment")
    async def aincrement(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        px = _px(ttl)
        client = self.clients.loop_client()
        if px is None:
            return int(await client.incrby(key, amount))
        return int(await client.eval(_INCREMENT_WITH_TTL, 1, key, amount, px))

    # -- required -------------------------------------------------------------------------------
    def get(self, key: str) -> Any:
        """The stored object, or :data:`MISSING`."""
        try:
            client = self.clients.current or self.clients.sync()
            data = client.execute_command("GET", key, keys=[key]) if self._commands else client.get(key)
        except redis_errors() as exc:  # evaluated only when something was raised
            raise _failed(self, "get", exc)  # noqa: B904 - _failed() sets the cause
        return MISSING if data is None else self.serializer.loads(data)

    def put(self, key: str, value: Any, ttl: float | None = None) -> bool:
        """``SET key payload [PX ttl]``."""
        payload = self._encode(value)
        px = None if ttl is None or ttl == math.inf else max(1, int(ttl * 1000))  # _px(ttl), inline
        try:
            client = self.clients.current or self.clients.sync()
            if self._commands:  # set()'s command, without its argument checks (see _setup)
                return bool(client.execute_command("SET", key, payload, *(() if px is None else ("PX", px))))
            return bool(client.set(key, payload, px=px))
        except redis_errors() as exc:
            raise _failed(self, "put", exc)  # noqa: B904 - _failed() sets the cause

    @provider_errors("forget")
    def forget(self, key: str) -> bool:
        """``UNLINK key``; ``True`` if the key existed."""
        return bool(self.clients.sync().unlink(key))

    @provider_errors("flush")
    def flush(self) -> bool:
        """Delete every key under the namespace (``SCAN MATCH namespace*`` + batched ``UNLINK``)."""
        client = self.clients.sync()
        pattern = redis_glob_escape(self.namespace) + "*"
        batch: list[bytes] = []
        for key in self._scan_server(client, pattern):
            batch.append(key)
            if len(batch) >= _UNLINK_BATCH:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)
        return True

    # -- optional -------------------------------------------------------------------------------
    @provider_errors("has")
    def has(self, key: str) -> bool:
        """``EXISTS key``."""
        return bool(self.clients.sync().exists(key))

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """One ``MGET`` (on a cluster: one ``MGET`` per slot, pipelined per node)."""
        keys = list(keys)
        return dict(zip(keys, self.get_values(keys), strict=True))

    def get_values(self, keys: list[str]) -> list[Any]:
        """:meth:`get_many`'s objects in the order of ``keys`` (MISSING for an absent key)."""
        if not keys:
            return []
        try:
            client = self.clients.current or self.clients.sync()
            values = client.mget_nonatomic(keys) if self.cluster else \
                client.execute_command("MGET", *keys, keys=keys) if self._commands else client.mget(keys)
        except redis_errors() as exc:
            raise _failed(self, "get_many", exc)  # noqa: B904 - _failed() sets the cause
        return self.serializer.loads_many(values, MISSING)

    @provider_errors("put_many")
    def put_many(self, mapping: Mapping[str, Any], ttl: float | None = None) -> bool:
        """One pipeline of ``SET key payload [PX ttl]``."""
        if not mapping:
            return True
        return all(self._set_pipeline(self.clients.sync, mapping, ttl).execute())

    @provider_errors("delete_many")
    def delete_many(self, keys: Iterable[str]) -> int:
        """``UNLINK k1 k2 ...`` (split by slot on a cluster); the number of keys that existed."""
        keys = list(keys)
        if not keys:
            return 0
        return int(self.clients.sync().unlink(*keys))

    @provider_errors("add")
    def add(self, key: str, value: Any, ttl: float | None = None) -> bool:
        """``SET key payload NX [PX ttl]``: ``True`` when stored, ``False`` when the key existed."""
        payload = self._encode(value)
        return bool(self.clients.sync().set(key, payload, nx=True, px=_px(ttl)))

    @provider_errors("lock")
    def acquire_lock(self, key: str, owner: str, ttl: float) -> bool:
        """``SET key owner NX PX ttl``: the owner token raw, so a script can compare it."""
        return bool(self.clients.sync().set(key, owner.encode(), nx=True, px=max(1, int(ttl * 1000))))

    @provider_errors("unlock")
    def release_lock(self, key: str, owner: str) -> bool:
        """Compare-and-delete in one Lua script: only the owner's token is deleted."""
        return bool(self.clients.sync().eval(_RELEASE_IF_OWNER, 1, key, owner.encode()))

    @provider_errors("unlock")
    def force_release_lock(self, key: str) -> bool:
        return bool(self.clients.sync().delete(key))

    @provider_errors("lock")
    def lock_owner(self, key: str) -> str | None:
        data = self.clients.sync().get(key)
        return None if data is None else bytes(data).decode("utf-8", "replace")

    @provider_errors("increment")
    def increment(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        """``INCRBY`` on the server (atomic); a key created by the increment expires after ``ttl``."""
        px = _px(ttl)
        client = self.clients.sync()
        if px is None:
            return int(client.incrby(key, amount))
        script = self._increment_script
        if script is None:
            script = self._increment_script = client.register_script(_INCREMENT_WITH_TTL)
        return int(script(keys=[key], args=[amount, px]))

    def decrement(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        """``INCRBY key -amount`` (see :meth:`increment`)."""
        return self.increment(key, -amount, ttl)

    @provider_errors("extend_ttl")
    def extend_ttl(self, keys: Iterable[str], ttl: float | None) -> bool:
        """``PEXPIRE key ms GT`` (a Lua script before Redis 7), or ``PERSIST`` for ``None``, pipelined."""
        from redis.exceptions import ResponseError

        keys = list(keys)
        if not keys:
            return True
        px = _px(ttl)
        client = self.clients.sync()
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
        return True

    @provider_errors("scan")
    def scan(self, pattern: str) -> Iterator[str]:
        """Keys matching the ``fnmatch`` ``pattern``, from every primary; each key once."""
        client = self.clients.sync()
        seen: set[str] = set()
        for raw in self._scan_server(client, server_pattern(pattern)):
            key = raw.decode("utf-8", "surrogateescape")
            if key not in seen and fnmatch.fnmatchcase(key, pattern):
                seen.add(key)
                yield key

    def _scan_server(self, client: Any, match: str) -> Iterator[bytes]:
        if self.cluster:
            return client.scan_iter(match=match, count=_SCAN_COUNT, target_nodes=client.PRIMARIES)
        return client.scan_iter(match=match, count=_SCAN_COUNT)

    def close(self) -> None:
        """Close the connections of a client this driver created; it reconnects if used again.

        A client given to :meth:`from_client` is left open: it belongs to the caller.
        """
        if self.clients.owned:
            self._increment_script = self._extend_script = None
        self.clients.close()

    @provider_errors("ping")
    def ping(self) -> float:
        """``PING``; seconds taken."""
        start = time.perf_counter()
        self.clients.sync().ping()
        return time.perf_counter() - start

    @property
    def signed(self) -> bool:
        """``True`` when the serializer signs payloads and rejects unsigned ones."""
        return self.serializer.signed

    def __repr__(self) -> str:
        options = self.clients.options
        where = "from_client" if options is None else options.where()
        return f"<RedisDriver {where} namespace={self.namespace!r}>"
