"""Resolve a provider config to a driver, lazily: no client library is imported until a config asks.

This module is the one reader of the pydantic provider models: it turns a provider config into the
keyword options of its driver (drivers take plain options, as dogpile's backends take ``arguments``) and
builds the serializer a config describes. Built-in types are the rows of
:data:`~cachekit.providers.types.PROVIDER_TYPES`; anything else is a ``module:Class`` import path
(``driver = ...``) or an entry point of group ``cachekit.providers``, built with the config's extra keys.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..clock import Clock
from ..errors import CacheError
from .base import CacheDriver
from .types import ENTRY_POINT_GROUP, PROVIDER_TYPES

if TYPE_CHECKING:
    from ..serializers import Serializer

__all__ = ["build_driver", "driver_options", "import_driver_class", "provider_entry_points", "serializer_for"]


def provider_entry_points() -> dict[str, str]:
    """Entry points of group ``cachekit.providers``: ``{name: "module:attr"}``."""
    from importlib.metadata import entry_points  # here, not at import: it costs ~15 ms to load

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _resolve(path: str) -> Any:
    module_name, _, attr = path.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def import_driver_class(path: str) -> type[CacheDriver]:
    """Import ``module:Class`` and check it is a :class:`CacheDriver` subclass."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise CacheError(f"driver {path!r} must look like 'package.module:ClassName'")
    try:
        obj = _resolve(path)
    except (ImportError, AttributeError) as exc:
        raise CacheError(f"cannot import driver {path!r}: {exc}") from exc
    if not (isinstance(obj, type) and issubclass(obj, CacheDriver)):
        raise CacheError(f"driver {path!r} is not a cachekit.CacheDriver subclass")
    return obj


def build_driver(cfg: Any, *, namespace: str, clock: Clock, max_size: int | None = None) -> CacheDriver:
    """Create the driver for a provider config; ``namespace`` is the key prefix it owns, ``max_size``
    (memory) overrides the config's."""
    builtin = PROVIDER_TYPES.get(cfg.type)
    if builtin is not None:
        # a missing client library raises MissingExtraError (naming the extra) as it is
        cls: type[CacheDriver] = _resolve(builtin.driver)
        return cls(**driver_options(cfg, namespace=namespace, clock=clock, max_size=max_size))
    path = cfg.driver or provider_entry_points().get(cfg.type)
    if path is None:
        raise CacheError(f"unknown provider type {cfg.type!r} and no 'driver = \"module:Class\"' given")
    return import_driver_class(path)(**dict(cfg.model_extra or {}))


def driver_options(cfg: Any, *, namespace: str, clock: Clock, max_size: int | None = None) -> dict[str, Any]:
    """The keyword options of the driver of built-in provider config ``cfg`` (secrets as plain strings).

    >>> from cachekit.config.models import MemcachedProviderConfig
    >>> from cachekit.clock import SystemClock
    >>> options = driver_options(MemcachedProviderConfig(servers=["m1:11211", "m2:11211"]),
    ...                          namespace="app:", clock=SystemClock())
    >>> options["servers"], options["namespace"], options["serializer"].name
    (['m1:11211', 'm2:11211'], 'app:', 'json')
    """
    return _OPTIONS[cfg.type](cfg, namespace, clock, max_size)


def _memory(cfg: Any, namespace: str, clock: Clock, max_size: int | None) -> dict[str, Any]:
    return {"max_size": max_size if max_size is not None else cfg.max_size, "clock": clock, "policy": cfg.policy}


def _file(cfg: Any, namespace: str, clock: Clock, max_size: int | None) -> dict[str, Any]:
    return {"path": cfg.path, "serializer": serializer_for(cfg), "clock": clock,
            "max_value_size": cfg.max_value_size, "max_size": cfg.max_size, "max_bytes": cfg.max_bytes}


def _redis(cfg: Any, namespace: str, clock: Clock, max_size: int | None) -> dict[str, Any]:
    return {
        "serializer": serializer_for(cfg),
        "namespace": namespace,
        "max_value_size": cfg.max_value_size,
        "url": _secret(cfg.url),
        "host": cfg.host,
        "port": cfg.port,
        "db": cfg.db,
        "username": cfg.username,
        "password": _secret(cfg.password),
        "cluster": cfg.cluster,
        "startup_nodes": [n.get_secret_value() for n in cfg.startup_nodes],
        "sentinel": [s.get_secret_value() for s in cfg.sentinel],
        "service_name": cfg.service_name,
        "connect_timeout": cfg.connect_timeout,
        "socket_timeout": cfg.socket_timeout,
        "retries": cfg.retries,
        "max_connections": cfg.max_connections,
    }


def _memcached(cfg: Any, namespace: str, clock: Clock, max_size: int | None) -> dict[str, Any]:
    return {
        "servers": list(cfg.servers),
        "serializer": serializer_for(cfg),
        "namespace": namespace,
        "connect_timeout": cfg.connect_timeout,
        "timeout": cfg.timeout,
        "max_value_size": cfg.max_value_size,
    }


_OPTIONS: dict[str, Callable[[Any, str, Clock, int | None], dict[str, Any]]] = {
    "memory": _memory,
    "file": _file,
    "redis": _redis,
    "memcached": _memcached,
}


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def serializer_for(cfg: Any) -> Serializer:
    """The :class:`~cachekit.serializers.Serializer` a file, redis or memcached provider config describes.

    No ``serializer`` configured: the type's default (``json`` on Redis and Memcached, ``pickle`` on files),
    signed ``pickle`` when a signing key is configured (``signing_key``, else ``CACHEKIT_SIGNING_KEY``).
    With ``encryption_keys`` (else ``CACHEKIT_ENCRYPTION_KEYS``) its payloads are encrypted
    (:class:`~cachekit.encryption.EncryptedSerializer`), and pickle is the default as under signing.
    """
    from ..serializers import default_serializer_name, provider_serializer

    keys = [k.get_secret_value() for k in getattr(cfg, "encryption_keys", ())]
    if not keys:
        from ..encryption import ENV_ENCRYPTION_KEYS, env_keys, key_problem
        from ..errors import ConfigError, ConfigErrorItem

        keys = env_keys()
        problems = [ConfigErrorItem(ENV_ENCRYPTION_KEYS, f"key {i + 1}: {problem}")
                    for i, problem in enumerate(map(key_problem, keys)) if problem]
        if problems:
            raise ConfigError(problems, file="<environment>")
    serializer = provider_serializer(
        cfg.type,
        # encrypted payloads are authenticated (GCM), so signed pickle's default applies
        cfg.serializer or (default_serializer_name(cfg.type, True) if keys else None),
        compress_threshold=cfg.compress_threshold,
        signing_key=_secret(cfg.signing_key),
        allow_unsigned_pickle=bool(keys) or getattr(cfg, "allow_unsigned_pickle", False),
    )
    if not keys:
        return serializer
    from ..encryption import EncryptedSerializer, decode_key

    return EncryptedSerializer(serializer, [decode_key(k) for k in keys])
