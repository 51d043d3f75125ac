"""What ``@cached`` returns: :class:`CachedFunction` (sync), :class:`AsyncCachedFunction` (``async def``)
and the bound form a cached method takes on its instance, with the options they share (TTL strings,
``unless`` / ``condition``, ``version``).

The decorators that build them live in :mod:`cachekit.decorators`, which re-exports both classes.
A call builds its key with :mod:`cachekit.keys` and asks the region for it (``remember_call``); the
region is resolved at call time through :func:`cachekit.facade.current_runtime` unless a runtime was
given.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from .config.durations import parse_duration
from .errors import CacheError
from .facade import current_runtime
from .keys import MAX_KEY_LENGTH, KeyBuilder, compiled_template, tag_names
from .offload import off_loop
from .runtime.policy import normalize_ttl
from .runtime.region import Region, TaggedCache

if TYPE_CHECKING:
    from .runtime.runtime import Runtime

__all__ = ["AsyncCachedFunction", "CachedFunction", "format_all", "ttl_option"]

_KeyOption = str | Callable[..., str] | None


class _NoStore(Exception):
    """Raised by the loader of a function with ``unless=``/``condition=`` for a result not to cache:
    exceptions are never cached, and the call returns ``value`` (concurrent callers share it)."""

    def __init__(self, value: Any) -> None:
        super().__init__()
        self.value = value


def ttl_option(ttl: Any) -> Any:
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


def _mark_coroutine(obj: Any) -> None:
    """Make ``inspect.iscoroutinefunction`` (3.12+) and ``asyncio.iscoroutinefunction`` say yes."""
    mark = getattr(inspect, "markcoroutinefunction", None)
    if mark is not None:
        mark(obj)
    marker = getattr(asyncio.coroutines, "_is_coroutine", None)
    if marker is not None:
        obj._is_coroutine = marker


def format_all(templates: tuple[str, ...], arguments: dict[str, Any], what: str,
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
        # update_wrapper's ``__dict__.update`` would give the instance a materialized dict, whose
        # attribute reads are slower on every call: the function's attributes are copied one by one
        functools.update_wrapper(self, fn, updated=())
        for name, value in getattr(fn, "__dict__", {}).items():
            if not isinstance(getattr(type(self), name, None), property):  # set below, as before
                setattr(self, name, value)
        self.__wrapped__ = fn
        self.ttl = normalize_ttl(ttl_option(ttl))
        self.version = version
        key, key_prefix = _versioned(key, key_prefix, version, fn)
        #: ``keep(result)`` -> may it be cached (``unless=`` / ``condition=``); ``None``: always
        self.keep = _keep_test(unless, condition)
        #: what a miss runs: the function, or a wrapper that keeps a result out of the cache
        self._load = fn if self.keep is None else self._checked(fn)
        self._region_name = region
        self._tags = tag_names(tags)
        self._runtime = runtime
        self._route()
        self.make_key = KeyBuilder(fn, key_prefix, key, ignore)
        # f(one argument) called with an int: its key is ``prefix:<int>``, built inline in __call__
        self._int_head = self.make_key.head
        self._int_arity = self.make_key.fast_arity if self._int_head is not None else -1
        self._int_at = max(self._int_arity - 1, 0)  # the last argument's index (a constant index is faster than -1)
        self._bound: tuple[Runtime, Region] | None = None

    # -- plumbing -------------------------------------------------------------------------
    def _route(self) -> None:
        self._tag_templates = any("{" in t for t in self._tags)
        #: no tags, no runtime, no region named: a call goes to the facade's default region
        self._direct = not self._tags and self._runtime is None and self._region_name is None

    @property
    def region_name(self) -> str | None:
        """The region named at decoration (``None``: the runtime's default region)."""
        return self._region_name

    @region_name.setter
    def region_name(self, name: str | None) -> None:
        self._region_name, self._bound = name, None
        self._route()

    @property
    def tags(self) -> tuple[str, ...]:
        """The tags every entry carries (format strings over the parameters allowed)."""
        return self._tags

    @tags.setter
    def tags(self, tags: Iterable[str] | str) -> None:
        self._tags = tag_names(tags)
        self._route()

    @property
    def runtime(self) -> Runtime | None:
        """The runtime given at decoration (``None``: the ``Cache`` facade's, at call time)."""
        return self._runtime

    @runtime.setter
    def runtime(self, runtime: Runtime | None) -> None:
        self._runtime = runtime
        self._route()

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
            tags = tuple(format_all(tags, self.make_key.arguments(args, kwargs), "tag", self.__wrapped__))
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
        # The hit path is inlined (a call saved is a frame saved): the key of f(one int), and the
        # region, as _call_key and region() give them.
        if len(args) == self._int_arity and not kwargs and type(arg := args[self._int_at]) is int:
            key = self._int_head + str(arg)  # type: ignore[operator]
            if len(key) > MAX_KEY_LENGTH:
                key = self.make_key(args, kwargs)
        else:
            key = self._call_key(args, kwargs)
        if self._direct:
            rt = current_runtime()
            region = rt.default_repository or rt.resolve_default()
        elif self._tags:
            return self._tagged_call(key, args, kwargs)
        else:  # region() inlined: a runtime given, or a region named
            rt = self._runtime
            if rt is None:
                rt = current_runtime()
            if self._region_name is None:
                region = rt.default_repository or rt.resolve_default()
            else:
                bound = self._bound
                region = bound[1] if bound is not None and bound[0] is rt else self.region()
        try:
            return region.remember_call(key, self.ttl, self._load, args, kwargs)  # the loader built on a miss only
        except _NoStore as kept_out:
            return kept_out.value

    def _tagged_call(self, key: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A call of a function with ``tags=`` (its own method: the closure would make ``__call__``'s
        arguments cells, built on every call)."""
        fn = self._load
        try:
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

