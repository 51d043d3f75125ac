"""The base of the services (bound to a runtime, or to the facade's runtime at call time) and the
runtime lookups they share, which fail as a service failure instead of an exception."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

from ..config.models import BUILTIN_PROVIDER_TYPES
from ..errors import CacheError
from ..facade import current_runtime
from .edits import EditGuard
from .result import ServiceFailure

if TYPE_CHECKING:
    from ..runtime.region import Region
    from ..runtime.runtime import Runtime

__all__ = ["Service", "known_providers", "region_or_failure", "regions_using", "utc_now"]


class Service:
    """Base of the services: bound to a runtime, or to the facade's runtime at call time."""

    def __init__(self, runtime: Runtime | None = None, *, guard: EditGuard | None = None) -> None:
        self._runtime = runtime
        self._guard = guard  # checks every config edit before it is applied (see EditGuard)

    @property
    def runtime(self) -> Runtime:
        """The runtime this service acts on now."""
        return self._runtime if self._runtime is not None else current_runtime()

    def __repr__(self) -> str:
        bound = "the Cache facade's runtime" if self._runtime is None else repr(self._runtime)
        return f"<{type(self).__name__} on {bound}>"


def utc_now(rt: Runtime) -> datetime:
    """The runtime's clock as an aware UTC datetime."""
    return datetime.fromtimestamp(rt.clock.now(), tz=timezone.utc)


def region_or_failure(rt: Runtime, name: str | None) -> Region:
    """``rt.region(name)``, or a ``not_found`` / ``invalid`` service failure."""
    try:
        return rt.region(name)
    except CacheError as exc:
        code = "not_found" if "unknown region" in str(exc) else "invalid"
        raise ServiceFailure(str(exc), code) from None


def regions_using(rt: Runtime, provider: str) -> list[str]:
    """The declared regions whose L2 or L1 is ``provider``."""
    cfg = rt.config
    default = cfg.cache.default_provider
    return [n for n, rc in cfg.regions.items() if (rc.provider or default) == provider
            or (rc.l1 is not None and rc.l1.provider == provider)]


def known_providers(rt: Runtime) -> list[str]:
    """Declared, built-in and registered provider names (those that stats have seen included)."""
    known = dict.fromkeys([*rt.config.providers, *BUILTIN_PROVIDER_TYPES])
    known.update(dict.fromkeys(row["provider"] for row in rt.stats.rows()))
    return list(known)
