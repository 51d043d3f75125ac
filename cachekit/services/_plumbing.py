"""Shared plumbing of the services: the _Service base, validation and edits of the live config."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, SecretStr, ValidationError

from ..config.diagnostics import Locator, items_from_validation_error
from ..config.models import (
    BUILTIN_PROVIDER_TYPES,
    PROVIDER_MODELS,
    EventBasedRule,
    PatternBasedRule,
    TimeBasedRule,
)
from ..config.secrets import MASK
from ..errors import CacheError
from ..facade import Cache
from ..providers.types import PROVIDER_TYPES
from ._result import T, _Failure
from .types import _jsonable

if TYPE_CHECKING:
    from ..config.models import CacheConfig
    from ..runtime.region import Region
    from ..runtime.runtime import Runtime

_EDIT_LOCK = threading.RLock()
_SECTIONS = ("cache", "providers", "regions", "rules", "bus", "http")
_PROVIDER_MODELS = PROVIDER_MODELS
_RULE_MODELS: dict[str, type[BaseModel]] = {
    "time_based": TimeBasedRule,
    "pattern_based": PatternBasedRule,
    "event_based": EventBasedRule,
}
_STRATEGY_ALIASES = {"time": "time_based", "ttl": "time_based", "pattern": "pattern_based",
                     "event": "event_based", "events": "event_based"}
_CONNECTION_FIELDS = {name: t.connection_fields for name, t in PROVIDER_TYPES.items()}
_CONNECTION_ALIASES = {"database": "db", "user": "username", "directory": "path", "dir": "path",
                       "server": "servers", "nodes": "startup_nodes"}


def _now(rt: Runtime) -> datetime:
    return datetime.fromtimestamp(rt.clock.now(), tz=timezone.utc)


def _validate(model: type[BaseModel], data: Mapping[str, Any], where: str) -> Any:
    """``model(**data)`` or a failure naming ``where.field`` and what would be valid."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        items = items_from_validation_error(exc, model, Locator(), dict(data))
        message = "; ".join(f"{where}.{i.path}: {i.message}" if i.path else f"{where}: {i.message}"
                            for i in items)
        raise _Failure(message, "invalid") from None


def _deep_merge(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        elif _masked_echo(out.get(key), value):
            continue  # a secret sent back as shown (GET, edit, PUT): keep the real one
        else:
            out[key] = value
    return out


def _masked_echo(current: Any, value: Any) -> bool:
    """Whether ``value`` is ``current`` (a secret, or a list of them) as :func:`_public` shows it."""
    if isinstance(current, SecretStr):
        return isinstance(value, str) and MASK in value and value == str(current)
    if isinstance(current, list) and isinstance(value, list) and len(current) == len(value) and current:
        return any(isinstance(c, SecretStr) for c in current) and all(
            _masked_echo(c, v) if isinstance(c, SecretStr) else c == v for c, v in zip(current, value, strict=True))
    return False


def _dump(model: BaseModel) -> dict[str, Any]:
    """Python data of a model, secrets kept as ``SecretStr`` (for re-validation)."""
    return {name: getattr(model, name) if not isinstance(getattr(model, name), BaseModel)
            else _dump(getattr(model, name))
            for name in [*type(model).model_fields, *(model.model_extra or {})]}


def _public(model: BaseModel) -> dict[str, Any]:
    """JSON data of a model with secrets masked."""
    return _jsonable(model.model_dump(mode="json"))  # type: ignore[no-any-return]


#: ``guard(before, config)``: called after an edit, before it is applied; raising refuses the edit.
#: ``before`` maps each section name to its value before the edit. The HTTP admin routes pass one
#: (``cachekit.http_policy``); Python callers of the services pass none and are not restricted.
EditGuard = Callable[[Mapping[str, Any], "CacheConfig"], None]


def _edit(rt: Runtime, mutate: Callable[[CacheConfig], T], guard: EditGuard | None = None) -> T:
    """Apply ``mutate`` to the live config and hot-apply it; on any error restore and re-raise."""
    with _EDIT_LOCK:
        cfg = rt.config
        saved = {name: copy.deepcopy(getattr(cfg, name)) for name in _SECTIONS}
        try:
            out = mutate(cfg)
            if guard is not None:
                guard(saved, cfg)
            rt.apply()
            return out
        except BaseException:
            for name, value in saved.items():
                current = getattr(cfg, name)
                if isinstance(current, dict):
                    current.clear()
                    current.update(value)
                elif isinstance(current, list):
                    current[:] = value
                else:
                    setattr(cfg, name, value)
            try:
                rt.apply()
            except Exception:  # the restored config was live a moment ago; keep the first error
                pass
            raise


class _Service:
    """Base of the services: bound to a runtime, or to the facade's runtime at call time."""

    def __init__(self, runtime: Runtime | None = None, *, guard: EditGuard | None = None) -> None:
        self._runtime = runtime
        self._guard = guard  # checks every config edit before it is applied (see EditGuard)

    @property
    def runtime(self) -> Runtime:
        """The runtime this service acts on now."""
        return self._runtime if self._runtime is not None else Cache.runtime()

    def __repr__(self) -> str:
        bound = "the Cache facade's runtime" if self._runtime is None else repr(self._runtime)
        return f"<{type(self).__name__} on {bound}>"


def _region(rt: Runtime, name: str | None) -> Region:
    try:
        return rt.region(name)
    except CacheError as exc:
        code = "not_found" if "unknown region" in str(exc) else "invalid"
        raise _Failure(str(exc), code) from None


def _regions_using(rt: Runtime, provider: str) -> list[str]:
    cfg = rt.config
    default = cfg.cache.default_provider
    names = [n for n, rc in cfg.regions.items() if (rc.provider or default) == provider
             or (rc.l1 is not None and rc.l1.provider == provider)]
    return names


def _known_providers(rt: Runtime) -> list[str]:
    known = dict.fromkeys([*rt.config.providers, *BUILTIN_PROVIDER_TYPES])
    known.update(dict.fromkeys(row["provider"] for row in rt.stats.rows()))
    return list(known)
