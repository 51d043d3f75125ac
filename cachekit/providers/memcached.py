"""The memcached driver: one server or several (consistent hashing), on pymemcache.

What memcached imposes, and what this driver does about it:

- **Keys** must be at most 250 bytes of printable ASCII without spaces. A key that is not that (spaces,
  control characters, non-ASCII, empty) or that is longer than :data:`MAX_PLAIN_KEY` bytes is stored
  under ``namespace + "h:" + sha256(key)``, and its value is framed with the original key, so two keys
  can never read each other's value: a frame naming another key reads as a miss. Keys that already
  start with ``namespace + "h:"`` are hashed too, so a plain key can never land on a hashed one.
- **Values** larger than ``max_value_size`` (after serialization) are refused with
  :class:`~cachekit.errors.ValueTooLargeError` before anything is sent; the previous value stays.
- **Expiry** is whole seconds: a TTL is rounded up; past 30 days memcached wants an absolute Unix
  time, computed from this machine's clock. The server's clock ticks once a second, so an item may
  expire up to a second early; the runtime checks expiry itself, so that is only an early miss.
- **Counters**: ``incr`` works on unsigned 64-bit decimal ASCII and ``decr`` stops at 0. An increment
  by a positive amount uses ``incr`` (and ``add`` of the amount when the key is missing, retrying if
  another client created it first). A decrement, an increment of a negative counter, and any counter
  under a hashed key use a ``gets``/``cas`` loop instead, so ``decrement`` below 0 returns a negative
  number, exactly. The TTL given to ``increment`` applies when the counter is created; the ``cas``
  path stores the counter again and so sets its expiry to that TTL (none: never).
- **No enumeration**: :meth:`MemcachedDriver.scan` raises; :meth:`MemcachedDriver.flush` raises unless
  the driver owns the whole server (``owns_server=True``, then ``flush_all``). The runtime invalidates
  by generation counters, which need neither.
- **Several servers**: keys are spread by rendezvous hashing (pymemcache ``HashClient``). A server
  that is down is *not* taken out of the ring: its keys fail (``ProviderError``, counted by the
  runtime, read as misses) until it is back. Moving them to another server would serve stale
  values once it returns and would restart the generation counters it holds.
"""

from __future__ import annotations

import hashlib
import re
import struct
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

from ..errors import ProviderError, UnsupportedOperation, ValueTooLargeError, require
from ..serializers import SerializationError, Serializer
from .base import MISSING, CacheDriver
from .memcached_client import build_client
from .memcached_client import expire_time as _expire

__all__ = ["DEFAULT_MAX_VALUE_SIZE", "MAX_PLAIN_KEY", "MemcachedDriver"]

_hash: Any = require("pymemcache.client.hash", "memcached")
_exceptions: Any = require("pymemcache.exceptions", "memcached")

#: ``max_value_size`` when none is given: memcached's default item size limit (1 MiB), less room for the key.
DEFAULT_MAX_VALUE_SIZE: Final = 1024 * 1024 - 1024
#: Longest key stored as is, in bytes; longer ones are hashed (memcached's own limit is 250).
MAX_PLAIN_KEY: Final = 200
_PLAIN_KEY = re.compile(rf"[\x21-\x7e]{{1,{MAX_PLAIN_KEY}}}").fullmatch
# several plain keys joined by NUL (which no plain key holds): checked in one pass
_PLAIN_KEYS = re.compile(rf"[\x21-\x7e]{{1,{MAX_PLAIN_KEY}}}(?:\x00[\x21-\x7e]{{1,{MAX_PLAIN_KEY}}})*").fullmatch
_SERVER_KEY_LIMIT: Final = 250
_CAS_ATTEMPTS: Final = 1000
_MAX_INCR: Final = 2**64 - 1

# Value stored under a hashed key: magic, length of the original key, the key, the payload.
_FRAME_MAGIC: Final = b"\xcbK"
_FRAME_LENGTH = struct.Struct(">I")
_FRAME_HEADER: Final = len(_FRAME_MAGIC) + _FRAME_LENGTH.size

_ERRORS: tuple[type[BaseException], ...] = (_exceptions.MemcacheError, OSError)
# A pooled connection the server closed (restart, idle timeout): worth one more try on a fresh one.
_STALE_CONNECTION: tuple[type[BaseException], ...] = (
    _exceptions.MemcacheUnexpectedCloseError,
    BrokenPipeError,
    ConnectionResetError,
    ConnectionAbortedError,
)


