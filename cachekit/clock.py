"""The one source of time for a runtime.

Every expiry in cachekit is computed from a :class:`Clock`, so a test can swap in a
:class:`FakeClock` and advance time instead of sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Clock", "FakeClock", "SystemClock"]


class Clock:
    """A clock is a callable object returning seconds as a float (``clock()``)."""

    __slots__ = ("now",)

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now()


class SystemClock(Clock):
    """Wall-clock time (``time.time``); shared stores compare stamps across processes."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(time.time)


class FakeClock(Clock):
    """A clock that only moves when told to.

    >>> clock = FakeClock(100.0)
    >>> clock.advance(5)
    >>> clock()
    105.0
    """

    __slots__ = ("_t",)

    def __init__(self, start: float | None = None) -> None:
        self._t = time.time() if start is None else float(start)
        super().__init__(self._read)

    def _read(self) -> float:
        return self._t

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._t += seconds

    def set(self, t: float) -> None:
        self._t = float(t)
