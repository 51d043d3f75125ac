"""Issue 13 items 1 and 3: frames a pandas user analyses directly, the sampler, rates, snapshots, traces."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest

from cachekit import CacheConfig, FakeClock, Runtime
from cachekit.simulate import Trace, simulate
from cachekit.stats import Histogram

pd = pytest.importorskip("pandas")


def compile_(**config: Any) -> Runtime:
    return CacheConfig(**config).compile(clock=FakeClock(1000.0))


def two_tier() -> Runtime:
    return compile_(providers={"local": {"type": "memory"}},
                    regions={"r": {"provider": "memory", "ttl": 10, "l1": {"provider": "local", "ttl": 30}},
                             "one": {"provider": "memory", "ttl": 10}})


def test_to_frame_by_tier_counts_each_tier_by_hand() -> None:
    rt = two_tier()
    try:
        r = rt.region("r")
        r.put("k", 1)                              # L2 set (and L1 fill)
        assert r.get("k") == 1                     # L1 hit
        r.l1.driver.flush()  # type: ignore[union-attr]
        assert r.get("k") == 1                     # L1 miss, L2 hit
        assert r.get("absent") is None             # L1 miss, L2 miss
        one = rt.region("one")
        one.put("a", 1)
        one.get("a")
        rt.clock.advance(11)  # type: ignore[attr-defined]
        assert one.get("a") is None                # expired: a miss and an expiration
        one.forget("b")
        rt.invalidate(tags=["t"], region="one")
        frame = rt.stats.to_frame(by="tier")
        assert list(frame.index.names) == ["region", "tier"]
        assert all(pd.api.types.is_numeric_dtype(t) for t in frame.dtypes)
        assert set(frame.loc["r"].index) == {"l1", "l2"} and list(frame.loc["one"].index) == ["l2"]
        l1, l2 = frame.loc[("r", "l1")], frame.loc[("r", "l2")]
        assert (l1["hits"], l1["misses"], l1["hit_ratio"]) == (1, 2, 1 / 3)
        assert (l2["hits"], l2["misses"], l2["sets"]) == (1, 1, 1)
        o = frame.loc[("one", "l2")]
        assert (o["hits"], o["misses"], o["sets"], o["deletes"], o["expirations"], o["invalidations"]) == \
            (1, 1, 1, 1, 1, 1)
        assert list(frame.columns) == ["hits", "misses", "hit_ratio", "sets", "deletes", "errors", "evictions",
                                       "expirations", "loads", "load_failures", "stale_hits", "invalidations"]
        assert frame.groupby(level="region").sum()["hits"].to_dict() == {"one": 1, "r": 2}
    finally:
        rt.close()


def test_evictions_and_load_failures_are_counted() -> None:
    rt = compile_(regions={"small": {"provider": "memory", "max_size": 2}})
    try:
        s = rt.region("small")
        for i in range(5):
            s.put(f"k{i}", i)

        def boom() -> Any:
            raise RuntimeError("no")

        with pytest.raises(RuntimeError):
            s.remember("x", 60, boom)
        s.remember("y", 60, lambda: 1)
        row = rt.stats.to_frame(by="tier").loc[("small", "l2")]
        assert (row["evictions"], row["load_failures"], row["loads"]) == (4, 1, 1)  # 6 puts into 2 slots
    finally:
        rt.close()


def test_histogram_quantiles_are_within_a_bucket() -> None:
    h = Histogram()
    for us in range(1, 1001):
        h.add(us / 1e6)
    d = h.as_dict()
    assert d["count"] == 1000 and d["max_us"] == pytest.approx(1000)
    assert d["mean_us"] == pytest.approx(500.5)
    for q, key in ((0.5, "p50_us"), (0.9, "p90_us"), (0.99, "p99_us")):
        assert q * 1000 <= d[key] <= q * 1000 * 1.07  # an upper bound, at most one bucket (1/16) above
    assert math.isnan(Histogram().quantile(0.5))


def test_latency_frame_counts_every_timed_operation() -> None:
    rt = two_tier()
    try:
        r = rt.region("r")
        for i in range(3):
            r.put(f"k{i}", i)
        r.l1.driver.flush()  # type: ignore[union-attr]
        for i in range(4):
            r.get(f"k{i}")                         # 4 reads that go to L2
        r.get("k0")                                # an L1 hit: not timed
        r.forget("k0")
        r.remember("slow", 60, lambda: time.sleep(0.002) or 1)
        frame = rt.stats.latency_frame()
        assert list(frame.index.names) == ["region", "op"]
        assert list(frame.columns) == ["count", "mean_us", "p50_us", "p90_us", "p99_us", "max_us"]
        counts = frame.loc["r", "count"].to_dict()
        assert counts == {"delete": 1, "get": 5, "load": 1, "put": 4}  # remember: a get miss and a put too
        load = frame.loc[("r", "load")]
        assert 2000 <= load["p50_us"] <= load["max_us"] and load["mean_us"] >= 2000
        rt.stats.set_timing(False)
        r.put("z", 1)
        assert rt.stats.latency_frame().loc[("r", "put"), "count"] == 4
    finally:
        rt.close()


def test_invalidations_frame_per_rule_tag_pattern_and_event() -> None:
    rt = compile_(regions={"users": {"provider": "memory"}},
                  rules=[{"name": "by-pattern", "strategy": "pattern_based", "pattern": "user:*",
                          "regions": ["users"]},
                         {"name": "on-save", "strategy": "event_based", "events": ["user.saved"],
                          "patterns": ["profile:{id}"], "regions": ["users"]}])
    try:
        u = rt.region("users")
        for k in ("user:1", "profile:1", "profile:2", "x:1", "x:2"):
            u.put(k, 1)
        rt.invalidate("user:*", region="users")
        rt.invalidate("x:*", region="users")
        rt.invalidate(tags=["t"], region="users")
        rt.emit("user.saved", id=1)
        rt.invalidate(region="users")
        frame = rt.stats.invalidations_frame().loc["users"]
        got = {idx: tuple(row) for idx, row in frame.iterrows()}
        assert got == {("rule", "by-pattern"): (1, 0, 1), ("pattern", "x:*"): (1, 2, 0), ("tag", "t"): (1, 0, 1),
                       ("pattern", "profile:1"): (1, 1, 0), ("event", "user.saved"): (1, 1, 0),
                       ("flush", "users"): (1, 2, 0)}  # user:1 and profile:2 were left
    finally:
        rt.close()


def test_timeseries_keeps_whole_snapshots_one_per_timestamp_and_gives_rates_by_hand() -> None:
    rt = two_tier()
    try:
        r = rt.region("one")
        rt.region("r")
        stats = rt.stats
        stats.sample()
        stats.sample()                             # same timestamp: replaces the first
        for step, n in enumerate((10, 30)):
            for i in range(n):
                r.get(f"k{i}")                     # misses
            r.put(f"s{step}", 1)
            rt.clock.advance(5)  # type: ignore[attr-defined]
            stats.sample()
        series = stats.timeseries()
        assert series.index.get_level_values("time").nunique() == 3
        assert len(series) == 3 * 2                # two regions per snapshot, always whole
        assert all(pd.api.types.is_numeric_dtype(t) for t in series.dtypes)
        diff = series.groupby(level="region").diff()
        assert list(diff.xs("one", level="region")["misses"].iloc[1:]) == [10, 30]
        rates = stats.timeseries(rates=True)
        one = rates.xs("one", level="region")
        assert list(one["misses"]) == [2.0, 6.0] and list(one["sets"]) == [0.2, 0.2]
        stats.max_snapshots = 2
        stats.sample()
        assert series.index.get_level_values("time").nunique() == 3
        assert stats.timeseries().index.get_level_values("time").nunique() == 2
    finally:
        rt.close()


def test_background_sampler_takes_snapshots_until_stopped() -> None:
    rt = CacheConfig().compile()
    try:
        rt.region().get("k")
        rt.stats.start_sampling(interval=0.02)
        assert rt.stats.sampling
        time.sleep(0.2)
        rt.stats.stop_sampling()
        n = rt.stats.timeseries().index.get_level_values("time").nunique()
        assert n >= 3 and not rt.stats.sampling
        time.sleep(0.06)
        assert rt.stats.timeseries().index.get_level_values("time").nunique() == n
        with pytest.raises(ValueError):
            rt.stats.start_sampling(interval=0)
    finally:
        rt.close()


def test_snapshot_is_plain_json() -> None:
    rt = two_tier()
    try:
        rt.region("r").put("k", 1)
        rt.region("r").get("k")
        rt.region("one")
        snap = json.loads(json.dumps(rt.stats.snapshot(), allow_nan=False))
        r = snap["regions"]["r"]
        assert r["hits"] == 1 and r["tiers"]["l1"]["hits"] == 1 and r["latency"]["put"]["count"] == 1
        assert snap["regions"]["one"]["hit_ratio"] is None
    finally:
        rt.close()


def test_trace_records_every_access_and_round_trips_through_a_frame() -> None:
    rt = compile_(regions={"users": {"provider": "memory", "ttl": 60}})
    try:
        u = rt.region("users")
        u.put("a", "xyz")
        assert u._fast  # the fast path, off while a trace runs
        with rt.trace() as trace:
            assert not u._fast
            u.get("a")
            u.get("b")
            u.remember("c", 60, lambda: "v")
            u.forget("a")
            rt.region("later").put("k", "12345")   # a region built during the trace is traced too
        assert u._fast
        u.get("a")                                 # after the block: not recorded
        frame = trace.to_frame()
        assert list(frame["op"]) == ["get", "get", "get", "load", "put", "delete", "put"]
        assert list(frame["hit"]) == [True, False, False, False, False, False, False]
        assert list(frame["size"]) == [3, 0, 0, 0, 1, 0, 5]
        assert frame["load_time"].iloc[3] > 0 and set(frame["region"]) == {"users", "later"}
        again = Trace.from_frame(frame)
        assert len(again) == len(trace) and list(again.to_frame()["op"]) == list(frame["op"])
    finally:
        rt.close()


def test_trace_max_events_bounds_it() -> None:
    rt = compile_()
    try:
        with rt.trace(max_events=3) as trace:
            for i in range(10):
                rt.region().get(f"k{i}")
        assert len(trace) == 3 and trace.dropped == 7
    finally:
        rt.close()


def test_a_traced_workload_replayed_predicts_the_real_hit_ratio() -> None:
    rt = compile_(regions={"z": {"provider": "memory", "max_size": 50, "ttl": 3600}})
    try:
        z = rt.region("z")
        keys = Trace.synthetic_zipf(500, 4000, seed=3).to_frame()["key_hash"]
        with rt.trace() as trace:
            for k in keys:
                z.remember(f"k{k}", 3600, lambda: 1)
                rt.clock.advance(0.01)  # type: ignore[attr-defined]
        real = rt.stats.to_frame().loc["z", "hit_ratio"]
        predicted = simulate(trace, region="z", max_size=[50], ttl=[3600], policy=["lru"])["hit_ratio"].iloc[0]
        assert abs(predicted - real) < 0.01
    finally:
        rt.close()


def test_cache_stats_false_turns_latency_timing_off_and_a_hot_apply_back_on() -> None:
    rt = compile_(cache={"stats": False}, regions={"f": {"provider": "file"}})
    try:
        f = rt.region("f")
        f.put("k", 1)
        f.get("k")
        assert rt.stats.latency_frame().empty and rt.stats.totals()["hits"] == 1
        rt.config.cache.stats = True
        rt.apply()
        f.get("k")
        assert rt.stats.latency_frame().loc[("f", "get"), "count"] == 1
    finally:
        rt.close()
