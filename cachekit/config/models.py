"""pydantic models of a cachekit config: ``[cache]``, ``[providers.*]``, ``[regions.*]``, ``[[rules]]``...

The models validate shape and values; :mod:`cachekit.config.checks` validates cross-references
(a region naming an unknown provider...) and :mod:`cachekit.config.loader` turns both into
:class:`~cachekit.errors.ConfigError` items with file, dotted path and line.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    SecretStr,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    Tag,
    field_validator,
    model_serializer,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ..providers.types import BUILTIN_PROVIDER_TYPES
from .durations import DURATION
from .env import EnvCapture, current_capture, settings_sources
from .secrets import SecretUrl, is_secret_name, mask_url

if TYPE_CHECKING:
    from tomlkit import TOMLDocument

    from ..runtime.runtime import Runtime

__all__ = [
    "BUILTIN_PROVIDER_TYPES",
    "PROVIDER_MODELS",
    "BreakerConfig",
    "BusConfig",
    "CacheConfig",
    "CacheSection",
    "CustomProviderConfig",
    "EventBasedRule",
    "FileProviderConfig",
    "HttpConfig",
    "L1Config",
    "MemcachedProviderConfig",
    "MemoryProviderConfig",
    "PatternBasedRule",
    "ProviderConfig",
    "RedisProviderConfig",
    "RegionConfig",
    "RuleConfig",
    "TimeBasedRule",
    "region_name_problem",
]

# TTLs and timeouts: seconds (a number) or a duration string ("90s", "5m", "1h30m", "2d", "250ms").
Seconds = Annotated[float, Field(gt=0, description="seconds, greater than 0"), DURATION]
SerializerName = Literal["pickle", "json", "msgpack"]
OnError = Literal["ignore", "raise"]


def region_name_problem(name: Any) -> str | None:
    """Why ``name`` cannot name a region (its keys live under ``prefix:name:``), or ``None``.

    ``:`` is the namespace separator (region ``a:b`` would own keys of region ``a``) and a leading
    ``__`` is kept for cachekit's internal keys (``prefix:__gen__:...``); glob characters are fine,
    every key listing treats the namespace literally.
    """
    if not isinstance(name, str) or not name:
        return f"a region name is a non-empty string, not {name!r}"
    if ":" in name:
        return f"region name {name!r} contains ':', the namespace separator; use another character"
    if name.startswith("__"):
        return f"region name {name!r} starts with '__', kept for cachekit's internal keys"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return f"region name {name!r} contains a control character; use printable characters"
    return None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)


class CacheSection(_Model):
    """``[cache]``: global switches."""

    enabled: bool = Field(True, description="false turns every read into a miss and every write into a no-op")
    prefix: str = Field("cachekit", description="namespace of every key in shared stores", min_length=1,
                        max_length=100)
    default_region: str = Field("default", description="region used by the facade when none is named")
    default_provider: str = Field("memory", description="provider of regions that do not name one")
    default_ttl: Seconds | None = Field(300, description="TTL of regions that do not set one; none = forever")
    multi_level: bool = Field(True, description="global switch for the L1 tiers declared on regions")
    strict: bool = Field(
        False, description="undeclared region names raise instead of getting the default policy"
    )
    stats: bool = Field(True, description="time the operations off the in-process fast path "
                        "(stats.latency_frame); the counters always run")
    max_key_length: int = Field(1024, gt=0, description="longest key accepted, in UTF-8 bytes")
    call_timeout: Seconds | None = Field(
        None, description="store time one call (get, remember, put...) may spend on a shared store; "
        "none = the provider's operation timeout (socket_timeout / timeout) plus 0.1 s")
    max_adhoc_regions: int = Field(
        1024, gt=0, description="undeclared regions kept live at once; the least recently used past it "
        "are dropped and rebuilt on next use (their data stays in shared stores)")

    @field_validator("prefix")
    @classmethod
    def _no_colon(cls, v: str) -> str:
        if ":" in v or not (v.isascii() and v.isprintable()) or any(c.isspace() for c in v):
            # every store must carry it as is: memcached keys are printable ASCII without spaces
            raise ValueError("prefix must be printable ASCII without ':' or whitespace")
        return v


class BreakerConfig(_Model):
    """``breaker = { failures = 5, cool_off = "30s" }`` of a provider: its circuit breaker."""

    failures: int = Field(5, gt=0, description="consecutive failed store calls that open the circuit")
    cool_off: Seconds = Field(30, description="how long an open circuit skips every store call before one probe")


class _ProviderBase(_Model):
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


class L1Config(_Model):
    """An in-process tier in front of a region's shared store."""

    provider: str = Field("memory", description="a memory provider")
    ttl: Seconds | None = Field(30, description="upper bound of L1 staleness without a bus")
    max_size: int | None = Field(None, gt=0, description="entries in L1 before LRU eviction")
    policy: Literal["lru", "tinylfu"] | None = Field(
        None, description="L1 eviction policy (lru or tinylfu); default: the L1 provider's policy")


