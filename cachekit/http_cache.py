"""Response caching for FastAPI endpoints: ``@cache_response`` (re-exported by :mod:`cachekit.http`).

>>> from fastapi import FastAPI
>>> from cachekit.http import cache_response
>>> app = FastAPI()
>>> @app.get("/reports/{day}")
... @cache_response(ttl=300)
... async def report(day: int) -> dict:
...     return {"day": day}

What it does, per request (the decorator sits *under* the route decorator):

- only ``GET`` and ``HEAD`` are cached (one entry serves both); other methods call the endpoint;
- the key is ``response:<path>[:<sorted query>]`` plus a digest of the ``Authorization`` and ``Cookie``
  headers when the request has them (``vary=``), or the ``key=`` template / callable filled with the
  endpoint's arguments (the key is then exactly what it gives);
- ``Cache-Control: no-store`` from the client: nothing is read or written (``X-Cache: BYPASS``);
  ``no-cache`` or ``max-age=0``: the entry is not read, the endpoint runs and refreshes it;
- only JSON is cached: the endpoint's return value after ``jsonable_encoder``, or the body of a JSON
  ``Response`` with status 200; anything else (a ``StreamingResponse``, a ``FileResponse``, bytes, a value
  with ``NaN``, a status other than 200, a response that sets a cookie) is passed through uncached;
- answers carry ``X-Cache: HIT | MISS``, a strong ``ETag`` (a sha256 of the cached JSON) and
  ``Cache-Control: max-age=<remaining ttl>`` (``private,`` in front when the request carried
  ``Authorization``, ``Cookie`` or a ``vary`` header); a request whose ``If-None-Match`` names the
  current ETag gets a 304 without body.

Dependencies (``Depends``) run on every request, hits included: an authorization check in a
dependency still guards a cached endpoint.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import math
import typing
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from .errors import CacheError
from .facade import Cache
from .keys import KeyBuilder, cache_key

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from .runtime.region import Region
    from .runtime.runtime import Runtime

__all__ = ["DEFAULT_VARY", "cache_response"]

DEFAULT_VARY = ("Authorization", "Cookie")
"""The request headers the default key depends on: one user's answer is never served to another."""

_CACHED_METHODS = frozenset({"GET", "HEAD"})
_REQUEST_PARAM = "__cachekit_request"
_RESPONSE_PARAM = "__cachekit_response"
_MISSING = object()


