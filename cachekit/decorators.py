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

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from .config.durations import parse_duration
from .errors import CacheError
from .facade import current_runtime
from .keys import KeyBuilder, cache_key, compiled_template, tag_names
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


# -- shared plumbing ----------------------------------------------------------------------------


class _NoStore(Exception):
    """Raised by the loader of a function with ``unless=``/``condition=`` for a result not to cache:
    exceptions are never cached, and the call returns ``value`` (concurrent callers share it)."""

    def __init__(self, value: Any) -> None:
        super().__init__()
        self.value = value


def _ttl_option(ttl: Any) -> Any:
    """A duration string (``"5m"``, ``"1h30m"``) as seconds; anything else as given."""
    if isinstance(ttl, str):
        seconds = parse_duration(ttl)
        if seconds is None:
            raise CacheError(f"ttl {ttl!r} is not a duration (write seconds, or a string such as '90s', '5m', '1h')")
        return seconds
    return ttl


def _keep_test(unless: Callable[[Any], bool] | None,
               condition: Callable[[Any], bool] | None) -> Callable[[Any], bool] | None:
    """``keep(result)``: ``True`` when a result may be cached; ``None`` when every result may."""
    if unless is None and condition is None:
        return None
    for name, test in (("unless", unless), ("condition", condition)):
        if test is not None and not callable(test):
            raise CacheError(f"{name}= must be a predicate on the result, not {type(test).__name__}")
    if condition is None:
        return lambda result: not unless(result)  # type: ignore[misc]
    if unless is None:
        return lambda result: bool(condition(result))
    return lambda result: bool(condition(result)) and not unless(result)


def _versioned(key: _KeyOption, key_prefix: str | None, version: Any,
               fn: Callable[..., Any]) -> tuple[_KeyOption, str | None]:
    """``key``/``key_prefix`` with ``:v<version>`` after the prefix (or at the end of a template or a
    ``key_func``'s key): bumping ``version`` leaves the old entries unread (they expire)."""
    if version is None:
        return key, key_prefix
    tag = f":v{version}"
    if "{" in tag or "}" in tag:
        raise CacheError(f"version {version!r} may not contain braces")
    if key is None:
        base = key_prefix if key_prefix is not None else f"{fn.__module__}.{fn.__qualname__}"
        return None, base + tag
    if isinstance(key, str):
        return key + tag, key_prefix
    make = key

    def versioned_key(*args: Any, **kwargs: Any) -> str:
        return f"{make(*args, **kwargs)}{tag}"

    return versioned_key, key_prefix


def _resolve(runtime: Runtime | None) -> Runtime:
    return runtime if runtime is not None else current_runtime()


def _mark_coroutine(obj: Any) -> None:
    """Make ``inspect.iscoroutinefunction`` (3.12+) and ``asyncio.iscoroutinefunction`` say yes."""
    mark = getattr(inspect, "markcoroutinefunction", None)
    if mark is not None:
        mark(obj)
    marker = getattr(asyncio.coroutines, "_is_coroutine", None)
    if marker is not None:
        obj._is_coroutine = marker


def _format_all(templates: tuple[str, ...], arguments: dict[str, Any], what: str,
                fn: Callable[..., Any]) -> list[str]:
    out = []
    for t in templates:
        if "{" not in t:
            out.append(t)
            continue
        try:
            out.append(compiled_template(t).format(**arguments))
        except (KeyError, IndexError, AttributeError) as exc:
            raise CacheError(f"{what} {t!r} of {fn.__qualname__} needs {exc.args[0]!r}; "
                             f"parameters: {sorted(arguments)}") from None
    return out


