"""CacheProviderService: register, list, read, update and delete providers of the live config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..config.diagnostics import did_you_mean, one_of
from ..config.models import BUILTIN_PROVIDER_TYPES, PROVIDER_MODELS, CustomProviderConfig
from ..providers.types import PROVIDER_TYPES
from .base import Service, known_providers, regions_using
from .edits import edit_config
from .model_data import deep_merge, model_data, public_data, validate_model
from .result import Result, ServiceFailure, guarded
from .types import CacheProvider, CacheProviderId

if TYPE_CHECKING:
    from ..runtime.runtime import Runtime

_CONNECTION_FIELDS = {name: t.connection_fields for name, t in PROVIDER_TYPES.items()}
_CONNECTION_ALIASES = {"database": "db", "user": "username", "directory": "path", "dir": "path",
                       "server": "servers", "nodes": "startup_nodes"}


def provider_model(name: str, provider_type: str, data: Mapping[str, Any]) -> Any:
    model = PROVIDER_MODELS.get(provider_type, CustomProviderConfig)
    return validate_model(model, {**data, "type": provider_type}, f"providers.{name}")


def connection_fields(provider_type: str, details: Mapping[str, Any] | None) -> dict[str, Any]:
    """Map ``connection_details`` onto the provider config's fields."""
    if not details:
        return {}
    data = {_CONNECTION_ALIASES.get(k, k): v for k, v in details.items()}
    if provider_type == "memcached":
        servers = data.pop("servers", None)
        if isinstance(servers, str):
            servers = [s.strip() for s in servers.split(",") if s.strip()]
        host, port = data.pop("host", None), data.pop("port", None)
        if host is not None or port is not None:
            servers = [*(servers or []), f"{host or '127.0.0.1'}:{port or 11211}"]
        if servers is not None:
            data["servers"] = servers
    return data


def _provider_view(rt: Runtime, name: str) -> CacheProvider:
    cfg = rt.config
    model = cfg.providers.get(name)
    declared = model is not None
    if model is None:
        if name not in BUILTIN_PROVIDER_TYPES:
            known = known_providers(rt)
            raise ServiceFailure(f"unknown provider {name!r}; known: {one_of(known)}{did_you_mean(name, known)}",
                                 "not_found")
        model = rt.provider_config(name)
    settings = public_data(model)
    fields = _CONNECTION_FIELDS.get(model.type, tuple(model.model_extra or ()))
    details = {k: settings[k] for k in fields if k in settings and settings[k] is not None
               and settings[k] != [] and settings[k] != ""}
    if settings.get("cluster"):
        details["cluster"] = True
    return CacheProvider(id=CacheProviderId(name), name=name, provider_type=model.type,
                         connection_details=details, settings=settings, declared=declared,
                         regions=regions_using(rt, name))


class CacheProviderService(Service):
    """Register, list, read, update and delete providers of the live config (``id`` = name)."""

    async def register_provider(self, name: str, provider_type: str,
                                connection_details: Mapping[str, Any] | None = None,
                                **settings: Any) -> Result[CacheProvider]:
        """Declare provider ``name`` of ``provider_type`` (memory, file, redis, memcached, or a
        custom type); ``connection_details`` (host, port, url, servers, path...) map onto its
        fields, ``settings`` are further fields (``serializer``, ``on_error``...)."""

        def work() -> CacheProvider:
            rt = self.runtime
            if not isinstance(name, str) or not name or ":" in name:
                raise ServiceFailure(f"invalid provider name {name!r}: non-empty, without ':'", "invalid")
            with edit_config(rt, self._guard) as cfg:
                if name in cfg.providers:
                    raise ServiceFailure(f"provider {name!r} already exists; update it instead", "conflict")
                kind = str(provider_type)
                data = {**connection_fields(kind, connection_details), **settings}
                cfg.providers[name] = provider_model(name, kind, data)
            return _provider_view(rt, name)

        return await guarded(work)

    create_provider = register_provider

    async def list_providers(self) -> Result[list[CacheProvider]]:
        """Declared providers, plus the built-in names that regions use without declaring them."""

        def work() -> list[CacheProvider]:
            rt = self.runtime
            cfg = rt.config
            used = [cfg.cache.default_provider, *(rc.provider for rc in cfg.regions.values() if rc.provider)]
            names = dict.fromkeys([*cfg.providers, *(u for u in used if u in BUILTIN_PROVIDER_TYPES)])
            return [_provider_view(rt, n) for n in names]

        return await guarded(work)

    async def get_provider(self, provider_id: str) -> Result[CacheProvider]:
        """One provider by id (its name)."""
        return await guarded(lambda: _provider_view(self.runtime, str(provider_id)))

    async def update_provider(self, provider_id: str, changes: Mapping[str, Any] | None = None,
                              **more: Any) -> Result[CacheProvider]:
        """Change fields of a declared provider (``connection_details={...}`` accepted too).

        Regions built on it keep their open connections until the runtime is reloaded; the
        change is in the config (and in what ``save()`` writes) at once.
        """

        def work() -> CacheProvider:
            rt = self.runtime
            name = str(provider_id)
            with edit_config(rt, self._guard) as cfg:
                current = cfg.providers.get(name)
                if current is None:
                    _provider_view(rt, name)  # unknown names fail with the known ones
                    current = rt.provider_config(name)  # a built-in used undeclared: declare it now
                update = {**(changes or {}), **more}
                kind = str(update.pop("provider_type", update.pop("type", current.type)))
                details = update.pop("connection_details", None)
                update.update(connection_fields(kind, details))
                base = model_data(current) if kind == current.type else {}
                base.pop("type", None)
                cfg.providers[name] = provider_model(name, kind, deep_merge(base, update))
            return _provider_view(rt, name)

        return await guarded(work)

    async def delete_provider(self, provider_id: str) -> Result[bool]:
        """Remove a declared provider that no region uses."""

        def work() -> bool:
            rt = self.runtime
            name = str(provider_id)
            with edit_config(rt, self._guard) as cfg:
                if name not in cfg.providers:
                    _provider_view(rt, name)
                    raise ServiceFailure(f"provider {name!r} is built in and not declared; nothing to delete",
                                         "not_found")
                users = regions_using(rt, name)
                if cfg.cache.default_provider == name:
                    users.append("[cache].default_provider")
                if users:
                    raise ServiceFailure(f"provider {name!r} is used by {one_of(users)}; change those first",
                                         "conflict")
                cfg.providers.pop(name)
            return True

        return await guarded(work)
