"""A circuit breaker per provider: after ``failures`` consecutive store failures, stop calling the store
for ``cool_off`` seconds (no call, no timeout paid), then let one probe through (half-open): its
success closes the circuit, its failure opens it again for another cool-off.

One :class:`Breaker` per provider of a runtime, shared by every tier (region, store view) on that
provider's driver. ``Tier.call`` asks :meth:`Breaker.allow` only when :attr:`Breaker.tripped` is set,
so a closed circuit costs one attribute read per call. The states are logged once per change on the
``cachekit`` logger (a warning when it opens, info when it closes).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from ..errors import ProviderError

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "Breaker", "CircuitOpenError"]

log = logging.getLogger("cachekit")

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half-open"


class CircuitOpenError(ProviderError):
    """A store call skipped because the provider's circuit is open (``on_error = "raise"``)."""


class Breaker:
    """The circuit of one provider. ``now``: the runtime's clock (seconds)."""

    __slots__ = ("cool_off", "failures", "lock", "now", "opened", "opens", "probing", "provider", "skipped",
                 "state", "threshold", "tripped")

    def __init__(self, provider: str, *, failures: int, cool_off: float, now: Callable[[], float]) -> None:
        self.provider = provider
        self.threshold = failures
        self.cool_off = cool_off
        self.now = now
        self.lock = threading.Lock()
        self.state = CLOSED
        #: ``True`` unless closed: the one attribute a tier reads on every call
        self.tripped = False
        #: consecutive failures (reset by a success)
        self.failures = 0
        #: when the circuit last opened (``None``: never)
        self.opened: float | None = None
        #: when the half-open probe started (``None``: no probe in flight)
        self.probing: float | None = None
        #: calls skipped while open, and how many times it opened
        self.skipped = 0
        self.opens = 0

    def allow(self) -> bool:
        """Whether a call may reach the store now (asked only while :attr:`tripped`); the one call let
        through after the cool-off is the probe. A probe that never reported back (cancelled) is
        replaced after another cool-off."""
        with self.lock:
            if self.state == CLOSED:
                return True
            now = self.now()
            if self.state == OPEN:
                if self.opened is not None and now - self.opened < self.cool_off:
                    self.skipped += 1
                    return False
                self.state = HALF_OPEN
            elif self.probing is not None and now - self.probing < self.cool_off:
                self.skipped += 1
                return False
            self.probing = now
            return True

    def success(self) -> None:
        """A call reached the store and it answered (also a payload it refused: the store is up)."""
        with self.lock:
            self.failures = 0
            if self.state != CLOSED:
                self.state = CLOSED
                self.tripped = False
                self.probing = None
                log.info("cachekit provider %r: circuit closed, the store answers again", self.provider)

    def failure(self) -> None:
        """A call failed: count it; open the circuit at the threshold (or when the probe failed)."""
        with self.lock:
            self.failures += 1
            if self.state == HALF_OPEN:
                self._open()  # the probe failed: another cool-off, already logged when it first opened
            elif self.state == CLOSED and self.failures >= self.threshold:
                self._open()
                self.opens += 1
                log.warning("cachekit provider %r: circuit open after %d consecutive failures; calls "
                            "skipped for %gs, then one probe", self.provider, self.failures, self.cool_off)

    def _open(self) -> None:
        self.state = OPEN
        self.tripped = True
        self.opened = self.now()
        self.probing = None

    def snapshot(self) -> dict[str, Any]:
        """``{"state", "failures", "opened", "skipped", "opens"}`` (``opened``: the clock's seconds)."""
        return {"state": self.state, "failures": self.failures, "opened": self.opened,
                "skipped": self.skipped, "opens": self.opens}

    def __repr__(self) -> str:
        return f"<Breaker {self.provider!r} {self.state} failures={self.failures}>"
