"""The seeds' ``db``: a user table that records every call, shared by the seed examples of the
decorators (``FakeDB``: ``db.get_user`` is a plain call) and of the services (``AsyncFakeDB``:
``await db.get_user(...)``, as the services seed writes it)."""

from __future__ import annotations

import asyncio
from typing import Any


class FakeDB:
    """One user (123, Ada); each call is recorded in :attr:`calls` as ``(method, user_id)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.users = {123: {"id": 123, "name": "Ada"}}

    def lookup(self, method: str, user_id: int) -> dict[str, Any] | None:
        self.calls.append((method, user_id))
        return self.users.get(user_id)

    def get_user(self, user_id: int) -> dict[str, Any] | None:
        return self.lookup("get_user", user_id)

    async def get_user_async(self, user_id: int) -> dict[str, Any] | None:
        await asyncio.sleep(0)
        return self.lookup("get_user_async", user_id)

    def update_user(self, user_id: int, data: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("update_user", user_id))
        self.users[user_id] = {**self.users.get(user_id, {}), **data}
        return self.users[user_id]


class AsyncFakeDB(FakeDB):
    """The same table behind an async driver: ``get_user`` is awaited."""

    async def get_user(self, user_id: int) -> dict[str, Any] | None:  # type: ignore[override]
        await asyncio.sleep(0)
        return self.lookup("get_user", user_id)
