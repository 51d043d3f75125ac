"""pydantic models of ``[providers.*]``: one per built-in store (memory, file, Redis, Memcached), the
custom driver, their shared fields (error policy, serializer, signing, circuit breaker, encryption),
and ``ProviderConfig``, the union a provider entry validates against.

Also the field types and the strict base model every config model shares (``Seconds``,
``ConfigModel``...). :mod:`cachekit.config.models` re-exports every public name; ``providers/registry.py``
is the one reader of these models outside the config.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    Tag,
    field_validator,
    model_serializer,
)

from ..providers.types import BUILTIN_PROVIDER_TYPES
from .durations import DURATION
from .secrets import SecretUrl, is_secret_name, mask_url

__all__ = [
    "BUILTIN_PROVIDER_TYPES",
    "PROVIDER_MODELS",
    "BreakerConfig",
    "ConfigModel",
    "CustomProviderConfig",
    "FileProviderConfig",
    "MemcachedProviderConfig",
    "MemoryProviderConfig",
    "OnError",
    "ProviderConfig",
    "RedisProviderConfig",
    "Seconds",
    "SerializerName",
    "imply_provider_types",
]

# TTLs and timeouts: seconds (a number) or a duration string ("90s", "5m", "1h30m", "2d", "250ms").
Seconds = Annotated[float, Field(gt=0, description="seconds, greater than 0"), DURATION]
SerializerName = Literal["pickle", "json", "msgpack"]
OnError = Literal["ignore", "raise"]


class ConfigModel(BaseModel):
    """The base of the config sections: unknown keys refused, assignments validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)


class BreakerConfig(ConfigModel):
    """``breaker = { failures = 5, cool_off = "30s" }`` of a provider: its circuit breaker."""

    failures: int = Field(5, gt=0, description="consecutive failed store calls that open the circuit")
    cool_off: Seconds = Field(30, description="how long an open circuit skips every store call before one probe")


