"""pydantic models of a cachekit config: ``[cache]``, ``[providers.*]``, ``[regions.*]``, ``[[rules]]``...

The models validate shape and values; :mod:`cachekit.config.checks` validates cross-references
(a region naming an unknown provider...) and :mod:`cachekit.config.loader` turns both into
:class:`~cachekit.errors.ConfigError` items with file, dotted path and line. The provider models live
in :mod:`cachekit.config.provider_models` and are re-exported here; this module holds the sections
around them (``[cache]``, regions, rules, the bus, ``[http]``) and ``CacheConfig``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import ConfigDict, Field, PrivateAttr, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .env import EnvCapture, current_capture, settings_sources
from .provider_models import (
    BUILTIN_PROVIDER_TYPES,
    PROVIDER_MODELS,
    BreakerConfig,
    ConfigModel,
    CustomProviderConfig,
    FileProviderConfig,
    MemcachedProviderConfig,
    MemoryProviderConfig,
    ProviderConfig,
    RedisProviderConfig,
    Seconds,
    SerializerName,
    imply_provider_types,
)

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


class CacheSection(ConfigModel):
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


class L1Config(ConfigModel):
    """An in-process tier in front of a region's shared store."""

    provider: str = Field("memory", description="a memory provider")
    ttl: Seconds | None = Field(30, description="upper bound of L1 staleness without a bus")
    max_size: int | None = Field(None, gt=0, description="entries in L1 before LRU eviction")
    policy: Literal["lru", "tinylfu"] | None = Field(
        None, description="L1 eviction policy (lru or tinylfu); default: the L1 provider's policy")


class RegionConfig(ConfigModel):
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


class _RuleBase(ConfigModel):
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


class BusConfig(ConfigModel):
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


class HttpConfig(ConfigModel):
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
