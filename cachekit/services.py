"""The Result-style async services of seed 003, over a live :class:`~cachekit.Runtime`.

Every service call returns a :class:`Result`: ``is_success()`` with ``.value``, or ``is_failure()``
with ``.error`` (a message saying what went wrong and what would be valid) and ``.code``
(``not_found``, ``conflict``, ``invalid``, ``unsupported``, ``disabled``, ``provider``, ``error``).
Services never raise for a bad request.

>>> import asyncio
>>> from cachekit import Cache, get_cache_item, set_cache_item
>>> _ = Cache.fake()
>>> async def demo():
...     await set_cache_item("user:123", {"name": "Ada"}, ttl_seconds=300)
...     result = await get_cache_item("user:123")
...     return result.value.value if result.is_success() and result.value else None
>>> asyncio.run(demo())
{'name': 'Ada'}

The provider, region, rule and configuration services edit the live ``runtime.config`` (the
pydantic models a TOML file was loaded into) and hot-apply it with ``runtime.apply()``; a change
that does not validate is rolled back and reported. ``runtime.save()`` (or the configuration
service's ``save()``) writes the edited config back to its TOML file, comments kept.

Every service binds to ``runtime=None`` by default: the ``Cache`` facade's runtime at call time.
"""

from __future__ import annotations

import asyncio
import copy
import math
import threading
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from .config.diagnostics import Locator, did_you_mean, items_from_validation_error, one_of
from .config.models import (
    BUILTIN_PROVIDER_TYPES,
    CacheSection,
    CustomProviderConfig,
    EventBasedRule,
    FileProviderConfig,
    MemcachedProviderConfig,
    MemoryProviderConfig,
    PatternBasedRule,
    RedisProviderConfig,
    RegionConfig,
    TimeBasedRule,
)
from .errors import CacheError, ConfigError, ProviderError, UnsupportedOperation
from .facade import Cache
from .providers.base import MISSING
from .runtime.policy import INF

if TYPE_CHECKING:
    from .config.models import CacheConfig
    from .runtime.region import Region
    from .runtime.runtime import Runtime

__all__ = [
    "CacheConfiguration",
    "CacheConfigurationService",
    "CacheItem",
    "CacheItemService",
    "CacheMonitoringService",
    "CacheProvider",
    "CacheProviderId",
    "CacheProviderService",
    "CacheRegion",
    "CacheRegionService",
    "CacheStatistic",
    "CacheStatsType",
    "InvalidationRule",
    "InvalidationRuleService",
    "ProviderSummary",
    "Result",
    "delete_cache_item",
    "get_cache_configuration_service",
    "get_cache_item",
    "get_cache_item_service",
    "get_cache_monitoring_service",
    "get_cache_provider_service",
    "get_cache_region_service",
    "get_caching_dependencies",
    "get_invalidation_rule_service",
    "set_cache_item",
]

T = TypeVar("T")


# -- Result ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result(Generic[T]):
    """The outcome of a service call: a value, or an error message and code.

    >>> Result.ok(42).value
    42
    >>> r = Result.fail("unknown region 'x'", code="not_found")
    >>> r.is_failure(), r.error, r.code
    (True, "unknown region 'x'", 'not_found')
    """

    value: T | None = None
    error: str | None = None
    code: str | None = None
    success: bool = True

    @classmethod
    def ok(cls, value: T | None = None) -> Result[T]:
        """A success carrying ``value``."""
        return cls(value=value)

    @classmethod
    def fail(cls, error: str | BaseException, code: str = "error") -> Result[Any]:
        """A failure; ``error`` is a message (an exception is turned into one)."""
        message = error if isinstance(error, str) else _message(error)
        return cls(error=message, code=code, success=False)

    def is_success(self) -> bool:
        """``True`` when the call succeeded (``.value`` holds the answer, possibly ``None``)."""
        return self.success

    def is_failure(self) -> bool:
        """``True`` when the call failed (``.error`` says why)."""
        return not self.success

    def unwrap(self) -> T:
        """The value, or :class:`~cachekit.CacheError` with the error message."""
        if not self.success:
            raise CacheError(self.error or "failed")
        return self.value  # type: ignore[return-value]

    def value_or(self, default: Any) -> Any:
        """The value on success, ``default`` on failure."""
        return self.value if self.success else default


def _message(exc: BaseException) -> str:
    if isinstance(exc, ConfigError):
        return "; ".join(f"{e.path or '<root>'}: {e.message}" for e in exc.errors) or str(exc)
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, CacheError) else f"{type(exc).__name__}: {text}"


def _code(exc: BaseException) -> str:
    if isinstance(exc, UnsupportedOperation):
        return "unsupported"
    if isinstance(exc, ProviderError):
        return "provider"
    if isinstance(exc, (CacheError, ValidationError, ValueError, TypeError)):
        return "invalid"  # a bad ttl, key, name or config value
    return "error"


