"""Fault injection: 8 threads of mixed load on Redis and Memcached through a proxy that adds latency, cuts
connections, black-holes traffic and kills pub/sub connections (``tests/faultproxy.py``).

Each scenario runs a healthy phase, a fault phase and a recovery phase, a few seconds in all, with a
fail-open config (``on_error = "ignore"``) and a strict one (``on_error = "raise"``), and asserts:

- fail-open: no exception reaches the caller; strict: only the ``ProviderError`` family does;
- no wrong value: a value read for a key is always one that was written (or loaded) for that key;
- recovery: once the fault is lifted, a write then a read succeed again within ``RECOVERY_BOUND``.

Set ``CACHEKIT_FAULT_REPORT=path.jsonl`` to append each scenario's figures (operations, exceptions,
wrong values, worst latency, recovery time) to a file, one JSON object a line.

The scenario that fails because of issue 12 item 1 (the bus loses invalidations across a pub/sub
kill) is ``xfail(strict=True)``: it flips when fixed.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from faultproxy import FaultProxy

from cachekit.config import CacheConfig
from cachekit.errors import ProviderError

THREADS = 8
TIMEOUT = 0.2  # connect and socket timeouts of the providers under test: faults cost little wall time
RECOVERY_BOUND = 5.0  # seconds from lifting a fault until a write and a read succeed again
DEADLINE = TIMEOUT + 0.1  # one region call's store budget: the operation timeout plus deadline.MARGIN
#: the slowest single operation under a fault or after it: the deadline, plus one store call already in
#: flight when the budget runs out (one timeout), plus 0.5 s for a loaded 2-CPU machine (threads waiting
#: for the GIL and the proxy's loop). Before waits on the counter lock counted against the deadline, the
#: memcached latency and cut scenarios had operations of 1.6-7.6 s.
WORST_BOUND = DEADLINE + TIMEOUT + 0.5


# -- helpers (the proxied servers are fixtures of tests/runtime/conftest.py) ----------------------
def provider_config(kind: str, proxy: FaultProxy, on_error: str, retries: int = 0) -> dict[str, Any]:
    if kind == "redis":
        return {"type": "redis", "url": f"redis://{proxy.address}/0", "connect_timeout": TIMEOUT,
                "socket_timeout": TIMEOUT, "retries": retries, "on_error": on_error}
    return {"type": "memcached", "servers": [proxy.address], "connect_timeout": TIMEOUT, "timeout": TIMEOUT,
            "on_error": on_error}


def make_config(kind: str, proxy: FaultProxy, on_error: str, *, l1: bool = False, retries: int = 0) -> CacheConfig:
    region: dict[str, Any] = {"provider": "store", "ttl": 60}
    if l1:
        region["l1"] = {"provider": "memory", "ttl": 8}
    return CacheConfig(
        cache={"prefix": "faults"},
        providers={"store": provider_config(kind, proxy, on_error, retries)},
        regions={"default": region},
        bus={"enabled": l1, **({"provider": "store"} if l1 else {})},
    )


# -- the load ---------------------------------------------------------------------------------------
@dataclass
class Figures:
    """What one phase of load measured."""

    operations: int = 0
    leaked: int = 0  # exceptions the policy does not allow
    provider_errors: int = 0  # ProviderError-family exceptions (strict only)
    wrong_values: int = 0
    worst_latency: float = 0.0
    examples: list[str] = field(default_factory=list)

    def add(self, other: Figures) -> None:
        self.operations += other.operations
        self.leaked += other.leaked
        self.provider_errors += other.provider_errors
        self.wrong_values += other.wrong_values
        self.worst_latency = max(self.worst_latency, other.worst_latency)
        self.examples += other.examples[: 5 - len(self.examples)]


class MixedLoad:
    """``THREADS`` threads of get / put / remember / increment / forget / tagged put and tag flush.

    Each thread owns its keys, and a value names the key and the step that wrote it (``t3:k1#96``), so a
    read is checked against the thread's own schedule: a value that this thread never wrote (or loaded)
    for that key, by now, is a wrong value. Nothing is kept per write: a soak's memory is cachekit's.
    """

    def __init__(self, region: Any, strict: bool) -> None:
        self.region = region
        self.strict = strict
        self.steps = [0] * THREADS  # each thread's last step, carried over from one run to the next

    def run(self, seconds: float, during: Callable[[], None] | None = None) -> Figures:
        stop = threading.Event()
        results = [Figures() for _ in range(THREADS)]
        threads = [threading.Thread(target=self._worker, args=(tid, stop, results[tid]), daemon=True)
                   for tid in range(THREADS)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if during is not None:
                during()
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        stop.set()
        for t in threads:
            t.join(30)
            assert not t.is_alive(), "a load thread is stuck"
        total = Figures()
        for figures in results:
            total.add(figures)
        return total

    def _worker(self, tid: int, stop: threading.Event, out: Figures) -> None:
        region = self.region
        seq = self.steps[tid]
        while not stop.is_set():
            seq += 1
            self.steps[tid] = seq
            slot = seq % 7
            key = f"t{tid}:k{seq % 5}"
            started = time.perf_counter()
            try:
                if slot in (0, 1):
                    region.put(key, f"{key}#{seq}", 60)
                elif slot in (2, 3):
                    self._check(out, key, region.get(key), seq)
                elif slot == 4:
                    rkey = f"t{tid}:r{seq % 3}"
                    loaded = f"{rkey}#loaded"
                    self._check_exact(out, rkey, region.remember(rkey, 60, lambda v=loaded: v), loaded)
                elif slot == 5:
                    counted = region.increment(f"t{tid}:n")
                    if not (counted is None or type(counted) is int):
                        out.wrong_values += 1
                        out.examples.append(f"increment gave {counted!r}")
                else:
                    tagged = region.tags([f"tag{tid}"])
                    if seq % 3:
                        tagged.put(key, f"{key}#{seq}", 60)
                    else:
                        tagged.flush()
                        # two calls: each is one operation (each has its own deadline)
                        out.worst_latency = max(out.worst_latency, time.perf_counter() - started)
                        started = time.perf_counter()
                        region.forget(f"t{tid}:k{(seq + 1) % 5}")
            except ProviderError as exc:
                if self.strict:
                    out.provider_errors += 1
                else:
                    self._leak(out, exc)
            except Exception as exc:
                self._leak(out, exc)
            out.operations += 1
            out.worst_latency = max(out.worst_latency, time.perf_counter() - started)

    @staticmethod
    def _written(key: str, value: Any, now: int) -> bool:
        """Whether this thread's schedule put ``value`` under ``key`` before step ``now``."""
        if not isinstance(value, str) or not value.startswith(f"{key}#"):
            return False
        step = value[len(key) + 1:]
        if not step.isdigit():
            return False
        s = int(step)
        slot = s % 7
        return s < now and f"k{s % 5}" == key.rsplit(":", 1)[1] and (slot in (0, 1) or (slot == 6 and s % 3 != 0))

    def _check(self, out: Figures, key: str, value: Any, now: int) -> None:
        if value is not None and not self._written(key, value, now):
            out.wrong_values += 1
            out.examples.append(f"{key}: read {value!r}, never written")

    def _check_exact(self, out: Figures, key: str, value: Any, expected: str) -> None:
        if value != expected:
            out.wrong_values += 1
            out.examples.append(f"{key}: remember gave {value!r}, loader gives {expected!r}")

    @staticmethod
    def _leak(out: Figures, exc: BaseException) -> None:
        out.leaked += 1
        if len(out.examples) < 5:
            out.examples.append(f"{type(exc).__name__}: {exc}")


def recovery_time(region: Any, bound: float = RECOVERY_BOUND) -> float:
    """Seconds until a fresh write and its read succeed (``inf`` past ``bound``)."""
    started = time.monotonic()
    n = 0
    while time.monotonic() - started < bound:
        n += 1
        try:
            if region.put(f"probe:{n}", n, 60) and region.get(f"probe:{n}") == n:
                return time.monotonic() - started
        except ProviderError:
            pass
        time.sleep(0.02)
    return float("inf")


def report(name: str, **figures: Any) -> None:
    path = os.environ.get("CACHEKIT_FAULT_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"scenario": name, **figures}) + "\n")


# -- the faults -------------------------------------------------------------------------------------
def fault(name: str, proxy: FaultProxy) -> tuple[Callable[[], None], Callable[[], None] | None]:
    """``(start, during)`` of a fault: ``start`` applies it, ``during`` runs every 50 ms while it lasts."""
    if name == "latency":
        return (lambda: proxy.set_latency(0.05)), None
    if name == "blackhole":
        return (lambda: (proxy.blackhole(), proxy.cut())), None
    if name == "cut":
        last = [0.0]

        def cut_every_300ms() -> None:
            if time.monotonic() - last[0] >= 0.3:
                last[0] = time.monotonic()
                proxy.cut()

        return proxy.cut, cut_every_300ms
    raise AssertionError(name)


@pytest.mark.parametrize("on_error", ["ignore", "raise"])
@pytest.mark.parametrize("fault_name", ["latency", "cut", "blackhole"])
@pytest.mark.parametrize("kind", ["redis", "memcached"])
def test_mixed_load_under_a_fault_leaks_nothing_reads_no_wrong_value_and_recovers(
    kind: str, fault_name: str, on_error: str, request: pytest.FixtureRequest
) -> None:
    proxy: FaultProxy = request.getfixturevalue(f"{kind}_proxy")
    strict = on_error == "raise"
    with make_config(kind, proxy, on_error).compile() as runtime:
        region = runtime.region()
        load = MixedLoad(region, strict)

        healthy = load.run(0.5)
        assert healthy.operations > 0
        # (a strict call may still time out on a loaded machine: 0.2 s is short; only leaks count here)
        assert (healthy.leaked, healthy.wrong_values) == (0, 0), healthy.examples

        start, during = fault(fault_name, proxy)
        start()
        faulty = load.run(1.2, during)
        proxy.restore()
        recovered = recovery_time(region)
        after = load.run(0.3)

    figures = Figures()
    for phase in (healthy, faulty, after):
        figures.add(phase)
    report(f"{kind}/{fault_name}/{on_error}", operations=figures.operations, fault_operations=faulty.operations,
           leaked=figures.leaked, provider_errors=figures.provider_errors, wrong_values=figures.wrong_values,
           worst_latency=round(figures.worst_latency, 3), worst_healthy=round(healthy.worst_latency, 3),
           worst_under_fault=round(faulty.worst_latency, 3), recovery=round(recovered, 3))
    assert figures.leaked == 0, figures.examples
    assert figures.wrong_values == 0, figures.examples
    assert faulty.operations >= THREADS  # every thread got through at least one call under the fault
    assert recovered < RECOVERY_BOUND
    assert after.operations > 0 and after.leaked == 0
    # one deadline per call: under the fault and after it, no operation waits for more than one deadline
    assert faulty.worst_latency <= WORST_BOUND, f"worst operation under {fault_name}: {faulty.worst_latency:.2f}s"
    assert after.worst_latency <= WORST_BOUND, f"worst operation after {fault_name}: {after.worst_latency:.2f}s"
    if fault_name == "blackhole":
        # every call under a black-hole ends: by its timeouts, never by hanging
        assert faulty.worst_latency < 10 * TIMEOUT + 1.0
        if strict:
            assert faulty.provider_errors > 0  # strict: the failures reached the caller, as ProviderError


def test_the_load_counts_foreign_values_and_leaks() -> None:
    # the checks of the scenarios can fail: a store that answers another key's value, or a step's
    # value before that step, is caught; an exception outside the ProviderError family is a leak
    from cachekit import Cache

    class Lying:
        def __init__(self, region: Any) -> None:
            self.region = region
            self.gets = 0

        def get(self, key: str) -> Any:
            self.gets += 1
            return "t0:k1#6" if self.gets % 2 else f"{key}#999999999"

        def remember(self, key: str, ttl: int, loader: Callable[[], Any]) -> Any:
            raise KeyError(key)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.region, name)

    runtime = Cache.fake()
    try:
        figures = MixedLoad(Lying(runtime.region()), strict=True).run(0.2)
    finally:
        Cache.reset()
    assert figures.operations > 0
    assert figures.wrong_values > 0 and figures.leaked > 0


def test_proxy_controls_do_what_they_say(redis_proxy: FaultProxy) -> None:
    import redis

    client = redis.Redis(host=redis_proxy.host, port=redis_proxy.port, socket_timeout=1.0)
    assert client.ping() is True
    redis_proxy.set_latency(0.2)
    started = time.monotonic()
    assert client.ping() is True
    assert time.monotonic() - started >= 0.35  # 0.2 s each way
    redis_proxy.restore()
    assert redis_proxy.cut() >= 1
    assert client.ping() is True  # redis-py reconnects; the proxy accepts it
    redis_proxy.blackhole()
    with pytest.raises(redis.exceptions.TimeoutError):
        client.ping()
    redis_proxy.restore()
    redis_proxy.cut()
    assert client.ping() is True
    pubsub = client.pubsub()
    pubsub.subscribe("ch")
    assert pubsub.get_message(timeout=1)["type"] == "subscribe"
    assert redis_proxy.kill_pubsub() == 1  # only the subscriber's connection
    assert client.ping() is True
    pubsub.close()
    client.close()


# -- what issue 12 items 1 and 2 will fix ---------------------------------------------------------------
def test_no_process_serves_an_overwritten_l1_value_after_its_pubsub_connection_is_killed(
    redis_proxy: FaultProxy,
) -> None:
    # retries > 0 (the default is 2): redis-py then reconnects and re-subscribes by itself, unseen by the bus
    with make_config("redis", redis_proxy, "ignore", l1=True, retries=2).compile() as a, \
            make_config("redis", redis_proxy, "ignore", l1=True, retries=2).compile() as b:
        for runtime in (a, b):
            runtime.region().get("warm-up")
            assert runtime.bus is not None and runtime.bus.wait_ready(5)
        a.region().put("user:1", "old", 60)
        deadline = time.monotonic() + 5
        while b.bus.received < 1 and time.monotonic() < deadline:  # a's message for "old" reached b...
            time.sleep(0.01)
        assert b.bus.received == 1
        assert b.region().get("user:1") == "old"  # ...before b read it: now it is in b's L1
        assert redis_proxy.kill_pubsub(hold=1.0) >= 1  # the subscribers reconnect a second later
        time.sleep(0.1)
        assert a.region().put("user:1", "new", 60)  # published in the gap
        deadline = time.monotonic() + 3.0  # well under l1.ttl (8 s)
        seen = b.region().get("user:1")
        while seen != "new" and time.monotonic() < deadline:
            time.sleep(0.05)
            seen = b.region().get("user:1")
        assert seen == "new", "b still serves the overwritten value from its L1"
        assert b.bus.gaps == 1  # counted (and logged) once


def test_one_remember_against_a_blackholed_store_takes_one_deadline(redis_proxy: FaultProxy) -> None:
    with make_config("redis", redis_proxy, "ignore", l1=True).compile() as runtime:
        region = runtime.region()
        region.get("warm-up")
        redis_proxy.blackhole()
        redis_proxy.cut()
        started = time.monotonic()
        assert region.remember("user:1", 60, lambda: "loaded") == "loaded"
        took = time.monotonic() - started
    # one operation's budget (connect or socket timeout, no retries here) plus a margin
    assert took < 2 * TIMEOUT + 0.15, f"one remember took {took:.2f}s"
