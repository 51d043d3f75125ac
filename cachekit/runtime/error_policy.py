"""A tier's error policy: what a failing driver call does to the region call that made it.

Every driver operation of a tier runs through :meth:`ErrorPolicy.call` (or ``acall``): a failure is
counted, logged once per outage (not per call), and either re-raised (``on_error = "raise"``) or
turned into the caller's ``fallback``. The provider's circuit breaker (``breaker.py``) is asked
only while it is tripped, and inside a region call the call's deadline (``deadline.py``) decides
whether the store is still worth asking. A bad payload or an oversize value is counted but is not
an outage. Mixed into :class:`~cachekit.runtime.tier.Tier`, whose slots hold the state it reads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ..errors import CacheError, ValueTooLargeError
from ..providers.base import CALL
from ..serializers import SerializationError
from ..stats import Recorder
from .breaker import Breaker, CircuitOpenError
from .deadline import Call, call_within, current, skipped

__all__ = ["ErrorPolicy"]

log = logging.getLogger("cachekit")
_INF = float("inf")
T = TypeVar("T")


class ErrorPolicy:
    """The error policy of a tier (mixed into :class:`~cachekit.runtime.tier.Tier`)."""

    __slots__ = ()

    breaker: Breaker | None
    budget: float
    down: bool
    on_error: str
    provider: str
    stats: Recorder

    def call(self, fallback: T, fn: Callable[..., T], *args: Any) -> T:
        breaker = self.breaker
        if breaker is not None and breaker.tripped and not breaker.allow():
            return self.skipped(fallback)
        within = current()
        if within is not None:
            return call_within(self, within, fallback, fn, *args)
        try:
            result = fn(*args)
        except Exception as exc:
            return self.failed(exc, fallback)
        if breaker is not None and (breaker.failures or breaker.tripped):
            breaker.success()
        if self.down:
            self.recovered()
        return result

    def call_once(self, fallback: T, fn: Callable[..., T], *args: Any) -> T:
        """:meth:`call` as the first store call of a region call (the direct path, ``Region._direct``):
        under a deadline of its own, what ``one_call`` opens and ``call_within`` keeps, inline for a fresh
        call; inside a region call in progress, under that one. Its rest, if any, goes on under one
        deadline charged with this call's time (``plans.drive_on``)."""
        if CALL.get() is not None:
            return self.call(fallback, fn, *args)
        breaker = self.breaker
        if breaker is not None and breaker.tripped and not breaker.allow():
            return self.skipped(fallback)
        within = Call()
        started = time.monotonic()
        within.until = started + self.budget  # a driver shortens its socket timeouts to it (deadline.py)
        token = CALL.set(within)
        try:
            try:
                result = fn(*args)
            except Exception as exc:
                within.until = _INF
                within.spent = time.monotonic() - started
                return self.failed(exc, fallback, within)
            if self.down or (breaker is not None and (breaker.failures or breaker.tripped)):
                within.until = _INF
                within.spent = time.monotonic() - started
                self.answered()  # an outage ends: replaying its invalidations is part of this call
            return result
        finally:
            CALL.reset(token)

    async def acall(self, fallback: T, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """:meth:`call` for a driver's async twin."""
        breaker = self.breaker
        if breaker is not None and breaker.tripped and not breaker.allow():
            return self.skipped(fallback)
        within = current()
        if within is not None:
            if (within.down and self in within.down) or within.spent >= self.budget:
                return skipped(self, within, fallback)
            started = time.monotonic()
            # as call_within: a driver shortens its socket timeouts to it (memcached's async twins run
            # the sync commands in a worker thread, which sees this Call)
            within.until = started + self.budget - within.spent
        try:
            result = await fn(*args)
        except Exception as exc:
            if within is not None:
                within.until = _INF
                within.spent += time.monotonic() - started
            return self.failed(exc, fallback, within)
        if within is not None:
            within.until = _INF
            within.spent += time.monotonic() - started
        if breaker is not None and (breaker.failures or breaker.tripped):
            breaker.success()
        if self.down:
            self.recovered()
        return result

    def failed(self, exc: BaseException, fallback: T, within: Any = None) -> T:
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
        if within is not None:
            within.down.append(self)  # the rest of this call skips the store
        if not self.down:
            self.down = True
            log.warning("cachekit provider %r failed (%s: %s); counting errors until it recovers",
                        self.provider, type(exc).__name__, exc)
        if self.breaker is not None:
            self.breaker.failure()
        if self.on_error == "raise":
            raise exc
        return fallback

    def skipped(self, fallback: T) -> T:
        """A call the open circuit skipped: counted as an error, answered at once (no store call)."""
        self.stats.errors += 1
        if self.on_error == "raise":
            raise CircuitOpenError(f"provider {self.provider!r}: circuit open, call skipped")
        return fallback

    def skipping(self) -> bool:
        """The current region call skips this store from now on (``deadline.py``)."""
        within = current()
        return within is not None and (self in within.down or within.spent >= self.budget)

    def answered(self) -> None:
        """A store call inside a region call succeeded: the breaker's count closes, an outage ends."""
        breaker = self.breaker
        if breaker is not None and (breaker.failures or breaker.tripped):
            breaker.success()
        if self.down:
            self.recovered()

    def recovered(self) -> None:
        self.down = False
        log.warning("cachekit provider %r recovered", self.provider)