def cache_response(ttl: Any = None, region: str | None = None, key: str | Callable[..., str] | None = None,
                   vary: Iterable[str] | None = None, runtime: Runtime | None = None) -> Callable[[Any], Any]:
    """Cache the JSON answers of a FastAPI endpoint (see the module's docstring).

    ``ttl``: seconds, a ``timedelta`` or a duration string (default: the region's TTL); ``region``: a
    region name (default: the runtime's default region); ``key``: a template such as ``"user:{user_id}"``
    or a callable taking the endpoint's arguments (default: method, path and query string); ``vary``:
    request headers hashed into the key (default: ``Authorization`` and ``Cookie`` for the default key,
    none with ``key=``); ``runtime``: default, the :class:`~cachekit.Cache` facade's runtime, looked up
    per request.
    """
    if isinstance(ttl, str):
        from .config.durations import DURATION_FORMS, parse_duration

        seconds = parse_duration(ttl)
        if seconds is None:
            raise CacheError(f"cache_response: ttl {ttl!r} is not {DURATION_FORMS}")
        ttl = seconds
    vary_names = tuple(h.lower() for h in (vary if vary is not None else (DEFAULT_VARY if key is None else ())))

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        from starlette.requests import Request
        from starlette.responses import Response

        signature = inspect.signature(fn)
        request_param = _param_of(fn, signature, Request)
        response_param = _param_of(fn, signature, Response)
        builder = KeyBuilder(fn, None, key, ()) if key is not None else None
        settings = _Settings(ttl, region, builder, vary_names, runtime)

        def split(kwargs: dict[str, Any]) -> tuple[Request, Response, dict[str, Any]]:
            request = kwargs.pop(_REQUEST_PARAM) if request_param is None else kwargs[request_param]
            response = kwargs.pop(_RESPONSE_PARAM) if response_param is None else kwargs[response_param]
            return request, response, kwargs

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_endpoint(*args: Any, **kwargs: Any) -> Any:
                request, response, kwargs = split(kwargs)
                call = _Call(settings, request, response, args, kwargs)
                if call.region is None:
                    return await fn(*args, **kwargs)
                if call.read:
                    found = await call.region.aget(call.key, _MISSING)
                    if found is not _MISSING:
                        answer = call.hit(found)
                        if answer is not _MISSING:
                            return answer
                result = await fn(*args, **kwargs)
                entry = call.entry_of(result)
                if entry is None:
                    return result
                if call.write:
                    await call.store_async(entry)
                return call.miss(result, entry)

            wrapper: Callable[..., Any] = async_endpoint
        else:
            @functools.wraps(fn)
            def sync_endpoint(*args: Any, **kwargs: Any) -> Any:
                request, response, kwargs = split(kwargs)
                call = _Call(settings, request, response, args, kwargs)
                if call.region is None:
                    return fn(*args, **kwargs)
                if call.read:
                    found = call.region.get(call.key, _MISSING)
                    if found is not _MISSING:
                        answer = call.hit(found)
                        if answer is not _MISSING:
                            return answer
                result = fn(*args, **kwargs)
                entry = call.entry_of(result)
                if entry is None:
                    return result
                if call.write:
                    call.store(entry)
                return call.miss(result, entry)

            wrapper = sync_endpoint

        params = list(signature.parameters.values())
        extra = []
        if request_param is None:
            extra.append(inspect.Parameter(_REQUEST_PARAM, inspect.Parameter.KEYWORD_ONLY, annotation=Request))
        if response_param is None:
            extra.append(inspect.Parameter(_RESPONSE_PARAM, inspect.Parameter.KEYWORD_ONLY, annotation=Response))
        if params and params[-1].kind is inspect.Parameter.VAR_KEYWORD:
            params = [*params[:-1], *extra, params[-1]]
        else:
            params = [*params, *extra]
        wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        return wrapper

    return decorate


