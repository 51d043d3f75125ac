"""The ``Cache`` facade: one process-wide runtime behind Laravel-style class methods.

``Cache`` configures itself on first use: the file named by ``CACHEKIT_CONFIG``, else
``./cachekit.toml``, else the embedded default (memory + file). ``Cache.configure(...)`` binds it
to a file or a :class:`~cachekit.Runtime`; ``Cache.fake()`` to a fresh in-memory runtime with a
fake clock, for tests.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from .providers.base import CacheDriver
from .runtime.atomic_lock import Lock
from .runtime.compile import load
from .runtime.region import Region, TaggedCache
from .runtime.runtime import InvalidationResult, Runtime

__all__ = ["Cache", "current_runtime", "default_config_path", "load"]

_lock = threading.RLock()
_runtime: Runtime | None = None
_owned = False


def default_config_path() -> Path | None:
    """The config ``Cache`` would load: ``$CACHEKIT_CONFIG``, else ``./cachekit.toml``, else ``None``."""
    env = os.environ.get("CACHEKIT_CONFIG")
    if env:
        return Path(env)
    local = Path("cachekit.toml")
    return local if local.is_file() else None


def _repo() -> Region:
    """The default repository of the bound runtime: the facade's hot path."""
    runtime = _runtime
    if runtime is None or runtime.closed:
        runtime = current_runtime()
    return runtime.default_repository or runtime.resolve_default()


def current_runtime() -> Runtime:
    """The runtime the ``Cache`` facade uses now, configuring it on first use (or after it was closed).

    Decorators, services, the HTTP router and the notebook panel that were given no runtime of their own
    call this at call time, so ``Cache.fake()`` or ``Cache.configure(...)`` takes effect on them at once.
    """
    runtime = _runtime
    if runtime is None or runtime.closed:
        with _lock:
            runtime = _runtime
            if runtime is None or runtime.closed:
                runtime = _bind(load(default_config_path()), owned=True)
    return runtime


def _bind(runtime: Runtime, *, owned: bool) -> Runtime:
    global _runtime, _owned
    with _lock:
        previous, previous_owned = _runtime, _owned
        _runtime, _owned = runtime, owned
    if previous is not None and previous_owned and previous is not runtime:
        previous.close()
    return runtime


