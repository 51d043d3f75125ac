"""The built-in provider types, in one table that every other module reads.

The config models, the config checks, the JSON Schema, the serializer defaults, the HTTP admin policy,
the services and the registry all ask this table what a type is, instead of keeping lists of their own.
It imports nothing (``cachekit.config`` imports it; it must never import a config model or a client
library).

>>> PROVIDER_TYPES["memcached"].network, PROVIDER_TYPES["memcached"].can_scan
(True, False)
>>> BUILTIN_PROVIDER_TYPES
('memory', 'file', 'redis', 'memcached')
>>> NETWORK_STORES
('redis', 'memcached')
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BUILTIN_PROVIDER_TYPES", "ENTRY_POINT_GROUP", "NETWORK_STORES", "PROVIDER_TYPES", "ProviderType"]


@dataclass(frozen=True)
class ProviderType:
    """What cachekit knows about one built-in provider type."""

    #: the ``type`` of a ``[providers.*]`` table, and the name that resolves to a default provider
    name: str
    #: ``module:Class`` of the driver, imported only when a config asks for this type
    driver: str
    #: ``True``: values cross a process boundary (serialized, under ``prefix:region:``);
    #: ``False``: an in-process store of references
    shared: bool
    #: ``True``: reached over the network, so unsigned pickle needs an explicit opt-in
    network: bool
    #: ``True``: the store can enumerate keys (ad-hoc patterns; region flush by deleting keys)
    can_scan: bool
    #: the serializer when none is configured and payloads are not signed (``None``: references kept);
    #: with a signing key it is always signed ``pickle``
    default_serializer: str | None
    #: the config fields that say where the store is (services show them as connection details)
    connection_fields: tuple[str, ...]


PROVIDER_TYPES: dict[str, ProviderType] = {
    t.name: t
    for t in (
        ProviderType("memory", "cachekit.providers.memory:MemoryDriver", shared=False, network=False,
                     can_scan=True, default_serializer=None, connection_fields=()),
        ProviderType("file", "cachekit.providers.file:FileDriver", shared=True, network=False,
                     can_scan=True, default_serializer="pickle", connection_fields=("path",)),
        ProviderType("redis", "cachekit.providers.redis:RedisDriver", shared=True, network=True,
                     can_scan=True, default_serializer="json",
                     connection_fields=("url", "host", "port", "db", "username", "password", "startup_nodes",
                                        "sentinel")),
        ProviderType("memcached", "cachekit.providers.memcached:MemcachedDriver", shared=True, network=True,
                     can_scan=False, default_serializer="json", connection_fields=("servers",)),
    )
}

#: The built-in type names, in table order.
BUILTIN_PROVIDER_TYPES: tuple[str, ...] = tuple(PROVIDER_TYPES)
#: The built-in types reached over the network.
NETWORK_STORES: tuple[str, ...] = tuple(name for name, t in PROVIDER_TYPES.items() if t.network)
#: The entry point group where other packages register drivers (``type = "<entry point name>"``).
ENTRY_POINT_GROUP = "cachekit.providers"
