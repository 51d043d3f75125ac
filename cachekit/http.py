"""The HTTP API of seed 003: a FastAPI router under ``/api/cache`` (optional extra ``http``).

>>> from cachekit import Cache
>>> from cachekit.http import create_app
>>> app = create_app(Cache.fake(), token="data-secret", admin_token="admin-secret")

Deny by default: without a token (``token=`` / ``[http] token`` / ``CACHEKIT_HTTP__TOKEN``) the app
refuses to be built, unless ``allow_anonymous=True`` (loopback clients only, with a warning). Two roles,
both HTTP bearer tokens (FastAPI's ``HTTPBearer``, declared in the OpenAPI document):

- the **data** token: items, ``/stats``, and reading providers, regions, rules and the configuration
  (secrets masked);
- the **admin** token (``admin_token=`` / ``[http] admin_token``): all of the above, plus creating,
  changing and deleting providers, regions and rules, ``PUT /configuration`` and
  ``POST /configuration/enable`` / ``/disable``. Without an admin token these routes are not mounted;
  with one, the data token gets 403 on them. Admin edits pass :func:`cachekit.http_policy.admin_guard`:
  no custom drivers, ``file`` stores under ``[http] file_root`` only, network stores on
  ``[http] allowed_hosts`` only (loopback by default), and the ``[http]`` section never changes.

``GET /api/cache/health`` is open and says only which providers answer. ``/openapi.json`` and
``/docs`` (Swagger UI, with the document inlined) need the data token.

Routes (a thin layer over :mod:`cachekit.services`):

- ``/providers``, ``/regions``, ``/rules``: ``GET`` (list), ``POST`` (create), and ``GET PUT DELETE``
  on ``/{id}`` (an id is the name); ``GET /providers/{id}/summary`` and ``/statistics`` too;
- ``/items/{key}``: ``GET``, ``PUT`` (body ``{"value": ..., "ttl_seconds": ..., "tags": [...]}``),
  ``DELETE``, each with ``?region=`` (a declared region, else 404 unless ``[http] adhoc_regions``);
  ``DELETE /items`` clears everything (or ``?region=``); ``DELETE /items/pattern/{pattern}``
  invalidates a glob;
- ``/configuration``: ``GET``, ``PUT`` (a mapping of changes), ``POST /configuration/enable`` and
  ``/disable``; ``GET /stats``: live counters per region; ``GET /health``.

A service failure is a JSON answer ``{"detail": message, "error": code}`` with status 404 (unknown
id), 409 (conflict, caching disabled), 422 (invalid), 400 (unsupported), 403 (refused by the admin
policy) or 503 (provider failed). Values are JSON both ways: a cached value JSON cannot represent
(a set, an object, ``NaN``) is a 406 ``{"error": "not_json"}``, never a ``repr``.
"""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .errors import CacheError, require
from .facade import Cache
from .http_access import Access, AnonymousAccessWarning, route_dependencies
from .http_cache import cache_response
from .http_models import ItemBody, ProviderBody, RegionBody, RuleBody
from .http_policy import admin_guard, is_loopback
from .offload import off_loop
from .services import (
    CacheConfigurationService,
    CacheItem,
    CacheItemService,
    CacheMonitoringService,
    CacheProviderService,
    CacheRegionService,
    InvalidationRuleService,
    Result,
    jsonable,
)

if TYPE_CHECKING:
    from fastapi import APIRouter, FastAPI

    from .runtime.runtime import Runtime

__all__ = ["AnonymousAccessWarning", "ItemBody", "ProviderBody", "RegionBody", "RuleBody", "cache_response",
           "create_app", "create_router"]

_STATUS = {"not_found": 404, "conflict": 409, "disabled": 409, "invalid": 422, "unsupported": 400,
           "provider": 503, "forbidden": 403, "error": 400}
_HEALTH_TTL = 2.0  # seconds a /health answer is reused: an open route must not fan out on every call


def _data(value: Any) -> Any:
    if isinstance(value, list):
        return [_data(v) for v in value]
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) else value


