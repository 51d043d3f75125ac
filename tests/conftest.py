"""Shared fixtures of the test suite."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hypothesis  # imported (and assertion-rewritten) at start-up, see below
import pytest

# CPython 3.11.7 can raise "SystemError: AST constructor recursion depth mismatch" when a module is
# first parsed after worker threads ran; hypothesis' pytest plugin would otherwise import (and so
# parse) hypothesis only in the terminal summary, at the very end of the session.
# tests/ is on sys.path (pytest's rootdir-conftest import, no tests/__init__.py)
from servers import (
    MemcachedPool,
    MemcachedServer,
    RedisCluster,
    RedisSentinel,
    RedisServer,
    in_ci,
    missing_binaries,
)

from cachekit import Cache, Runtime

# Generating examples is slower on a loaded 2-core CI machine than hypothesis' health check expects:
# that is load, not a property failing. Properties still run every example; there is no time limit.
hypothesis.settings.register_profile(
    "cachekit", deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow]
)
hypothesis.settings.load_profile("cachekit")

# -- test servers ---------------------------------------------------------------------------------
# Real redis-server / memcached processes on free loopback ports, one of each kind per session.
# The function-scoped fixtures restart a server that a test stopped and flush it before each test.
# A missing binary skips the test locally and fails it when CI=true.


def _require_binaries(*names: str) -> None:
    missing = missing_binaries(*names)
    if missing:
        message = f"{', '.join(missing)} not found on PATH"
        if in_ci():
            pytest.fail(f"{message} (required when CI=true)")
        pytest.skip(message)


def _serve(factory: Callable[[Path], Any], tmp: pytest.TempPathFactory, name: str, *binaries: str) -> Iterator[Any]:
    """Start one server (or a group) for the session in a fresh temp dir; always stop it."""
    _require_binaries(*binaries)
    server = factory(tmp.mktemp(name))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _redis_server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    yield from _serve(RedisServer, tmp_path_factory, "redis", "redis-server")


@pytest.fixture
def redis_server(_redis_server_process: RedisServer) -> RedisServer:
    """A running, empty ``redis-server``: ``.host .port .url .client() .stop() .start()``."""
    _redis_server_process.start()
    _redis_server_process.flush()
    return _redis_server_process


@pytest.fixture(scope="session")
def _redis_cluster_processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    yield from _serve(RedisCluster, tmp_path_factory, "redis-cluster", "redis-server", "redis-cli")


@pytest.fixture
def redis_cluster(_redis_cluster_processes: RedisCluster) -> RedisCluster:
    """An empty 3-primary Redis Cluster: ``.nodes .startup_nodes .client()``."""
    _redis_cluster_processes.flush()
    return _redis_cluster_processes


@pytest.fixture(scope="session")
def _redis_sentinel_processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisSentinel]:
    yield from _serve(RedisSentinel, tmp_path_factory, "redis-sentinel", "redis-server")


@pytest.fixture
def redis_sentinel(_redis_sentinel_processes: RedisSentinel) -> RedisSentinel:
    """A Redis primary behind one Sentinel: ``.sentinels .service_name .master``; the primary is empty."""
    _redis_sentinel_processes.master.start()
    _redis_sentinel_processes.master.flush()
    return _redis_sentinel_processes


@pytest.fixture(scope="session")
def _memcached_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MemcachedServer]:
    yield from _serve(MemcachedServer, tmp_path_factory, "memcached", "memcached")


@pytest.fixture
def memcached_server(_memcached_process: MemcachedServer) -> MemcachedServer:
    """A running, empty memcached: ``.host .port .address .stop() .start()``."""
    _memcached_process.start()
    _memcached_process.flush()
    return _memcached_process


@pytest.fixture(scope="session")
def _memcached_pool_processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MemcachedPool]:
    yield from _serve(MemcachedPool, tmp_path_factory, "memcached-pool", "memcached")


@pytest.fixture
def memcached_pool(_memcached_pool_processes: MemcachedPool) -> MemcachedPool:
    """Three running, empty memcached servers: ``.servers`` ["127.0.0.1:PORT", ...], ``.members``."""
    _memcached_pool_processes.flush()
    return _memcached_pool_processes


# -- end of test servers --------------------------------------------------------------------------


# -- the docs tests' sandbox ----------------------------------------------------------------------
@pytest.fixture
def docs_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An empty working directory with a copy of configs/, no CACHEKIT_ variables, a fake Cache."""
    shutil.copytree(Path(__file__).resolve().parent.parent / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.upper().startswith("CACHEKIT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    Cache.fake()
    yield tmp_path
    Cache.reset()
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture
def fake(cachekit_cache: Any) -> Runtime:
    """The runtime of the plugin's ``cachekit_cache`` fixture (a fresh fake runtime bound to ``Cache``)."""
    return cachekit_cache.runtime  # type: ignore[no-any-return]