class RegionConfig(_Model):
    """``[regions.NAME]``: a caching policy with its own namespace."""

    provider: str | None = Field(None, description="provider name; default: [cache].default_provider")
    ttl: Seconds | None = Field(None, description="default TTL of entries; default: [cache].default_ttl")
    max_size: int | None = Field(None, gt=0, description="entries before LRU eviction (memory stores)")
    l1: L1Config | None = Field(None, description="an in-process tier in front of the provider")
    invalidation_strategy: Literal["time_based", "event_based", "pattern_based"] | None = Field(
        None, description="informative: the strategy the region's rules follow"
    )
    flush: Literal["delete", "generation"] | None = Field(
        None, description="how flush() empties a shared region: delete its keys, or advance its generation "
        "(O(1), one more key per read); default: delete where the store can list keys, else generation")
    stale_ttl: Seconds | None = Field(None, description="serve stale this long while one caller refreshes")
    lock: bool = Field(False, description="cross-process lock around loaders (Redis SET NX / memcached add)")
    lock_timeout: Seconds = Field(10.0, description="seconds a loader may hold the lock")
    serializer: SerializerName | None = Field(None, description="overrides the provider's serializer")
    enabled: bool = Field(True, description="false: the region never stores anything")
    forever: bool = Field(False, description="entries never expire unless a TTL is given")


class _RuleBase(_Model):
    name: str = Field(min_length=1, description="unique name of the rule")
    regions: list[str] = Field(default_factory=list, description="regions the rule applies to; empty = all")
    enabled: bool = Field(True, description="false: the rule is kept but ignored")


class TimeBasedRule(_RuleBase):
    """Keys matching ``pattern`` get ``ttl`` instead of the region's default."""

    strategy: Literal["time_based"] = Field("time_based", description="the rule kind")
    pattern: str = Field("*", description="glob over the keys of the rule's regions")
    ttl: Seconds = Field(description="TTL of matching keys, seconds")


class PatternBasedRule(_RuleBase):
    """A declared glob that can be invalidated as a unit, in O(1), on every store."""

    strategy: Literal["pattern_based"] = Field("pattern_based", description="the rule kind")
    pattern: str = Field(min_length=1, description="glob invalidated as a unit")


class EventBasedRule(_RuleBase):
    """Events that invalidate keys by pattern templates (``user:{user_id}``), tags or whole regions."""

    strategy: Literal["event_based"] = Field("event_based", description="the rule kind")
    events: list[str] = Field(min_length=1, description="event names that fire the rule")
    pattern: str | None = Field(None, description="key template to invalidate, e.g. user:{user_id}")
    patterns: list[str] = Field(default_factory=list, description="more key templates")
    tags: list[str] = Field(default_factory=list, description="tags to flush")
    flush_regions: bool = Field(False, description="flush the rule's regions when an event fires")

    def all_patterns(self) -> list[str]:
        return ([self.pattern] if self.pattern else []) + list(self.patterns)


RuleConfig = Annotated[
    TimeBasedRule | PatternBasedRule | EventBasedRule,
    Field(discriminator="strategy"),
]


