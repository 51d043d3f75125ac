"""CacheRegionService: create, list, read, update and delete regions of the live config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..config.diagnostics import did_you_mean, one_of
from ..config.models import RegionConfig
from .base import Service
from .edits import edit_config
from .model_data import deep_merge, model_data, public_data, validate_model
from .result import Result, ServiceFailure, guarded
from .types import CacheProviderId, CacheRegion, jsonable

if TYPE_CHECKING:
    from ..runtime.runtime import Runtime


def check_region_name(name: Any) -> str:
    if not isinstance(name, str) or not name or ":" in name or name.startswith("__") or "@" in name:
        raise ServiceFailure(f"invalid region name {name!r}: non-empty, no ':' or '@', no leading '__'", "invalid")
    return name


def region_view(rt: Runtime, name: str) -> CacheRegion:
    cfg = rt.config
    model = cfg.regions.get(name)
    live = rt.regions().get(name)
    if live is None and (model is not None or name == cfg.cache.default_region):
        live = rt.region(name)
    if live is None:
        known = sorted({*cfg.regions, *rt.regions()})
        raise ServiceFailure(f"unknown region {name!r}; known: {one_of(known)}{did_you_mean(name, known)}",
                             "not_found")
    stats = jsonable(live.stats.as_dict())
    return CacheRegion(id=name, name=name, provider_id=CacheProviderId(live.provider), ttl=live.policy.ttl,
                       max_size=live.policy.max_size, settings=public_data(model) if model is not None else {},
                       declared=model is not None, stats=stats)


def region_data(provider_id: Any, ttl: Any, max_size: Any, settings: Mapping[str, Any]) -> dict[str, Any]:
    data = dict(settings)
    if "provider" in data and provider_id is not None:
        raise ServiceFailure("give provider_id or provider, not both", "invalid")
    if provider_id is not None:
        data["provider"] = str(provider_id)
    if ttl is not None:
        data["ttl"] = ttl
    if max_size is not None:
        data["max_size"] = max_size
    return data


class CacheRegionService(Service):
    """Create, list, read, update and delete regions of the live config (``id`` = name)."""

    async def create_region(self, name: str, provider_id: str | None = None, ttl: float | None = None,
                            max_size: int | None = None, **settings: Any) -> Result[CacheRegion]:
        """Declare region ``name`` on ``provider_id`` (default: ``[cache].default_provider``);
        ``settings`` are further region fields (``l1``, ``stale_ttl``, ``invalidation_strategy``...)."""

        def work() -> CacheRegion:
            rt = self.runtime
            check_region_name(name)
            with edit_config(rt, self._guard) as cfg:
                if name in cfg.regions:
                    raise ServiceFailure(f"region {name!r} already exists; update it instead", "conflict")
                data = region_data(provider_id, ttl, max_size, settings)
                cfg.regions[name] = validate_model(RegionConfig, data, f"regions.{name}")
            return region_view(rt, name)

        return await guarded(work)

    async def list_regions(self) -> Result[list[CacheRegion]]:
        """Declared regions plus the ones in use without a declaration."""

        def work() -> list[CacheRegion]:
            rt = self.runtime
            names = dict.fromkeys([*rt.config.regions, *sorted(rt.regions())])
            return [region_view(rt, n) for n in names]

        return await guarded(work)

    async def get_region(self, region_id: str) -> Result[CacheRegion]:
        """One region by id (its name), with its effective TTL, provider and live counters."""
        return await guarded(lambda: region_view(self.runtime, str(region_id)))

    async def get_region_by_name(self, name: str) -> Result[CacheRegion]:
        """Same as :meth:`get_region` (ids are names)."""
        return await self.get_region(name)

    async def update_region(self, region_id: str, changes: Mapping[str, Any] | None = None,
                            **more: Any) -> Result[CacheRegion]:
        """Change fields of a region (``ttl``, ``max_size``, ``provider_id``...); applied live.

        A region in use but not declared is declared with its current policy plus the changes.
        """

        def work() -> CacheRegion:
            rt = self.runtime
            name = str(region_id)
            region_view(rt, name)  # unknown -> not_found
            update = {**(changes or {}), **more}
            provider = update.pop("provider_id", None)
            data = region_data(provider, None, None, update)
            with edit_config(rt, self._guard) as cfg:
                current = cfg.regions.get(name)
                base = model_data(current) if current is not None else {}
                cfg.regions[name] = validate_model(RegionConfig, deep_merge(base, data), f"regions.{name}")
            return region_view(rt, name)

        return await guarded(work)

    async def delete_region(self, region_id: str) -> Result[bool]:
        """Flush a declared region's entries and remove its declaration (its name then falls back
        to the default policy)."""

        def work() -> bool:
            rt = self.runtime
            name = str(region_id)
            with edit_config(rt, self._guard) as cfg:
                if name not in cfg.regions:
                    region_view(rt, name)
                    raise ServiceFailure(f"region {name!r} is not declared; nothing to delete", "not_found")
                users = [r.name for r in cfg.rules if name in r.regions]
                if users:
                    raise ServiceFailure(f"region {name!r} is named by rules {one_of(users)}; change those first",
                                         "conflict")
                if cfg.cache.default_region == name:
                    raise ServiceFailure(f"region {name!r} is [cache].default_region; change that first",
                                         "conflict")
                rt.region(name).flush()
                cfg.regions.pop(name)
            return True

        return await guarded(work)