class Cache:
    """The process-wide cache, as in Laravel.

    >>> from cachekit import Cache
    >>> rt = Cache.fake()
    >>> Cache.put("key", "value", ttl=3600)
    True
    >>> Cache.get("key"), Cache.get("other", default="fallback")
    ('value', 'fallback')
    """

    # -- binding --------------------------------------------------------------------------
    @staticmethod
    def configure(source: str | os.PathLike[str] | Runtime | None = None) -> Runtime:
        """Bind the facade to a config file (or a runtime); ``None`` re-runs auto-configuration."""
        if isinstance(source, Runtime):
            return _bind(source, owned=False)
        return _bind(load(source if source is not None else default_config_path()), owned=True)

    @staticmethod
    def runtime() -> Runtime:
        """The runtime the facade uses now (configuring it on first use)."""
        return current_runtime()

    @staticmethod
    def fake() -> Runtime:
        """Bind the facade to a fresh all-memory runtime with a fake clock and return it.

        Every provider, ``redis`` included, becomes an in-process store; advance time with
        ``runtime.clock.advance(seconds)``.
        """
        return _bind(Runtime.fake(), owned=True)

    @staticmethod
    def reset() -> None:
        """Forget the binding (the next call auto-configures again)."""
        global _runtime, _owned
        with _lock:
            previous, owned = _runtime, _owned
            _runtime, _owned = None, False
        if previous is not None and owned:
            previous.close()

    # -- repositories ---------------------------------------------------------------------
    @staticmethod
    def region(name: str | None = None) -> Region:
        """The repository of a region (declared or not)."""
        return current_runtime().region(name)

    @staticmethod
    def store(name: str | None = None) -> Region:
        """The repository of a store: ``Cache.store('redis').put('key', 'value')``."""
        return current_runtime().store(name)

    @staticmethod
    def lock(name: str, seconds: float = 10, owner: str | None = None, *, wait: float | None = None) -> Lock:
        """An atomic lock (Laravel's ``Cache::lock``) in the default store: ``with Cache.lock("report", 10):``."""
        return _repo().lock(name, seconds, owner, wait=wait)

    @staticmethod
    def restore_lock(name: str, owner: str) -> Lock:
        """The lock ``name`` as held by ``owner`` (its token), to release it from another process."""
        return _repo().lock(name, owner=owner)

    @staticmethod
    def on(kind: str, listener: Callable[[Any], Any]) -> Callable[[], None]:
        """``runtime.on`` on the facade's runtime: ``Cache.on("miss", print)``."""
        return current_runtime().on(kind, listener)

    @staticmethod
    def set_default_store(name: str) -> None:
        """Make plain ``Cache.put/get/...`` use store ``name``."""
        current_runtime().set_default_store(name)

    @staticmethod
    def register_store(name: str, driver: CacheDriver) -> None:
        """Register a custom driver instance as store ``name``."""
        current_runtime().register_store(name, driver)

    # -- the seed API ---------------------------------------------------------------------
    @staticmethod
    def put(key: str, value: Any, ttl: Any = None) -> bool:
        """Store ``value`` for ``ttl`` seconds (default: the region's TTL)."""
        return _repo().put(key, value, ttl)

    @staticmethod
    def get(key: str, default: Any = None) -> Any:
        """The cached value or ``default``."""
        return _repo().get(key, default)

    @staticmethod
    def has(key: str) -> bool:
        return _repo().has(key)

    @staticmethod
    def forget(key: str) -> bool:
        return _repo().forget(key)

    @staticmethod
    def flush() -> bool:
        """Remove every entry of the default region (nothing outside its namespace)."""
        return _repo().flush()

    @staticmethod
    def remember(key: str, ttl: Any, callback: Callable[[], Any]) -> Any:
        """Cached value, or ``callback()`` stored and returned; async callbacks give an awaitable."""
        return _repo().remember(key, ttl, callback)

    @staticmethod
    def remember_forever(key: str, callback: Callable[[], Any]) -> Any:
        return _repo().remember_forever(key, callback)

    @staticmethod
    def forever(key: str, value: Any) -> bool:
        return _repo().forever(key, value)

    @staticmethod
    def get_many(keys: Iterable[str]) -> dict[str, Any]:
        """``{key: value or None}``."""
        return _repo().get_many(keys)

    @staticmethod
    def put_many(mapping: Mapping[str, Any], ttl: Any = None) -> bool:
        return _repo().put_many(mapping, ttl)

    @staticmethod
    def increment(key: str, amount: int = 1) -> int | None:
        return _repo().increment(key, amount)

    @staticmethod
    def decrement(key: str, amount: int = 1) -> int | None:
        return _repo().decrement(key, amount)

    @staticmethod
    def tags(names: Iterable[str] | str, *more: str) -> TaggedCache:
        """``Cache.tags(['users']).put(...)``; ``Cache.tags(['users']).flush()``."""
        return _repo().tags(names, *more)

    @staticmethod
    def emit(event: str, /, **params: Any) -> InvalidationResult:
        """Fire an event for the ``event_based`` rules."""
        return current_runtime().emit(event, **params)

    @staticmethod
    def invalidate(pattern: str | None = None, tags: Iterable[str] | None = None,
                   region: str | Iterable[str] | None = None, *, dry_run: bool = False) -> InvalidationResult:
        return current_runtime().invalidate(pattern=pattern, tags=tags, region=region, dry_run=dry_run)

    # -- testing --------------------------------------------------------------------------
    @staticmethod
    def assert_has(key: str, value: Any = ..., *, region: str | None = None) -> None:
        """Fail (AssertionError) unless ``key`` is cached (and equals ``value`` when given)."""
        repo = current_runtime().region(region)
        found = repo.peek(key, _ABSENT)
        if found is _ABSENT:
            raise AssertionError(f"expected {key!r} in cache region {repo.name!r}, but it is missing")
        if value is not ... and found != value:
            raise AssertionError(f"cache key {key!r} holds {found!r}, expected {value!r}")

    @staticmethod
    def assert_missing(key: str, *, region: str | None = None) -> None:
        """Fail (AssertionError) if ``key`` is cached."""
        repo = current_runtime().region(region)
        found = repo.peek(key, _ABSENT)
        if found is not _ABSENT:
            raise AssertionError(f"expected {key!r} to be missing from region {repo.name!r}, found {found!r}")


_ABSENT = object()


def _forward(name: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(_repo(), name)(*args, **kwargs)

    call.__name__ = name
    call.__doc__ = f"``Cache.{name}(...)``: :meth:`Region.{name}` on the default repository."
    return call


# The rest of the repository API (async twins and extras), forwarded to the default repository.
# Plain attributes, not a metaclass __getattr__, which would slow every Cache.<name> lookup.
for _name in ("aget", "aput", "ahas", "aforget", "aflush", "aforever", "aremember", "aget_many",
              "aput_many", "aincrement", "adecrement", "pull", "add", "keys", "forget_many", "many", "set",
              "delete", "clear"):
    setattr(Cache, _name, staticmethod(_forward(_name)))
del _name
