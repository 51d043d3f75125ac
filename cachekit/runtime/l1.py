"""An L1: the in-process tier in front of a region's L2, and what keeps it consistent.

Every removal from L1 (a local write, a bus message from another process) advances the epoch under
the lock; a read fills L1 only if no removal happened since it started reading L2, so a value read
before a concurrent write can never be parked in L1 after it.

The :class:`Gate` says whether L1s may be trusted at all: always without a bus, and with one only
while it is whole (``bus.py``); otherwise reads and fills pass L1 by and go to L2.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from ..providers.base import MISSING
from .tier import LocalTier

__all__ = ["L1", "Gate"]


class Gate:
    """One flag shared by the L1s of a runtime: ``whole`` while they may be trusted."""

    __slots__ = ("whole",)

    def __init__(self, whole: bool = True) -> None:
        self.whole = whole


#: the gate of an L1 no bus watches over
OPEN = Gate()


class L1:
    """The L1 tier of one region: ``get`` a fresh value, ``fill`` after an L2 hit, ``drop`` keys."""

    __slots__ = ("_lock", "epoch", "gate", "tier", "ttl")

    def __init__(self, tier: LocalTier, ttl: float | None, epoch: int = 0, gate: Gate = OPEN) -> None:
        self.tier = tier
        self.gate = gate
        self.ttl = ttl
        #: advanced by every removal; a read remembers it before asking L2 (see the module doc)
        self.epoch = epoch
        self._lock = threading.Lock()

    def get(self, key: str, now: float) -> Any:
        """The fresh value of ``key`` in L1, or MISSING (always while the gate is shut)."""
        if self.gate.whole:
            e = self.tier.memory.get_cell(key)  # (value, deadline, None, deadline)
            if e is not MISSING and e[1] > now:
                return e[0]
        return MISSING

    def fill(self, key: str, value: Any, expires: float, now: float, epoch: int | None = None) -> None:
        """Put ``value`` in L1 until the sooner of ``expires`` and the L1 TTL; with ``epoch``, only if
        nothing was removed from L1 since that epoch was read (a concurrent write or invalidation);
        never while the gate is shut."""
        l1_ttl = self.ttl
        deadline = expires if not l1_ttl or expires < now + l1_ttl else now + l1_ttl
        memory = self.tier.memory
        with self._lock:
            if (epoch is not None and epoch != self.epoch) or not self.gate.whole:
                return
            memory.put_cell(key, (value, deadline, None, deadline))

    def drop(self, keys: Iterable[str] | None) -> None:
        """Remove ``keys`` (``None``: everything) and advance the epoch."""
        driver = self.tier.driver
        with self._lock:
            self.epoch += 1
            if keys is None:
                driver.flush()
            else:
                for k in keys:
                    driver.forget(k)
