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

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .config.models import CacheConfig
from .facade import Cache
from .runtime.runtime import Runtime

__all__ = ["FakeCache", "fake_cache"]


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
