"""Test support for code that uses cachekit.

``Cache.fake()`` binds the facade to a fresh all-memory runtime whose clock only moves when told
to. The pytest plugin (installed with cachekit) offers it as the ``cachekit_cache`` fixture (pytest's
own ``cache`` fixture is left alone)::

    def test_profile_is_cached(cachekit_cache):
        cachekit_cache.put("user:1", {"name": "Ada"}, ttl=60)
        cachekit_cache.clock.advance(61)
        Cache.assert_missing("user:1")
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from .config.models import CacheConfig
from .facade import Cache
from .providers.base import CacheDriver
from .runtime.runtime import Runtime

__all__ = ["FakeCache", "HookedDriver", "fake_cache"]


class HookedDriver(CacheDriver):
    """Another driver, with a hook after each read: ``after_get(key, result)``.

    A seam for tests that must act between a region's read and what the region does next (a write
    racing a read in flight, say): register it with ``runtime.register_store(name, HookedDriver(d))``
    and point a region at ``name``. Everything else is the wrapped driver's.
    """

    def __init__(self, inner: CacheDriver, after_get: Callable[[str, Any], None] | None = None) -> None:
        self.inner = inner
        self.after_get = after_get
        self.can_scan = inner.can_scan  # type: ignore[misc]

    @property
    def signed(self) -> bool:
        return self.inner.signed

    def get(self, key: str) -> Any:
        result = self.inner.get(key)
        if self.after_get is not None:
            self.after_get(key, result)
        return result

    def put(self, key: str, value: Any, ttl: float | None = None) -> bool:
        return self.inner.put(key, value, ttl)

    def forget(self, key: str) -> bool:
        return self.inner.forget(key)

    def flush(self) -> bool:
        return self.inner.flush()

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        return self.inner.get_many(keys)

    def put_many(self, mapping: Mapping[str, Any], ttl: float | None = None) -> bool:
        return self.inner.put_many(mapping, ttl)

    def delete_many(self, keys: Iterable[str]) -> int:
        return self.inner.delete_many(keys)

    def add(self, key: str, value: Any, ttl: float | None = None) -> bool:
        return self.inner.add(key, value, ttl)

    def increment(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        return self.inner.increment(key, amount, ttl)

    def extend_ttl(self, keys: Iterable[str], ttl: float | None) -> bool:
        return self.inner.extend_ttl(keys, ttl)

    def scan(self, pattern: str) -> Iterator[str]:
        return self.inner.scan(pattern)


class FakeCache:
    """What the ``cachekit_cache`` fixture gives: the facade's API plus the runtime and its fake clock."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.clock: Any = runtime.clock

    def __getattr__(self, name: str) -> Any:
        if name in {"region", "store", "emit", "invalidate", "stats", "config"}:
            return getattr(self.runtime, name)
        return getattr(Cache, name)

    def advance(self, seconds: float) -> None:
        """Move the fake clock forward."""
        self.clock.advance(seconds)


@contextmanager
def fake_cache(config: CacheConfig | dict[str, Any] | None = None) -> Iterator[FakeCache]:
    """Bind ``Cache`` to a fresh fake runtime for the duration of the block, then unbind it."""
    if isinstance(config, dict):
        config = CacheConfig(**config)
    runtime = Runtime.fake(config)
    Cache.configure(runtime)
    try:
        yield FakeCache(runtime)
    finally:
        Cache.reset()
        runtime.close()
