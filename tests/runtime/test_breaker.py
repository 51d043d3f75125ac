"""The circuit breaker per provider (issue 15 item 4): after N consecutive failures the provider is
open for a cool-off (no store call, no timeout paid), then half-open with one probe; its state in the
stats, the health route and the log; configured in TOML. Real Redis and Memcached behind a fault
proxy, on the runtime's fake clock."""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from typing import Any

import pytest
from faultproxy import FaultProxy
from servers import need_module

from cachekit import ProviderError
from cachekit.clock import FakeClock
from cachekit.config import parse_config
from cachekit.errors import ConfigError
from cachekit.runtime.breaker import CircuitOpenError

TIMEOUT = 0.2


def store_toml(kind: str, proxy: FaultProxy, extra: str = "") -> str:
    if kind == "redis":
        conn = (f'url = "redis://{proxy.address}/0"\nconnect_timeout = {TIMEOUT}\n'
                f'socket_timeout = {TIMEOUT}\nretries = 0')
    else:
        conn = f'servers = ["{proxy.address}"]\nconnect_timeout = {TIMEOUT}\ntimeout = {TIMEOUT}'
    return f"""
[providers.store]
type = "{kind}"
{conn}
breaker = {{ failures = 3, cool_off = "30s" }}
{extra}

[regions.a]
provider = "store"

[regions.b]
provider = "store"
"""


@pytest.fixture(params=["redis", "memcached"])
def proxy_of(request: pytest.FixtureRequest) -> tuple[str, FaultProxy]:
    return request.param, request.getfixturevalue(f"{request.param}_proxy")


def messages(caplog: pytest.LogCaptureFixture, word: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "cachekit" and word in r.getMessage()]


def test_breaker_opens_skips_without_touching_the_store_probes_and_closes(
        proxy_of: tuple[str, FaultProxy], caplog: pytest.LogCaptureFixture) -> None:
    kind, proxy = proxy_of
    clock = FakeClock()
    caplog.set_level(logging.INFO, logger="cachekit")
    with parse_config(store_toml(kind, proxy), environ={}).compile(clock=clock) as rt:
        a, b = rt.region("a"), rt.region("b")
        assert a.put("k", "v") and a.get("k") == "v"
        assert rt.breakers() == {"store": {"state": "closed", "failures": 0, "opened": None, "skipped": 0,
                                           "opens": 0}}

        proxy.blackhole()                                       # every call now costs a timeout
        for _ in range(3):
            assert a.get("k", "miss") == "miss"
        state = rt.breakers()["store"]
        assert state["state"] == "open" and state["opened"] == clock() and state["opens"] == 1
        assert rt.stats.breakers() == rt.breakers()             # visible through the stats too

        errors = rt.stats.totals()["errors"]
        accepted = proxy.accepted
        started = time.perf_counter()
        for i in range(20):                                     # both regions share the provider's circuit
            assert a.get("k", "miss") == "miss"
            assert b.put(f"x{i}", i) is False
        assert time.perf_counter() - started < 0.1              # no timeout paid (one costs 0.2 s)
        assert proxy.accepted == accepted                       # no connection attempted
        assert rt.breakers()["store"]["skipped"] == 40
        assert rt.stats.totals()["errors"] == errors + 40       # skipped calls count as errors

        clock.advance(31)                                       # cool-off over, store still down
        assert a.get("k", "miss") == "miss"                     # the probe fails...
        assert rt.breakers()["store"]["state"] == "open"        # ...open again for another cool-off
        started = time.perf_counter()
        assert a.get("k", "miss") == "miss"
        assert time.perf_counter() - started < 0.05

        proxy.restore()
        clock.advance(29)
        assert a.get("k", "miss") == "miss"                     # still cooling off: skipped
        clock.advance(2)
        assert a.get("k") == "v"                                # the probe succeeds: closed
        assert rt.breakers()["store"]["state"] == "closed"
        assert b.put("y", 1) and b.get("y") == 1
    assert len(messages(caplog, "circuit open")) == 1           # logged once per change
    assert [r.levelno for r in caplog.records if "circuit open" in r.getMessage()] == [logging.WARNING]
    closed = [r for r in caplog.records if "circuit closed" in r.getMessage()]
    assert len(closed) == 1 and closed[0].levelno == logging.INFO


def test_half_open_lets_one_probe_through(redis_proxy: FaultProxy) -> None:
    from cachekit.runtime.breaker import Breaker

    clock = FakeClock(1000.0)
    breaker = Breaker("p", failures=2, cool_off=10, now=clock)
    breaker.failure()
    assert not breaker.tripped
    breaker.failure()
    assert breaker.tripped and breaker.state == "open"
    assert breaker.allow() is False
    clock.advance(10)
    assert breaker.allow() is True and breaker.state == "half-open"   # the probe
    assert breaker.allow() is False                                   # the others wait for it
    breaker.success()
    assert breaker.state == "closed" and not breaker.tripped and breaker.allow()