class BusConfig(_Model):
    """Cross-process invalidation of L1 tiers over Redis pub/sub."""

    enabled: bool | None = Field(
        None, description="publish writes and invalidations to other processes; unset: on when some region "
        "has an L1 over a shared store and a redis provider is declared")
    provider: str | None = Field(None, description="a redis provider; default: the first one declared")
    channel: str = Field("cachekit:bus", description="pub/sub channel")
    heartbeat: float = Field(
        1.0, gt=0, description="seconds between the heartbeats each process publishes; an L1 is trusted "
        "only while the bus is whole: a gap (a lost connection, a missing message, no heartbeat for three "
        "intervals) sends L1 reads to L2 until it is whole again")


class HttpConfig(_Model):
    """``[http]``: who may use the HTTP API, and how far its admin routes may reach."""

    model_config = ConfigDict(hide_input_in_errors=True)
    token: SecretStr | None = Field(None, description="bearer token of the data routes (items, stats)")
    admin_token: SecretStr | None = Field(
        None, description="bearer token of the admin routes (providers, regions, rules, configuration); "
        "unset: those routes are not served")
    allowed_hosts: list[str] = Field(
        default_factory=lambda: ["127.0.0.1", "::1", "localhost"],
        description="hosts (names, IPs or networks like 10.0.0.0/8) that network providers created over "
        "HTTP may connect to")
    file_root: str | None = Field(
        None, description="directory under which file providers created over HTTP must live; unset: none")
    adhoc_regions: bool = Field(
        False, description="?region= may name an undeclared region (each distinct name builds one)")


class CacheConfig(BaseSettings):
    """The whole config. Precedence: arguments > environment (``CACHEKIT_...``) > ``.env`` file >
    secrets directory > TOML file > defaults."""

    model_config = SettingsConfigDict(
        env_prefix="CACHEKIT_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_assignment=True,
        case_sensitive=False,
        nested_model_default_partial_update=True,
        hide_input_in_errors=True,  # an input may be a secret (a URL with its password, a key...)
    )

    cache: CacheSection = Field(default_factory=CacheSection)
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    regions: dict[str, RegionConfig] = Field(default_factory=dict)
    rules: list[RuleConfig] = Field(default_factory=list)
    bus: BusConfig = Field(default_factory=BusConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)

    # Kept for save_config: the parsed file (comments and layout included), where it came from,
    # what the environment set, and the values as loaded (to write back only what changed).
    _document: TOMLDocument | None = PrivateAttr(default=None)
    _path: Path | None = PrivateAttr(default=None)
    _file: str | None = PrivateAttr(default=None)  # the name errors give the file (parse_config(file=))
    _env: EnvCapture = PrivateAttr(default_factory=EnvCapture)
    _baseline: dict[str, Any] | None = PrivateAttr(default=None)

    @field_validator("providers", mode="before")
    @classmethod
    def _implied_provider_types(cls, providers: Any) -> Any:
        return imply_provider_types({"providers": providers})["providers"]

    def model_post_init(self, context: Any, /) -> None:
        """Record what the environment contributed to this build (see :mod:`cachekit.config.env`)."""
        self._env = current_capture() or EnvCapture()

    @property
    def source_path(self) -> Path | None:
        """The TOML file this config was loaded from (or last saved to), if any."""
        return self._path

    @property
    def document(self) -> TOMLDocument | None:
        """The tomlkit document of the file, kept so that saving preserves comments and layout."""
        return self._document

    @property
    def env_overrides(self) -> dict[str, str]:
        """``{dotted path: variable}`` for every value set by a ``CACHEKIT_...`` variable."""
        from .toml_lines import format_path

        return {format_path(path): name for path, name in self._env.names.items()}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # arguments > environment > .env file > secrets directory > TOML file > defaults; see
        # cachekit.config.env: it reads what load_config(environ=, env_file=, secrets_dir=) asked for
        # (the TOML data included) and records which variable set what.
        return settings_sources(settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings)

    def compile(self, *, clock: Any = None, source: Any = None) -> Runtime:
        """Build a live :class:`~cachekit.Runtime` from this config."""
        from ..runtime.compile import compile_config  # the one import from config up into the runtime

        return compile_config(self, clock=clock, source=source)
