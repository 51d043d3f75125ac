"""The bus's guarantee (docs/multi-level.md, "How stale an L1 can be"): once a write has returned in one
process, no other process serves the old value from its L1 for longer than the bus latency plus
``3 x [bus] heartbeat``; while the bus is not whole, L1 reads go to L2, and each gap is counted and
logged once.

Each way a gap is detected has a test: a Redis restart, a silent re-subscribe after ``CLIENT KILL TYPE
pubsub`` (``test_faults.py``), a jump in a publisher's sequence numbers, a heartbeat that does not come
back.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from faultproxy import FaultProxy
from servers import need_module

from cachekit import Runtime
from cachekit.config import CacheConfig


def compile_runtime(url: str, *, heartbeat: float = 1.0, socket_timeout: float = 1.0) -> Runtime:
    return CacheConfig(
        cache={"prefix": "guarantee"},
        providers={"store": {"type": "redis", "url": url, "connect_timeout": socket_timeout,
                             "socket_timeout": socket_timeout, "on_error": "ignore"}},
        regions={"default": {"provider": "store", "ttl": 60, "l1": {"provider": "memory", "ttl": 30}}},
        bus={"enabled": True, "provider": "store", "heartbeat": heartbeat},
    ).compile()


def ready(*runtimes: Runtime) -> None:
    for runtime in runtimes:
        runtime.region()
        assert runtime.bus is not None and runtime.bus.wait_ready(5)


def wait_for(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_no_process_serves_its_pre_outage_l1_value_after_a_redis_restart(redis_server: Any) -> None:
    need_module("redis")
    with compile_runtime(redis_server.url) as a, compile_runtime(redis_server.url) as b:
        ready(a, b)
        assert a.region().put("user:1", "old")
        assert wait_for(lambda: b.bus.received >= 1, 5)
        assert b.region().get("user:1") == "old"
        assert b.region().get("user:1") == "old" and b.region().stats.l1_hits == 1  # parked in b's L1
        redis_server.stop()
        redis_server.start()
        assert wait_for(lambda: a.region().put("user:1", "new"), 10)  # the first write that succeeds
        written = time.monotonic()
        seen = []
        while time.monotonic() < written + 0.5:
            seen.append(b.region().get("user:1"))
        assert set(seen) == {"new"}, f"b served {seen.count('old')} reads of the pre-outage value"
        assert b.bus.gaps == 1
        assert b.bus.wait_ready(10) and b.bus.whole  # whole again: L1 serves once more
        hits = b.region().stats.l1_hits
        assert b.region().get("user:1") == "new" and b.region().get("user:1") == "new"
        assert b.region().stats.l1_hits > hits


def test_a_jump_in_a_publishers_sequence_numbers_is_a_gap_logged_once(
        redis_server: Any, caplog: pytest.LogCaptureFixture) -> None:
    need_module("redis")
    caplog.set_level(logging.INFO, logger="cachekit.bus")
    client = redis_server.client()
    with compile_runtime(redis_server.url, heartbeat=0.2) as b:
        ready(b)
        region, channel = b.region(), b.bus.channel
        assert region.put("user:1", "old") and region.get("user:1") == "old"
        assert region.stats.l1_hits == 1

        def peer(seq: int) -> None:  # another process's message, numbered
            client.publish(channel, json.dumps({"o": "peer", "s": seq, "r": "other", "k": "forget", "keys": []}))

        for seq in (1, 2, 4, 3, 5):  # out of order within the window: nothing lost
            peer(seq)
        assert wait_for(lambda: b.bus.received == 5, 5)
        time.sleep(0.3)
        assert b.bus.gaps == 0 and b.bus.whole

        peer(7)  # 6 never arrives: a message of "peer" was lost
        assert wait_for(lambda: b.bus.gaps == 1, 3), "the missing message was not noticed"
        assert b.bus.wait_ready(5)  # its own next heartbeat came back: whole again
        hits = region.stats.l1_hits
        assert region.get("user:1") == "old" and region.stats.l1_hits == hits  # read from L2: L1 was emptied
        assert b.bus.gaps == 1
        gaps = [r for r in caplog.records if r.levelno == logging.WARNING and "gap" in r.getMessage()]
        assert len(gaps) == 1 and "missing" in gaps[0].getMessage()
        assert any(r.levelno == logging.INFO and "whole again" in r.getMessage() for r in caplog.records)


def test_a_subscription_that_hears_nothing_is_a_gap_after_three_heartbeats(
        redis_server: Any, redis_proxy: FaultProxy, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cachekit.bus")
    with compile_runtime(redis_server.url, heartbeat=0.2) as a, \
            compile_runtime(f"redis://{redis_proxy.address}/0", heartbeat=0.2) as b:
        ready(a, b)
        assert a.region().put("user:1", "old")
        assert wait_for(lambda: b.bus.received >= 1, 5)
        assert b.region().get("user:1") == "old" and b.region().get("user:1") == "old"
        assert b.region().stats.l1_hits == 1
        redis_proxy.mute_pubsub()  # b's subscriber connection stays open and hears nothing
        muted = time.monotonic()
        assert a.region().put("user:1", "new")  # lost for b
        assert wait_for(lambda: not b.bus.whole, 3)
        noticed = time.monotonic() - muted
        assert 0.5 < noticed < 2.5, f"noticed after {noticed:.2f}s (heartbeat 0.2 s: three intervals)"
        assert b.region().get("user:1") == "new"  # L1 bypassed while the bus is not whole
        assert b.bus.gaps == 1 and not b.bus.down
        redis_proxy.restore()
        assert b.bus.wait_ready(5)
        assert b.region().get("user:1") == "new"
        gaps = [r for r in caplog.records if r.levelno == logging.WARNING and "gap" in r.getMessage()]
        assert len(gaps) == 1 and "heartbeat" in gaps[0].getMessage()