class _Failure(Exception):
    """Raised inside a service to leave with ``Result.fail(message, code)``."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


async def _guard(work: Callable[[], Any]) -> Result[Any]:
    """Run ``work`` (sync, or returning an awaitable) and turn any exception into a failure."""
    try:
        value = work()
        if isinstance(value, Awaitable):
            value = await value
    except _Failure as exc:
        return Result.fail(str(exc), exc.code)
    except Exception as exc:
        return Result.fail(exc, _code(exc))
    return Result.ok(value)


# -- identifiers and value types -------------------------------------------------------------------


class CacheProviderId(str):
    """The id of a provider: its name (``CacheProviderId("memory")``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"CacheProviderId({str(self)!r})"


class CacheStatsType(str, Enum):
    """Kinds of statistics the monitoring service records."""

    HIT = "hit"
    MISS = "miss"
    SET = "set"
    DELETE = "delete"
    ERROR = "error"
    EVICTION = "eviction"
    EXPIRATION = "expiration"
    INVALIDATION = "invalidation"
    LOAD = "load"
    STALE_HIT = "stale_hit"
    LATENCY = "latency"

    @classmethod
    def parse(cls, value: CacheStatsType | str) -> CacheStatsType:
        """A member from itself, its value (``"hit"``) or its name (``"HIT"``)."""
        if isinstance(value, CacheStatsType):
            return value
        text = str(value).strip()
        for member in cls:
            if text.lower() in (member.value, member.name.lower()):
                return member
        raise _Failure(f"unknown statistic type {value!r}; known: {one_of(m.value for m in cls)}", "invalid")


# Live counters of the runtime that each statistic type adds to in a summary.
_LIVE_COUNTER = {
    CacheStatsType.HIT: "hits",
    CacheStatsType.MISS: "misses",
    CacheStatsType.SET: "sets",
    CacheStatsType.DELETE: "deletes",
    CacheStatsType.ERROR: "errors",
    CacheStatsType.EVICTION: "evictions",
    CacheStatsType.LOAD: "loads",
    CacheStatsType.STALE_HIT: "stale_hits",
}


def _jsonable(value: Any) -> Any:
    """Plain data for JSON: NaN/inf floats become ``None``, datetimes ISO strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class _View:
    """Shared ``to_dict`` of the dataclasses below (JSON-ready, secrets already masked)."""

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready data."""
        return _jsonable(asdict(self))  # type: ignore[call-overload, no-any-return]


@dataclass(frozen=True)
class CacheItem:
    """A cached value with its key, region and expiry (``None``: never expires)."""

    key: str
    value: Any
    region: str
    expires_at: datetime | None = None
    ttl: float | None = None
    """seconds left when read (or set)"""

    def to_dict(self) -> dict[str, Any]:
        """The fields as data; ``value`` is the cached object itself (not copied or converted)."""
        return {"key": self.key, "value": self.value, "region": self.region,
                "expires_at": self.expires_at.isoformat() if self.expires_at else None, "ttl": self.ttl}


@dataclass(frozen=True)
class CacheProvider(_View):
    """A provider of the live config; ``id`` is its name."""

    id: CacheProviderId
    name: str
    provider_type: str
    connection_details: dict[str, Any]
    settings: dict[str, Any]
    declared: bool = True
    """``False`` for a built-in name (memory, file, redis, memcached) used without a declaration"""
    regions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CacheRegion(_View):
    """A region: its declared settings and its effective policy; ``id`` is its name."""

    id: str
    name: str
    provider_id: CacheProviderId
    ttl: float | None
    max_size: int | None
    settings: dict[str, Any]
    declared: bool = True
    stats: dict[str, Any] | None = None


@dataclass(frozen=True)
class InvalidationRule(_View):
    """An invalidation rule of the live config; ``id`` is its name."""

    id: str
    name: str
    strategy_type: str
    pattern: str | None
    events: list[str]
    ttl: float | None
    regions: list[str]
    enabled: bool
    settings: dict[str, Any]


@dataclass(frozen=True)
class CacheConfiguration(_View):
    """The active configuration: the ``[cache]`` switches and what is declared."""

    enabled: bool
    use_multi_level: bool
    prefix: str
    default_region: str
    default_provider: str
    default_ttl: float | None
    strict: bool
    providers: list[str]
    regions: list[str]
    rules: list[str]
    source_path: str | None
    env_overrides: dict[str, str]
    config: dict[str, Any]
    """the whole config as data (secrets masked)"""


@dataclass(frozen=True)
class CacheStatistic(_View):
    """One recorded statistic."""

    provider_id: CacheProviderId
    stat_type: CacheStatsType
    value: float
    timestamp: datetime
    region: str | None = None


@dataclass(frozen=True)
class ProviderSummary(_View):
    """A provider's totals: live counters of its regions plus recorded statistics."""

    provider_id: CacheProviderId
    hits: float
    misses: float
    hit_ratio: float | None
    sets: float
    deletes: float
    errors: float
    evictions: float
    loads: float
    stale_hits: float
    regions: list[str]
    recorded: dict[str, float]
    """sum of recorded statistics by type"""
    live: dict[str, int]
    """the runtime's counters summed over the provider's regions"""
    average_latency: float | None = None


# -- plumbing ---------------------------------------------------------------------------------------

_EDIT_LOCK = threading.RLock()
_SECTIONS = ("cache", "providers", "regions", "rules", "bus", "http")
_PROVIDER_MODELS: dict[str, type[BaseModel]] = {
    "memory": MemoryProviderConfig,
    "file": FileProviderConfig,
    "redis": RedisProviderConfig,
    "memcached": MemcachedProviderConfig,
}
_RULE_MODELS: dict[str, type[BaseModel]] = {
    "time_based": TimeBasedRule,
    "pattern_based": PatternBasedRule,
    "event_based": EventBasedRule,
}
_STRATEGY_ALIASES = {"time": "time_based", "ttl": "time_based", "pattern": "pattern_based",
                     "event": "event_based", "events": "event_based"}
_CONNECTION_FIELDS = {
    "redis": ("url", "host", "port", "db", "username", "password", "startup_nodes", "sentinel"),
    "memcached": ("servers",),
    "file": ("path",),
    "memory": (),
}
_CONNECTION_ALIASES = {"database": "db", "user": "username", "directory": "path", "dir": "path",
                       "server": "servers", "nodes": "startup_nodes"}


def _now(rt: Runtime) -> datetime:
    return datetime.fromtimestamp(rt.clock.now(), tz=timezone.utc)


def _validate(model: type[BaseModel], data: Mapping[str, Any], where: str) -> Any:
    """``model(**data)`` or a failure naming ``where.field`` and what would be valid."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        items = items_from_validation_error(exc, model, Locator(), dict(data))
        message = "; ".join(f"{where}.{i.path}: {i.message}" if i.path else f"{where}: {i.message}"
                            for i in items)
        raise _Failure(message, "invalid") from None


def _deep_merge(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _dump(model: BaseModel) -> dict[str, Any]:
    """Python data of a model, secrets kept as ``SecretStr`` (for re-validation)."""
    return {name: getattr(model, name) if not isinstance(getattr(model, name), BaseModel)
            else _dump(getattr(model, name))
            for name in [*type(model).model_fields, *(model.model_extra or {})]}


def _public(model: BaseModel) -> dict[str, Any]:
    """JSON data of a model with secrets masked."""
    return _jsonable(model.model_dump(mode="json"))  # type: ignore[no-any-return]


def _edit(rt: Runtime, mutate: Callable[[CacheConfig], T]) -> T:
    """Apply ``mutate`` to the live config and hot-apply it; on any error restore and re-raise."""
    with _EDIT_LOCK:
        cfg = rt.config
        saved = {name: copy.deepcopy(getattr(cfg, name)) for name in _SECTIONS}
        try:
            out = mutate(cfg)
            rt.apply()
            return out
        except BaseException:
            for name, value in saved.items():
                current = getattr(cfg, name)
                if isinstance(current, dict):
                    current.clear()
                    current.update(value)
                elif isinstance(current, list):
                    current[:] = value
                else:
                    setattr(cfg, name, value)
            try:
                rt.apply()
            except Exception:  # the restored config was live a moment ago; keep the first error
                pass
            raise


class _Service:
    """Base of the services: bound to a runtime, or to the facade's runtime at call time."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime

    @property
    def runtime(self) -> Runtime:
        """The runtime this service acts on now."""
        return self._runtime if self._runtime is not None else Cache.runtime()

    def __repr__(self) -> str:
        bound = "the Cache facade's runtime" if self._runtime is None else repr(self._runtime)
        return f"<{type(self).__name__} on {bound}>"


def _region(rt: Runtime, name: str | None) -> Region:
    try:
        return rt.region(name)
    except CacheError as exc:
        code = "not_found" if "unknown region" in str(exc) else "invalid"
        raise _Failure(str(exc), code) from None


def _regions_using(rt: Runtime, provider: str) -> list[str]:
    cfg = rt.config
    default = cfg.cache.default_provider
    names = [n for n, rc in cfg.regions.items() if (rc.provider or default) == provider
             or (rc.l1 is not None and rc.l1.provider == provider)]
    return names


def _known_providers(rt: Runtime) -> list[str]:
    known = dict.fromkeys([*rt.config.providers, *BUILTIN_PROVIDER_TYPES])
    known.update(dict.fromkeys(row["provider"] for row in rt.stats.rows()))
    return list(known)


# -- items -------------------------------------------------------------------------------------------


def _item(rt: Runtime, region: Region, key: str, value: Any, expires: float | None) -> CacheItem:
    if expires is None or expires == INF:
        return CacheItem(key=key, value=value, region=region.name)
    return CacheItem(key=key, value=value, region=region.name,
                     expires_at=datetime.fromtimestamp(expires, tz=timezone.utc),
                     ttl=max(0.0, expires - rt.clock.now()))


def _expiry(region: Region, key: str) -> float | None:
    """When the entry of ``key`` expires (``None``: never or unknown)."""
    try:
        entry = region.entry(key)
    except Exception:
        return None
    return None if entry is None else entry[1]


async def _in_thread(region: Region, fn: Callable[..., T], *args: Any) -> T:
    if region.l2.private:
        return fn(*args)
    return await asyncio.to_thread(fn, *args)


class CacheItemService(_Service):
    """Get, set and delete cached items; clear regions; invalidate by pattern."""

    async def get_item(self, key: str, region_name: str | None = None) -> Result[CacheItem | None]:
        """``Result.ok(CacheItem)`` on a hit, ``Result.ok(None)`` on a miss (a cached ``None``
        is a hit: ``result.value.value is None``)."""

        async def work() -> CacheItem | None:
            rt = self.runtime
            region = _region(rt, region_name)
            value = await region.aget(key, MISSING)
            if value is MISSING:
                return None
            return _item(rt, region, key, value, await _in_thread(region, _expiry, region, key))

        return await _guard(work)

    async def set_item(self, key: str, value: Any, ttl_seconds: float | None = None,
                       region_name: str | None = None, tags: Iterable[str] = ()) -> Result[CacheItem]:
        """Store ``value`` for ``ttl_seconds`` (default: the region's TTL), optionally tagged."""

        async def work() -> CacheItem:
            rt = self.runtime
            region = _region(rt, region_name)
            ttl = region.policy.ttl_for(key, ttl_seconds)
            names = [tags] if isinstance(tags, str) else list(tags)
            if names:
                stored = await _in_thread(region, region.tags(names).put, key, value, ttl_seconds)
            else:
                stored = await region.aput(key, value, ttl_seconds)
            if not stored:
                if not region.policy.enabled:
                    raise _Failure(f"caching is disabled for region {region.name!r}; nothing stored",
                                   "disabled")
                raise _Failure(f"provider {region.provider!r} did not store {key!r} (the failure is "
                               "counted in the region's errors)", "provider")
            return _item(rt, region, key, value, None if ttl is None else rt.clock.now() + ttl)

        return await _guard(work)

    async def delete_item(self, key: str, region_name: str | None = None) -> Result[bool]:
        """Forget ``key``; the value says whether it was cached."""

        async def work() -> bool:
            return await _region(self.runtime, region_name).aforget(key)

        return await _guard(work)

    async def has_item(self, key: str, region_name: str | None = None) -> Result[bool]:
        """Whether a fresh entry exists."""

        async def work() -> bool:
            return await _region(self.runtime, region_name).ahas(key)

        return await _guard(work)

    async def clear(self, region_name: str | None = None) -> Result[dict[str, Any]]:
        """Remove every entry of one region, or of every region (``None``)."""

        def work() -> dict[str, Any]:
            rt = self.runtime
            if region_name is not None:
                _region(rt, region_name)
            result = rt.invalidate(region=region_name)
            return {"regions": sorted({*result.keys, *result.generations}), "keys": result.keys,
                    "generations": result.generations, "count": result.count}

        return await _guard(lambda: asyncio.to_thread(work))

    async def invalidate_pattern(self, pattern: str,
                                 region_name: str | None = None) -> Result[dict[str, Any]]:
        """Invalidate keys matching a glob (or a declared pattern rule's pattern, in O(1))."""

        def work() -> dict[str, Any]:
            rt = self.runtime
            if region_name is not None:
                _region(rt, region_name)
            result = rt.invalidate(pattern=pattern, region=region_name)
            return {"pattern": pattern, "keys": result.keys, "generations": result.generations,
                    "count": result.count}

        return await _guard(lambda: asyncio.to_thread(work))


async def get_cache_item(key: str, region_name: str | None = None, *,
                         runtime: Runtime | None = None) -> Result[CacheItem | None]:
    """The cached item of ``key``: ``result.value`` is ``None`` on a miss, else ``result.value.value``
    is the cached value."""
    return await CacheItemService(runtime).get_item(key, region_name)


async def set_cache_item(key: str, value: Any, ttl_seconds: float | None = None,
                         region_name: str | None = None, *, tags: Iterable[str] = (),
                         runtime: Runtime | None = None) -> Result[CacheItem]:
    """Store ``value`` under ``key`` for ``ttl_seconds`` (default: the region's TTL)."""
    return await CacheItemService(runtime).set_item(key, value, ttl_seconds, region_name, tags)


async def delete_cache_item(key: str, region_name: str | None = None, *,
                            runtime: Runtime | None = None) -> Result[bool]:
    """Forget ``key``; ``result.value`` says whether it was cached."""
    return await CacheItemService(runtime).delete_item(key, region_name)


# -- providers ---------------------------------------------------------------------------------------


def _provider_model(name: str, provider_type: str, data: Mapping[str, Any]) -> Any:
    model = _PROVIDER_MODELS.get(provider_type, CustomProviderConfig)
    return _validate(model, {**data, "type": provider_type}, f"providers.{name}")


def _connection_fields(provider_type: str, details: Mapping[str, Any] | None) -> dict[str, Any]:
    """Map ``connection_details`` onto the provider config's fields."""
    if not details:
        return {}
    data = {_CONNECTION_ALIASES.get(k, k): v for k, v in details.items()}
    if provider_type == "memcached":
        servers = data.pop("servers", None)
        if isinstance(servers, str):
            servers = [s.strip() for s in servers.split(",") if s.strip()]
        host, port = data.pop("host", None), data.pop("port", None)
        if host is not None or port is not None:
            servers = [*(servers or []), f"{host or '127.0.0.1'}:{port or 11211}"]
        if servers is not None:
            data["servers"] = servers
    return data


def _provider_view(rt: Runtime, name: str) -> CacheProvider:
    cfg = rt.config
    model = cfg.providers.get(name)
    declared = model is not None
    if model is None:
        if name not in BUILTIN_PROVIDER_TYPES:
            known = _known_providers(rt)
            raise _Failure(f"unknown provider {name!r}; known: {one_of(known)}{did_you_mean(name, known)}",
                           "not_found")
        model = rt.provider_config(name)
    settings = _public(model)
    fields = _CONNECTION_FIELDS.get(model.type, tuple(model.model_extra or ()))
    details = {k: settings[k] for k in fields if k in settings and settings[k] is not None
               and settings[k] != [] and settings[k] != ""}
    if settings.get("cluster"):
        details["cluster"] = True
    return CacheProvider(id=CacheProviderId(name), name=name, provider_type=model.type,
                         connection_details=details, settings=settings, declared=declared,
                         regions=_regions_using(rt, name))


class CacheProviderService(_Service):
    """Register, list, read, update and delete providers of the live config (``id`` = name)."""

    async def register_provider(self, name: str, provider_type: str,
                                connection_details: Mapping[str, Any] | None = None,
                                **settings: Any) -> Result[CacheProvider]:
        """Declare provider ``name`` of ``provider_type`` (memory, file, redis, memcached, or a
        custom type); ``connection_details`` (host, port, url, servers, path...) map onto its
        fields, ``settings`` are further fields (``serializer``, ``on_error``...)."""

        def work() -> CacheProvider:
            rt = self.runtime
            if not isinstance(name, str) or not name or ":" in name:
                raise _Failure(f"invalid provider name {name!r}: non-empty, without ':'", "invalid")
            if name in rt.config.providers:
                raise _Failure(f"provider {name!r} already exists; update it instead", "conflict")
            kind = str(provider_type)
            data = {**_connection_fields(kind, connection_details), **settings}
            model = _provider_model(name, kind, data)
            _edit(rt, lambda cfg: cfg.providers.__setitem__(name, model))
            return _provider_view(rt, name)

        return await _guard(work)

    create_provider = register_provider

    async def list_providers(self) -> Result[list[CacheProvider]]:
        """Declared providers, plus the built-in names that regions use without declaring them."""

        def work() -> list[CacheProvider]:
            rt = self.runtime
            cfg = rt.config
            used = [cfg.cache.default_provider, *(rc.provider for rc in cfg.regions.values() if rc.provider)]
            names = dict.fromkeys([*cfg.providers, *(u for u in used if u in BUILTIN_PROVIDER_TYPES)])
            return [_provider_view(rt, n) for n in names]

        return await _guard(work)

    async def get_provider(self, provider_id: str) -> Result[CacheProvider]:
        """One provider by id (its name)."""
        return await _guard(lambda: _provider_view(self.runtime, str(provider_id)))

    async def update_provider(self, provider_id: str, changes: Mapping[str, Any] | None = None,
                              **more: Any) -> Result[CacheProvider]:
        """Change fields of a declared provider (``connection_details={...}`` accepted too).

        Regions built on it keep their open connections until the runtime is reloaded; the
        change is in the config (and in what ``save()`` writes) at once.
        """

        def work() -> CacheProvider:
            rt = self.runtime
            name = str(provider_id)
            current = rt.config.providers.get(name)
            if current is None:
                _provider_view(rt, name)  # unknown names fail with the known ones
                current = rt.provider_config(name)  # a built-in used undeclared: declare it now
            update = {**(changes or {}), **more}
            kind = str(update.pop("provider_type", update.pop("type", current.type)))
            details = update.pop("connection_details", None)
            update.update(_connection_fields(kind, details))
            base = _dump(current) if kind == current.type else {}
            base.pop("type", None)
            model = _provider_model(name, kind, _deep_merge(base, update))
            _edit(rt, lambda cfg: cfg.providers.__setitem__(name, model))
            return _provider_view(rt, name)

        return await _guard(work)

    async def delete_provider(self, provider_id: str) -> Result[bool]:
        """Remove a declared provider that no region uses."""

        def work() -> bool:
            rt = self.runtime
            name = str(provider_id)
            if name not in rt.config.providers:
                _provider_view(rt, name)
                raise _Failure(f"provider {name!r} is built in and not declared; nothing to delete",
                               "not_found")
            users = _regions_using(rt, name)
            if rt.config.cache.default_provider == name:
                users.append("[cache].default_provider")
            if users:
                raise _Failure(f"provider {name!r} is used by {one_of(users)}; change those first",
                               "conflict")
            _edit(rt, lambda cfg: cfg.providers.pop(name))
            return True

        return await _guard(work)


# -- regions ----------------------------------------------------------------------------------------


def _check_region_name(name: Any) -> str:
    if not isinstance(name, str) or not name or ":" in name or name.startswith("__") or "@" in name:
        raise _Failure(f"invalid region name {name!r}: non-empty, no ':' or '@', no leading '__'", "invalid")
    return name


def _region_view(rt: Runtime, name: str) -> CacheRegion:
    cfg = rt.config
    model = cfg.regions.get(name)
    live = rt.regions().get(name)
    if live is None and (model is not None or name == cfg.cache.default_region):
        live = rt.region(name)
    if live is None:
        known = sorted({*cfg.regions, *rt.regions()})
        raise _Failure(f"unknown region {name!r}; known: {one_of(known)}{did_you_mean(name, known)}",
                       "not_found")
    stats = _jsonable(live.stats.as_dict())
    return CacheRegion(id=name, name=name, provider_id=CacheProviderId(live.provider), ttl=live.policy.ttl,
                       max_size=live.policy.max_size, settings=_public(model) if model is not None else {},
                       declared=model is not None, stats=stats)


def _region_data(provider_id: Any, ttl: Any, max_size: Any, settings: Mapping[str, Any]) -> dict[str, Any]:
    data = dict(settings)
    if "provider" in data and provider_id is not None:
        raise _Failure("give provider_id or provider, not both", "invalid")
    if provider_id is not None:
        data["provider"] = str(provider_id)
    if ttl is not None:
        data["ttl"] = ttl
    if max_size is not None:
        data["max_size"] = max_size
    return data


class CacheRegionService(_Service):
    """Create, list, read, update and delete regions of the live config (``id`` = name)."""

    async def create_region(self, name: str, provider_id: str | None = None, ttl: float | None = None,
                            max_size: int | None = None, **settings: Any) -> Result[CacheRegion]:
        """Declare region ``name`` on ``provider_id`` (default: ``[cache].default_provider``);
        ``settings`` are further region fields (``l1``, ``stale_ttl``, ``invalidation_strategy``...)."""

        def work() -> CacheRegion:
            rt = self.runtime
            _check_region_name(name)
            if name in rt.config.regions:
                raise _Failure(f"region {name!r} already exists; update it instead", "conflict")
            data = _region_data(provider_id, ttl, max_size, settings)
            model = _validate(RegionConfig, data, f"regions.{name}")
            _edit(rt, lambda cfg: cfg.regions.__setitem__(name, model))
            return _region_view(rt, name)

        return await _guard(work)

    async def list_regions(self) -> Result[list[CacheRegion]]:
        """Declared regions plus the ones in use without a declaration."""

        def work() -> list[CacheRegion]:
            rt = self.runtime
            names = dict.fromkeys([*rt.config.regions, *sorted(rt.regions())])
            return [_region_view(rt, n) for n in names]

        return await _guard(work)

    async def get_region(self, region_id: str) -> Result[CacheRegion]:
        """One region by id (its name), with its effective TTL, provider and live counters."""
        return await _guard(lambda: _region_view(self.runtime, str(region_id)))

    async def get_region_by_name(self, name: str) -> Result[CacheRegion]:
        """Same as :meth:`get_region` (ids are names)."""
        return await self.get_region(name)

    async def update_region(self, region_id: str, changes: Mapping[str, Any] | None = None,
                            **more: Any) -> Result[CacheRegion]:
        """Change fields of a region (``ttl``, ``max_size``, ``provider_id``...); applied live.

        A region in use but not declared is declared with its current policy plus the changes.
        """

        def work() -> CacheRegion:
            rt = self.runtime
            name = str(region_id)
            _region_view(rt, name)  # unknown -> not_found
            current = rt.config.regions.get(name)
            update = {**(changes or {}), **more}
            provider = update.pop("provider_id", None)
            data = _region_data(provider, None, None, update)
            base = _dump(current) if current is not None else {}
            model = _validate(RegionConfig, _deep_merge(base, data), f"regions.{name}")
            _edit(rt, lambda cfg: cfg.regions.__setitem__(name, model))
            return _region_view(rt, name)

        return await _guard(work)

    async def delete_region(self, region_id: str) -> Result[bool]:
        """Flush a declared region's entries and remove its declaration (its name then falls back
        to the default policy)."""

        def work() -> bool:
            rt = self.runtime
            name = str(region_id)
            cfg = rt.config
            if name not in cfg.regions:
                _region_view(rt, name)
                raise _Failure(f"region {name!r} is not declared; nothing to delete", "not_found")
            users = [r.name for r in cfg.rules if name in r.regions]
            if users:
                raise _Failure(f"region {name!r} is named by rules {one_of(users)}; change those first",
                               "conflict")
            if cfg.cache.default_region == name:
                raise _Failure(f"region {name!r} is [cache].default_region; change that first", "conflict")
            rt.region(name).flush()
            _edit(rt, lambda c: c.regions.pop(name))
            return True

        return await _guard(work)


# -- rules --------------------------------------------------------------------------------------------


def _strategy(value: Any) -> str:
    text = str(getattr(value, "value", value)).strip().lower().replace("-", "_").replace(" ", "_")
    text = _STRATEGY_ALIASES.get(text, text)
    if text not in _RULE_MODELS:
        raise _Failure(f"unknown strategy_type {value!r}; known: {one_of(_RULE_MODELS)}"
                       f"{did_you_mean(text, _RULE_MODELS)}", "invalid")
    return text


def _rule_view(rule: Any) -> InvalidationRule:
    settings = _public(rule)
    return InvalidationRule(id=rule.name, name=rule.name, strategy_type=rule.strategy,
                            pattern=getattr(rule, "pattern", None), events=list(getattr(rule, "events", [])),
                            ttl=getattr(rule, "ttl", None), regions=list(rule.regions), enabled=rule.enabled,
                            settings=settings)


def _rule_index(cfg: CacheConfig, name: str) -> int:
    for i, rule in enumerate(cfg.rules):
        if rule.name == name:
            return i
    known = [r.name for r in cfg.rules]
    raise _Failure(f"unknown rule {name!r}; known: {one_of(known) or 'none'}{did_you_mean(name, known)}",
                   "not_found")


def _rule_model(data: Mapping[str, Any], where: str) -> Any:
    data = dict(data)
    strategy = _strategy(data.pop("strategy_type", data.pop("strategy", "")))
    return _validate(_RULE_MODELS[strategy], {**data, "strategy": strategy}, where)


class InvalidationRuleService(_Service):
    """Create, list, read, update and delete invalidation rules (``id`` = name); find the rules
    that apply to a key."""

    async def create_rule(self, name: str, strategy_type: str, pattern: str | None = None,
                          events: Iterable[str] | None = None, ttl: float | None = None,
                          **settings: Any) -> Result[InvalidationRule]:
        """Declare a rule:

        - ``time_based``: keys matching ``pattern`` (default ``*``) get ``ttl``;
        - ``pattern_based``: ``pattern`` can be invalidated as a unit in O(1) on every store;
        - ``event_based``: ``events`` invalidate ``pattern`` (a template such as ``user:{user_id}``,
          filled from the event's parameters), ``tags`` or (``flush_regions=True``) the regions;
          an event rule given none of these gets ``flush_regions=True``: its events empty its
          regions (every region when ``regions`` is empty).

        ``regions=[...]`` limits a rule to some regions; ``tags``, ``patterns``, ``enabled``.
        """

        def work() -> InvalidationRule:
            rt = self.runtime
            data = {"name": name, "strategy_type": strategy_type, **settings}
            if pattern is not None:
                data["pattern"] = pattern
            if events is not None:
                data["events"] = [events] if isinstance(events, str) else list(events)
            if ttl is not None:
                data["ttl"] = ttl
            if _strategy(strategy_type) == "event_based" and not any(
                    settings.get(k) for k in ("patterns", "tags", "flush_regions")) and pattern is None:
                data["flush_regions"] = True  # an event rule naming no target invalidates its regions
            rule = _rule_model(data, f"rules.{name}")
            if any(r.name == rule.name for r in rt.config.rules):
                raise _Failure(f"rule {rule.name!r} already exists; update it instead", "conflict")
            _edit(rt, lambda cfg: cfg.rules.append(rule))
            return _rule_view(rule)

        return await _guard(work)

    async def list_rules(self, strategy_type: str | None = None) -> Result[list[InvalidationRule]]:
        """Every rule, or those of one strategy."""

        def work() -> list[InvalidationRule]:
            wanted = _strategy(strategy_type) if strategy_type is not None else None
            return [_rule_view(r) for r in self.runtime.config.rules if wanted in (None, r.strategy)]

        return await _guard(work)

    async def get_rule(self, rule_id: str) -> Result[InvalidationRule]:
        """One rule by id (its name)."""

        def work() -> InvalidationRule:
            cfg = self.runtime.config
            return _rule_view(cfg.rules[_rule_index(cfg, str(rule_id))])

        return await _guard(work)

    async def update_rule(self, rule_id: str, changes: Mapping[str, Any] | None = None,
                          **more: Any) -> Result[InvalidationRule]:
        """Change fields of a rule (a new ``strategy_type`` starts from the rule's name only)."""

        def work() -> InvalidationRule:
            rt = self.runtime
            name = str(rule_id)
            index = _rule_index(rt.config, name)
            current = rt.config.rules[index]
            update = {**(changes or {}), **more}
            new_strategy = update.get("strategy_type", update.get("strategy"))
            if new_strategy is not None and _strategy(new_strategy) != current.strategy:
                base: dict[str, Any] = {"name": current.name, "regions": list(current.regions)}
            else:
                base = _dump(current)
                base["strategy_type"] = base.pop("strategy")
                update.pop("strategy", None)
            rule = _rule_model(_deep_merge(base, update), f"rules.{name}")
            if rule.name != name and any(r.name == rule.name for r in rt.config.rules):
                raise _Failure(f"rule {rule.name!r} already exists", "conflict")
            _edit(rt, lambda cfg: cfg.rules.__setitem__(index, rule))
            return _rule_view(rule)

        return await _guard(work)

    async def delete_rule(self, rule_id: str) -> Result[bool]:
        """Remove a rule."""

        def work() -> bool:
            rt = self.runtime
            index = _rule_index(rt.config, str(rule_id))
            _edit(rt, lambda cfg: cfg.rules.pop(index))
            return True

        return await _guard(work)

    async def find_matching_rules(self, key: str,
                                  region: str | None = None) -> Result[list[InvalidationRule]]:
        """Rules whose pattern (or pattern template, ``{...}`` as wildcards) matches ``key``."""
        return await _guard(lambda: [_rule_view(r) for r in self.runtime.find_matching_rules(key, region)])

    async def get_rules_for_event(self, event: str) -> Result[list[InvalidationRule]]:
        """The ``event_based`` rules that ``event`` fires."""
        return await _guard(lambda: [_rule_view(r) for r in self.runtime.config.rules
                                     if isinstance(r, EventBasedRule) and event in r.events])


# -- configuration ------------------------------------------------------------------------------------

_CACHE_ALIASES = {"use_multi_level": "multi_level"}
_LIVE_FIXED = ("prefix",)


def _configuration(rt: Runtime) -> CacheConfiguration:
    cfg = rt.config
    cache = cfg.cache
    return CacheConfiguration(
        enabled=cache.enabled, use_multi_level=cache.multi_level, prefix=cache.prefix,
        default_region=cache.default_region, default_provider=cache.default_provider,
        default_ttl=cache.default_ttl, strict=cache.strict, providers=list(cfg.providers),
        regions=list(cfg.regions), rules=[r.name for r in cfg.rules],
        source_path=str(cfg.source_path) if cfg.source_path else None,
        env_overrides=dict(cfg.env_overrides), config=_public(cfg),
    )


def _set_cache(cfg: CacheConfig, changes: Mapping[str, Any]) -> None:
    update = {_CACHE_ALIASES.get(k, k): v for k, v in changes.items()}
    for name in _LIVE_FIXED:
        if name in update and update[name] != getattr(cfg.cache, name):
            raise _Failure(f"cache.{name} cannot change on a live runtime (keys already stored under the old "
                           "namespace); edit the file and reload", "invalid")
    cfg.cache = _validate(CacheSection, _deep_merge(_dump(cfg.cache), update), "cache")


class CacheConfigurationService(_Service):
    """Switch caching and multi-level caching on and off, add regions, update and save the config."""

    async def get_active_configuration(self) -> Result[CacheConfiguration]:
        """The live configuration (``.enabled``, ``.use_multi_level``, ...; ``.config`` has it all)."""
        return await _guard(lambda: _configuration(self.runtime))

    async def _cache(self, **changes: Any) -> Result[CacheConfiguration]:
        def work() -> CacheConfiguration:
            rt = self.runtime
            _edit(rt, lambda cfg: _set_cache(cfg, changes))
            return _configuration(rt)

        return await _guard(work)

    async def enable(self) -> Result[CacheConfiguration]:
        """Turn caching on."""
        return await self._cache(enabled=True)

    async def disable(self) -> Result[CacheConfiguration]:
        """Turn caching off: reads miss, writes are dropped, decorated functions run every time."""
        return await self._cache(enabled=False)

    async def enable_multi_level(self) -> Result[CacheConfiguration]:
        """Use the L1 tiers declared on regions."""
        return await self._cache(multi_level=True)

    async def disable_multi_level(self) -> Result[CacheConfiguration]:
        """Bypass the L1 tiers (every read goes to the region's store)."""
        return await self._cache(multi_level=False)

    async def add_region_config(self, name: str, settings: Mapping[str, Any]) -> Result[CacheRegion]:
        """Declare region ``name`` with ``settings`` (``ttl``, ``max_size``, ``provider``,
        ``invalidation_strategy``...), or merge them into its declaration."""

        def work() -> CacheRegion:
            rt = self.runtime
            _check_region_name(name)
            data = dict(settings)
            data = _region_data(data.pop("provider_id", None), None, None, data)
            current = rt.config.regions.get(name)
            model = _validate(RegionConfig, _deep_merge(_dump(current) if current else {}, data),
                              f"regions.{name}")
            _edit(rt, lambda cfg: cfg.regions.__setitem__(name, model))
            return _region_view(rt, name)

        return await _guard(work)

    async def update_configuration(self, changes: Mapping[str, Any]) -> Result[CacheConfiguration]:
        """Apply several changes at once, all or nothing.

        Keys: any ``[cache]`` field at the top level (``enabled``, ``use_multi_level``,
        ``default_ttl``...), or sections: ``cache`` (dict), ``providers`` / ``regions`` (name ->
        fields, merged into existing entries), ``rules`` (list, merged by name), ``bus``, ``http``.
        """

        def work() -> CacheConfiguration:
            rt = self.runtime
            if not isinstance(changes, Mapping):
                raise _Failure("update_configuration takes a mapping of changes", "invalid")
            cache_fields = set(CacheSection.model_fields) | set(_CACHE_ALIASES)
            sections = {"cache", "providers", "regions", "rules", "bus", "http"}
            unknown = [k for k in changes if k not in cache_fields and k not in sections]
            if unknown:
                valid = sorted(cache_fields | sections)
                raise _Failure(f"unknown configuration key(s) {one_of(unknown)}; valid: {one_of(valid)}"
                               f"{did_you_mean(unknown[0], valid)}", "invalid")
            rt_edit = _ConfigUpdate(changes)
            _edit(rt, rt_edit)
            return _configuration(rt)

        return await _guard(work)

    async def save(self, path: str | None = None) -> Result[str]:
        """Write the live config to its TOML file (or ``path``), comments kept; the value is the path."""
        return await _guard(lambda: asyncio.to_thread(lambda: str(self.runtime.save(path))))


class _ConfigUpdate:
    """The mutation of :meth:`CacheConfigurationService.update_configuration`."""

    def __init__(self, changes: Mapping[str, Any]) -> None:
        self.changes = changes

    def __call__(self, cfg: CacheConfig) -> None:
        changes = dict(self.changes)
        cache = dict(changes.pop("cache", None) or {})
        for key in list(changes):
            if key in CacheSection.model_fields or key in _CACHE_ALIASES:
                cache[key] = changes.pop(key)
        if cache:
            _set_cache(cfg, cache)
        for name, fields in (changes.pop("providers", None) or {}).items():
            current = cfg.providers.get(name)
            fields = dict(fields)
            kind = str(fields.pop("provider_type", fields.pop("type", getattr(current, "type", "memory"))))
            fields.update(_connection_fields(kind, fields.pop("connection_details", None)))
            base = _dump(current) if current is not None and current.type == kind else {}
            base.pop("type", None)
            cfg.providers[name] = _provider_model(name, kind, _deep_merge(base, fields))
        for name, fields in (changes.pop("regions", None) or {}).items():
            _check_region_name(name)
            current = cfg.regions.get(name)
            fields = dict(fields)
            data = _region_data(fields.pop("provider_id", None), None, None, fields)
            cfg.regions[name] = _validate(RegionConfig, _deep_merge(_dump(current) if current else {}, data),
                                          f"regions.{name}")
        for data in changes.pop("rules", None) or []:
            data = dict(data)
            name = data.get("name")
            index = next((i for i, r in enumerate(cfg.rules) if r.name == name), None)
            if index is None:
                cfg.rules.append(_rule_model(data, f"rules.{name}"))
            else:
                base = _dump(cfg.rules[index])
                base["strategy_type"] = base.pop("strategy")
                data.pop("strategy", None)
                cfg.rules[index] = _rule_model(_deep_merge(base, data), f"rules.{name}")
        for section in ("bus", "http"):
            if section in changes:
                model = getattr(cfg, section)
                setattr(cfg, section, _validate(type(model), _deep_merge(_dump(model), changes.pop(section)),
                                                section))


# -- monitoring ---------------------------------------------------------------------------------------


class _Recorder:
    """Recorded statistics of one runtime (bounded)."""

    def __init__(self, max_records: int = 100_000) -> None:
        self.records: deque[CacheStatistic] = deque(maxlen=max_records)
        self.lock = threading.Lock()


_RECORDERS: weakref.WeakKeyDictionary[Any, _Recorder] = weakref.WeakKeyDictionary()
_RECORDERS_LOCK = threading.Lock()


def _recorder(rt: Runtime) -> _Recorder:
    with _RECORDERS_LOCK:
        rec = _RECORDERS.get(rt)
        if rec is None:
            rec = _RECORDERS[rt] = _Recorder()
        return rec


def _as_utc(value: datetime | float | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    if not isinstance(value, datetime):
        raise _Failure(f"expected a datetime, not {type(value).__name__}", "invalid")
    return value.astimezone(timezone.utc)  # a naive datetime is taken as local time


def _known_provider(rt: Runtime, provider_id: Any) -> CacheProviderId:
    name = str(provider_id)
    known = _known_providers(rt)
    if name not in known:
        raise _Failure(f"unknown provider {name!r}; known: {one_of(known)}{did_you_mean(name, known)}",
                       "not_found")
    return CacheProviderId(name)


class CacheMonitoringService(_Service):
    """Record statistics and read them back, alone or summed with the runtime's live counters."""

    async def record_statistic(self, provider_id: str, stat_type: CacheStatsType | str, value: float = 1,
                               *, region: str | None = None,
                               timestamp: datetime | None = None) -> Result[CacheStatistic]:
        """Record ``value`` of ``stat_type`` for a provider (timestamp: the runtime clock's now)."""

        def work() -> CacheStatistic:
            rt = self.runtime
            pid = _known_provider(rt, provider_id)
            kind = CacheStatsType.parse(stat_type)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise _Failure(f"a statistic's value is a finite number, not {value!r}", "invalid")
            when = _as_utc(timestamp) or _now(rt)
            stat = CacheStatistic(provider_id=pid, stat_type=kind, value=float(value), timestamp=when,
                                  region=region)
            rec = _recorder(rt)
            with rec.lock:
                rec.records.append(stat)
            return stat

        return await _guard(work)

    async def get_provider_statistics(self, provider_id: str, start_time: datetime | None = None,
                                      end_time: datetime | None = None,
                                      stat_type: CacheStatsType | str | None = None,
                                      ) -> Result[list[CacheStatistic]]:
        """Recorded statistics of a provider between ``start_time`` and ``end_time`` (inclusive;
        naive datetimes are local time), optionally of one type, oldest first."""

        def work() -> list[CacheStatistic]:
            rt = self.runtime
            pid = _known_provider(rt, provider_id)
            start, end = _as_utc(start_time), _as_utc(end_time)
            kind = CacheStatsType.parse(stat_type) if stat_type is not None else None
            rec = _recorder(rt)
            with rec.lock:
                records = list(rec.records)
            return [s for s in records if s.provider_id == pid and (kind is None or s.stat_type is kind)
                    and (start is None or s.timestamp >= start) and (end is None or s.timestamp <= end)]

        return await _guard(work)

    async def get_provider_summary(self, provider_id: str) -> Result[ProviderSummary]:
        """Totals for a provider: the live counters of every region on it plus recorded statistics."""

        def work() -> ProviderSummary:
            rt = self.runtime
            pid = _known_provider(rt, provider_id)
            rows = [row for row in rt.stats.rows() if row["provider"] == pid]
            counters = tuple(_LIVE_COUNTER.values())
            live = {c: sum(int(row[c]) for row in rows) for c in counters}
            rec = _recorder(rt)
            with rec.lock:
                records = [s for s in rec.records if s.provider_id == pid]
            recorded: dict[str, float] = {}
            for s in records:
                recorded[s.stat_type.value] = recorded.get(s.stat_type.value, 0.0) + s.value
            totals = {c: float(live[c]) for c in counters}
            for kind, counter in _LIVE_COUNTER.items():
                totals[counter] += recorded.get(kind.value, 0.0)
            lookups = totals["hits"] + totals["misses"]
            latencies = [s.value for s in records if s.stat_type is CacheStatsType.LATENCY]
            return ProviderSummary(
                provider_id=pid, hit_ratio=totals["hits"] / lookups if lookups else None,
                regions=sorted({row["region"] for row in rows}), recorded=recorded, live=live,
                average_latency=sum(latencies) / len(latencies) if latencies else None, **totals,
            )

        return await _guard(work)


# -- factories and FastAPI dependencies --------------------------------------------------------------


async def get_cache_item_service(runtime: Runtime | None = None) -> CacheItemService:
    """The item service (``get_item``, ``set_item``, ``delete_item``, ``clear``...)."""
    return CacheItemService(runtime)


async def get_cache_provider_service(runtime: Runtime | None = None) -> CacheProviderService:
    """The provider service (``register_provider``, ``list_providers``...)."""
    return CacheProviderService(runtime)


async def get_cache_region_service(runtime: Runtime | None = None) -> CacheRegionService:
    """The region service (``create_region``, ``list_regions``...)."""
    return CacheRegionService(runtime)


async def get_invalidation_rule_service(runtime: Runtime | None = None) -> InvalidationRuleService:
    """The rule service (``create_rule``, ``find_matching_rules``...)."""
    return InvalidationRuleService(runtime)


async def get_cache_configuration_service(runtime: Runtime | None = None) -> CacheConfigurationService:
    """The configuration service (``enable_multi_level``, ``add_region_config``...)."""
    return CacheConfigurationService(runtime)


async def get_cache_monitoring_service(runtime: Runtime | None = None) -> CacheMonitoringService:
    """The monitoring service (``record_statistic``, ``get_provider_summary``...)."""
    return CacheMonitoringService(runtime)


_FACTORIES: dict[str, Callable[[Runtime | None], Awaitable[Any]]] = {
    "get_cache_item_service": get_cache_item_service,
    "get_cache_provider_service": get_cache_provider_service,
    "get_cache_region_service": get_cache_region_service,
    "get_invalidation_rule_service": get_invalidation_rule_service,
    "get_cache_configuration_service": get_cache_configuration_service,
    "get_cache_monitoring_service": get_cache_monitoring_service,
}


def get_caching_dependencies(runtime: Runtime | None = None) -> dict[str, Callable[[], Awaitable[Any]]]:
    """Dependency callables for FastAPI's ``Depends`` (no fastapi import here: they take no arguments).

    Keys: ``get_cache_item_service``, ``get_cache_provider_service``, ``get_cache_region_service``,
    ``get_invalidation_rule_service``, ``get_cache_configuration_service``,
    ``get_cache_monitoring_service`` and ``get_cache_runtime``.
    """
    deps: dict[str, Callable[[], Awaitable[Any]]] = {}
    for name, factory in _FACTORIES.items():
        deps[name] = _dependency(name, factory, runtime)

    async def get_cache_runtime() -> Runtime:
        return runtime if runtime is not None else Cache.runtime()

    deps["get_cache_runtime"] = get_cache_runtime
    return deps


def _dependency(name: str, factory: Callable[[Runtime | None], Awaitable[Any]],
                runtime: Runtime | None) -> Callable[[], Awaitable[Any]]:
    async def dependency() -> Any:
        return await factory(runtime)

    dependency.__name__ = dependency.__qualname__ = name
    dependency.__doc__ = factory.__doc__
    return dependency
