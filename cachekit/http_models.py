"""The request bodies of the HTTP API (pydantic models); re-exported by :mod:`cachekit.http`."""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

__all__ = ["ItemBody", "ProviderBody", "RegionBody", "RuleBody"]


class ItemBody(BaseModel):
    """``PUT /items/{key}``: the value (any JSON) and an optional TTL and tags."""

    model_config = ConfigDict(extra="forbid")
    value: Any
    ttl_seconds: float | None = Field(None, gt=0)
    tags: list[str] = Field(default_factory=list)


class ProviderBody(BaseModel):
    """``POST /providers``: name, type, connection details; other fields are provider settings."""

    model_config = ConfigDict(extra="allow")
    name: str
    provider_type: str = Field(validation_alias=AliasChoices("provider_type", "type"))
    connection_details: dict[str, Any] = Field(default_factory=dict)


class RegionBody(BaseModel):
    """``POST /regions``: name, provider, TTL, size; other fields are region settings."""

    model_config = ConfigDict(extra="allow")
    name: str
    provider_id: str | None = Field(None, validation_alias=AliasChoices("provider_id", "provider"))
    ttl: float | None = None
    max_size: int | None = None


class RuleBody(BaseModel):
    """``POST /rules``: name and strategy; other fields (pattern, events, ttl...) are rule settings."""

    model_config = ConfigDict(extra="allow")
    name: str
    strategy_type: str = Field(validation_alias=AliasChoices("strategy_type", "strategy"))
