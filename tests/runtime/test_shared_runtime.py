"""The runtime on real shared servers: faults, signing, multi-level with the bus, cross-process locks."""

from __future__ import annotations

import json
import logging
import pickle
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from cachekit import CacheConfig, ProviderError, Runtime
from cachekit.testing import HookedDriver


def redis_runtime(url: str, **region: Any) -> Runtime:
    return CacheConfig(
        cache={"prefix": "app"},
        providers={"redis": {"type": "redis", "url": url, "socket_timeout": 0.5, "connect_timeout": 0.5,
                             "retries": 0}},
        regions={"default": {"provider": "redis", "ttl": 60, **region}},
    ).compile()


# -- faults ---------------------------------------------------------------------------------
def test_killing_redis_mid_workload_never_raises_and_recovers(redis_server: Any,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    rt = redis_runtime(redis_server.url)
    r = rt.region()
    loads: list[int] = []
    try:
        for i in range(20):
            r.put(f"k{i}", i)
        redis_server.stop()
        with caplog.at_level(logging.WARNING, logger="cachekit"):
            for i in range(20):
                assert r.get(f"k{i}", "default") == "default"
                assert r.put(f"k{i}", i) is False
                assert r.remember(f"r{i}", 60, lambda i=i: loads.append(i) or i) == i
                assert r.has(f"k{i}") is False
                assert r.increment("n") is None
        assert loads == list(range(20))
        assert rt.stats.rows()[0]["errors"] >= 80
        warnings = [rec for rec in caplog.records if "failed" in rec.getMessage()]
        assert len(warnings) == 1  # logged once per outage, not per call
        redis_server.start()
        assert r.put("back", "yes")  # the same runtime works again, no restart
        assert r.get("back") == "yes"
    finally:
        rt.close()


def test_a_tag_flush_during_an_outage_is_replayed_when_the_server_answers_again(redis_server: Any) -> None:
    rt, other = redis_runtime(redis_server.url), redis_runtime(redis_server.url)  # other: another process
    probe = redis_server.client()
    try:
        r = rt.region()
        r.tags(["t"]).put("k", "v")
        r.put("plain", 1)
        assert other.region().tags(["t"]).get("k") == "v"
        probe.execute_command("CLIENT", "PAUSE", 1500, "ALL")  # the server stops answering; data stays
        started = time.monotonic()
        assert r.tags(["t"]).flush() is False  # could not be applied: said so, counted, kept
        assert r.stats.errors >= 1 and r.l2.down
        time.sleep(max(0.0, 1.7 - (time.monotonic() - started)))
        assert r.get("k") is None  # never served again once the server is back...
        assert other.region().tags(["t"]).get("k") is None  # ...because the flush was replayed in Redis
        assert other.region().get("plain") == 1 and r.get("plain") == 1
        assert not r.l2.down
    finally:
        probe.close()
        rt.close()
        other.close()


def test_a_tag_flush_missed_in_an_outage_survives_a_live_edit_of_its_provider(redis_server: Any) -> None:
    rt, other = redis_runtime(redis_server.url), redis_runtime(redis_server.url)
    probe = redis_server.client()
    try:
        r = rt.region()
        r.tags(["t"]).put("k", "v")
        probe.execute_command("CLIENT", "PAUSE", 1500, "ALL")
        started = time.monotonic()
        assert r.tags(["t"]).flush() is False  # owed to the store
        rt.config.providers["redis"].socket_timeout = 0.6  # type: ignore[union-attr]
        rt.apply()  # a new driver and a new tier for the same server...
        time.sleep(max(0.0, 1.7 - (time.monotonic() - started)))
        assert r.get("k") is None
        assert other.region().tags(["t"]).get("k") is None  # ...which still gets the flush it missed
    finally:
        probe.close()
        rt.close()
        other.close()


def test_a_stamped_counter_waits_for_the_counter_lock_another_process_holds(
        redis_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from cachekit.runtime import locks

    monkeypatch.setattr(locks, "COUNTER_LOCK_SECONDS", 0.3)  # the 5 s wait, shortened for the test
    rt, other = redis_runtime(redis_server.url), redis_runtime(redis_server.url)
    try:
        counter = rt.region().tags(["t"])  # a tagged counter is an envelope: read-modify-write
        assert counter.increment("c") == 1
        lock_key = other.region().l2.counter_lock_key("c")  # type: ignore[attr-defined]
        assert other.region().l2.driver.add(lock_key, 1, 10)  # the other process is incrementing
        started = time.monotonic()
        assert counter.increment("c") is None  # waited, then gave up: no lost update
        assert 0.3 <= time.monotonic() - started < 5
        assert rt.region().stats.errors == 1 and counter.get("c") == 1
        other.region().l2.driver.forget(lock_key)
        assert counter.increment("c") == 2
    finally:
        rt.close()
        other.close()


def test_on_error_raise_makes_a_provider_strict(redis_server: Any) -> None:
    rt = CacheConfig(providers={"redis": {"type": "redis", "url": redis_server.url, "on_error": "raise",
                                          "retries": 0, "socket_timeout": 0.5, "connect_timeout": 0.5}},
                     regions={"default": {"provider": "redis"}}).compile()
    try:
        redis_server.stop()
        with pytest.raises(ProviderError):
            rt.region().get("k")
    finally:
        redis_server.start()
        rt.close()


def test_unreachable_server_is_counted_not_raised() -> None:
    rt = redis_runtime("redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        assert rt.region().get("k", "fallback") == "fallback"
        assert rt.stats.rows()[0]["errors"] == 1
    finally:
        rt.close()


# -- signing --------------------------------------------------------------------------------
class Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (Path.touch, (Path(self.marker),))


def test_tampered_payload_in_redis_is_rejected_and_never_unpickled(redis_server: Any, tmp_path: Path) -> None:
    rt = CacheConfig(providers={"redis": {"type": "redis", "url": redis_server.url, "signing_key": "s3cret"}},
                     regions={"default": {"provider": "redis"}}).compile()
    try:
        r = rt.region()
        r.put("user:1", {"name": "ada"})
        assert r.get("user:1") == {"name": "ada"}
        client = redis_server.client()
        marker = tmp_path / "pwned"
        raw = client.get("cachekit:default:user:1")
        assert raw is not None
        # An attacker with write access to Redis swaps in a pickle that runs code when loaded,
        # unsigned and then with a forged signature-shaped tail.
        evil = pickle.dumps((Exploit(str(marker)), float("inf"), None))
        for payload in (evil, raw[:-5] + b"xxxxx", raw[:4] + evil):
            client.set("cachekit:default:user:1", payload)
            assert r.get("user:1", "miss") == "miss"
            assert not marker.exists()
        assert rt.stats.rows()[0]["errors"] == 3
    finally:
        rt.close()


# -- namespacing ----------------------------------------------------------------------------
def test_flush_never_touches_foreign_keys(redis_server: Any) -> None:
    client = redis_server.client()
    client.set("foreign", "keep")
    client.set("app:other-app-key", "keep")
    rt = redis_runtime(redis_server.url)
    try:
        rt.region().put("mine", 1)
        rt.region("second").put("mine", 2)
        rt.region().flush()
        assert rt.region().get("mine") is None
        assert rt.region("second").get("mine") == 2
        assert client.get("foreign") == b"keep"
        assert client.get("app:other-app-key") == b"keep"
    finally:
        rt.close()


# -- multi-level + bus ----------------------------------------------------------------------
def multi_level_config(url: str, path: Path, bus: str = "[bus]\nenabled = true") -> Path:
    path.write_text(textwrap.dedent(f"""
        [cache]
        prefix = "ml"

        [providers.redis]
        type = "redis"
        url = "{url}"

        [providers.local]
        type = "memory"

        [regions.default]
        provider = "redis"
        ttl = 600
        l1 = {{ provider = "local", ttl = 300 }}
    """) + bus + "\n")
    return path


def test_l1_serves_without_a_round_trip_and_fills_from_l2(redis_server: Any, tmp_path: Path) -> None:
    from cachekit import load

    rt = load(multi_level_config(redis_server.url, tmp_path / "c.toml"))
    try:
        r = rt.region()
        assert rt.bus.wait_ready()  # L1 is trusted once the bus is whole
        r.put("k", "v")
        redis_server.client().delete("ml:default:k")  # gone from L2, still in L1
        assert r.get("k") == "v"
        assert rt.stats.rows()[0]["l1_hits"] == 1
    finally:
        rt.close()


def test_bus_invalidates_l1_in_another_process(redis_server: Any, tmp_path: Path) -> None:
    from cachekit import load

    config = multi_level_config(redis_server.url, tmp_path / "c.toml")
    rt = load(config)
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from cachekit import load
            rt = load({str(config)!r})
            r = rt.region()
            r.get("user:1")          # fills L1 in this process
            rt.bus.wait_ready()
            print("ready", r.get("user:1"), flush=True)
            sys.stdin.readline()     # parent has written a new value
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if r.get("user:1") == "new":
                    print("saw new", flush=True)
                    break
                time.sleep(0.005)
            else:
                print("stale", r.get("user:1"), flush=True)
            rt.close()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        rt.region().put("user:1", "old")
        assert child.stdin is not None and child.stdout is not None
        # the child may start before the write: it re-reads after the parent's put either way
        line = child.stdout.readline().strip()
        assert line.startswith("ready")
        rt.bus.wait_ready()
        rt.region().put("user:1", "old2")
        rt.region().put("user:1", "new")
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "saw new"
    finally:
        child.wait(15)
        rt.close()


def test_a_read_racing_a_write_in_another_process_never_parks_the_old_value_in_l1(
        redis_server: Any, tmp_path: Path) -> None:
    from cachekit import load

    path = multi_level_config(redis_server.url, tmp_path / "c.toml")
    a, b = load(path), load(path)
    try:
        ra, rb = a.region(), b.region()
        ra.put("k", "old")
        assert a.bus.wait_ready() and b.bus.wait_ready()
        racing = False

        def a_writes_after_b_read(key: str, entry: Any) -> None:
            if not racing:  # B has read "old" from L2...
                return
            epoch = rb.l1_epoch
            ra.put("k", "new")  # ...then A writes and publishes before B fills its L1
            deadline = time.monotonic() + 5
            while rb.l1_epoch == epoch and time.monotonic() < deadline:
                time.sleep(0.002)  # until B's bus thread has handled A's message
            assert rb.l1_epoch != epoch, "the bus message never arrived"

        b.register_store("hooked", HookedDriver(rb.l2.driver, after_get=a_writes_after_b_read))
        assert b.update_region("default", provider="hooked") is rb and rb.l1 is not None
        racing = True
        assert rb.get("k") == "old"  # the read in flight answers what it read...
        racing = False
        assert rb.get("k") == "new"  # ...but did not park it in L1 for the L1 TTL
        assert rb.stats.l1_hits == 0
    finally:
        a.close()
        b.close()


def test_a_read_racing_a_local_write_never_parks_the_old_value_in_l1(redis_server: Any, tmp_path: Path) -> None:
    from cachekit import load

    rt = load(multi_level_config(redis_server.url, tmp_path / "c.toml"))
    try:
        r = rt.region()
        r.put("k", "old")
        racing = False

        def forget_during_read(key: str, entry: Any) -> None:
            if racing:
                r.forget("k")  # another thread deletes the key while this read is in flight

        rt.register_store("hooked", HookedDriver(r.l2.driver, after_get=forget_during_read))
        assert rt.update_region("default", provider="hooked") is r and r.l1 is not None
        r.l1.driver.flush()  # the next read goes to L2
        racing = True
        assert r.get("k") == "old"
        racing = False
        assert r.get("k") is None  # not served from L1
    finally:
        rt.close()


def test_an_event_reaches_the_listeners_of_another_runtime_over_the_bus(redis_server: Any, tmp_path: Path) -> None:
    from cachekit import load

    path = multi_level_config(redis_server.url, tmp_path / "c.toml")
    a, b = load(path), load(path)
    heard: list[tuple[str, str, Any]] = []
    try:
        a.region(), b.region()  # an L1 region starts the bus
        assert a.bus.wait_ready() and b.bus.wait_ready()
        b.subscribe(lambda kind, name, payload: heard.append((kind, name, payload)))
        a.emit("user_updated", user_id=42)
        deadline = time.monotonic() + 5
        while not heard and time.monotonic() < deadline:
            time.sleep(0.002)
        assert heard == [("event", "user_updated", {"user_id": 42})]
    finally:
        a.close()
        b.close()


def test_the_bus_is_on_by_default_for_an_l1_over_redis(redis_server: Any, tmp_path: Path) -> None:
    from cachekit import load

    path = multi_level_config(redis_server.url, tmp_path / "c.toml", bus="")  # no [bus] section
    a, b = load(path), load(path)
    try:
        ra, rb = a.region(), b.region()
        assert a.bus is not None and b.bus is not None
        assert a.bus.wait_ready() and b.bus.wait_ready()
        ra.put("user:1", "old")
        # A's own bus message may land during B's first read (which then does not fill L1): read until
        # B serves user:1 from its L1 (l1.ttl = 300 s)
        deadline = time.monotonic() + 5
        while rb.stats.l1_hits == 0 and time.monotonic() < deadline:
            assert rb.get("user:1") == "old"
        assert rb.stats.l1_hits >= 1
        ra.put("user:1", "new")
        deadline = time.monotonic() + 5
        while rb.get("user:1") != "new" and time.monotonic() < deadline:
            time.sleep(0.005)
        assert rb.get("user:1") == "new"  # A's write dropped B's L1 copy, long before l1.ttl
    finally:
        a.close()
        b.close()


def test_bus_enabled_false_turns_the_default_off(redis_server: Any, tmp_path: Path) -> None:
    from cachekit import load

    rt = load(multi_level_config(redis_server.url, tmp_path / "c.toml", bus="[bus]\nenabled = false"))
    try:
        rt.region().put("k", 1)
        assert rt.bus is None
    finally:
        rt.close()


def test_no_bus_without_a_redis_and_validate_warns_about_the_l1(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from cachekit import load
    from cachekit.cli import ValidateFormat, run_validate
    from cachekit.config import load_config
    from cachekit.config.checks import config_warnings

    path = tmp_path / "c.toml"
    path.write_text(textwrap.dedent(f"""
        [providers.disk]
        type = "file"
        path = "{tmp_path / 'files'}"

        [providers.local]
        type = "memory"

        [regions.default]
        provider = "disk"
        l1 = {{ provider = "local", ttl = 30 }}
    """))
    rt = load(path)
    try:
        rt.region().put("k", 1)
        assert rt.bus is None  # nothing to connect to
    finally:
        rt.close()
    (warning,) = config_warnings(load_config(path, environ={}))
    assert (warning.path, warning.line) == ("regions.default.l1", 11)
    assert "reach this L1 only after l1.ttl (30s)" in warning.message
    assert run_validate([path], ValidateFormat.text) == 0  # a warning, not an error
    out = capsys.readouterr().out
    assert f"{path}:11: warning: regions.default.l1: no redis provider" in out and f"{path}: ok" in out
    path.write_text(path.read_text() + "\n[bus]\nenabled = false\n")
    assert config_warnings(load_config(path, environ={})) == []


def test_bus_down_is_counted_and_l1_ttl_bounds_staleness(redis_server: Any, tmp_path: Path) -> None:
    from cachekit import load

    rt = load(multi_level_config(redis_server.url, tmp_path / "c.toml"))
    try:
        r = rt.region()
        r.put("k", 1)
        rt.bus.wait_ready()
        redis_server.stop()
        r.forget("k")  # publish fails: counted, never raised
        assert rt.bus.errors >= 1
        redis_server.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (rt.bus.wait_ready(0.1) and not rt.bus.down):
            time.sleep(0.05)
        assert not rt.bus.down  # reconnected by itself
    finally:
        rt.close()


# -- stampede control across processes ------------------------------------------------------
LOCK_WORKER = """
import json, sys, threading, time
import redis
from cachekit import CacheConfig
url, n = sys.argv[1], int(sys.argv[2])
rt = CacheConfig(providers={"redis": {"type": "redis", "url": url}},
                 regions={"default": {"provider": "redis", "lock": True, "lock_timeout": 10}}).compile()
counter = redis.Redis.from_url(url)
barrier = threading.Barrier(n)
results = []

def loader():
    counter.incr("loader-calls")
    time.sleep(0.5)
    return "value"

def work():
    barrier.wait()
    results.append(rt.region().remember("hot", 60, loader))

threads = [threading.Thread(target=work) for _ in range(n)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(results))
rt.close()
"""


def test_hundred_concurrent_remembers_over_four_processes_load_once(redis_server: Any) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", LOCK_WORKER, redis_server.url, "25"],
                              stdout=subprocess.PIPE, text=True) for _ in range(4)]
    outputs = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(len(o) for o in outputs) == 100
    assert all(v == "value" for o in outputs for v in o)
    assert int(redis_server.client().get("loader-calls")) == 1


def test_stale_while_revalidate_on_redis_does_not_block(redis_server: Any) -> None:
    from cachekit import FakeClock

    clock = FakeClock()
    rt = CacheConfig(providers={"redis": {"type": "redis", "url": redis_server.url}},
                     regions={"default": {"provider": "redis", "ttl": 10, "stale_ttl": 600}}).compile(clock=clock)
    try:
        r = rt.region()
        assert r.remember("k", None, lambda: "old") == "old"
        clock.advance(11)
        import threading

        gate = threading.Event()

        def slow() -> str:
            gate.wait(5)
            return "new"

        started = time.monotonic()
        assert [r.remember("k", None, slow) for _ in range(10)] == ["old"] * 10
        assert time.monotonic() - started < 4  # nobody waited for the 5 s loader
        gate.set()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and r.get("k") != "new":
            time.sleep(0.01)
        assert r.get("k") == "new"
    finally:
        rt.close()


def test_with_lock_one_runtime_refreshes_a_stale_value_the_others_keep_serving_it(redis_server: Any) -> None:
    import threading

    from cachekit import FakeClock

    clock = FakeClock()  # shared by the two runtimes ("processes") so the value goes stale in both at once
    config = CacheConfig(providers={"redis": {"type": "redis", "url": redis_server.url}},
                         regions={"default": {"provider": "redis", "ttl": 10, "stale_ttl": 600, "lock": True}})
    a, b = config.compile(clock=clock), config.compile(clock=clock)
    calls: list[str] = []
    gate = threading.Event()

    def slow() -> str:
        calls.append("load")
        gate.wait(5)
        return "new"

    try:
        assert a.region().remember("k", None, lambda: "old") == "old"
        clock.advance(11)
        assert a.region().remember("k", None, slow) == "old"  # a refreshes in the background...
        deadline = time.monotonic() + 5
        while not calls and time.monotonic() < deadline:
            time.sleep(0.005)
        assert b.region().remember("k", None, slow) == "old"  # ...so b serves stale and does not load
        time.sleep(0.2)
        assert calls == ["load"]
        gate.set()
        while b.region().get("k") != "new" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert b.region().get("k") == "new" and calls == ["load"]
    finally:
        gate.set()
        a.close()
        b.close()


# -- native asyncio -------------------------------------------------------------------------
def test_async_twins_on_redis_use_the_asyncio_client(redis_server: Any) -> None:
    import asyncio

    rt = redis_runtime(redis_server.url)
    calls: list[int] = []

    async def loader() -> dict[str, int]:
        calls.append(1)
        await asyncio.sleep(0.05)
        return {"id": 1}

    async def main() -> None:
        r = rt.region()
        assert await r.aput("a", [1, 2])
        assert await r.aget("a") == [1, 2]
        assert await r.ahas("a")
        assert await r.aget_many(["a", "b"]) == {"a": [1, 2], "b": None}
        assert await r.aput_many({"x": 1, "y": "two"})
        assert await r.aincrement("x", 4) == 5
        assert await r.aforget("a")
        assert await r.aget("a", "gone") == "gone"
        results = await asyncio.gather(*(r.aremember("user:1", 60, loader) for _ in range(50)))
        assert results == [{"id": 1}] * 50
        r.tags(["t"]).put("tagged", 1)
        assert await r.aget("tagged") == 1
        r.tags(["t"]).flush()
        assert await r.aget("tagged") is None

    try:
        asyncio.run(main())
        assert calls == [1]
        driver = rt.region().l2.driver
        assert driver.clients.loop_count == 1  # type: ignore[attr-defined]  # native, not a thread
        assert rt.region().get("y") == "two"  # sync and async see the same data
    finally:
        rt.close()


def test_async_with_closes_the_asyncio_connections(redis_server: Any) -> None:
    import asyncio

    probe = redis_server.client()

    def connections() -> int:
        return len(probe.client_list()) - 1  # all but the probe itself

    def settled(expected: int) -> int:  # the server notices a closed socket on its next loop turn
        deadline = time.monotonic() + 5
        while connections() != expected and time.monotonic() < deadline:
            time.sleep(0.01)
        return connections()

    baseline = connections()
    rt = redis_runtime(redis_server.url)

    async def main() -> None:
        async with rt as runtime:
            assert await runtime.region().aput("a", 1)
            assert await runtime.region().aget("a") == 1
            assert connections() > baseline
        assert rt.closed

    try:
        asyncio.run(main())
        assert settled(baseline) == baseline
    finally:
        rt.close()  # a second close is a no-op
        probe.close()


def test_editing_a_provider_live_reconnects_its_regions(redis_server: Any) -> None:
    rt = redis_runtime("redis://127.0.0.1:1/0")  # wrong port first
    try:
        r = rt.region()
        assert r.put("k", 1) is False
        rt.config.providers["redis"].url = redis_server.url  # fix it live
        rt.apply()
        assert r.put("k", 1) is True
        assert redis_server.client().get("app:default:k") == b"1"
        rt.config.cache.prefix = "moved"
        rt.apply()
        r.put("k", 2)
        assert redis_server.client().get("moved:default:k") == b"2"
        assert rt.region("fresh").l2.namespace == "moved:fresh:"
    finally:
        rt.close()


# -- a region's own serializer ----------------------------------------------------------------
def test_a_regions_serializer_overrides_its_providers(redis_server: Any) -> None:
    rt = redis_runtime(redis_server.url)
    rt.config.providers["redis"] = rt.config.providers["redis"].model_copy(
        update={"serializer": "pickle", "allow_unsigned_pickle": True})
    rt.apply()
    rt.config.regions["api"] = rt.config.regions["default"].model_copy(update={"serializer": "json"})
    rt.apply()
    probe = redis_server.client()
    try:
        assert rt.region("api").put("doc", {"id": 1, "tags": ["a"]})
        assert rt.region().put("doc", {"id": 1})
        raw_api, raw_default = probe.get("app:api:doc"), probe.get("app:default:doc")
        # a 3-byte frame (magic, format, flags), then the envelope (value, expiry, stamps)
        assert raw_api[1:2] == b"J" and json.loads(raw_api[3:])["~t"][0] == {"id": 1, "tags": ["a"]}
        assert raw_default[1:2] == b"p" and pickle.loads(raw_default[3:])[0] == {"id": 1}  # the provider's
        assert rt.region("api").get("doc") == {"id": 1, "tags": ["a"]}
        assert rt.region("api").l2.driver is not rt.region().l2.driver

        # a live edit of the region's serializer rebuilds its tier
        rt.config.regions["api"].serializer = "pickle"
        rt.apply()
        assert rt.region("api").l2.driver is rt.region().l2.driver
        assert rt.region("api").put("doc2", {"id": 2})
        assert probe.get("app:api:doc2")[1:2] == b"p"
    finally:
        probe.close()
        rt.close()


def test_the_bus_defaults_to_the_first_redis_declared_whatever_region_is_built_first(redis_server: Any) -> None:
    rt = CacheConfig(
        providers={"main": {"type": "redis", "url": redis_server.url},
                   "other": {"type": "redis", "url": "redis://127.0.0.1:1/0", "connect_timeout": 0.2}},
        regions={"x": {"provider": "other", "l1": {"ttl": 5}}, "y": {"provider": "main", "l1": {"ttl": 5}}},
        bus={"enabled": True},
    ).compile()
    try:
        rt.region("x")  # built first, on "other": the bus still goes on "main"
        assert rt.bus is not None
        assert rt.bus.client is rt.compiler.shared_driver("main").client  # type: ignore[attr-defined]
        assert rt.bus.wait_ready() and not rt.bus.down
    finally:
        rt.close()