def _item_payload(item: CacheItem) -> dict[str, Any] | None:
    """The JSON answer of an item, or ``None`` when JSON cannot represent its value."""
    payload = item.to_dict()
    try:
        json.dumps(item.value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return None
    return payload


class _Health:
    """``GET /health``: which providers answer, probed at most every ``_HEALTH_TTL`` seconds."""

    def __init__(self, current: Callable[[], "Runtime"]) -> None:
        self.current = current
        self.lock = asyncio.Lock()
        self.last: tuple[float, Any, dict[str, Any]] | None = None

    @staticmethod
    def _names(rt: "Runtime") -> list[str]:
        cfg = rt.config
        used = [cfg.cache.default_provider, *(rc.provider for rc in cfg.regions.values() if rc.provider)]
        return list(dict.fromkeys([*cfg.providers, *used]))

    @staticmethod
    def _probe(rt: "Runtime", name: str) -> str:
        if rt.breakers().get(name, {}).get("state") == "open":
            return "open"  # its circuit is open: not probed (no timeout paid)
        try:
            rt.store(name).l2.driver.ping()
        except Exception:  # what failed stays in the logs and stats: this route is open
            return "down"
        return "ok"

    async def __call__(self) -> dict[str, Any]:
        rt = self.current()
        async with self.lock:
            last = self.last
            if last is not None and last[1] is rt and time.monotonic() - last[0] < _HEALTH_TTL:
                return last[2]
            names = self._names(rt)
            states = await asyncio.gather(*(off_loop(None, self._probe, rt, n) for n in names))
            providers = dict(zip(names, states, strict=True))
            answer = {"status": "ok" if all(s == "ok" for s in states) else "degraded", "providers": providers}
            self.last = (time.monotonic(), rt, answer)
            return answer


def create_router(runtime: "Runtime | None" = None, token: str | None = None, admin_token: str | None = None,
                  *, allow_anonymous: bool = False) -> "APIRouter":
    """The ``/api/cache`` router over ``runtime`` (default: the ``Cache`` facade's runtime at
    request time).

    ``token`` (else ``[http] token`` of the config) guards the data routes, ``admin_token`` (else
    ``[http] admin_token``) the admin routes, which are not mounted without one. Tokens are read
    once, here. Without any token this raises :class:`~cachekit.CacheError`, unless
    ``allow_anonymous=True``: then loopback clients need no token for the data routes (a warning
    says so). The two tokens must differ.
    """
    require("fastapi", "http")
    return _router(runtime, Access(runtime, token, admin_token, allow_anonymous))


def _router(runtime: "Runtime | None", access: Access) -> "APIRouter":
    fastapi = require("fastapi", "http")
    responses = require("fastapi.responses", "http")
    APIRouter = fastapi.APIRouter  # type: ignore[attr-defined]
    JSONResponse = responses.JSONResponse  # type: ignore[attr-defined]
    DATA, ADMIN = route_dependencies(access)

    def current() -> "Runtime":
        return runtime if runtime is not None else Cache.runtime()

    def answer(result: Result[Any], status: int = 200) -> Any:
        if result.is_failure():
            code = result.code or "error"
            return JSONResponse({"detail": result.error, "error": code}, status_code=_STATUS.get(code, 400))
        return JSONResponse(_data(result.value), status_code=status)

    def unknown_region(region: str | None) -> Any:
        """A 404 for ``?region=`` naming an undeclared region (unless ``[http] adhoc_regions``):
        every distinct name would otherwise build a region kept in memory."""
        if region is None:
            return None
        cfg = current().config
        if region in cfg.regions or region == cfg.cache.default_region or cfg.http.adhoc_regions:
            return None
        declared = ", ".join(sorted({*cfg.regions, cfg.cache.default_region}))
        return JSONResponse({"detail": f"unknown region {region!r}; declared: {declared} ([http] adhoc_regions = "
                             "true lets ?region= name any region)", "error": "not_found"}, status_code=404)

    # Admin services check every config edit before it is applied (cachekit.http_policy).
    providers = CacheProviderService(runtime, guard=admin_guard)
    regions = CacheRegionService(runtime, guard=admin_guard)
    rules = InvalidationRuleService(runtime, guard=admin_guard)
    items = CacheItemService(runtime)
    config = CacheConfigurationService(runtime, guard=admin_guard)
    monitoring = CacheMonitoringService(runtime)
    admin = access.admin_token is not None

    router = APIRouter(prefix="/api/cache", tags=["cache"])

    def member_routes(collection: str, get: Callable[[str], Awaitable[Result[Any]]],
                      update: Callable[[str, dict[str, Any]], Awaitable[Result[Any]]],
                      delete: Callable[[str], Awaitable[Result[Any]]]) -> None:
        """``GET`` (data) and ``PUT DELETE`` (admin) ``/<collection>/{id}`` over a service."""

        async def read(id: str) -> Any:
            return answer(await get(id))

        async def change(id: str, body: dict[str, Any]) -> Any:
            return answer(await update(id, body))

        async def remove(id: str) -> Any:
            return answer(await delete(id))

        path, one = f"/{collection}/{{id}}", collection.removesuffix("s")
        router.add_api_route(path, read, methods=["GET"], name=f"get_{one}", dependencies=DATA)
        if admin:
            router.add_api_route(path, change, methods=["PUT"], name=f"update_{one}", dependencies=ADMIN)
            router.add_api_route(path, remove, methods=["DELETE"], name=f"delete_{one}", dependencies=ADMIN)

    health = _Health(current)

    @router.get("/health")
    async def get_health() -> Any:
        """Open: ``{"status": "ok" | "degraded", "providers": {name: "ok" | "down"}}``, nothing more."""
        return JSONResponse(await health())

    # -- providers ------------------------------------------------------------------------
    @router.get("/providers", dependencies=DATA)
    async def list_providers() -> Any:
        return answer(await providers.list_providers())

    if admin:
        @router.post("/providers", status_code=201, dependencies=ADMIN)
        async def create_provider(body: ProviderBody) -> Any:
            return answer(await providers.register_provider(body.name, body.provider_type,
                                                            body.connection_details,
                                                            **(body.model_extra or {})), 201)

    member_routes("providers", providers.get_provider, providers.update_provider, providers.delete_provider)

    @router.get("/providers/{provider_id}/summary", dependencies=DATA)
    async def provider_summary(provider_id: str) -> Any:
        return answer(await monitoring.get_provider_summary(provider_id))

    @router.get("/providers/{provider_id}/statistics", dependencies=DATA)
    async def provider_statistics(provider_id: str, start_time: datetime | None = None,
                                  end_time: datetime | None = None, stat_type: str | None = None) -> Any:
        return answer(await monitoring.get_provider_statistics(provider_id, start_time, end_time, stat_type))

    # -- regions --------------------------------------------------------------------------
    @router.get("/regions", dependencies=DATA)
    async def list_regions() -> Any:
        return answer(await regions.list_regions())

    if admin:
        @router.post("/regions", status_code=201, dependencies=ADMIN)
        async def create_region(body: RegionBody) -> Any:
            return answer(await regions.create_region(body.name, body.provider_id, body.ttl, body.max_size,
                                                      **(body.model_extra or {})), 201)

    member_routes("regions", regions.get_region, regions.update_region, regions.delete_region)

    # -- rules ----------------------------------------------------------------------------
    @router.get("/rules", dependencies=DATA)
    async def list_rules(key: str | None = None) -> Any:
        if key is not None:
            return answer(await rules.find_matching_rules(key))
        return answer(await rules.list_rules())

    if admin:
        @router.post("/rules", status_code=201, dependencies=ADMIN)
        async def create_rule(body: RuleBody) -> Any:
            return answer(await rules.create_rule(body.name, body.strategy_type, **(body.model_extra or {})), 201)

    member_routes("rules", rules.get_rule, rules.update_rule, rules.delete_rule)

    # -- items (the pattern route comes first: it would otherwise be read as a key) -------
    @router.delete("/items/pattern/{pattern:path}", dependencies=DATA)
    async def invalidate_pattern(pattern: str, region: str | None = None) -> Any:
        return unknown_region(region) or answer(await items.invalidate_pattern(pattern, region))

    @router.delete("/items", dependencies=DATA)
    async def clear_items(region: str | None = None) -> Any:
        return unknown_region(region) or answer(await items.clear(region))

    @router.get("/items/{key:path}", dependencies=DATA)
    async def get_item(key: str, region: str | None = None) -> Any:
        refused = unknown_region(region)
        if refused is not None:
            return refused
        result = await items.get_item(key, region)
        if result.is_success() and result.value is None:
            return JSONResponse({"detail": f"{key!r} is not cached", "error": "not_found"}, status_code=404)
        if result.is_failure():
            return answer(result)
        payload = _item_payload(result.value)  # type: ignore[arg-type]
        if payload is None:
            kind = type(result.value.value).__name__  # type: ignore[union-attr]
            return JSONResponse({"detail": f"the cached value of {key!r} (a {kind}) cannot be represented in "
                                 "JSON; read it from Python", "error": "not_json"}, status_code=406)
        return JSONResponse(payload)

    @router.put("/items/{key:path}", dependencies=DATA)
    async def put_item(key: str, body: ItemBody, region: str | None = None) -> Any:
        refused = unknown_region(region)
        if refused is not None:
            return refused
        try:
            json.dumps(body.value, allow_nan=False)  # 1e400 parses as inf: it could not be read back
        except ValueError:
            return JSONResponse({"detail": "value: numbers must be finite (JSON has no NaN or Infinity)",
                                 "error": "invalid"}, status_code=422)
        result = await items.set_item(key, body.value, body.ttl_seconds, region, body.tags)
        if result.is_failure():
            return answer(result)
        return JSONResponse(_item_payload(result.value))  # type: ignore[arg-type]

    @router.delete("/items/{key:path}", dependencies=DATA)
    async def delete_item(key: str, region: str | None = None) -> Any:
        refused = unknown_region(region)
        if refused is not None:
            return refused
        result = await items.delete_item(key, region)
        if result.is_failure():
            return answer(result)
        return JSONResponse({"key": key, "deleted": result.value})

    # -- configuration --------------------------------------------------------------------
    @router.get("/configuration", dependencies=DATA)
    async def get_configuration() -> Any:
        return answer(await config.get_active_configuration())

    if admin:
        @router.put("/configuration", dependencies=ADMIN)
        async def update_configuration(body: dict[str, Any]) -> Any:
            if "http" in body:
                return JSONResponse({"detail": "the [http] section (tokens, allowed_hosts, file_root, "
                                     "adhoc_regions) cannot be changed over HTTP; edit the config file or the "
                                     "environment", "error": "forbidden"}, status_code=403)
            return answer(await config.update_configuration(body))

        @router.post("/configuration/enable", dependencies=ADMIN)
        async def enable() -> Any:
            return answer(await config.enable())

        @router.post("/configuration/disable", dependencies=ADMIN)
        async def disable() -> Any:
            return answer(await config.disable())

    @router.get("/stats", dependencies=DATA)
    async def stats() -> Any:
        return JSONResponse(jsonable(current().stats.rows()))

    @router.get("/metrics", dependencies=DATA)
    async def metrics() -> Any:  # the Prometheus text format (the ``prometheus`` extra)
        try:
            from .exporters.prometheus import render
            body, content_type = render(current())
        except CacheError as exc:
            return JSONResponse({"detail": str(exc), "error": "not_implemented"}, status_code=501)
        return responses.Response(body, media_type=content_type)

    return router  # type: ignore[no-any-return]


def create_app(runtime: "Runtime | None" = None, token: str | None = None, admin_token: str | None = None,
               *, allow_anonymous: bool = False, host: str | None = None) -> "FastAPI":
    """A FastAPI app serving :func:`create_router` (``uvicorn`` it, or mount it in your app).

    Tokens and ``allow_anonymous`` as in :func:`create_router`; ``host`` is the address the app will
    listen on, if known: anonymous access on a non-loopback ``host`` raises
    :class:`~cachekit.CacheError`. ``/openapi.json`` and ``/docs`` (Swagger UI with the document
    inlined: it fetches nothing unauthenticated; "Authorize" takes the bearer token for "Try it
    out") need the data token.
    """
    fastapi = require("fastapi", "http")
    docs = require("fastapi.openapi.docs", "http")
    responses = require("fastapi.responses", "http")
    from . import __version__

    if allow_anonymous and host is not None and not is_loopback(host):
        raise CacheError(f"anonymous access is for loopback addresses only, not {host!r}; set [http] token "
                         "(CACHEKIT_HTTP__TOKEN) to serve other hosts")
    access = Access(runtime, token, admin_token, allow_anonymous)
    app = fastapi.FastAPI(title="cachekit", version=__version__,  # type: ignore[attr-defined]
                          description="Manage cache providers, regions, rules and items.",
                          openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(_router(runtime, access))
    DATA, _ = route_dependencies(access)
    no_store = {"Cache-Control": "no-store"}

    @app.get("/openapi.json", include_in_schema=False, dependencies=DATA)
    async def openapi() -> Any:
        return responses.JSONResponse(app.openapi(), headers=no_store)  # type: ignore[attr-defined]

    @app.get("/docs", include_in_schema=False, dependencies=DATA)
    async def swagger() -> Any:
        page = docs.get_swagger_ui_html(  # type: ignore[attr-defined]
            openapi_url="", title="cachekit - Swagger UI", swagger_ui_parameters={"spec": app.openapi()})
        page.headers.update(no_store)
        return page

    return app  # type: ignore[no-any-return]
