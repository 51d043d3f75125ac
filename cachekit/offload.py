"""Run a blocking cache call off the event loop, unless the store lives in this process.

A call on a shared store (file, memcached, a Redis client without asyncio) blocks on I/O: an
``async`` front door runs it in a worker thread. A call on an in-process memory store takes
microseconds, less than the thread hop itself: it runs inline. Every async front door (decorators,
services, HTTP) comes here; the decision itself is the region's tier's (``Region.off_loop``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .runtime.region import Region

__all__ = ["off_loop"]

T = TypeVar("T")


async def off_loop(region: Region | None, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``: inline when ``region`` stores in process memory, else in a worker
    thread (``asyncio.to_thread``). ``region=None`` (work across regions): always a worker thread."""
    if region is not None:  # the region's own store decides (an in-process tier runs inline)
        return await region.off_loop(fn, *args, **kwargs)  # type: ignore[no-any-return]
    return await asyncio.to_thread(fn, *args, **kwargs)
