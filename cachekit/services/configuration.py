"""CacheConfigurationService: switch caching on and off, update and save the live config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..config.diagnostics import did_you_mean, one_of
from ..config.models import CacheSection, RegionConfig
from ..offload import off_loop
from .base import Service
from .edits import SECTIONS, edit_config
from .model_data import deep_merge, model_data, public_data, validate_model
from .providers import connection_fields, provider_model
from .regions import check_region_name, region_data, region_view
from .result import Result, ServiceFailure, guarded
from .rules import rule_model
from .types import CacheConfiguration, CacheRegion

if TYPE_CHECKING:
    from ..config.models import CacheConfig
    from ..runtime.runtime import Runtime

_CACHE_ALIASES = {"use_multi_level": "multi_level"}
_LIVE_FIXED = ("prefix",)


def _configuration(rt: Runtime) -> CacheConfiguration:
    cfg = rt.config
    cache = cfg.cache
    return CacheConfiguration(
        enabled=cache.enabled, use_multi_level=cache.multi_level, prefix=cache.prefix,
        default_region=cache.default_region, default_provider=cache.default_provider,
        default_ttl=cache.default_ttl, strict=cache.strict, providers=list(cfg.providers),
        regions=list(cfg.regions), rules=[r.name for r in cfg.rules],
        source_path=str(cfg.source_path) if cfg.source_path else None,
        env_overrides=dict(cfg.env_overrides), config=public_data(cfg),
    )


def _set_cache(cfg: CacheConfig, changes: Mapping[str, Any]) -> None:
    update = {_CACHE_ALIASES.get(k, k): v for k, v in changes.items()}
    for name in _LIVE_FIXED:
        if name in update and update[name] != getattr(cfg.cache, name):
            raise ServiceFailure(f"cache.{name} cannot change on a live runtime (keys already stored under the old "
                                 "namespace); edit the file and reload", "invalid")
    cfg.cache = validate_model(CacheSection, deep_merge(model_data(cfg.cache), update), "cache")


class CacheConfigurationService(Service):
    """Switch caching and multi-level caching on and off, add regions, update and save the config."""

    async def get_active_configuration(self) -> Result[CacheConfiguration]:
        """The live configuration (``.enabled``, ``.use_multi_level``, ...; ``.config`` has it all)."""
        return await guarded(lambda: _configuration(self.runtime))

    async def _cache(self, **changes: Any) -> Result[CacheConfiguration]:
        def work() -> CacheConfiguration:
            rt = self.runtime
            with edit_config(rt, self._guard) as cfg:
                _set_cache(cfg, changes)
            return _configuration(rt)

        return await guarded(work)

    async def enable(self) -> Result[CacheConfiguration]:
        """Turn caching on."""
        return await self._cache(enabled=True)

    async def disable(self) -> Result[CacheConfiguration]:
        """Turn caching off: reads miss, writes are dropped, decorated functions run every time."""
        return await self._cache(enabled=False)

    async def enable_multi_level(self) -> Result[CacheConfiguration]:
        """Use the L1 tiers declared on regions."""
        return await self._cache(multi_level=True)

    async def disable_multi_level(self) -> Result[CacheConfiguration]:
        """Bypass the L1 tiers (every read goes to the region's store)."""
        return await self._cache(multi_level=False)

    async def add_region_config(self, name: str, settings: Mapping[str, Any]) -> Result[CacheRegion]:
        """Declare region ``name`` with ``settings`` (``ttl``, ``max_size``, ``provider``,
        ``invalidation_strategy``...), or merge them into its declaration."""

        def work() -> CacheRegion:
            rt = self.runtime
            check_region_name(name)
            data = dict(settings)
            data = region_data(data.pop("provider_id", None), None, None, data)
            with edit_config(rt, self._guard) as cfg:
                current = cfg.regions.get(name)
                cfg.regions[name] = validate_model(
                    RegionConfig, deep_merge(model_data(current) if current else {}, data), f"regions.{name}")
            return region_view(rt, name)

        return await guarded(work)

    async def update_configuration(self, changes: Mapping[str, Any]) -> Result[CacheConfiguration]:
        """Apply several changes at once, all or nothing.

        Keys: any ``[cache]`` field at the top level (``enabled``, ``use_multi_level``,
        ``default_ttl``...), or sections: ``cache`` (dict), ``providers`` / ``regions`` (name ->
        fields, merged into existing entries), ``rules`` (list, merged by name), ``bus``, ``http``.
        """

        def work() -> CacheConfiguration:
            rt = self.runtime
            if not isinstance(changes, Mapping):
                raise ServiceFailure("update_configuration takes a mapping of changes", "invalid")
            cache_fields = set(CacheSection.model_fields) | set(_CACHE_ALIASES)
            sections = set(SECTIONS)
            unknown = [k for k in changes if k not in cache_fields and k not in sections]
            if unknown:
                valid = sorted(cache_fields | sections)
                raise ServiceFailure(f"unknown configuration key(s) {one_of(unknown)}; valid: {one_of(valid)}"
                                     f"{did_you_mean(unknown[0], valid)}", "invalid")
            with edit_config(rt, self._guard) as cfg:
                _update(cfg, changes)
            return _configuration(rt)

        return await guarded(work)

    async def save(self, path: str | None = None) -> Result[str]:
        """Write the live config to its TOML file (or ``path``), comments kept; the value is the path."""
        return await guarded(lambda: off_loop(None, lambda: str(self.runtime.save(path))))


def _update(cfg: CacheConfig, requested: Mapping[str, Any]) -> None:
    """The change of :meth:`CacheConfigurationService.update_configuration`, made on ``cfg``."""
    changes = dict(requested)
    cache = dict(changes.pop("cache", None) or {})
    for key in list(changes):
        if key in CacheSection.model_fields or key in _CACHE_ALIASES:
            cache[key] = changes.pop(key)
    if cache:
        _set_cache(cfg, cache)
    for name, fields in (changes.pop("providers", None) or {}).items():
        current = cfg.providers.get(name)
        fields = dict(fields)
        kind = str(fields.pop("provider_type", fields.pop("type", getattr(current, "type", "memory"))))
        fields.update(connection_fields(kind, fields.pop("connection_details", None)))
        base = model_data(current) if current is not None and current.type == kind else {}
        base.pop("type", None)
        cfg.providers[name] = provider_model(name, kind, deep_merge(base, fields))
    for name, fields in (changes.pop("regions", None) or {}).items():
        check_region_name(name)
        current = cfg.regions.get(name)
        fields = dict(fields)
        data = region_data(fields.pop("provider_id", None), None, None, fields)
        cfg.regions[name] = validate_model(RegionConfig, deep_merge(model_data(current) if current else {}, data),
                                           f"regions.{name}")
    for data in changes.pop("rules", None) or []:
        data = dict(data)
        name = data.get("name")
        index = next((i for i, r in enumerate(cfg.rules) if r.name == name), None)
        if index is None:
            cfg.rules.append(rule_model(data, f"rules.{name}"))
        else:
            base = model_data(cfg.rules[index])
            base["strategy_type"] = base.pop("strategy")
            data.pop("strategy", None)
            cfg.rules[index] = rule_model(deep_merge(base, data), f"rules.{name}")
    for section in ("bus", "http"):
        if section in changes:
            model = getattr(cfg, section)
            setattr(cfg, section, validate_model(type(model), deep_merge(model_data(model), changes.pop(section)),
                                                 section))
