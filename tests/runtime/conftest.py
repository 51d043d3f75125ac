"""Fixtures of the runtime tests: the real test servers behind the fault-injection proxy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from faultproxy import FaultProxy
from servers import need_module


@pytest.fixture
def redis_proxy(redis_server: Any) -> Iterator[FaultProxy]:
    """The test Redis behind a :class:`FaultProxy` (latency, cuts, black holes, pub/sub kills)."""
    need_module("redis")
    with FaultProxy(redis_server.host, redis_server.port) as proxy:
        yield proxy


@pytest.fixture
def memcached_proxy(memcached_server: Any) -> Iterator[FaultProxy]:
    """The test memcached behind a :class:`FaultProxy`."""
    need_module("pymemcache")
    with FaultProxy(memcached_server.host, memcached_server.port) as proxy:
        yield proxy
