"""The Result-style async services of seed 003, over a live :class:`~cachekit.Runtime`.

Every service call returns a :class:`Result`: ``is_success()`` with ``.value``, or ``is_failure()``
with ``.error`` (a message saying what went wrong and what would be valid) and ``.code``
(``not_found``, ``conflict``, ``invalid``, ``unsupported``, ``disabled``, ``provider``, ``error``).
Services never raise for a bad request.

>>> import asyncio
>>> from cachekit import Cache, get_cache_item, set_cache_item
>>> _ = Cache.fake()
>>> async def demo():
...     await set_cache_item("user:123", {"name": "Ada"}, ttl_seconds=300)
...     result = await get_cache_item("user:123")
...     return result.value.value if result.is_success() and result.value else None
>>> asyncio.run(demo())
{'name': 'Ada'}

The provider, region, rule and configuration services edit the live ``runtime.config`` (the
pydantic models a TOML file was loaded into) and hot-apply it with ``runtime.apply()``; a change
that does not validate is rolled back and reported. ``runtime.save()`` (or the configuration
service's ``save()``) writes the edited config back to its TOML file, comments kept.

Every service binds to ``runtime=None`` by default: the ``Cache`` facade's runtime at call time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..facade import Cache
from .configuration import CacheConfigurationService
from .edits import EditGuard
from .items import CacheItemService, delete_cache_item, get_cache_item, set_cache_item
from .monitoring import CacheMonitoringService
from .providers import CacheProviderService
from .regions import CacheRegionService
from .result import Result
from .rules import InvalidationRuleService
from .types import (
    CacheConfiguration,
    CacheItem,
    CacheProvider,
    CacheProviderId,
    CacheRegion,
    CacheStatistic,
    CacheStatsType,
    InvalidationRule,
    ProviderSummary,
)
from .types import jsonable as jsonable  # re-exported: cachekit.http imports it from here

if TYPE_CHECKING:
    from ..runtime.runtime import Runtime

__all__ = [
    "CacheConfiguration",
    "CacheConfigurationService",
    "CacheItem",
    "CacheItemService",
    "CacheMonitoringService",
    "CacheProvider",
    "CacheProviderId",
    "CacheProviderService",
    "CacheRegion",
    "CacheRegionService",
    "CacheStatistic",
    "CacheStatsType",
    "EditGuard",
    "InvalidationRule",
    "InvalidationRuleService",
    "ProviderSummary",
    "Result",
    "delete_cache_item",
    "get_cache_configuration_service",
    "get_cache_item",
    "get_cache_item_service",
    "get_cache_monitoring_service",
    "get_cache_provider_service",
    "get_cache_region_service",
    "get_caching_dependencies",
    "get_invalidation_rule_service",
    "set_cache_item",
]


# -- factories and FastAPI dependencies --------------------------------------------------------------


async def get_cache_item_service(runtime: Runtime | None = None) -> CacheItemService:
    """The item service (``get_item``, ``set_item``, ``delete_item``, ``clear``...)."""
    return CacheItemService(runtime)


async def get_cache_provider_service(runtime: Runtime | None = None) -> CacheProviderService:
    """The provider service (``register_provider``, ``list_providers``...)."""
    return CacheProviderService(runtime)


async def get_cache_region_service(runtime: Runtime | None = None) -> CacheRegionService:
    """The region service (``create_region``, ``list_regions``...)."""
    return CacheRegionService(runtime)


async def get_invalidation_rule_service(runtime: Runtime | None = None) -> InvalidationRuleService:
    """The rule service (``create_rule``, ``find_matching_rules``...)."""
    return InvalidationRuleService(runtime)


async def get_cache_configuration_service(runtime: Runtime | None = None) -> CacheConfigurationService:
    """The configuration service (``enable_multi_level``, ``add_region_config``...)."""
    return CacheConfigurationService(runtime)


async def get_cache_monitoring_service(runtime: Runtime | None = None) -> CacheMonitoringService:
    """The monitoring service (``record_statistic``, ``get_provider_summary``...)."""
    return CacheMonitoringService(runtime)


_FACTORIES: dict[str, Callable[[Runtime | None], Awaitable[Any]]] = {
    "get_cache_item_service": get_cache_item_service,
    "get_cache_provider_service": get_cache_provider_service,
    "get_cache_region_service": get_cache_region_service,
    "get_invalidation_rule_service": get_invalidation_rule_service,
    "get_cache_configuration_service": get_cache_configuration_service,
    "get_cache_monitoring_service": get_cache_monitoring_service,
}


def get_caching_dependencies(runtime: Runtime | None = None) -> dict[str, Callable[[], Awaitable[Any]]]:
    """Dependency callables for FastAPI's ``Depends`` (no fastapi import here: they take no arguments).

    Keys: ``get_cache_item_service``, ``get_cache_provider_service``, ``get_cache_region_service``,
    ``get_invalidation_rule_service``, ``get_cache_configuration_service``,
    ``get_cache_monitoring_service`` and ``get_cache_runtime``.
    """
    deps: dict[str, Callable[[], Awaitable[Any]]] = {}
    for name, factory in _FACTORIES.items():
        deps[name] = _dependency(name, factory, runtime)

    async def get_cache_runtime() -> Runtime:
        return runtime if runtime is not None else Cache.runtime()

    deps["get_cache_runtime"] = get_cache_runtime
    return deps


def _dependency(name: str, factory: Callable[[Runtime | None], Awaitable[Any]],
                runtime: Runtime | None) -> Callable[[], Awaitable[Any]]:
    async def dependency() -> Any:
        return await factory(runtime)

    dependency.__name__ = dependency.__qualname__ = name
    dependency.__doc__ = factory.__doc__
    return dependency