def test_a_success_resets_the_consecutive_failures(redis_proxy: FaultProxy) -> None:
    with parse_config(store_toml("redis", redis_proxy), environ={}).compile(clock=FakeClock()) as rt:
        region = rt.region("a")
        for _ in range(3):
            redis_proxy.blackhole()
            assert region.get("k", "miss") == "miss"
            assert region.get("k", "miss") == "miss"
            redis_proxy.restore()
            assert region.put("k", 1)                            # 2 failures, then a success
        assert rt.breakers()["store"]["state"] == "closed"


def test_on_error_raise_gets_circuit_open_error_at_once(redis_server: Any) -> None:
    need_module("redis")
    clock = FakeClock()
    with FaultProxy(redis_server.host, redis_server.port) as proxy:
        toml = store_toml("redis", proxy, 'on_error = "raise"')
        with parse_config(toml, environ={}).compile(clock=clock) as rt:
            region = rt.region("a")
            redis_server.stop()
            try:
                for _ in range(3):
                    with pytest.raises(ProviderError) as failed:
                        region.get("k")
                    assert not isinstance(failed.value, CircuitOpenError)
                started = time.perf_counter()
                with pytest.raises(CircuitOpenError, match="circuit open"):
                    region.get("k")
                with pytest.raises(CircuitOpenError):
                    region.put("k", 1)
                assert time.perf_counter() - started < 0.05
            finally:
                redis_server.start()
            clock.advance(30)
            assert region.put("k", 1) is True                    # the probe reaches the restarted server
            assert rt.breakers()["store"]["state"] == "closed"


def test_async_calls_go_through_the_breaker(redis_proxy: FaultProxy) -> None:
    clock = FakeClock()

    async def scenario() -> None:
        async with parse_config(store_toml("redis", redis_proxy), environ={}).compile(clock=clock) as rt:
            region = rt.region("a")
            redis_proxy.blackhole()
            for _ in range(3):
                assert await region.aget("k", "miss") == "miss"
            assert rt.breakers()["store"]["state"] == "open"
            started = time.perf_counter()
            assert await region.aput("k", 1) is False
            assert time.perf_counter() - started < 0.05
            redis_proxy.restore()
            clock.advance(30)
            assert await region.aput("k", 1) is True
            assert rt.breakers()["store"]["state"] == "closed"

    asyncio.run(scenario())


def test_breaker_is_off_unless_configured(redis_proxy: FaultProxy) -> None:
    toml = store_toml("redis", redis_proxy).replace('breaker = { failures = 3, cool_off = "30s" }', "")
    with parse_config(toml, environ={}).compile() as rt:
        region = rt.region("a")
        redis_proxy.blackhole()
        for _ in range(4):
            assert region.get("k", "miss") == "miss"
        assert rt.breakers() == {}
        redis_proxy.restore()
        assert region.put("k", 1)                                # every call tries the store


def test_breaker_config_takes_durations_and_the_environment() -> None:
    toml = '[providers.r]\ntype = "redis"\nbreaker = { failures = 2, cool_off = "1m30s" }\n'
    cfg = parse_config(toml, environ={}).providers["r"]
    assert cfg.breaker.failures == 2 and cfg.breaker.cool_off == 90
    env = {"CACHEKIT_PROVIDERS__R__BREAKER__COOL_OFF": "5s"}
    assert parse_config(toml, environ=env).providers["r"].breaker.cool_off == 5
    with pytest.raises(ConfigError, match="failures"):
        parse_config('[providers.r]\ntype = "redis"\nbreaker = { failures = 0 }\n', environ={})


def test_health_route_reports_an_open_circuit_without_probing(redis_proxy: FaultProxy) -> None:
    need_module("fastapi")
    need_module("httpx")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient

    from cachekit.http import create_app

    clock = FakeClock()
    with parse_config(store_toml("redis", redis_proxy), environ={}).compile(clock=clock) as rt:
        region = rt.region("a")
        redis_proxy.blackhole()
        for _ in range(3):
            region.get("k")
        with TestClient(create_app(rt, token="data-token")) as client:
            started = time.perf_counter()
            answer = client.get("/api/cache/health").json()
            assert time.perf_counter() - started < 0.15             # the open provider is not pinged
        assert answer == {"status": "degraded", "providers": {"store": "open", "memory": "ok"}}


def test_half_open_lets_exactly_one_probe_through_among_threads() -> None:
    import threading

    from cachekit.runtime.breaker import Breaker

    clock = FakeClock(1000.0)
    breaker = Breaker("p", failures=1, cool_off=10, now=clock)
    breaker.failure()
    clock.advance(10)
    allowed: list[bool] = []
    start = threading.Barrier(16)

    def ask() -> None:
        start.wait()
        allowed.append(breaker.allow())

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert allowed.count(True) == 1 and breaker.skipped == 15