class CachedFunction:
    """A function whose results are cached (what ``@cached`` returns for a sync function).

    Call it like the function. Extra methods, each taking the function's arguments:

    - ``.key(*args, **kwargs)`` -> the cache key of that call;
    - ``.invalidate(*args, **kwargs)`` -> forget that call's entry (``True`` if it was cached);
    - ``.refresh(*args, **kwargs)`` -> run the function now, store and return the new value;
    - ``.uncached(*args, **kwargs)`` -> call the function itself, cache neither read nor written;
    - ``.region()`` -> the :class:`~cachekit.Region` used (resolved at call time).

    On a method (first parameter ``self``), reach them through the instance:
    ``repo.find.invalidate(1)``; the instance is not part of the key.
    """

    def __init__(self, fn: Callable[..., Any], *, ttl: Any, key_prefix: str | None, region: str | None,
                 tags: Iterable[str] | str, key: str | Callable[..., str] | None, runtime: Runtime | None,
                 ignore: Iterable[str] = (), unless: Callable[[Any], bool] | None = None,
                 condition: Callable[[Any], bool] | None = None, version: Any = None) -> None:
        functools.update_wrapper(self, fn)
        self.__wrapped__ = fn
        self.ttl = normalize_ttl(_ttl_option(ttl))
        self.version = version
        key, key_prefix = _versioned(key, key_prefix, version, fn)
        #: ``keep(result)`` -> may it be cached (``unless=`` / ``condition=``); ``None``: always
        self.keep = _keep_test(unless, condition)
        #: what a miss runs: the function, or a wrapper that keeps a result out of the cache
        self._load = fn if self.keep is None else self._checked(fn)
        self.region_name = region
        self.tags = tag_names(tags)
        self._tag_templates = any("{" in t for t in self.tags)
        self.runtime = runtime
        self.make_key = KeyBuilder(fn, key_prefix, key, ignore)
        self._bound: tuple[Runtime, Region] | None = None

    # -- plumbing -------------------------------------------------------------------------
    def region(self) -> Region:
        """The region this function caches in, in the runtime in use now."""
        rt = self.runtime
        if rt is None:
            rt = current_runtime()
        if self.region_name is None:
            return rt.default_repository or rt.resolve_default()
        bound = self._bound
        if bound is not None and bound[0] is rt:
            return bound[1]
        region = rt.region(self.region_name)
        self._bound = (rt, region)  # regions are re-configured in place: safe to keep per runtime
        return region

    def _target(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Region | TaggedCache:
        region = self.region()
        if not self.tags:
            return region
        tags = self.tags
        if self._tag_templates:
            tags = tuple(_format_all(tags, self.make_key.arguments(args, kwargs), "tag", self.__wrapped__))
        return region.tags(tags)

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return _BoundCached(self, instance)

    def __repr__(self) -> str:
        name = self.__wrapped__.__qualname__
        return f"<cached {name} region={self.region_name or 'default'} ttl={self.ttl}>"

    # -- API ------------------------------------------------------------------------------
    def key(self, *args: Any, **kwargs: Any) -> str:
        """The cache key of a call with these arguments."""
        return self.make_key(args, kwargs)

    def _call_key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """:attr:`make_key`, with the one-plain-argument case answered inline."""
        mk = self.make_key
        single = mk.single
        if single is not None and not kwargs and len(args) == mk.fast_arity:
            key = single(args[-1])
            if key is not None:
                return key
        return mk(args, kwargs)

    def _checked(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        keep = self.keep

        def load(*args: Any, **kwargs: Any) -> Any:
            result = fn(*args, **kwargs)
            if not keep(result):  # type: ignore[misc]
                raise _NoStore(result)
            return result

        return load

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        key = self._call_key(args, kwargs)
        try:
            if not self.tags:  # the region builds the loader only on a miss
                return self.region().remember_call(key, self.ttl, self._load, args, kwargs)
            fn = self._load
            return self._target(args, kwargs).remember(key, self.ttl, lambda: fn(*args, **kwargs))
        except _NoStore as kept_out:
            return kept_out.value

    def uncached(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function itself: nothing read from the cache, nothing stored."""
        return self.__wrapped__(*args, **kwargs)

    def invalidate(self, *args: Any, **kwargs: Any) -> bool:
        """Forget the cached result of a call with these arguments; ``True`` if one was cached."""
        return self.region().forget(self.make_key(args, kwargs))

    async def ainvalidate(self, *args: Any, **kwargs: Any) -> bool:
        """``invalidate`` without blocking the event loop on a shared store."""
        region = self.region()
        return bool(await off_loop(region, region.forget, self.make_key(args, kwargs)))

    def refresh(self, *args: Any, **kwargs: Any) -> Any:
        """Run the function now, store its result (replacing any cached one) and return it."""
        value = self.__wrapped__(*args, **kwargs)
        if self.keep is None or self.keep(value):
            self._target(args, kwargs).put(self.make_key(args, kwargs), value, self.ttl)
        else:  # a result not to cache: drop the old one rather than serve it
            self.region().forget(self.make_key(args, kwargs))
        return value


class AsyncCachedFunction(CachedFunction):
    """What ``@async_cached`` (or ``@cached`` on an ``async def``) returns.

    Calling it gives a coroutine. ``.refresh(...)`` and ``.ainvalidate(...)`` are coroutines too;
    ``.key(...)`` and ``.invalidate(...)`` are plain calls.
    """

    def __init__(self, fn: Callable[..., Any], **options: Any) -> None:
        super().__init__(fn, **options)
        _mark_coroutine(self)

    def _checked(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        keep = self.keep

        async def load(*args: Any, **kwargs: Any) -> Any:
            result = await fn(*args, **kwargs)
            if not keep(result):  # type: ignore[misc]
                raise _NoStore(result)
            return result

        return load

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        key = self._call_key(args, kwargs)
        try:
            if not self.tags:
                return await self.region().aremember_call(key, self.ttl, self._load, args, kwargs)
            fn = self._load
            return await self._target(args, kwargs).aremember(key, self.ttl, lambda: fn(*args, **kwargs))
        except _NoStore as kept_out:
            return kept_out.value

    async def uncached(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """Await the function itself: nothing read from the cache, nothing stored."""
        return await self.__wrapped__(*args, **kwargs)

    async def refresh(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """Await the function now, store its result (replacing any cached one) and return it."""
        value = await self.__wrapped__(*args, **kwargs)
        target = self._target(args, kwargs)
        region = target.region if isinstance(target, TaggedCache) else target
        if self.keep is None or self.keep(value):
            await off_loop(region, target.put, self.make_key(args, kwargs), value, self.ttl)
        else:
            await off_loop(region, region.forget, self.make_key(args, kwargs))
        return value


class _BoundCached:
    """A cached method bound to an instance: the instance is passed along, never keyed."""

    def __init__(self, cached: CachedFunction, instance: Any) -> None:
        self._cached = cached
        self._instance = instance
        functools.update_wrapper(self, cached.__wrapped__)
        if isinstance(cached, AsyncCachedFunction):
            _mark_coroutine(self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._cached(self._instance, *args, **kwargs)

    def key(self, *args: Any, **kwargs: Any) -> str:
        return self._cached.key(self._instance, *args, **kwargs)

    def invalidate(self, *args: Any, **kwargs: Any) -> bool:
        return self._cached.invalidate(self._instance, *args, **kwargs)

    def ainvalidate(self, *args: Any, **kwargs: Any) -> Awaitable[bool]:
        return self._cached.ainvalidate(self._instance, *args, **kwargs)

    def refresh(self, *args: Any, **kwargs: Any) -> Any:
        return self._cached.refresh(self._instance, *args, **kwargs)

    def uncached(self, *args: Any, **kwargs: Any) -> Any:
        return self._cached.uncached(self._instance, *args, **kwargs)

    def region(self) -> Region:
        return self._cached.region()


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
    if key_func is not None:
        if key is not None:
            raise CacheError("give key or key_func, not both")
        if not callable(key_func):
            raise CacheError(f"key_func must be callable, not {type(key_func).__name__}")
        key = key_func
    options = {"ttl": ttl, "key_prefix": key_prefix, "region": region, "tags": tags, "key": key,
               "runtime": runtime, "ignore": ignore, "unless": unless, "condition": condition,
               "version": version}
    normalize_ttl(_ttl_option(ttl))  # fail at decoration, not at first call

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
    if key_func is not None:
        if key is not None:
            raise CacheError("give key or key_func, not both")
        if not callable(key_func):
            raise CacheError(f"key_func must be callable, not {type(key_func).__name__}")
        key = key_func
    options = {"ttl": ttl, "key_prefix": key_prefix, "region": region, "tags": tags, "key": key,
               "runtime": runtime, "ignore": ignore, "unless": unless, "condition": condition,
               "version": version}
    normalize_ttl(_ttl_option(ttl))

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
            for pattern in _format_all(pattern_list, params_, "pattern", fn):
                rt.invalidate(pattern=pattern, region=region)
            if tag_list:
                rt.invalidate(tags=_format_all(tag_list, params_, "tag", fn), region=region)
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
