"""Load once per key under concurrency: threads wait on the first caller, tasks await its future."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["SingleFlight"]

T = TypeVar("T")


class _Call:
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class SingleFlight:
    """Deduplicate concurrent loads of the same key.

    ``do(key, fn)`` in threads: the first caller runs ``fn``; the others block until it is
    done and share its result (or its exception). ``ado(key, fn)`` does the same for asyncio
    tasks of one event loop.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, _Call] = {}
        self._futures: dict[tuple[int, str], asyncio.Future[Any]] = {}

    def do(self, key: str, fn: Callable[[], T]) -> T:
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if leader:
                call = self._calls[key] = _Call()
        assert call is not None
        if not leader:
            call.done.wait()
            if call.error is not None:
                raise call.error
            return call.value  # type: ignore[no-any-return]
        try:
            call.value = fn()
            return call.value  # type: ignore[no-any-return]
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            with self._lock:
                del self._calls[key]
            call.done.set()

    async def ado(self, key: str, fn: Callable[[], Awaitable[T]]) -> T:
        loop = asyncio.get_running_loop()
        slot = (id(loop), key)
        future = self._futures.get(slot)
        if future is not None:
            return await asyncio.shield(future)  # type: ignore[no-any-return]
        future = loop.create_future()
        self._futures[slot] = future
        try:
            value = await fn()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        else:
            future.set_result(value)
            return value
        finally:
            del self._futures[slot]
