"""Result, the success-or-failure value of every service call; the mapping from exceptions to its
error message and code; :func:`guarded`, which runs a service body and builds the Result."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from ..errors import AccessDenied, CacheError, ConfigError, ProviderError, UnsupportedOperation

__all__ = ["Result", "ServiceFailure", "T", "guarded"]

T = TypeVar("T")


@dataclass(frozen=True)
class Result(Generic[T]):
    """The outcome of a service call: a value, or an error message and code; a success may carry
    ``warnings`` (what it did that the caller probably did not mean).

    >>> Result.ok(42).value
    42
    >>> r = Result.fail("unknown region 'x'", code="not_found")
    >>> r.is_failure(), r.error, r.code
    (True, "unknown region 'x'", 'not_found')
    """

    value: T | None = None
    error: str | None = None
    code: str | None = None
    success: bool = True
    warnings: tuple[str, ...] = ()

    @classmethod
    def ok(cls, value: T | None = None) -> Result[T]:
        """A success carrying ``value``."""
        return cls(value=value)

    @classmethod
    def fail(cls, error: str | BaseException, code: str = "error") -> Result[Any]:
        """A failure; ``error`` is a message (an exception is turned into one)."""
        message = error if isinstance(error, str) else _message(error)
        return cls(error=message, code=code, success=False)

    def is_success(self) -> bool:
        """``True`` when the call succeeded (``.value`` holds the answer, possibly ``None``)."""
        return self.success

    def is_failure(self) -> bool:
        """``True`` when the call failed (``.error`` says why)."""
        return not self.success

    def unwrap(self) -> T:
        """The value, or :class:`~cachekit.CacheError` with the error message."""
        if not self.success:
            raise CacheError(self.error or "failed")
        return self.value  # type: ignore[return-value]

    def value_or(self, default: Any) -> Any:
        """The value on success, ``default`` on failure."""
        return self.value if self.success else default


def _message(exc: BaseException) -> str:
    if isinstance(exc, ConfigError):
        return "; ".join(f"{e.path or '<root>'}: {e.message}" for e in exc.errors) or str(exc)
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, CacheError) else f"{type(exc).__name__}: {text}"


def _code(exc: BaseException) -> str:
    if isinstance(exc, AccessDenied):
        return "forbidden"
    if isinstance(exc, UnsupportedOperation):
        return "unsupported"
    if isinstance(exc, ProviderError):
        return "provider"
    if isinstance(exc, (CacheError, ValidationError, ValueError, TypeError)):
        return "invalid"  # a bad ttl, key, name or config value
    return "error"


class ServiceFailure(Exception):
    """Raised inside a service to leave with ``Result.fail(message, code)``."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


async def guarded(work: Callable[[], Any]) -> Result[Any]:
    """Run ``work`` (sync, or returning an awaitable) and turn any exception into a failure."""
    try:
        value = work()
        if isinstance(value, Awaitable):
            value = await value
    except ServiceFailure as exc:
        return Result.fail(str(exc), exc.code)
    except Exception as exc:
        return Result.fail(exc, _code(exc))
    return Result.ok(value)