class _ProviderBase(ConfigModel):
    model_config = ConfigDict(hide_input_in_errors=True)  # a wrong-typed signing_key is not echoed
    on_error: OnError = Field(
        "ignore",
        description="what a failing store call does. 'ignore': it is counted in errors and logged once per "
        "outage; reads answer a miss (the default), writes, deletes and invalidations return False. "
        "'raise': it is counted, and its exception reaches the caller of every read, write, delete and "
        "invalidation",
    )
    serializer: SerializerName | None = Field(
        None, description="how values are encoded in shared stores; default: json on redis and memcached "
        "(pickle when a signing_key is set), pickle on file")
    compress_threshold: int | None = Field(None, ge=0, description="zlib-compress payloads at least this big")
    signing_key: SecretStr | None = Field(None, description="HMAC-SHA256 key; unsigned payloads are rejected")
    max_value_size: int | None = Field(None, gt=0, description="largest encoded value accepted, bytes")

    @field_validator("signing_key")
    @classmethod
    def _key_not_empty(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value():
            # an empty key would silently mean "not signed": say so instead
            raise ValueError("signing_key is empty; remove it (CACHEKIT_SIGNING_KEY is then used, if set) "
                             "or give a key")
        return v


class _BreakerFields(_ProviderBase):
    """A provider whose tiers call a driver the runtime shares: a circuit breaker can guard it."""

    breaker: BreakerConfig | None = Field(
        None, description="circuit breaker of a shared store: after `failures` consecutive failures, calls are "
        "skipped for `cool_off`, then one probe; unset: off (every call tries the store)")


class _SharedStoreFields(_BreakerFields):
    """A store that holds bytes (file, Redis, Memcached): its payloads can be encrypted."""

    encryption_keys: list[SecretStr] = Field(
        default_factory=list, description="AES-256-GCM keys (32 bytes, base64 or hex) of a shared store: "
        "values are encrypted with the first, decrypted with any; empty: CACHEKIT_ENCRYPTION_KEYS, else none")

    @field_validator("encryption_keys")
    @classmethod
    def _keys_valid(cls, v: list[SecretStr]) -> list[SecretStr]:
        from ..encryption import key_problem

        for i, key in enumerate(v):
            problem = key_problem(key.get_secret_value())
            if problem:
                raise ValueError(f"encryption_keys[{i}]: {problem}")
        return v


class MemoryProviderConfig(_ProviderBase):
    """An in-process store: references kept, LRU eviction past ``max_size``."""

    type: Literal["memory"] = Field("memory", description="the provider kind")
    max_size: int | None = Field(10_000, gt=0, description="entries per region before LRU eviction")
    policy: Literal["lru", "tinylfu"] = Field(
        "lru", description="eviction past max_size: lru, or tinylfu (W-TinyLFU: frequency-aware, scan-resistant)")


class FileProviderConfig(_SharedStoreFields):
    """A directory of files, safe to share between processes on one machine."""

    type: Literal["file"] = Field("file", description="the provider kind")
    path: str = Field(".cache/cachekit", description="directory holding the files")
    max_size: int | None = Field(
        None, gt=0, description="entry files kept; past it, the entries accessed longest ago are removed")
    max_bytes: int | None = Field(
        None, gt=0, description="bytes of entry files kept; past it, the entries accessed longest ago are removed")


class RedisProviderConfig(_SharedStoreFields):
    """Redis standalone (``url`` or host/port), Sentinel (``sentinel``) or Cluster (``cluster = true``)."""

    type: Literal["redis"] = Field("redis", description="the provider kind")
    url: SecretUrl | None = Field(None, description="redis://, rediss:// or unix:// URL")
    host: str = Field("localhost", description="server host, when no url is given")
    port: int = Field(6379, gt=0, lt=65536, description="server port, when no url is given")
    db: int = Field(0, ge=0, description="database number")
    username: str | None = Field(None, description="ACL user name")
    password: SecretStr | None = Field(None, description="password (a secret: never printed)")
    cluster: bool = Field(False, description="Redis Cluster: connect through startup_nodes (or url)")
    startup_nodes: list[SecretUrl] = Field(default_factory=list, description="host:port of cluster nodes")
    sentinel: list[SecretUrl] = Field(default_factory=list, description="host:port of sentinels")
    service_name: str = Field("mymaster", description="master name monitored by the sentinels")
    connect_timeout: Seconds = Field(1.0, description="seconds to wait for a connection")
    socket_timeout: Seconds = Field(1.0, description="seconds to wait for a reply")
    retries: int = Field(2, ge=0, description="retries with backoff on connection errors")
    max_connections: int = Field(50, gt=0, description="connection pool size")
    max_size: int | None = Field(None, gt=0, description="not enforced: Redis evicts by its maxmemory policy")
    allow_unsigned_pickle: bool = Field(
        False, description='allow serializer = "pickle" without a signing_key (unsafe: see serialization.md)')


class MemcachedProviderConfig(_SharedStoreFields):
    """Memcached: one server, or several with consistent hashing (pymemcache ``HashClient``)."""

    type: Literal["memcached"] = Field("memcached", description="the provider kind")
    servers: list[str] = Field(
        default_factory=lambda: ["127.0.0.1:11211"], min_length=1,
        description="host:port of each server; several: consistent hashing",
    )
    connect_timeout: Seconds = Field(1.0, description="seconds to wait for a connection")
    timeout: Seconds = Field(1.0, description="seconds to wait for a reply")
    max_value_size: int | None = Field(1024 * 1024 - 1024, gt=0, description="memcached's item size limit")
    max_size: int | None = Field(None, gt=0, description="not enforced: memcached evicts by its own LRU")
    allow_unsigned_pickle: bool = Field(
        False, description='allow serializer = "pickle" without a signing_key (unsafe: see serialization.md)')


class CustomProviderConfig(_BreakerFields):
    """A driver from an entry point (``type = "name"``) or an import path (``driver = "pkg.mod:Class"``)."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)
    type: str = Field(description='"custom" (with driver) or the name of a cachekit.providers entry point')
    driver: str | None = Field(None, description="module:Class of a CacheDriver subclass")
    max_size: int | None = Field(None, gt=0, description="not passed on: give the driver its options as extra keys")

    # Extra keys go to the driver as they are; shown, a credential among them is masked.
    @model_serializer(mode="wrap")
    def _mask_extra(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            for key in self.model_extra or {}:
                if key in data:
                    data[key] = _masked(key, data[key], json=info.mode == "json")
        return data

    def __repr_args__(self) -> Any:
        extra = self.model_extra or {}
        return [(k, _masked(k, v, json=False) if k in extra else v) for k, v in super().__repr_args__()]


#: The config model of each built-in provider type (``providers.types`` says what the types are).
PROVIDER_MODELS: dict[str, type[_ProviderBase]] = {
    "memory": MemoryProviderConfig,
    "file": FileProviderConfig,
    "redis": RedisProviderConfig,
    "memcached": MemcachedProviderConfig,
}


def _masked(key: str | None, value: Any, *, json: bool) -> Any:
    """An extra option as shown: a credential-named string or a URL with a password masked."""
    if isinstance(value, str):
        secret: SecretStr | None = None
        if key is not None and is_secret_name(key):
            secret = SecretStr(value)
        elif mask_url(value) != value:
            secret = SecretUrl(value)
        return value if secret is None else str(secret) if json else secret
    if isinstance(value, dict):
        return {k: _masked(str(k), v, json=json) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(key, v, json=json) for v in value]
    return value


def imply_provider_types(data: Any) -> Any:
    """A provider named ``memory``, ``file``, ``redis`` or ``memcached`` without a ``type`` gets that type.

    Applied to the raw data of a whole config (TOML and environment merged; an assigned
    ``config.providers`` too), before validation:
    ``CACHEKIT_PROVIDERS__REDIS__URL=...`` alone declares a redis provider, as ``[providers.redis]``
    with only ``url`` does.
    """
    providers = data.get("providers") if isinstance(data, dict) else None
    if not isinstance(providers, dict) or not any(
        name in BUILTIN_PROVIDER_TYPES and isinstance(value, dict) and "type" not in value
        for name, value in providers.items()
    ):
        return data
    implied = {
        name: {"type": name, **value}
        if name in BUILTIN_PROVIDER_TYPES and isinstance(value, dict) and "type" not in value else value
        for name, value in providers.items()
    }
    return {**data, "providers": implied}


def _provider_tag(value: Any) -> str:
    kind = value.get("type", "memory") if isinstance(value, dict) else getattr(value, "type", "memory")
    return kind if kind in BUILTIN_PROVIDER_TYPES else "custom"


ProviderConfig = Annotated[
    Annotated[MemoryProviderConfig, Tag("memory")]
    | Annotated[FileProviderConfig, Tag("file")]
    | Annotated[RedisProviderConfig, Tag("redis")]
    | Annotated[MemcachedProviderConfig, Tag("memcached")]
    | Annotated[CustomProviderConfig, Tag("custom")],
    Discriminator(_provider_tag),
]