def _param_of(fn: Callable[..., Any], signature: inspect.Signature, kind: type) -> str | None:
    """The name of ``fn``'s parameter annotated with ``kind`` (or a subclass), if any."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: fall back to the raw annotations
        hints = {}
    for name, param in signature.parameters.items():
        annotation = hints.get(name, param.annotation)
        if isinstance(annotation, type) and issubclass(annotation, kind):
            return name
    return None


class _Settings:
    __slots__ = ("builder", "region", "runtime", "ttl", "vary")

    def __init__(self, ttl: Any, region: str | None, builder: KeyBuilder | None, vary: tuple[str, ...],
                 runtime: Runtime | None) -> None:
        self.ttl = ttl
        self.region = region
        self.builder = builder
        self.vary = vary
        self.runtime = runtime


class _Call:
    """One request through a cached endpoint."""

    __slots__ = ("key", "private", "read", "region", "request", "response", "settings", "write")

    def __init__(self, settings: _Settings, request: Request, response: Response, args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> None:
        self.settings = settings
        self.request = request
        self.response = response
        self.region: Region | None = None
        if request.method not in _CACHED_METHODS:
            return
        directives = _directives(request.headers.get("cache-control", ""))
        self.read = not ({"no-store", "no-cache", "max-age=0"} & directives)
        self.write = "no-store" not in directives
        headers = request.headers
        varying = [(name, headers.get(name)) for name in settings.vary if name in headers]
        # an answer to a request with credentials is never for shared caches (proxies), whatever the key
        self.private = bool(varying) or "authorization" in headers or "cookie" in headers
        if settings.builder is not None:
            key = settings.builder(args, kwargs)
            if not isinstance(key, str):
                raise CacheError(f"cache_response: key= gave {type(key).__name__}, not a string")
        else:
            query = sorted(request.query_params.multi_items())
            key = cache_key("response", request.url.path, *([urlencode(query)] if query else ()))
        if varying:
            digest = hashlib.sha256("\n".join(f"{n}\0{v}" for n, v in varying).encode()).hexdigest()[:32]
            key = f"{key}:vary={digest}"
        self.key = key
        rt = settings.runtime if settings.runtime is not None else Cache.runtime()
        self.region = rt.region(settings.region)

    # -- entries ------------------------------------------------------------------------------
    def entry_of(self, result: Any) -> dict[str, Any] | None:
        """The cache entry of the endpoint's answer, or ``None`` when it is not cacheable JSON."""
        from starlette.responses import Response, StreamingResponse

        status = self.response.status_code
        if (status not in (None, 200)) or "set-cookie" in self.response.headers:
            return None
        if isinstance(result, Response):
            if isinstance(result, StreamingResponse) or result.status_code != 200 \
                    or "set-cookie" in result.headers:
                return None
            media_type = result.media_type or result.headers.get("content-type", "")
            body = getattr(result, "body", None)
            if "json" not in media_type or not isinstance(body, bytes):
                return None
            try:
                text = body.decode()
                json.loads(text)
            except ValueError:
                return None
            return {"body": text, "media_type": media_type, "etag": _etag(text)}
        if isinstance(result, (bytes, bytearray, memoryview)):
            return None
        from fastapi.encoders import jsonable_encoder

        try:
            value = jsonable_encoder(result)
            text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError, RecursionError):
            return None
        return {"value": value, "etag": _etag(text)}

    def _expiring(self, entry: dict[str, Any]) -> tuple[dict[str, Any], float | None]:
        region = self.region
        assert region is not None
        seconds = region.policy.ttl_for(self.key, self.settings.ttl)
        entry["expires"] = None if seconds is None else region.now() + seconds
        return entry, seconds

    def store(self, entry: dict[str, Any]) -> None:
        entry, seconds = self._expiring(entry)
        region = self.region
        assert region is not None
        if seconds is None:
            region.forever(self.key, entry)
        else:
            region.put(self.key, entry, seconds)

    async def store_async(self, entry: dict[str, Any]) -> None:
        entry, seconds = self._expiring(entry)
        region = self.region
        assert region is not None
        if seconds is None:
            await region.aforever(self.key, entry)
        else:
            await region.aput(self.key, entry, seconds)

    # -- answers ------------------------------------------------------------------------------
    def _headers(self, entry: dict[str, Any], state: str) -> dict[str, str]:
        headers = {"ETag": entry["etag"], "X-Cache": state}
        expires = entry.get("expires")
        if expires is not None:
            assert self.region is not None
            remaining = max(0, math.floor(expires - self.region.now()))
            headers["Cache-Control"] = f"{'private, ' if self.private else ''}max-age={remaining}"
        if self.settings.vary:
            headers["Vary"] = ", ".join(h.title() for h in self.settings.vary)
        return headers

    def _not_modified(self, entry: dict[str, Any], headers: dict[str, str]) -> Any:
        from starlette.responses import Response

        tags = self.request.headers.get("if-none-match")
        if tags is None:
            return _MISSING
        listed = {t.strip().removeprefix("W/") for t in tags.split(",")}
        if "*" in listed or entry["etag"] in listed:
            return Response(status_code=304, headers=headers)
        return _MISSING

    def hit(self, entry: Any) -> Any:
        """The answer from a cached entry (``_MISSING`` when the entry is not one of ours)."""
        from starlette.responses import Response

        if not isinstance(entry, dict) or "etag" not in entry or ("value" not in entry and "body" not in entry):
            return _MISSING
        headers = self._headers(entry, "HIT")
        not_modified = self._not_modified(entry, headers)
        if not_modified is not _MISSING:
            return not_modified
        if "body" in entry:
            return Response(content=entry["body"], media_type=entry.get("media_type", "application/json"),
                            headers=headers)
        self.response.headers.update(headers)
        return entry["value"]

    def miss(self, result: Any, entry: dict[str, Any]) -> Any:
        from starlette.responses import Response

        state = "MISS" if self.write else "BYPASS"
        if not self.write:
            entry["expires"] = None
        headers = self._headers(entry, state)
        not_modified = self._not_modified(entry, headers)
        if not_modified is not _MISSING:
            return not_modified
        target = result if isinstance(result, Response) else self.response
        target.headers.update(headers)
        return result


def _directives(header: str) -> set[str]:
    return {part.strip().lower().replace(" ", "") for part in header.split(",") if part.strip()}


def _etag(text: str) -> str:
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'
