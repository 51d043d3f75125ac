"""cachekit: cache configuration as code.

>>> from cachekit import Cache
>>> _ = Cache.fake()
>>> Cache.remember("answer", 60, lambda: 42)
42

Importing cachekit defines things and nothing else: no client library (redis, pymemcache),
pandas or ipywidgets is imported until a feature needs it.
"""

from __future__ import annotations

import sys
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .clock import Clock, FakeClock, SystemClock
from .errors import (
    CacheError,
    ConfigError,
    ConfigErrorItem,
    InvalidKeyError,
    InvalidTTLError,
    InvalidValueError,
    LockTimeoutError,
    MissingExtraError,
    ProviderError,
    UnsupportedOperation,
    ValueTooLargeError,
)

if TYPE_CHECKING:  # what the names below are, for type checkers and editors
    from .config.models import CacheConfig
    from .facade import Cache, current_runtime, load
    from .providers.base import MISSING, CacheDriver
    from .runtime.atomic_lock import Lock
    from .runtime.events import CacheEvent
    from .runtime.region import Region, TaggedCache
    from .runtime.runtime import InvalidationResult, Runtime
    from .simulate import Trace, simulate

__version__ = "0.1.0"

# Every other public name is served lazily from its module (as pydantic does): `import cachekit` costs
# the two small modules above, and a name's module (pydantic models, the runtime) loads on first use.
_LAZY = {
    "CacheConfig": "cachekit.config.models",
    "Cache": "cachekit.facade",
    "current_runtime": "cachekit.facade",
    "load": "cachekit.facade",
    "MISSING": "cachekit.providers.base",
    "CacheDriver": "cachekit.providers.base",
    "Lock": "cachekit.runtime.atomic_lock",
    "CacheEvent": "cachekit.runtime.events",
    "Region": "cachekit.runtime.region",
    "TaggedCache": "cachekit.runtime.region",
    "InvalidationResult": "cachekit.runtime.runtime",
    "Runtime": "cachekit.runtime.runtime",
    "Trace": "cachekit.simulate",
    "simulate": "cachekit.simulate",
    "load_config": "cachekit.config.loader",
    "parse_config": "cachekit.config.loader",
    "json_schema": "cachekit.config.schema",
    "MemoryDriver": "cachekit.providers.memory",
    "FileDriver": "cachekit.providers.file",
    "RedisDriver": "cachekit.providers.redis",
    "MemcachedDriver": "cachekit.providers.memcached",
    "make_serializer": "cachekit.serializers",
    "cached": "cachekit.decorators",
    "async_cached": "cachekit.decorators",
    "invalidate_cache": "cachekit.decorators",
    "cache_aside": "cachekit.decorators",
    "cache_key": "cachekit.decorators",
    "Result": "cachekit.services",
    "CacheProviderId": "cachekit.services",
    "CacheStatsType": "cachekit.services",
    "CacheItem": "cachekit.services",
    "get_cache_item": "cachekit.services",
    "set_cache_item": "cachekit.services",
    "delete_cache_item": "cachekit.services",
    "get_cache_provider_service": "cachekit.services",
    "get_cache_region_service": "cachekit.services",
    "get_invalidation_rule_service": "cachekit.services",
    "get_cache_configuration_service": "cachekit.services",
    "get_cache_monitoring_service": "cachekit.services",
    "get_cache_item_service": "cachekit.services",
    "get_caching_dependencies": "cachekit.services",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cachekit' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


class _Package(ModuleType):
    """``cachekit.simulate`` is the function: importing the submodule of that name must not rebind it."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "simulate" and isinstance(value, ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


__all__ = [
    "Cache", "CacheConfig", "CacheDriver", "MISSING", "Runtime", "Region", "TaggedCache",
    "InvalidationResult", "current_runtime", "load", "Clock", "FakeClock", "SystemClock",
    "CacheError", "ConfigError", "ConfigErrorItem", "InvalidKeyError", "InvalidTTLError", "InvalidValueError",
    "MissingExtraError", "ProviderError", "UnsupportedOperation", "ValueTooLargeError",
    "LockTimeoutError", "Lock", "CacheEvent", "Trace", "simulate", *_LAZY,
]
