"""A tier: one driver plus the namespace and error policy a region uses it with."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ..errors import CacheError, ValueTooLargeError
from ..providers.base import MISSING, CacheDriver
from ..serializers import SerializationError
from ..stats import RegionStats

__all__ = ["Tier"]

log = logging.getLogger("cachekit")
T = TypeVar("T")


class Tier:
    """A driver as seen by one region.

    ``private`` tiers are in-process memory drivers owned by the region alone: keys are
    stored without the namespace, and generations live in a local dict. Shared tiers prefix
    every key with ``namespace`` (``prefix:region:``) and keep generations in the store.

    ``call`` runs a driver operation under the provider's error policy: a failure is
    counted, logged once per outage (not per call), and either re-raised (``on_error =
    "raise"``) or turned into ``fallback``.
    """

    __slots__ = ("down", "driver", "namespace", "on_error", "on_recover", "private", "provider", "raw_ints",
                 "stats")

    def __init__(self, driver: CacheDriver, *, provider: str, namespace: str, private: bool,
                 on_error: str, stats: RegionStats) -> None:
        self.driver = driver
        self.provider = provider
        self.namespace = "" if private else namespace
        self.private = private
        #: values may be stored as raw integers (the server increments them); not on a store that signs
        #: its payloads: a raw integer carries no signature, so it is read only from generation keys
        self.raw_ints = private or not driver.signed
        self.on_error = on_error
        self.stats = stats
        self.down = False
        #: called once when the store answers again after an outage (the region replays the
        #: invalidations it could not apply meanwhile)
        self.on_recover: Callable[[], None] | None = None

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

    def get(self, key: str) -> Any:
        return self.call(MISSING, self.driver.get, self.namespace + key)
