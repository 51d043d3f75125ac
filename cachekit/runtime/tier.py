"""Tiers: one driver as a region uses it, with its namespace and error policy.

Two kinds. A :class:`LocalTier` is an in-process memory store owned by one region: values are kept
by reference, keys carry no namespace, and generations live in a local map. A :class:`SharedTier`
is a store other regions and processes share: every key lives under ``prefix:region:``, values are
serialized by the driver, and generations are counters in the store itself. Each kind owns its
namespacing, so a region never builds a stored key by hand.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ..errors import CacheError, ValueTooLargeError
from ..providers.base import MISSING, CacheDriver
from ..providers.memory import MemoryDriver
from ..serializers import SerializationError
from ..stats import RegionStats
from .generations import LocalGenerations

__all__ = ["LocalTier", "SharedTier", "Tier"]

log = logging.getLogger("cachekit")
T = TypeVar("T")


class Tier:
    """What both kinds share: the driver, and ``call``, which runs a driver operation under the
    provider's error policy: a failure is counted, logged once per outage (not per call), and
    either re-raised (``on_error = "raise"``) or turned into ``fallback``."""

    __slots__ = ("down", "driver", "namespace", "on_error", "on_recover", "provider", "raw_ints", "stats")

    #: stores whose keys a region can list (``keys()``, pattern invalidation, flush by deletion)
    can_scan = True

    def __init__(self, driver: CacheDriver, *, provider: str, namespace: str, on_error: str,
                 stats: RegionStats) -> None:
        self.driver = driver
        self.provider = provider
        self.namespace = namespace
        self.on_error = on_error
        self.stats = stats
        self.down = False
        #: values may be stored as raw integers (so the server increments them)
        self.raw_ints = True
        #: called once when the store answers again after an outage (the region replays the
        #: invalidations it could not apply meanwhile)
        self.on_recover: Callable[[], None] | None = None

    def key(self, key: str) -> str:
        """The key as stored."""
        return self.namespace + key

    def call(self, fallback: T, fn: Callable[..., T], *args: Any) -> T:
        try:
            result = fn(*args)
        except Exception as exc:
            return self.failed(exc, fallback)
        if self.down:
            self.recovered()
        return result

    async def acall(self, fallback: T, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """:meth:`call` for a driver's async twin."""
        try:
            result = await fn(*args)
        except Exception as exc:
            return self.failed(exc, fallback)
        if self.down:
            self.recovered()
        return result

    def failed(self, exc: BaseException, fallback: T) -> T:
        """Count a driver failure; re-raise it (caller's mistake or ``on_error = "raise"``) or
        return ``fallback``."""
        if isinstance(exc, CacheError) and not getattr(exc, "is_fault", True):
            raise exc  # a caller's mistake (bad key...), not a store fault
        self.stats.errors += 1
        if isinstance(exc, (SerializationError, ValueTooLargeError)):
            # a bad payload or an oversize value: counted, a miss or a failed write; not an outage
            log.warning("cachekit provider %r: %s", self.provider, exc)
            if self.on_error == "raise":
                raise exc
            return fallback
        if not self.down:
            self.down = True
            log.warning("cachekit provider %r failed (%s: %s); counting errors until it recovers",
                        self.provider, type(exc).__name__, exc)
        if self.on_error == "raise":
            raise exc
        return fallback

    def recovered(self) -> None:
        self.down = False
        log.warning("cachekit provider %r recovered", self.provider)
        if self.on_recover is not None:
            self.on_recover()

    @property
    def evictions(self) -> int:
        """Entries this tier's own store evicted (only an in-process store counts its own)."""
        return 0

    def reset_evictions(self) -> None:
        pass


class LocalTier(Tier):
    """An in-process memory store owned by one region alone (an L2 ``memory`` provider, or an L1)."""

    __slots__ = ("generations", "memory")

    def __init__(self, driver: MemoryDriver, *, provider: str, on_error: str, stats: RegionStats) -> None:
        super().__init__(driver, provider=provider, namespace="", on_error=on_error, stats=stats)
        self.memory = driver
        #: tags, pattern rules: a bounded map, dropped with the region's data on flush
        self.generations = LocalGenerations()

    def gen_key(self, kind: str, name: str) -> str:
        return f"{kind}:{name}"

    def fetch(self, key: str) -> Any:
        """The entry for ``key`` with its stamps checked against the local generations, or MISSING."""
        entry = self.driver.get(key)
        if entry is MISSING:
            return MISSING
        stamps = entry[2]
        if stamps is not None:
            gens = self.generations
            for gen_key, gen in stamps:
                if gens.get(gen_key) != gen:
                    return MISSING
        return entry

    def stamp(self, gen_keys: list[str]) -> tuple[tuple[str, int], ...]:
        gens = self.generations
        return tuple((k, gens.stamp(k)) for k in gen_keys)

    def advance(self, gen_key: str) -> bool:
        self.generations.advance(gen_key)
        return True

    def flush(self) -> bool:
        self.generations.clear()
        return self.driver.flush()

    def resize(self, max_size: int | None) -> None:
        self.memory.resize(max_size)

    @property
    def evictions(self) -> int:
        return self.memory.evictions

    def reset_evictions(self) -> None:
        self.memory.evictions = 0


class SharedTier(Tier):
    """A store shared with other regions and processes: keys under ``prefix:region:``, generations
    under ``prefix:__gen__:region:``, loader locks under ``prefix:__lock__:region:``."""

    __slots__ = ("gen_prefix", "lock_prefix")

    def __init__(self, driver: CacheDriver, *, provider: str, prefix: str, region: str, on_error: str,
                 stats: RegionStats) -> None:
        super().__init__(driver, provider=provider, namespace=f"{prefix}:{region}:", on_error=on_error,
                         stats=stats)
        self.gen_prefix = f"{prefix}:__gen__:{region}:"
        self.lock_prefix = f"{prefix}:__lock__:{region}:"
        # not on a store that signs its payloads: a raw integer carries no signature, so there it is
        # read only from generation keys
        self.raw_ints = not driver.signed

    @property
    def can_scan(self) -> bool:  # type: ignore[override]
        return bool(self.driver.can_scan)

    def gen_key(self, kind: str, name: str) -> str:
        return f"{self.gen_prefix}{kind}:{name}"

    def lock_key(self, key: str) -> str:
        """The cross-process loader lock of ``key``."""
        return self.lock_prefix + key

    def counter_lock_key(self, key: str) -> str:
        """The lock of a read-modify-write increment; under the generation prefix, which a region
        flush scans (and spares: see ``Generations.drop``)."""
        return f"{self.gen_prefix}lock:{key}"
