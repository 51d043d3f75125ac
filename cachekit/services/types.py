"""Identifiers and the frozen value views the services return (CacheItem, CacheRegion...)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from ..config.diagnostics import one_of
from .result import ServiceFailure


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
        raise ServiceFailure(f"unknown statistic type {value!r}; known: {one_of(m.value for m in cls)}", "invalid")


# Live counters of the runtime that each statistic type adds to in a summary.
LIVE_COUNTER = {
    CacheStatsType.HIT: "hits",
    CacheStatsType.MISS: "misses",
    CacheStatsType.SET: "sets",
    CacheStatsType.DELETE: "deletes",
    CacheStatsType.ERROR: "errors",
    CacheStatsType.EVICTION: "evictions",
    CacheStatsType.LOAD: "loads",
    CacheStatsType.STALE_HIT: "stale_hits",
}


def jsonable(value: Any) -> Any:
    """Plain data for JSON: NaN/inf floats become ``None``, datetimes ISO strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


class _View:
    """Shared ``to_dict`` of the dataclasses below (JSON-ready, secrets already masked)."""

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready data."""
        return jsonable(asdict(self))  # type: ignore[call-overload, no-any-return]


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
    """One statistic: recorded by hand, or (``live=True``) a live counter's total at ``timestamp``."""

    provider_id: CacheProviderId
    stat_type: CacheStatsType
    value: float
    timestamp: datetime
    region: str | None = None
    live: bool = False


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
