"""A custom driver implementing only the four required methods, as in seed 000."""

from __future__ import annotations

from typing import Any

from cachekit import CacheDriver


class DictDriver(CacheDriver):
    """Stores objects in a dict; returns ``None`` for "nothing here", as the seed's example does."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def put(self, key: str, value: Any, ttl: float | None = None) -> bool:
        self.data[key] = value
        return True

    def forget(self, key: str) -> bool:
        return self.data.pop(key, None) is not None

    def flush(self) -> bool:
        self.data.clear()
        return True
