"""The HTTP API of seed 003: a FastAPI router under ``/api/cache`` (optional extra ``http``).

>>> from cachekit import Cache
>>> from cachekit.http import create_app
>>> app = create_app(Cache.fake())          # or app.include_router(create_router(runtime))

Routes (a thin layer over :mod:`cachekit.services`):

- ``/providers``, ``/regions``, ``/rules``: ``GET`` (list), ``POST`` (create), and ``GET PUT DELETE``
  on ``/{id}`` (an id is the name); ``GET /providers/{id}/summary`` and ``/statistics`` too;
- ``/items/{key}``: ``GET``, ``PUT`` (body ``{"value": ..., "ttl_seconds": ..., "tags": [...]}``),
  ``DELETE``, each with ``?region=``; ``DELETE /items`` clears everything (or ``?region=``);
  ``DELETE /items/pattern/{pattern}`` invalidates a glob;
- ``/configuration``: ``GET``, ``PUT`` (a mapping of changes), ``POST /configuration/enable`` and
  ``/disable``; ``GET /stats``: live counters per region.

With a token (``token=`` or ``[http] token`` in the config) every request needs
``Authorization: Bearer <token>``; otherwise the answer is 401. Secrets (passwords, signing keys,
the token) are masked in every response. A service failure is a JSON answer
``{"detail": message, "error": code}`` with status 404 (unknown id), 409 (conflict, caching
disabled), 422 (invalid), 400 (unsupported) or 503 (provider failed).

A cached value that JSON cannot represent is returned as its ``repr`` with ``"value_repr": true``.
"""

import hmac
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from .errors import require
from .facade import Cache
from .services import (
    CacheConfigurationService,
    CacheItem,
    CacheItemService,
    CacheMonitoringService,
    CacheProviderService,
    CacheRegionService,
    InvalidationRuleService,
    Result,
    _jsonable,
)

if TYPE_CHECKING:
    from fastapi import APIRouter, FastAPI

    from .runtime.runtime import Runtime

__all__ = ["ItemBody", "ProviderBody", "RegionBody", "RuleBody", "create_app", "create_router"]

_STATUS = {"not_found": 404, "conflict": 409, "disabled": 409, "invalid": 422, "unsupported": 400,
           "provider": 503, "error": 400}


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


def _data(value: Any) -> Any:
    if isinstance(value, list):
        return [_data(v) for v in value]
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) else value


