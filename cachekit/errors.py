"""Exceptions raised by cachekit."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AccessDenied",
    "CacheError",
    "ConfigError",
    "ConfigErrorItem",
    "MissingExtraError",
    "ProviderError",
    "UnsupportedOperation",
    "ValueTooLargeError",
]


class CacheError(Exception):
    """Base class of every cachekit error."""


@dataclass(frozen=True)
class ConfigErrorItem:
    """One problem in a config: where (file, dotted path, line) and what would be valid."""

    path: str
    message: str
    line: int | None = None
    file: str | None = None

    def __str__(self) -> str:
        where = self.file or "<config>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.path or '<root>'}: {self.message}"


class ConfigError(CacheError, ValueError):
    """An invalid config. ``errors`` lists every problem found, not just the first."""

    def __init__(self, errors: list[ConfigErrorItem], file: str | None = None) -> None:
        self.errors = list(errors)
        self.file = file
        super().__init__(self._render())

    def _render(self) -> str:
        head = f"{len(self.errors)} error(s) in {self.file or 'config'}"
        return head + "\n" + "\n".join(f"  {e}" for e in self.errors)


class MissingExtraError(CacheError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"{package} is required for this feature; install it with: pip install 'cachekit-config[{extra}]'"
        )
        self.package = package
        self.extra = extra


class ProviderError(CacheError):
    """A provider failed (connection refused, timeout, garbage payload)."""


class UnsupportedOperation(CacheError):
    """The store cannot do this (for example: memcached cannot enumerate keys for a pattern)."""

    is_fault = False  # a limit of the store, raised whatever ``on_error`` says: not an outage


class InvalidKeyError(CacheError, ValueError):
    """A key that no store can hold: not a string, empty, not encodable as UTF-8 (a lone surrogate),
    or longer than ``max_key_length``. Raised before any I/O, whatever ``on_error`` says."""

    is_fault = False  # the caller's mistake: never counted as a store failure


class InvalidValueError(CacheError, ValueError):
    """An argument no store can take (a counter amount that is not an ``int``...). Raised before
    any I/O, whatever ``on_error`` says."""

    is_fault = False


class InvalidTTLError(InvalidValueError):
    """A TTL that is not a finite number of seconds in ``(0, MAX_TTL]`` (ten years)."""


class AccessDenied(CacheError):
    """A policy refused the change (an HTTP admin route pointing a provider outside its allow-list)."""


class ValueTooLargeError(ProviderError):
    """A key or value exceeds what the store accepts."""


class LockTimeoutError(CacheError):
    """An atomic lock (``Cache.lock(...).block(wait)``) did not come within the wait."""

    is_fault = False


def require(module: str, extra: str) -> object:
    """Import an optional dependency or raise :class:`MissingExtraError` naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module, extra) from exc