def _show(key: str) -> str:
    return repr(key) if len(key) <= 80 else f"{key[:60]!r}... ({len(key)} characters)"


class MemcachedDriver(CacheDriver):
    """A shared store on one memcached server or several (consistent hashing).

    ``servers`` lists ``host:port`` addresses (or ``unix:/path``): one gives a pooled client, several a
    hashing client with a pool per server; both are thread-safe. ``connect_timeout`` and ``timeout`` are
    in seconds, shortened per command to what is left of a region call's deadline
    (``memcached_client.py``). Values are encoded with ``serializer`` (default: the memcached default, see
    :func:`~cachekit.serializers.provider_serializer`); encoded values over ``max_value_size`` bytes are
    refused (``None``: the server decides). ``namespace`` is the key prefix this driver owns; hashed keys
    live under it. ``owns_server=True`` says the servers hold nothing but this cache, which lets
    :meth:`flush` run ``flush_all``.

    >>> driver = MemcachedDriver(servers=["127.0.0.1:11211"], namespace="cachekit:")  # doctest: +SKIP
    >>> driver.put("cachekit:default:user 1", ("v", float("inf"), None), ttl=60)  # doctest: +SKIP
    True
    """

    can_scan = False
    fused_put_get = True  # put_then_get: one round trip on one server (two on several: no worse than apart)

    def __init__(
        self,
        servers: Iterable[str] = ("127.0.0.1:11211",),
        *,
        serializer: Serializer | None = None,
        namespace: str = "",
        owns_server: bool = False,
        connect_timeout: float = 1.0,
        timeout: float = 1.0,
        max_value_size: int | None = DEFAULT_MAX_VALUE_SIZE,
    ) -> None:
        servers = list(servers)
        if not servers:
            raise ValueError("memcached needs at least one server")
        if namespace and not _PLAIN_KEY(namespace):
            raise ValueError(f"memcached namespace {namespace!r} must be printable ASCII without spaces")
        hashed_prefix = namespace + "h:"
        if len(hashed_prefix) + hashlib.sha256().digest_size * 2 > _SERVER_KEY_LIMIT:
            raise ValueError(f"memcached namespace {namespace!r} is too long to prefix a hashed key")
        if serializer is None:
            from ..serializers import provider_serializer

            serializer = provider_serializer("memcached")
        #: The ``host:port`` addresses of the servers.
        self.servers = servers
        #: Key prefix this driver owns.
        self.namespace = namespace
        #: Whether :meth:`flush` may wipe the whole server(s).
        self.owns_server = owns_server
        #: The largest encoded value stored, in bytes (``None``: no check).
        self.max_value_size: int | None = max_value_size
        self._serializer = serializer
        self._hashed_prefix = hashed_prefix
        self._where = "memcached " + ",".join(servers)
        options: dict[str, Any] = {
            "connect_timeout": connect_timeout,
            "timeout": timeout,
            "no_delay": True,
            "default_noreply": False,  # wait for every answer: a failed write must be seen
        }
        #: The pymemcache client (``PooledClient`` or ``HashClient``); exposed for diagnostics and tests.
        self.client: Any
        self.client = build_client(servers, **options)

    # -- keys and payloads ------------------------------------------------------------------
    def storage_key(self, key: str) -> str:
        """The key memcached sees for ``key``: ``key`` itself when safe, else its hashed form."""
        if _PLAIN_KEY(key) is not None and not key.startswith(self._hashed_prefix):
            return key
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return self._hashed_prefix + digest

    def _frame(self, key: str, payload: bytes) -> bytes:
        raw = key.encode("utf-8", "surrogatepass")
        return b"".join((_FRAME_MAGIC, _FRAME_LENGTH.pack(len(raw)), raw, payload))

    def _unframe(self, key: str, data: bytes) -> bytes | None:
        """The payload of a hashed key's value; ``None`` when the frame names another key."""
        if data[: len(_FRAME_MAGIC)] != _FRAME_MAGIC or len(data) < _FRAME_HEADER:
            raise SerializationError(f"{self._where}: the value under the hashed key of {_show(key)} "
                                     "is not framed")
        (length,) = _FRAME_LENGTH.unpack_from(data, len(_FRAME_MAGIC))
        end = _FRAME_HEADER + length
        if len(data) < end:
            raise SerializationError(f"{self._where}: truncated frame under the hashed key of {_show(key)}")
        if data[_FRAME_HEADER:end] != key.encode("utf-8", "surrogatepass"):
            return None
        return data[end:]

    def _encode(self, key: str, skey: str, value: Any) -> bytes:
        data = self._serializer.dumps(value)
        if skey != key:
            data = self._frame(key, data)
        limit = self.max_value_size
        if limit is not None and len(data) > limit:
            raise ValueTooLargeError(
                f"{self._where}: value for key {_show(key)} is {len(data)} bytes once serialized, over "
                f"max_value_size = {limit} bytes; nothing was stored (the previous value, if any, is kept)"
            )
        return data

    def _decode(self, key: str, skey: str, data: bytes) -> Any:
        if skey != key:
            payload = self._unframe(key, data)
            if payload is None:
                return MISSING
            data = payload
        return self._serializer.loads(data)

    def _counter_payload(self, key: str, skey: str, number: int) -> bytes:
        data = b"%d" % number
        return data if skey == key else self._frame(key, data)

    # -- errors -----------------------------------------------------------------------------
    def _error(self, op: str, key: str | None, exc: BaseException) -> ProviderError:
        where = f"{self._where}: {op}" + (f" {_show(key)}" if key is not None else "")
        if isinstance(exc, _exceptions.MemcacheServerError) and "too large" in str(exc):
            return ValueTooLargeError(f"{where} refused by the server: {exc} (memcached's item size limit)")
        if isinstance(exc, BlockingIOError):  # the kernel's socket timeout (memcached_client.py)
            return ProviderError(f"{where} failed: TimeoutError: timed out ({exc})")
        return ProviderError(f"{where} failed: {type(exc).__name__}: {exc}")

    def _again(self, exc: BaseException, op: str, key: str | None,
               call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """After ``exc``, retry an idempotent ``call`` once if a stale connection caused it; else raise."""
        if not isinstance(exc, _STALE_CONNECTION):
            raise self._error(op, key, exc) from exc
        try:
            return call(*args, **kwargs)
        except _ERRORS as again:
            raise self._error(op, key, again) from again

    # -- required ---------------------------------------------------------------------------
    def get(self, key: str) -> Any:
        """The stored object, or :data:`MISSING`."""
        skey = self.storage_key(key)
        try:
            data = self.client.get(skey)
        except _ERRORS as exc:
            data = self._again(exc, "get", key, self.client.get, skey)
        if data is None:
            return MISSING
        return self._serializer.loads(data) if skey is key else self._decode(key, skey, data)

    def put(self, key: str, value: Any, ttl: float | None = None) -> bool:
        """Store ``value``; raises :class:`ValueTooLargeError` past ``max_value_size``."""
        skey = self.storage_key(key)
        data = self._encode(key, skey, value)
        expire = _expire(ttl)
        try:
            return bool(self.client.set(skey, data, expire=expire))
        except _ERRORS as exc:
            return bool(self._again(exc, "set", key, self.client.set, skey, data, expire=expire))

    def forget(self, key: str) -> bool:
        """Delete ``key``; ``True`` if it existed."""
        skey = self.storage_key(key)
        try:
            return bool(self.client.delete(skey, noreply=False))
        except _ERRORS as exc:
            return bool(self._again(exc, "delete", key, self.client.delete, skey, noreply=False))

    def flush(self) -> bool:
        """``flush_all`` on every server if the driver owns them; else :class:`UnsupportedOperation`."""
        if not self.owns_server:
            raise UnsupportedOperation(
                f"{self._where}: memcached cannot enumerate keys, so flush() cannot delete only the keys "
                f"under {self.namespace!r} without deleting other tenants' keys too. Invalidate with "
                "generations (region or tag flush through the runtime), or construct the driver with "
                "owns_server=True when these servers hold nothing but this cache (flush_all)."
            )
        try:
            self.client.flush_all(noreply=False)
        except _ERRORS as exc:
            self._again(exc, "flush_all", None, self.client.flush_all, noreply=False)
        return True

    # -- optional ---------------------------------------------------------------------------
    def has(self, key: str) -> bool:
        """Whether ``key`` holds a value (without deserializing it)."""
        skey = self.storage_key(key)
        try:
            data = self.client.get(skey)
        except _ERRORS as exc:
            data = self._again(exc, "get", key, self.client.get, skey)
        return data is not None and (skey == key or self._unframe(key, data) is not None)

    def _storage_keys(self, keys: list[str]) -> dict[str, str]:
        """``{storage key: key}``; the usual batch, every key plain, is checked in one pass (``_PLAIN_KEYS``)."""
        joined = "\x00".join(keys)
        if _PLAIN_KEYS(joined) is not None and joined.count("\x00") == len(keys) - 1 and \
                "\x00" + self._hashed_prefix not in "\x00" + joined:
            return dict(zip(keys, keys, strict=True))
        return {self.storage_key(k): k for k in keys}

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """``{key: object or MISSING}`` in one ``get_multi`` (one round trip per server involved)."""
        by_skey = self._storage_keys(list(keys))
        out = dict.fromkeys(by_skey.values(), MISSING)
        if not by_skey:
            return out
        skeys = list(by_skey)
        try:
            found = self.client.get_many(skeys)
        except _ERRORS as exc:
            found = self._again(exc, "get_many", None, self.client.get_many, skeys)
        return self._decoded(out, by_skey, found)

    def _decoded(self, out: dict[str, Any], by_skey: dict[str, str], found: dict[str, bytes]) -> dict[str, Any]:
        loads = self._serializer.loads
        for skey, data in found.items():
            key = by_skey[skey]
            # a plain key is its own storage key (the same object): no frame to check
            out[key] = loads(data) if skey is key else self._decode(key, skey, data)
        return out

    def put_then_get(self, key: str, value: Any, ttl: float | None, keys: list[str]) -> tuple[bool, dict[str, Any]]:
        """``set`` then ``get`` of ``keys`` in one write on one connection (one server): memcached answers a
        connection's commands in order, so the read sees the write applied. On several servers, :meth:`put`
        then :meth:`get_many` (a round trip each)."""
        client = self.client
        if isinstance(client, _hash.HashClient):
            return self.put(key, value, ttl), self.get_many(keys)
        skey = self.storage_key(key)
        data = self._encode(key, skey, value)
        expire = _expire(ttl)
        by_skey = self._storage_keys(keys)
        skeys = list(by_skey)
        try:
            stored, found = client.set_then_get(skey, data, expire, skeys)
        except _ERRORS as exc:
            stored, found = self._again(exc, "set", key, client.set_then_get, skey, data, expire, skeys)
        return bool(stored), self._decoded(dict.fromkeys(keys, MISSING), by_skey, found)

    def put_many(self, mapping: Mapping[str, Any], ttl: float | None = None) -> bool:
        """Store every item with one ``set_many``; nothing is stored if any value is too large."""
        values = {}
        for key, value in mapping.items():
            skey = self.storage_key(key)
            values[skey] = self._encode(key, skey, value)
        if not values:
            return True
        expire = _expire(ttl)
        try:
            failed = self.client.set_many(values, expire=expire)
        except _ERRORS as exc:
            failed = self._again(exc, "set_many", None, self.client.set_many, values, expire=expire)
        return not failed

    def delete_many(self, keys: Iterable[str]) -> int:
        """Delete ``keys`` (one ``delete`` each, to count the ones that existed)."""
        return sum(1 for key in keys if self.forget(key))

    def add(self, key: str, value: Any, ttl: float | None = None) -> bool:
        """memcached ``add``: store only if absent, atomically on the server; ``True`` when stored."""
        skey = self.storage_key(key)
        data = self._encode(key, skey, value)
        try:
            return bool(self.client.add(skey, data, expire=_expire(ttl), noreply=False))
        except _ERRORS as exc:
            raise self._error("add", key, exc) from exc

    def acquire_lock(self, key: str, owner: str, ttl: float) -> bool:
        """memcached ``add`` of the owner token: atomic on the server."""
        return self.add(key, owner, ttl)

    def release_lock(self, key: str, owner: str) -> bool:
        """``gets`` the token, and expire it with ``cas`` only if it is still the owner's."""
        skey = self.storage_key(key)
        try:
            data, token = self.client.gets(skey)
            if data is None or self._decode(key, skey, data) != owner:
                return False
            return bool(self.client.cas(skey, data, token, expire=-1, noreply=False))
        except _ERRORS as exc:
            raise self._error("unlock", key, exc) from exc

    def lock_owner(self, key: str) -> str | None:
        value = self.get(key)
        return value if isinstance(value, str) else None

    def increment(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        """Add ``amount`` atomically on the server (a missing key counts as 0); the new value.

        Positive amounts use ``incr``; anything ``incr`` cannot do (a negative amount or counter,
        a hashed key) goes through a ``gets``/``cas`` loop, so results below 0 are exact.
        """
        skey = self.storage_key(key)
        expire = _expire(ttl)
        try:
            if skey == key and 0 <= amount <= _MAX_INCR:
                for _ in range(_CAS_ATTEMPTS):
                    try:
                        new = self.client.incr(skey, amount, noreply=False)
                    except _exceptions.MemcacheClientError:  # not unsigned decimal: negative, or not a number
                        break
                    if new is not None:
                        return int(new)
                    if self.client.add(skey, b"%d" % amount, expire=expire, noreply=False):
                        return amount
                    # another client created it between our incr and add: incr again
            return self._cas_increment(key, skey, amount, expire)
        except _ERRORS as exc:
            raise self._error("increment", key, exc) from exc

    def _cas_increment(self, key: str, skey: str, amount: int, expire: int) -> int:
        client = self.client
        for _ in range(_CAS_ATTEMPTS):
            data, token = client.gets(skey)
            if data is None:
                if client.add(skey, self._counter_payload(key, skey, amount), expire=expire, noreply=False):
                    return amount
                continue
            current = self._decode(key, skey, data)
            if current is MISSING:  # a frame naming another key: overwrite it
                current = 0
            if type(current) is not int:
                raise ProviderError(
                    f"{self._where}: cannot increment {_show(key)}: it holds a {type(current).__name__}, "
                    "not an integer"
                )
            new = current + amount
            if client.cas(skey, self._counter_payload(key, skey, new), token, expire=expire, noreply=False):
                return new
        raise ProviderError(f"{self._where}: increment {_show(key)} lost {_CAS_ATTEMPTS} cas races in a row")

    def extend_ttl(self, keys: Iterable[str], ttl: float | None) -> bool:
        """``touch`` each key with ``ttl``. memcached cannot read a key's expiry, so this sets it (the
        runtime passes at least the region's longest default TTL, so a generation key is shortened
        below a live entry's life only by writes with a shorter explicit TTL after a longer one)."""
        expire = _expire(ttl)
        for key in keys:
            skey = self.storage_key(key)
            try:
                self.client.touch(skey, expire, noreply=False)
            except _ERRORS as exc:
                self._again(exc, "touch", key, self.client.touch, skey, expire, noreply=False)
        return True

    def scan(self, pattern: str) -> Iterator[str]:
        """Always raises :class:`UnsupportedOperation`: memcached cannot enumerate keys."""
        raise UnsupportedOperation(
            f"{self._where}: memcached cannot enumerate keys, so pattern {pattern!r} cannot be scanned; "
            "declare a pattern_based rule for it instead (its entries are invalidated by a generation "
            "counter, which needs no scan)"
        )

    def close(self) -> None:
        """Close every pooled connection; safe to call twice (the driver reconnects if used again)."""
        try:
            self.client.close()
        except _ERRORS as exc:
            raise self._error("close", None, exc) from exc

    def ping(self) -> float:
        """Ask every server for its version; the seconds taken. Raises :class:`ProviderError`."""
        is_pool = isinstance(self.client, _hash.HashClient)
        clients = list(self.client.clients.values()) if is_pool else [self.client]
        start = time.perf_counter()
        for client in clients:
            try:
                client.version()
            except _ERRORS as exc:
                self._again(exc, "version", None, client.version)
        return time.perf_counter() - start

    @property
    def signed(self) -> bool:
        """``True`` when the serializer signs payloads and rejects unsigned ones."""
        return self._serializer.signed

    def __repr__(self) -> str:
        return f"<MemcachedDriver {self._where} namespace={self.namespace!r}>"
