"""One deadline per call: the store time budget of one region call.

A region call (``get``, ``remember``, ``put``...) on a shared store may make several store calls (a
read, a second read under the loader lock, a write, a bus publish). :func:`one_call` opens a
:class:`Call` for the outermost of them; ``Tier.call`` consults it before each store call: once a
store call of this call failed with a fault (a refused connection, a timeout after the retries), or
the time spent in store calls reached the tier's budget, the remaining store calls of this call are
skipped and answered with their fallback (counted in ``errors``; with ``on_error = "raise"`` a
``ProviderError`` is raised). So a store that is down or black-holed costs one operation timeout
per call, not one per store call, and the retry budget is spent once.

Waiting *for* the store counts too: a process lock held by another call's store calls (a counter's
read-modify-write) and the pauses between polls of the store's counter lock. :func:`acquire_within`
and :func:`pause_within` wait no longer than what is left of the budget and add the wait to it, so
eight threads queued on one lock behind a slow store do not each wait for all the others' timeouts.
And while a store call runs, ``Call.until`` says when the budget ends: a driver that can shorten its
socket timeouts to it does (memcached: ``providers/memcached_client.py``), so the call ends within its
deadline; one that cannot (redis-py) overruns it by at most one operation timeout.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from ..errors import ProviderError
from ..providers.base import CALL

__all__ = ["MARGIN", "Call", "acquire_within", "aone_call", "call_within", "current", "current_call", "one_call",
           "pause_within", "run_within", "skipped"]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

#: added to a provider's operation timeout for the default budget of a call
MARGIN = 0.1
_INF = float("inf")


class Call:
    """The store time spent by one region call, and the tiers found down during it."""

    __slots__ = ("down", "spent", "until")

    def __init__(self) -> None:
        self.spent = 0.0
        #: while a store call runs: when this call's budget ends (``time.monotonic()``); a driver may
        #: shorten its socket timeouts to it (``providers.base.time_left``)
        self.until = _INF
        #: the tiers (by identity) a store call of this call failed on
        self.down: list[Any] = []


_CALL: ContextVar[Call | None] = CALL  # lives with the drivers, which read it (``time_left``)
current = current_call = _CALL.get


def one_call(fn: F) -> F:
    """Run a region method as one call (nested calls join the outermost). An in-process region
    (``l2.remote`` false) opens nothing: its tier makes no network call."""

    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not self.l2.remote or _CALL.get() is not None:
            return fn(self, *args, **kwargs)
        token = _CALL.set(Call())
        try:
            return fn(self, *args, **kwargs)
        finally:
            _CALL.reset(token)

    return wrapper  # type: ignore[return-value]


def aone_call(fn: F) -> F:
    """:func:`one_call` for a coroutine method."""

    @functools.wraps(fn)
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not self.l2.remote or _CALL.get() is not None:
            return await fn(self, *args, **kwargs)
        token = _CALL.set(Call())
        try:
            return await fn(self, *args, **kwargs)
        finally:
            _CALL.reset(token)

    return wrapper  # type: ignore[return-value]


def call_within(tier: Any, within: Call, fallback: T, fn: Callable[..., T], *args: Any) -> T:
    """``Tier.call`` inside a region call: skipped once ``tier`` failed in it or its budget is
    spent; the time taken is added to the call's."""
    if (within.down and tier in within.down) or within.spent >= tier.budget:
        return skipped(tier, within, fallback)
    started = time.monotonic()
    within.until = started + tier.budget - within.spent
    try:
        result = fn(*args)
    except Exception as exc:
        within.until = _INF
        within.spent += time.monotonic() - started
        return tier.failed(exc, fallback, within)  # type: ignore[no-any-return]
    within.until = _INF
    within.spent += time.monotonic() - started
    tier.answered()
    return result


def skipped(tier: Any, within: Call, fallback: T) -> T:
    """A store call not made: this region call found the store down, or spent its budget (counted
    in ``errors``; a ``ProviderError`` under ``on_error = "raise"``)."""
    tier.stats.errors += 1
    if tier.on_error == "raise":
        why = "failed earlier in this call" if tier in within.down else \
            f"this call spent its budget ({tier.budget:g}s, [cache] call_timeout)"
        raise ProviderError(f"cachekit provider {tier.provider!r} skipped: the store {why}")
    return fallback


def acquire_within(tier: Any, lock: Any) -> bool:
    """Take ``lock`` (a process lock guarding store calls) for the current region call, waiting no
    longer than what is left of its budget on ``tier``; the wait is added to the call's spent time.
    Outside a region call it waits as long as it takes. ``False``: the lock did not come in time."""
    if lock.acquire(blocking=False):
        return True
    within = _CALL.get()
    if within is None:
        return bool(lock.acquire())
    left = tier.budget - within.spent
    if left <= 0 or (within.down and tier in within.down):
        return False
    started = time.monotonic()
    try:
        return bool(lock.acquire(timeout=left))
    finally:
        within.spent += time.monotonic() - started


def pause_within(tier: Any, seconds: float) -> None:
    """Sleep ``seconds`` between two polls of the store; inside a region call, the pause is store
    time of that call (so a poll loop stops once the budget is spent: ``Tier.skipping``)."""
    time.sleep(seconds)
    within = _CALL.get()
    if within is not None:
        within.spent += seconds


def run_within(tier: Any, fn: Callable[..., T], *args: Any) -> T:
    """Run a store call whose failure the caller handles itself (not through ``Tier.call``) inside the
    current region call's budget: its socket timeouts shortened (``Call.until``), its time spent."""
    within = _CALL.get()
    if within is None:
        return fn(*args)
    started = time.monotonic()
    within.until = started + tier.budget - within.spent
    try:
        return fn(*args)
    finally:
        within.until = _INF
        within.spent += time.monotonic() - started
