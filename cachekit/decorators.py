"""Decorators of seed 003: ``cached``, ``async_cached``, ``invalidate_cache`` and ``cache_aside``.

>>> from cachekit import Cache, cached
>>> _ = Cache.fake()
>>> @cached(ttl=300, key_prefix="user")
... def get_user(user_id):
...     return {"id": user_id}
>>> get_user(1)
{'id': 1}
>>> get_user.key(1)
'user:1'
>>> Cache.get("user:1")
{'id': 1}

Keys come from :mod:`cachekit.keys`: built from the arguments (never from ``hash()``, so every
process computes the same key), bound to the signature first (``f(1)``, ``f(user_id=1)`` and
``f(1, verbose=False)`` share one key when ``False`` is the default), with the types kept apart
(``None``/``"None"``, ``1.5``/``"1.5"``, ``2``/``"2"``/``Decimal("2")`` are different entries) and
every value escaped (``acl:{user}:{resource}`` keeps ``("bob:admin", "x")`` and ``("bob", "admin:x")``
apart). A first parameter named ``self`` or ``cls`` is left out; ``ignore=("db",)`` leaves others
out; the default prefix is ``module.qualname`` of the function. Pass ``key="user:{user_id}"`` (a
format string over the parameters) or ``key=callable`` (called with the function's arguments) to
choose the key yourself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from .cached_function import AsyncCachedFunction, CachedFunction, format_all, ttl_option
from .errors import CacheError
from .facade import current_runtime
from .keys import KeyBuilder, cache_key, tag_names
from .offload import off_loop
from .runtime.policy import normalize_ttl
from .runtime.region import Region, TaggedCache, is_async_callable

if TYPE_CHECKING:
    from .runtime.runtime import Runtime

__all__ = [
    "AsyncCachedFunction",
    "CachedFunction",
    "async_cached",
    "cache_aside",
    "cache_key",
    "cached",
    "invalidate_cache",
]

F = TypeVar("F", bound=Callable[..., Any])
_KeyOption = str | Callable[..., str] | None


def _resolve(runtime: Runtime | None) -> Runtime:
    return runtime if runtime is not None else current_runtime()


def _options(ttl: Any, key_prefix: str | None, region: str | None, tags: Iterable[str] | str, key: _KeyOption,
             runtime: Runtime | None, ignore: Iterable[str], unless: Callable[[Any], bool] | None,
             condition: Callable[[Any], bool] | None, version: Any,
             key_func: Callable[..., str] | None) -> dict[str, Any]:
    """The options of a :class:`CachedFunction`, checked at decoration (not at the first call)."""
    if key_func is not None:
        if key is not None:
            raise CacheError("give key or key_func, not both")
        if not callable(key_func):
            raise CacheError(f"key_func must be callable, not {type(key_func).__name__}")
        key = key_func
    options = {"ttl": ttl, "key_prefix": key_prefix, "region": region, "tags": tags, "key": key,
               "runtime": runtime, "ignore": ignore, "unless": unless, "condition": condition,
               "version": version}
    normalize_ttl(ttl_option(ttl))
    return options


# -- the decorators -----------------------------------------------------------------------------


def cached(ttl: Any = None, key_prefix: str | None = None, region: str | None = None,
           tags: Iterable[str] | str = (), key: _KeyOption = None, runtime: Runtime | None = None,
           *, ignore: Iterable[str] = (), unless: Callable[[Any], bool] | None = None,
           condition: Callable[[Any], bool] | None = None, version: Any = None,
           key_func: Callable[..., str] | None = None) -> Any:
    """Cache a function's results by its arguments (sync or ``async def``).

    - ``ttl``: seconds, a ``timedelta`` or a duration string (``"5m"``); ``None`` takes the region's
      TTL (and time_based rules);
    - ``key_prefix``: the key's first part (default ``module.qualname``); ``key``: a format string
      over the parameters (``"user:{user_id}"``) or a callable returning the whole key;
    - ``region``: region name (default region when ``None``); ``tags``: carried by every entry
      (format strings over the parameters allowed: ``"user:{user_id}"``);
    - ``runtime``: a :class:`~cachekit.Runtime`; default: the ``Cache`` facade's runtime *at call
      time*, so ``Cache.fake()`` in a test takes effect on functions decorated at import;
    - ``ignore``: parameter names left out of the key (a database session, a logger...);
    - ``unless``: a predicate on the result; ``True`` keeps that result out of the cache
      (``unless=lambda r: r is None``); ``condition``: its positive twin (cache only when ``True``);
    - ``version``: a key version (``:v<version>`` in the key); bump it to leave old entries unread;
    - ``key_func``: called with the function's arguments, returns the whole key (as ``key=callable``).

    Concurrent calls with one key run the function once; a returned ``None`` is cached; an
    exception is not. ``@cached`` without parentheses works too.
    """
    if callable(ttl) and not isinstance(ttl, (int, float)):  # bare @cached
        return cached()(ttl)
    options = _options(ttl, key_prefix, region, tags, key, runtime, ignore, unless, condition, version, key_func)

    def decorate(fn: F) -> F:
        if is_async_callable(fn):
            return AsyncCachedFunction(fn, **options)  # type: ignore[return-value]
        return CachedFunction(fn, **options)  # type: ignore[return-value]

    return decorate


def async_cached(ttl: Any = None, key_prefix: str | None = None, region: str | None = None,
                 tags: Iterable[str] | str = (), key: _KeyOption = None, runtime: Runtime | None = None,
                 *, ignore: Iterable[str] = (), unless: Callable[[Any], bool] | None = None,
                 condition: Callable[[Any], bool] | None = None, version: Any = None,
                 key_func: Callable[..., str] | None = None) -> Any:
    """``cached`` for ``async def`` functions: awaiting the call gives the value, loaded once per key
    across concurrent tasks. Options as in :func:`cached`."""
    if callable(ttl) and not isinstance(ttl, (int, float)):  # bare @async_cached
        return async_cached()(ttl)
    options = _options(ttl, key_prefix, region, tags, key, runtime, ignore, unless, condition, version, key_func)

    def decorate(fn: F) -> F:
        if not is_async_callable(fn):
            raise CacheError(f"@async_cached needs an async def function; {fn.__qualname__} is not "
                             "(use @cached for plain functions)")
        return AsyncCachedFunction(fn, **options)  # type: ignore[return-value]

    return decorate


def invalidate_cache(patterns: Iterable[str] | str = (), tags: Iterable[str] | str = (),
                     events: Iterable[str] | str = (), region: str | Iterable[str] | None = None,
                     runtime: Runtime | None = None) -> Callable[[F], F]:
    """After the decorated function returns (not when it raises), invalidate:

    - ``patterns``: globs (``"user:*"``) or keys; format strings over the parameters allowed
      (``"user:{user_id}"``); a declared ``pattern_based`` rule's pattern is O(1) on every store;
    - ``tags``: entries carrying any of them (format strings allowed);
    - ``events``: fired with the call's arguments as parameters (``emit("user_updated",
      user_id=..., data=...)``) for the ``event_based`` rules.

    ``region`` limits patterns and tags to one region (or several); ``None`` means every region.
    Works on sync and ``async def`` functions; for the latter the invalidation runs in a thread.
    """
    pattern_list = (patterns,) if isinstance(patterns, str) else tuple(patterns)
    tag_list = tag_names(tags)
    event_list = (events,) if isinstance(events, str) else tuple(events)

    def decorate(fn: F) -> F:
        arguments = KeyBuilder(fn, None, None, ()).call_arguments

        def invalidate(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            rt = _resolve(runtime)
            params_ = arguments(args, kwargs)
            for pattern in format_all(pattern_list, params_, "pattern", fn):
                rt.invalidate(pattern=pattern, region=region)
            if tag_list:
                rt.invalidate(tags=format_all(tag_list, params_, "tag", fn), region=region)
            for event in event_list:
                rt.emit(event, **params_)

        if is_async_callable(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                result = await fn(*args, **kwargs)
                await off_loop(None, invalidate, args, kwargs)  # across regions: always a thread
                return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = fn(*args, **kwargs)
            invalidate(args, kwargs)
            return result

        return wrapper  # type: ignore[return-value]

    return decorate


async def cache_aside(key: str, loader: Callable[[], Any], ttl: Any = None, region: str | None = None,
                      tags: Iterable[str] | str = (), runtime: Runtime | None = None) -> Any:
    """The cached value of ``key``, or ``loader()`` (sync, async, or returning an awaitable) stored
    for ``ttl`` seconds and returned. Concurrent callers for one key run the loader once.

    >>> import asyncio
    >>> from cachekit import Cache, cache_aside
    >>> _ = Cache.fake()
    >>> async def load_user(user_id):
    ...     return {"id": user_id}
    >>> asyncio.run(cache_aside(key="user:7", loader=lambda: load_user(7), ttl=300, region="users"))
    {'id': 7}
    """
    repo: Region | TaggedCache = _resolve(runtime).region(region)
    names = tag_names(tags)
    if names:
        repo = repo.tags(names)
    return await repo.aremember(key, ttl, loader)
