"""Soak: memory, threads and open connections stay flat across repeated connection cuts and black-holes.

8 threads of mixed load on a Redis region (with an L1 and the bus, so the subscriber reconnects too) and
a Memcached region, both through fault proxies, cycle after cycle: healthy, connections cut (and the
pub/sub connection killed), black-holed, restored. After a warm-up, the process's resident memory, thread
count, open file descriptors and sockets, and the connections the proxies hold, are sampled after each
cycle; the last samples may not exceed the first by more than a tolerance.

``SOAK_SECONDS`` sets the length (default 10: the CI run); ``make soak`` runs 120 seconds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import pytest
from faultproxy import FaultProxy
from servers import need_module
from test_faults import MixedLoad, provider_config, report

from cachekit.config import CacheConfig

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "10"))
WARM_UP_CYCLES = 2
# growth allowed from the first sample after warm-up to the worst of the last three
RSS_TOLERANCE = 24 * 1024 * 1024
THREADS_TOLERANCE = 2
FDS_TOLERANCE = 12
SOCKETS_TOLERANCE = 12


@dataclass
class Sample:
    rss: int
    threads: int
    fds: int
    sockets: int
    proxied: int  # client connections the proxies hold


def sample(*proxies: FaultProxy) -> Sample:
    with open("/proc/self/statm") as f:
        rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    with open("/proc/self/status") as f:
        threads = next(int(line.split()[1]) for line in f if line.startswith("Threads:"))
    fds = sockets = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        fds += 1
        sockets += target.startswith("socket:")
    return Sample(rss, threads, fds, sockets, sum(p.open_connections for p in proxies))


@pytest.fixture
def proxies(redis_server: Any, memcached_server: Any) -> Iterator[tuple[FaultProxy, FaultProxy]]:
    need_module("redis")
    need_module("pymemcache")
    with FaultProxy(redis_server.host, redis_server.port) as r, \
            FaultProxy(memcached_server.host, memcached_server.port) as m:
        yield r, m


@pytest.mark.timeout(SOAK_SECONDS * 3 + 120)
def test_memory_threads_and_connections_stay_flat_across_reconnects(
    proxies: tuple[FaultProxy, FaultProxy], capsys: pytest.CaptureFixture[str]
) -> None:
    redis_proxy, mc_proxy = proxies
    config = CacheConfig(
        cache={"prefix": "soak"},
        providers={"redis": provider_config("redis", redis_proxy, "ignore"),
                   "mc": provider_config("memcached", mc_proxy, "ignore")},
        regions={"default": {"provider": "redis", "ttl": 60, "l1": {"provider": "memory", "ttl": 8}},
                 "mc": {"provider": "mc", "ttl": 60}},
        bus={"enabled": True, "provider": "redis"},
    )
    samples: list[Sample] = []
    cycles = operations = leaked = wrong = 0
    started = time.monotonic()
    with config.compile() as runtime:
        loads = [MixedLoad(runtime.region(), strict=False), MixedLoad(runtime.region("mc"), strict=False)]
        while cycles < WARM_UP_CYCLES + 3 or time.monotonic() - started < SOAK_SECONDS:
            load = loads[cycles % 2]
            figures = [load.run(0.4)]
            redis_proxy.kill_pubsub()
            redis_proxy.cut()
            mc_proxy.cut()
            figures.append(load.run(0.3))
            redis_proxy.blackhole()
            mc_proxy.blackhole()
            redis_proxy.cut()
            mc_proxy.cut()
            figures.append(load.run(0.3))
            redis_proxy.restore()
            mc_proxy.restore()
            figures.append(load.run(0.3))
            for f in figures:
                operations += f.operations
                leaked += f.leaked
                wrong += f.wrong_values
            cycles += 1
            if cycles > WARM_UP_CYCLES:
                samples.append(sample(redis_proxy, mc_proxy))
    first, last = samples[0], samples[-3:]
    growth = {
        "rss": max(s.rss for s in last) - first.rss,
        "threads": max(s.threads for s in last) - first.threads,
        "fds": max(s.fds for s in last) - first.fds,
        "sockets": max(s.sockets for s in last) - first.sockets,
        "proxied": max(s.proxied for s in last) - first.proxied,
    }
    report("soak", seconds=round(time.monotonic() - started, 1), cycles=cycles, operations=operations,
           leaked=leaked, wrong_values=wrong, first=asdict(first), last=asdict(samples[-1]), growth=growth)
    with capsys.disabled():
        print(f"\nsoak: {cycles} cycles, {operations} operations, growth {growth}")
    assert leaked == 0 and wrong == 0
    assert growth["rss"] <= RSS_TOLERANCE, samples
    assert growth["threads"] <= THREADS_TOLERANCE, samples
    assert growth["fds"] <= FDS_TOLERANCE, samples
    assert growth["sockets"] <= SOCKETS_TOLERANCE, samples
    assert growth["proxied"] <= SOCKETS_TOLERANCE, samples
