"""Atomic locks (issue 15 item 1) beyond the per-store conformance cases: the facade, and the loader lock
of ``lock = true`` regions on the same owner-token mechanism."""

from __future__ import annotations

import time
from typing import Any

import pytest

from cachekit import Cache, CacheConfig, Lock, LockTimeoutError


def test_the_facade_lock_restore_lock_and_store_lock(cachekit_cache: Any) -> None:
    lock = Cache.lock("report", seconds=10)
    assert isinstance(lock, Lock) and lock.get() is True
    assert Cache.lock("report", 10).get() is False
    with pytest.raises(LockTimeoutError):
        Cache.lock("report", 10).block(0.05)
    assert Cache.restore_lock("report", lock.owner).release() is True
    with Cache.lock("report", 10, wait=1) as held:
        assert held.held()
    assert Cache.store("memory").lock("report", 10).get() is True


def test_a_lock_needs_positive_seconds(cachekit_cache: Any) -> None:
    with pytest.raises(ValueError, match="seconds > 0"):
        Cache.lock("x", seconds=0)


@pytest.mark.parametrize("store", ["redis", "memcached"])
def test_the_loader_lock_is_an_owner_token_lock(store: str, redis_server: Any, memcached_server: Any) -> None:
    """A loader that outlives its lock must not release the lock someone else took since (it did, when the
    loader lock was a plain ``add``/``forget`` key)."""
    provider = {"url": redis_server.url} if store == "redis" else {"servers": [memcached_server.address]}
    rt = CacheConfig(**{"cache": {"prefix": f"ll{store}"}, "providers": {store: provider},
                        "regions": {"default": {"provider": store, "ttl": 60, "lock": True,
                                                "lock_timeout": 1}}}).compile()
    try:
        region = rt.region()
        taken: list[bool] = []

        def load() -> int:
            assert region.lock("k", 30).get() is False  # the loader lock is the atomic lock "k"
            time.sleep(2.2)  # the loader lock (1 s) expires meanwhile
            other = region.lock("k", 30)
            taken.append(other.get())
            return 7

        assert region.remember("k", 60, load) == 7
        assert taken == [True]
        assert region.lock("k", 30).get() is False  # the loader did not release the other owner's lock
    finally:
        rt.close()