def _item_payload(item: CacheItem) -> dict[str, Any]:
    payload = item.to_dict()
    try:
        json.dumps(item.value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        payload["value"] = repr(item.value)
        payload["value_repr"] = True
    return payload


def create_router(runtime: "Runtime | None" = None, token: str | None = None) -> "APIRouter":
    """The ``/api/cache`` router over ``runtime`` (default: the ``Cache`` facade's runtime at
    request time). ``token`` (else ``[http] token`` of the config) turns on bearer authentication."""
    fastapi = require("fastapi", "http")
    responses = require("fastapi.responses", "http")
    APIRouter, Depends, HTTPException, Request = (
        fastapi.APIRouter, fastapi.Depends, fastapi.HTTPException, fastapi.Request)  # type: ignore[attr-defined]
    JSONResponse = responses.JSONResponse  # type: ignore[attr-defined]

    def current() -> "Runtime":
        return runtime if runtime is not None else Cache.runtime()

    def expected_token() -> str | None:
        if token:
            return token
        secret = current().config.http.token
        return secret.get_secret_value() if secret is not None else None

    async def authorize(request: Request) -> None:  # type: ignore[valid-type]
        expected = expected_token()
        if not expected:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")  # type: ignore[attr-defined]
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
            raise HTTPException(status_code=401, detail="missing or wrong bearer token",
                                headers={"WWW-Authenticate": "Bearer"})

    def answer(result: Result[Any], status: int = 200) -> Any:
        if result.is_failure():
            code = result.code or "error"
            return JSONResponse({"detail": result.error, "error": code}, status_code=_STATUS.get(code, 400))
        return JSONResponse(_data(result.value), status_code=status)

    providers = CacheProviderService(runtime)
    regions = CacheRegionService(runtime)
    rules = InvalidationRuleService(runtime)
    items = CacheItemService(runtime)
    config = CacheConfigurationService(runtime)
    monitoring = CacheMonitoringService(runtime)

    router = APIRouter(prefix="/api/cache", tags=["cache"], dependencies=[Depends(authorize)])

    def member_routes(collection: str, get: Callable[[str], Awaitable[Result[Any]]],
                      update: Callable[[str, dict[str, Any]], Awaitable[Result[Any]]],
                      delete: Callable[[str], Awaitable[Result[Any]]]) -> None:
        """``GET PUT DELETE /<collection>/{id}`` over a service's get / update / delete."""

        async def read(id: str) -> Any:
            return answer(await get(id))

        async def change(id: str, body: dict[str, Any]) -> Any:
            return answer(await update(id, body))

        async def remove(id: str) -> Any:
            return answer(await delete(id))

        path, one = f"/{collection}/{{id}}", collection.removesuffix("s")
        router.add_api_route(path, read, methods=["GET"], name=f"get_{one}")
        router.add_api_route(path, change, methods=["PUT"], name=f"update_{one}")
        router.add_api_route(path, remove, methods=["DELETE"], name=f"delete_{one}")

    # -- providers ------------------------------------------------------------------------
    @router.get("/providers")
    async def list_providers() -> Any:
        return answer(await providers.list_providers())

    @router.post("/providers", status_code=201)
    async def create_provider(body: ProviderBody) -> Any:
        return answer(await providers.register_provider(body.name, body.provider_type, body.connection_details,
                                                        **(body.model_extra or {})), 201)

    member_routes("providers", providers.get_provider, providers.update_provider, providers.delete_provider)

    @router.get("/providers/{provider_id}/summary")
    async def provider_summary(provider_id: str) -> Any:
        return answer(await monitoring.get_provider_summary(provider_id))

    @router.get("/providers/{provider_id}/statistics")
    async def provider_statistics(provider_id: str, start_time: datetime | None = None,
                                  end_time: datetime | None = None, stat_type: str | None = None) -> Any:
        return answer(await monitoring.get_provider_statistics(provider_id, start_time, end_time, stat_type))

    # -- regions --------------------------------------------------------------------------
    @router.get("/regions")
    async def list_regions() -> Any:
        return answer(await regions.list_regions())

    @router.post("/regions", status_code=201)
    async def create_region(body: RegionBody) -> Any:
        return answer(await regions.create_region(body.name, body.provider_id, body.ttl, body.max_size,
                                                  **(body.model_extra or {})), 201)

    member_routes("regions", regions.get_region, regions.update_region, regions.delete_region)

    # -- rules ----------------------------------------------------------------------------
    @router.get("/rules")
    async def list_rules(key: str | None = None) -> Any:
        if key is not None:
            return answer(await rules.find_matching_rules(key))
        return answer(await rules.list_rules())

    @router.post("/rules", status_code=201)
    async def create_rule(body: RuleBody) -> Any:
        return answer(await rules.create_rule(body.name, body.strategy_type, **(body.model_extra or {})), 201)

    member_routes("rules", rules.get_rule, rules.update_rule, rules.delete_rule)

    # -- items (the pattern route comes first: it would otherwise be read as a key) -------
    @router.delete("/items/pattern/{pattern:path}")
    async def invalidate_pattern(pattern: str, region: str | None = None) -> Any:
        return answer(await items.invalidate_pattern(pattern, region))

    @router.delete("/items")
    async def clear_items(region: str | None = None) -> Any:
        return answer(await items.clear(region))

    @router.get("/items/{key:path}")
    async def get_item(key: str, region: str | None = None) -> Any:
        result = await items.get_item(key, region)
        if result.is_success() and result.value is None:
            return JSONResponse({"detail": f"{key!r} is not cached", "error": "not_found"}, status_code=404)
        if result.is_failure():
            return answer(result)
        return JSONResponse(_item_payload(result.value))  # type: ignore[arg-type]

    @router.put("/items/{key:path}")
    async def put_item(key: str, body: ItemBody, region: str | None = None) -> Any:
        result = await items.set_item(key, body.value, body.ttl_seconds, region, body.tags)
        if result.is_failure():
            return answer(result)
        return JSONResponse(_item_payload(result.value))  # type: ignore[arg-type]

    @router.delete("/items/{key:path}")
    async def delete_item(key: str, region: str | None = None) -> Any:
        result = await items.delete_item(key, region)
        if result.is_failure():
            return answer(result)
        return JSONResponse({"key": key, "deleted": result.value})

    # -- configuration --------------------------------------------------------------------
    @router.get("/configuration")
    async def get_configuration() -> Any:
        return answer(await config.get_active_configuration())

    @router.put("/configuration")
    async def update_configuration(body: dict[str, Any]) -> Any:
        return answer(await config.update_configuration(body))

    @router.post("/configuration/enable")
    async def enable() -> Any:
        return answer(await config.enable())

    @router.post("/configuration/disable")
    async def disable() -> Any:
        return answer(await config.disable())

    @router.get("/stats")
    async def stats() -> Any:
        return JSONResponse(_jsonable(current().stats.rows()))

    return router  # type: ignore[no-any-return]


def create_app(runtime: "Runtime | None" = None, token: str | None = None) -> "FastAPI":
    """A FastAPI app serving :func:`create_router` (``uvicorn`` it, or mount it in your app)."""
    fastapi = require("fastapi", "http")
    from . import __version__

    app = fastapi.FastAPI(title="cachekit", version=__version__,  # type: ignore[attr-defined]
                          description="Manage cache providers, regions, rules and items.")
    app.include_router(create_router(runtime, token))
    return app  # type: ignore[no-any-return]
