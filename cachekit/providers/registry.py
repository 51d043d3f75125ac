"""Resolve a provider config to a driver, lazily: no client library is imported until a config asks.

Built-in types map to module paths; anything else is a ``module:Class`` import path (``driver = ...``)
or an entry point of group ``cachekit.providers``.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from ..clock import Clock
from ..errors import CacheError
from .base import CacheDriver

if TYPE_CHECKING:
    from ..serializers import Serializer

__all__ = ["BUILTIN_DRIVERS", "build_driver", "import_driver_class", "provider_entry_points", "serializer_for"]

BUILTIN_DRIVERS: dict[str, str] = {
    "memory": "cachekit.providers.memory:MemoryDriver",
    "file": "cachekit.providers.file:FileDriver",
    "redis": "cachekit.providers.redis:RedisDriver",
    "memcached": "cachekit.providers.memcached:MemcachedDriver",
}


def provider_entry_points() -> dict[str, str]:
    """Entry points of group ``cachekit.providers``: ``{name: "module:attr"}``."""
    return {ep.name: ep.value for ep in entry_points(group="cachekit.providers")}


def import_driver_class(path: str) -> type[CacheDriver]:
    """Import ``module:Class`` and check it is a :class:`CacheDriver` subclass."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise CacheError(f"driver {path!r} must look like 'package.module:ClassName'")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise CacheError(f"cannot import driver {path!r}: {exc}") from exc
    if not (isinstance(obj, type) and issubclass(obj, CacheDriver)):
        raise CacheError(f"driver {path!r} is not a cachekit.CacheDriver subclass")
    return obj


def build_driver(config: Any, *, namespace: str, clock: Clock, max_size: int | None = None) -> CacheDriver:
    """Create the driver for a provider config; ``namespace`` is the key prefix it owns."""
    kind = config.type
    if kind == "memory":
        from .memory import MemoryDriver

        return MemoryDriver(max_size=max_size if max_size is not None else config.max_size, clock=clock)

    def serializer() -> Any:
        return serializer_for(config)

    if kind == "file":
        from .file import FileDriver

        return FileDriver(config.path, serializer=serializer(), clock=clock, max_value_size=config.max_value_size,
                          max_size=config.max_size, max_bytes=config.max_bytes)
    if kind == "redis":
        from .redis import RedisDriver

        return RedisDriver(config, serializer=serializer(), namespace=namespace)
    if kind == "memcached":
        from .memcached import MemcachedDriver

        return MemcachedDriver(config, serializer=serializer(), namespace=namespace)
    path = config.driver or provider_entry_points().get(kind)
    if path is None:
        raise CacheError(f"unknown provider type {kind!r} and no 'driver = \"module:Class\"' given")
    cls = import_driver_class(path)
    options = dict(config.model_extra or {})
    return cls(**options)


def serializer_for(config: Any) -> Serializer:
    """The :class:`~cachekit.serializers.Serializer` of a file, redis or memcached provider config.

    No ``serializer`` configured: ``json`` on Redis and Memcached unless a signing key is configured
    (``signing_key`` or ``CACHEKIT_SIGNING_KEY``; then signed ``pickle``), ``pickle`` on files.
    """
    from ..serializers import provider_serializer

    key = config.signing_key.get_secret_value() if config.signing_key else None
    return provider_serializer(
        config.type,
        config.serializer,
        compress_threshold=config.compress_threshold,
        signing_key=key,
        allow_unsigned_pickle=getattr(config, "allow_unsigned_pickle", False),
    )
