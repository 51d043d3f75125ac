"""A region's resolved policy: TTLs by key pattern, declared pattern rules, limits."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ..errors import InvalidKeyError, InvalidTTLError

__all__ = ["INF", "MAX_TTL", "InvalidKeyError", "Policy", "compile_glob", "has_glob", "normalize_ttl"]

INF = float("inf")
_STR_ONLY = {str}
#: the longest TTL accepted (ten years): every store takes it (Redis, memcached as a timestamp)
MAX_TTL = 10 * 365 * 86400
#: a ``ttl`` meaning "no expiry", where ``None`` means "the region's default TTL" (``remember_forever``)
FOREVER: Any = type("Forever", (), {"__repr__": lambda self: "FOREVER"})()


def compile_glob(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern))


def has_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def escape_glob(text: str) -> str:
    """``text`` as a glob matching only itself, in fnmatch and Redis ``MATCH`` alike (``*`` -> ``[*]``)."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def normalize_ttl(ttl: Any) -> float | None:
    """Seconds as a float; ``timedelta`` accepted; ``None`` passes through. A TTL that is not a
    finite number in ``(0, MAX_TTL]`` raises :class:`InvalidTTLError`."""
    if ttl is None:
        return None
    if isinstance(ttl, timedelta):
        ttl = ttl.total_seconds()
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise InvalidTTLError(f"ttl must be a number of seconds or a timedelta, not {type(ttl).__name__}")
    if not ttl > 0:
        raise InvalidTTLError(f"ttl must be greater than 0 seconds (got {ttl!r}); use forever() for no expiry")
    if not ttl <= MAX_TTL:
        raise InvalidTTLError(f"ttl must be at most {MAX_TTL} seconds (ten years), got {ttl!r}; "
                              "use forever() for no expiry")
    return float(ttl)


@dataclass
class Policy:
    """Everything a region needs from the config, resolved once (and again on hot-apply)."""

    name: str
    provider: str
    ttl: float | None
    max_size: int | None
    max_key_length: int
    enabled: bool = True
    stale_ttl: float | None = None
    lock: bool = False
    lock_timeout: float = 10.0
    #: the region's own serializer (``None``: the provider's)
    serializer: str | None = None
    #: how a shared region is flushed: "delete" its keys, "generation" (O(1)), or None (by the store)
    flush: str | None = None
    l1_provider: str | None = None
    l1_ttl: float | None = None
    l1_max_size: int | None = None
    #: the L1 tier's eviction policy (None: its memory provider's)
    l1_eviction: str | None = None
    #: (regex, ttl) of time_based rules, first match wins
    ttl_rules: list[tuple[re.Pattern[str], float]] = field(default_factory=list)
    #: (regex, rule name) of pattern_based rules: matching keys are stamped with the rule's generation
    pattern_rules: list[tuple[re.Pattern[str], str]] = field(default_factory=list)

    def ttl_for(self, key: str, ttl: Any) -> float | None:
        if ttl is FOREVER:
            return None
        if ttl is not None:
            return normalize_ttl(ttl)
        for regex, rule_ttl in self.ttl_rules:
            if regex.match(key):
                return rule_ttl
        return self.ttl

    def checked(self, key: Any) -> str:
        """``key``, checked (:meth:`check_key`)."""
        self.check_key(key)
        return key  # type: ignore[no-any-return]

    def check_keys(self, keys: Iterable[Any]) -> None:
        """:meth:`check_key` of each key; the common key (ASCII, not empty, not too long) is passed
        without the call."""
        limit = self.max_key_length
        if type(keys) is list and keys and set(map(type, keys)) == _STR_ONLY and "".join(keys).isascii() \
                and min(map(len, keys)) > 0 and max(map(len, keys)) <= limit:
            return  # the usual batch, checked in C loops
        check = self.check_key
        for key in keys:
            if type(key) is not str or not key.isascii() or not 0 < len(key) <= limit:
                check(key)

    def check_key(self, key: Any) -> None:
        if type(key) is not str:
            raise InvalidKeyError(f"cache keys are strings, not {type(key).__name__} ({key!r})")
        if not key:
            raise InvalidKeyError("cache keys must not be empty")
        if not key.isascii():
            try:
                key.encode()
            except UnicodeEncodeError:
                raise InvalidKeyError(f"cache keys must be encodable as UTF-8 (a lone surrogate?): {key[:60]!r}") \
                    from None
        if len(key) * 4 > self.max_key_length and len(key.encode()) > self.max_key_length:
            raise InvalidKeyError(
                f"key of {len(key.encode())} bytes exceeds max_key_length={self.max_key_length} "
                f"(region {self.name!r}; raise [cache].max_key_length or hash the key): {key[:60]!r}..."
            )
