"""Private redis-server / memcached processes for the benchmarks, on free loopback ports.

The start/stop logic is the test suite's (``tests/servers.py``), loaded by path so there is one copy
of it. The machine's own Redis on 6379 is never used: every port comes from the kernel.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["memcached_server", "missing_binaries", "redis_server"]

_TESTS_SERVERS = Path(__file__).resolve().parent.parent / "tests" / "servers.py"
_MODULE_NAME = "cachekit_bench_test_servers"


def _servers() -> ModuleType:
    module = sys.modules.get(_MODULE_NAME)
    if module is None:
        spec = importlib.util.spec_from_file_location(_MODULE_NAME, _TESTS_SERVERS)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {_TESTS_SERVERS}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[_MODULE_NAME] = module  # dataclass-like annotations resolve through sys.modules
        spec.loader.exec_module(module)
    return module


def missing_binaries(*names: str) -> list[str]:
    """The server binaries among ``names`` that are not on ``PATH``."""
    return list(_servers().missing_binaries(*names))


@contextmanager
def redis_server() -> Iterator[Any]:
    """A running ``redis-server`` (``.host``, ``.port``, ``.url``), stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="cachekit-bench-redis-") as tmp:
        server = _servers().RedisServer(Path(tmp))
        server.start()
        try:
            yield server
        finally:
            server.stop()


@contextmanager
def memcached_server(threads: int = 1) -> Iterator[Any]:
    """A running ``memcached`` (``.host``, ``.port``, ``.address``) with ``threads`` worker threads, stopped
    on exit.

    One worker thread by default: memcached hands each new connection to its worker threads in turn,
    and on a small machine a round trip costs a different time on each thread (on the 2-vCPU machine
    of docs/benchmarks.md, about 18 us on one and 55 us on another), so two clients on two connections
    would be compared on two different servers. With one thread every connection is served alike."""
    with tempfile.TemporaryDirectory(prefix="cachekit-bench-memcached-") as tmp:
        server = _servers().MemcachedServer(Path(tmp), threads=threads)
        server.start()
        try:
            yield server
        finally:
            server.stop()
