"""The runtime: regions, policies, rules, invalidation, stats, hot-apply."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from servers import need_module

from cachekit import CacheConfig, CacheError, FakeClock, Runtime, UnsupportedOperation


def compile_(clock: FakeClock | None = None, **config: Any) -> Runtime:
    return CacheConfig(**config).compile(clock=clock or FakeClock(1000.0))


def test_regions_have_their_own_ttl_and_namespace() -> None:
    rt = compile_(regions={"short": {"ttl": 5}, "long": {"ttl": 500}})
    rt.region("short").put("k", "s")
    rt.region("long").put("k", "l")
    assert rt.region("short").get("k") == "s"
    assert rt.region("long").get("k") == "l"
    rt.clock.advance(6)  # type: ignore[attr-defined]
    assert rt.region("short").get("k") is None
    assert rt.region("long").get("k") == "l"


def test_undeclared_region_gets_default_policy_under_its_own_namespace() -> None:
    rt = compile_(cache={"default_ttl": 42}, regions={"default": {"ttl": 7}})
    r = rt.region("adhoc")
    assert r.policy.ttl == 7
    r.put("k", 1)
    assert rt.region().get("k") is None


def test_strict_mode_rejects_undeclared_regions_with_suggestion() -> None:
    rt = compile_(cache={"strict": True}, regions={"users": {}, "default": {}})
    with pytest.raises(CacheError, match=r"unknown region 'user'.*did you mean 'users'"):
        rt.region("user")


def test_time_based_rule_chooses_ttl_by_key_pattern() -> None:
    rt = compile_(regions={"default": {"ttl": 100}},
                  rules=[{"name": "sessions", "strategy": "time_based", "pattern": "session:*", "ttl": 10}])
    r = rt.region()
    r.put("session:1", "s")
    r.put("user:1", "u")
    rt.clock.advance(11)  # type: ignore[attr-defined]
    assert r.get("session:1") is None
    assert r.get("user:1") == "u"
    r.put("session:2", "s", ttl=50)  # an explicit ttl wins over the rule
    rt.clock.advance(20)  # type: ignore[attr-defined]
    assert r.get("session:2") == "s"


def test_declared_pattern_rule_invalidates_in_one_generation_bump() -> None:
    rt = compile_(rules=[{"name": "user-data", "strategy": "pattern_based", "pattern": "user:*"}])
    r = rt.region()
    r.put("user:1", 1)
    r.put("user:2", 2)
    r.put("order:1", 3)
    result = rt.invalidate(pattern="user:*")
    assert result.generations == {"default": ["rule:user-data"]}
    assert result.keys == {}
    assert r.get("user:1") is None and r.get("user:2") is None
    assert r.get("order:1") == 3
    r.put("user:1", "new")
    assert r.get("user:1") == "new"


def test_adhoc_pattern_scans_and_deletes_on_memory() -> None:
    rt = compile_()
    r = rt.region()
    for i in range(5):
        r.put(f"user:{i}", i)
    r.put("order:1", 1)
    dry = rt.invalidate(pattern="user:*", dry_run=True)
    assert sorted(dry.keys["default"]) == [f"user:{i}" for i in range(5)]
    assert r.get("user:1") == 1  # dry run removed nothing
    done = rt.invalidate(pattern="user:*")
    assert done.count == 5
    assert r.get("user:1") is None and r.get("order:1") == 1


def test_event_rule_with_parameters_invalidates_the_right_key() -> None:
    rt = compile_(rules=[{"name": "user-update-rule", "strategy": "event_based",
                          "events": ["user_updated", "user_profile_changed"], "pattern": "user:{user_id}",
                          "tags": ["user-{user_id}-lists"]}])
    r = rt.region()
    r.put("user:1", "one")
    r.put("user:2", "two")
    r.tags(["user-1-lists"]).put("lists:1", [1])
    result = rt.emit("user_updated", user_id=1)
    assert r.get("user:1") is None
    assert r.get("lists:1") is None
    assert r.get("user:2") == "two"
    assert result.keys == {"default": ["user:1"]}
    with pytest.raises(CacheError, match="needs parameter 'user_id'"):
        rt.emit("user_profile_changed")
    assert rt.emit("nobody_listens").count == 0


def test_event_rule_can_flush_its_regions() -> None:
    rt = compile_(regions={"a": {}, "b": {}},
                  rules=[{"name": "deploy", "strategy": "event_based", "events": ["deployed"],
                          "regions": ["a"], "flush_regions": True}])
    rt.region("a").put("k", 1)
    rt.region("b").put("k", 1)
    rt.emit("deployed")
    assert rt.region("a").get("k") is None
    assert rt.region("b").get("k") == 1


def test_find_matching_rules() -> None:
    rt = compile_(rules=[
        {"name": "users", "strategy": "pattern_based", "pattern": "user:*"},
        {"name": "upd", "strategy": "event_based", "events": ["e"], "pattern": "user:{id}"},
        {"name": "orders", "strategy": "pattern_based", "pattern": "order:*"},
    ])
    assert [r.name for r in rt.find_matching_rules("user:123")] == ["users", "upd"]


def test_invalidate_region_flushes_only_that_region() -> None:
    rt = compile_(regions={"a": {}, "b": {}})
    rt.region("a").put("k", 1)
    rt.region("b").put("k", 2)
    rt.invalidate(region="a")
    assert rt.region("a").get("k") is None
    assert rt.region("b").get("k") == 2


def test_memory_region_evicts_lru_past_max_size_and_counts_it() -> None:
    rt = compile_(regions={"small": {"max_size": 4}})
    r = rt.region("small")
    for i in range(4):
        r.put(f"k{i}", i)
    assert r.get("k0") == 0  # k0 becomes most recently used
    r.put("k4", 4)
    assert r.get("k1") is None  # the least recently used went first
    assert r.get("k0") == 0
    rows = {row["region"]: row for row in rt.stats.rows()}
    assert rows["small"]["evictions"] == 1


def test_stats_count_hits_misses_sets_deletes() -> None:
    rt = compile_()
    r = rt.region()
    r.put("a", 1)
    r.get("a")
    r.get("a")
    r.get("missing")
    r.forget("a")
    row = rt.stats.rows()[0]
    assert (row["hits"], row["misses"], row["sets"], row["deletes"]) == (2, 1, 1, 1)
    assert row["hit_ratio"] == pytest.approx(2 / 3)
    rt.stats.reset()
    assert rt.stats.rows()[0]["hits"] == 0


def test_stats_to_frame_is_a_dataframe_indexed_by_region() -> None:
    pd = need_module("pandas")
    rt = compile_(regions={"a": {}, "b": {}})
    rt.region("a").put("k", 1)
    rt.region("a").get("k")
    rt.region("b").get("k")
    frame = rt.stats.to_frame()
    assert isinstance(frame, pd.DataFrame)
    assert frame.loc["a", "hits"] == 1
    assert frame.loc["b", "misses"] == 1
    rt.stats.sample()
    rt.clock.advance(1)  # type: ignore[attr-defined]
    rt.region("a").get("k")
    rt.stats.sample()
    ts = rt.stats.timeseries()
    assert list(ts.xs("a", level="region")["hits"]) == [1, 2]


def test_hot_apply_changes_ttl_without_losing_entries() -> None:
    rt = compile_(regions={"users": {"ttl": 100}})
    r = rt.region("users")
    r.put("kept", 1)
    rt.update_region("users", ttl=5)
    assert r.policy.ttl == 5
    assert r.get("kept") == 1
    r.put("new", 1)
    rt.clock.advance(6)  # type: ignore[attr-defined]
    assert r.get("new") is None


def test_region_set_ttl_edits_live_config() -> None:
    rt = compile_(regions={"users": {"ttl": 100}})
    rt.region("users").set_ttl(30)
    assert rt.config.regions["users"].ttl == 30


def test_disabled_cache_misses_and_does_not_store() -> None:
    rt = compile_(cache={"enabled": False})
    r = rt.region()
    assert r.put("k", 1) is False
    assert r.get("k") is None
    calls: list[int] = []
    assert r.remember("k", 10, lambda: calls.append(1) or 5) == 5
    assert r.remember("k", 10, lambda: calls.append(1) or 5) == 5
    assert calls == [1, 1]


def test_stale_while_revalidate_serves_stale_and_refreshes_once() -> None:
    import threading

    rt = compile_(regions={"default": {"ttl": 10, "stale_ttl": 60}})
    r = rt.region()
    calls: list[int] = []
    gate = threading.Event()

    def loader() -> int:
        calls.append(1)
        if len(calls) > 1:
            gate.wait(5)
        return len(calls)

    assert r.remember("k", None, loader) == 1
    rt.clock.advance(11)  # type: ignore[attr-defined]
    # past the fresh TTL: every caller gets the stale value at once; one refresh runs
    assert [r.remember("k", None, loader) for _ in range(5)] == [1] * 5
    gate.set()
    for _ in range(500):
        if r.get("k") == 2:
            break
        threading.Event().wait(0.01)
    assert r.get("k") == 2
    assert calls == [1, 1]


def test_closed_runtime_refuses_new_regions() -> None:
    rt = compile_()
    rt.close()
    rt.close()
    with pytest.raises(CacheError, match="closed"):
        rt.region("new")


def test_memcached_like_store_rejects_adhoc_patterns_with_a_hint() -> None:
    from cachekit import CacheDriver

    class NoScan(CacheDriver):
        def __init__(self) -> None:
            self.d: dict[str, Any] = {}

        def get(self, key: str) -> Any:
            return self.d.get(key)

        def put(self, key: str, value: Any, ttl: float | None = None) -> bool:
            self.d[key] = value
            return True

        def forget(self, key: str) -> bool:
            return self.d.pop(key, None) is not None

        def flush(self) -> bool:
            self.d.clear()
            return True

    rt = compile_(regions={"memory-side": {}, "default": {}})  # the scannable region comes first
    rt.register_store("noscan", NoScan())
    side = rt.region("memory-side")
    side.put("user:2", 2)
    rt.update_region("default", provider="noscan")
    r = rt.region()
    r.put("user:1", 1)
    assert list(rt.regions()) == ["memory-side", "default"]
    with pytest.raises(UnsupportedOperation, match=r"pattern_based.*nothing was invalidated"):
        rt.invalidate(pattern="user:*")  # every region: memory-side could scan, default cannot
    assert side.get("user:2") == 2 and r.get("user:1") == 1  # all or nothing
    # a region flush still works by generation on a store that cannot enumerate
    r.flush()
    assert r.get("user:1") is None


def test_importing_cachekit_imports_no_optional_dependency() -> None:
    code = (
        "import sys, cachekit; from cachekit import Cache, load, CacheConfig;"
        "heavy = [m for m in ('pandas', 'redis', 'pymemcache', 'ipywidgets', 'fastapi', 'msgpack', 'typer')"
        " if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_missing_extra_error_names_the_pip_command() -> None:
    from cachekit.errors import MissingExtraError, require

    with pytest.raises(MissingExtraError, match=r"pip install 'cachekit-config\[nothing\]'"):
        require("no_such_module_xyz", "nothing")


def test_remember_forever_is_single_flight_and_never_expires_in_a_region_with_a_ttl() -> None:
    import threading
    import time

    clock = FakeClock()
    rt = compile_(clock, regions={"default": {"ttl": 60}})
    calls: list[int] = []
    gate = threading.Barrier(5)

    def load() -> str:
        calls.append(1)
        time.sleep(0.05)
        return "config"

    def worker() -> None:
        gate.wait()
        assert rt.region().remember_forever("settings", load) == "config"

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1]
    clock.advance(10 * 365 * 86400)
    assert rt.region().get("settings") == "config"


def test_event_parameters_are_literal_values_never_wildcards() -> None:
    rt = compile_(rules=[
        {"name": "one", "strategy": "event_based", "events": ["user_updated"], "pattern": "user:{user_id}"},
        {"name": "orders", "strategy": "event_based", "events": ["user_updated"], "pattern": "orders:{user_id}:*"},
    ])
    r = rt.region()
    for key in ("user:1", "user:2", "user:*", "orders:1:a", "orders:2:a", "orders:*:a"):
        r.put(key, key)
    result = rt.emit("user_updated", user_id="*")
    assert sorted(result.keys["default"]) == ["orders:*:a", "user:*"]
    assert all(r.has(k) for k in ("user:1", "user:2", "orders:1:a", "orders:2:a"))
    rt.emit("user_updated", user_id=1)
    assert not r.has("user:1") and not r.has("orders:1:a") and r.has("user:2")


def test_an_empty_tag_list_invalidates_nothing() -> None:
    rt = compile_()
    rt.region().put("k", 1)
    assert rt.invalidate(tags=[]).count == 0
    assert rt.region().get("k") == 1


def test_find_matching_rules_leaves_out_disabled_rules() -> None:
    rt = compile_(rules=[
        {"name": "on", "strategy": "time_based", "pattern": "user:*", "ttl": 5},
        {"name": "off", "strategy": "time_based", "pattern": "user:*", "ttl": 5, "enabled": False},
    ])
    assert [r.name for r in rt.find_matching_rules("user:1")] == ["on"]


def test_outcomes_name_the_tier_operation_and_outcome_of_what_happened() -> None:
    rt = CacheConfig(providers={"local": {"type": "memory"}},
                     regions={"r": {"provider": "memory", "l1": {"provider": "local", "ttl": 30}}}).compile()
    try:
        r = rt.region("r")
        r.put("k", 1)
        r.l1.driver.flush()  # type: ignore[union-attr]
        assert r.get("k") == 1 and r.get("k") == 1  # from L2 (filling L1), then from L1
        assert r.get("absent") is None
        got = {row[:4]: row[4] for row in rt.stats.outcomes() if row[0] == "r"}
        assert got == {("r", "region", "get", "hit"): 2, ("r", "l1", "get", "hit"): 1,
                       ("r", "region", "get", "miss"): 1, ("r", "l2", "put", "stored"): 1}
    finally:
        rt.close()
