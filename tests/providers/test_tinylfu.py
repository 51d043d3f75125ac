"""policy = "tinylfu": W-TinyLFU eviction for memory stores (behaviour, not timing; seeded)."""

from __future__ import annotations

import random

import pytest

from cachekit import CacheConfig, FakeClock
from cachekit.providers.base import MISSING
from cachekit.providers.memory import MemoryDriver
from cachekit.providers.tinylfu import CountMinSketch, TinyLFUMemoryDriver, WTinyLFU


def zipf_trace(n_keys: int, length: int, s: float, seed: int) -> list[str]:
    rng = random.Random(seed)
    weights = [1.0 / (rank ** s) for rank in range(1, n_keys + 1)]
    ranks = rng.choices(range(n_keys), weights=weights, k=length)
    return [f"k{r}" for r in ranks]


def hit_ratio(driver: MemoryDriver, trace: list[str]) -> float:
    hits = 0
    for key in trace:
        if driver.get(key) is MISSING:
            driver.put(key, key)
        else:
            hits += 1
    return hits / len(trace)


def test_policy_keyword_picks_the_driver() -> None:
    assert type(MemoryDriver(max_size=10)) is MemoryDriver
    assert MemoryDriver(max_size=10).policy == "lru"
    d = MemoryDriver(max_size=10, policy="tinylfu")
    assert isinstance(d, TinyLFUMemoryDriver) and isinstance(d, MemoryDriver)
    assert d.policy == "tinylfu"
    with pytest.raises(ValueError, match="policy"):
        MemoryDriver(max_size=10, policy="fifo")


def _one_hit_wonders(driver: MemoryDriver) -> int:
    """90 frequent keys in a store of 100, then 1000 keys seen once, each followed by a read of a
    frequent key (round robin); the number of those frequent reads that missed."""
    frequent = [f"hot{i}" for i in range(90)]
    for _ in range(5):
        for key in frequent:
            if driver.get(key) is MISSING:
                driver.put(key, 1)
    misses = 0
    for i in range(1000):
        driver.put(f"once{i}", 1)
        key = frequent[i % 90]
        if driver.get(key) is MISSING:
            misses += 1
            driver.put(key, 1)
        assert len(driver) <= 100
    return misses


def test_one_hit_wonders_are_not_admitted_over_frequent_keys() -> None:
    # LRU: a frequent key comes back after 90 frequent and 90 new keys, so it is always gone
    assert _one_hit_wonders(MemoryDriver(max_size=100)) >= 900
    # W-TinyLFU: a new key seen once loses the admission to the frequent victim (a rare sketch
    # collision may let one in, and the frequent key it displaced wins its place back at once)
    assert _one_hit_wonders(MemoryDriver(max_size=100, policy="tinylfu")) <= 10


def test_admission_compares_frequencies() -> None:
    p = WTinyLFU(100)
    for _ in range(4):
        p.sketch.increment("frequent")
    p.sketch.increment("once")
    assert p.admit("frequent", "once") is True
    assert p.admit("once", "frequent") is False
    assert p.admit("never-seen", "once") is False  # a tie keeps the incumbent


def test_frequent_keys_survive_a_scan() -> None:
    d = MemoryDriver(max_size=1000, policy="tinylfu")
    hot = [f"hot{i}" for i in range(500)]
    rng = random.Random(7)
    for _ in range(5000):
        key = rng.choice(hot)
        if d.get(key) is MISSING:
            d.put(key, key)
    for i in range(20_000):  # a scan: many keys, each read once
        if d.get(f"scan{i}") is MISSING:
            d.put(f"scan{i}", i)
    survivors = sum(d.get(key) is not MISSING for key in hot)
    assert survivors >= 490


def test_the_sketch_ages() -> None:
    s = CountMinSketch(capacity=100, sample_size=1000)
    for _ in range(12):
        s.increment("hot")
    assert s.frequency("hot") == 12
    filler = 0
    while s.resets == 0:
        s.increment(f"filler{filler}")
        filler += 1
    # halved once the sample period is reached: 11 in the counters (the first access went to the
    # doorkeeper, which is emptied) become 5
    assert s.frequency("hot") == 5
    assert s.additions < s.sample_size


def test_counters_saturate() -> None:
    s = CountMinSketch(capacity=10, sample_size=10_000)
    for _ in range(100):
        s.increment(42)
    assert s.frequency(42) == 16  # 15 in the counters, plus the doorkeeper's first access


def test_size_bound_always_respected() -> None:
    rng = random.Random(3)
    for size in (1, 2, 3, 10, 257):
        d = MemoryDriver(max_size=size, policy="tinylfu")
        for _ in range(5000):
            key = f"k{int(rng.paretovariate(1.0)) % 3000}"
            op = rng.random()
            if op < 0.6:
                if d.get(key) is MISSING:
                    d.put(key, 1)
            elif op < 0.9:
                d.put(key, 2, ttl=rng.choice([None, 60]))
            else:
                d.forget(key)
            assert len(d) <= size
            assert len(d.eviction) == len(d)
        assert set(d.data) == set(d.eviction.window) | set(d.eviction.probation) | set(d.eviction.protected)


def test_hit_ratio_on_a_zipf_trace_beats_lru() -> None:
    trace = zipf_trace(20_000, 60_000, 0.9, seed=11)
    lru = hit_ratio(MemoryDriver(max_size=1000), trace)
    tiny = hit_ratio(MemoryDriver(max_size=1000, policy="tinylfu"), trace)
    assert tiny > lru + 0.03, (tiny, lru)


def test_ttl_semantics_hold_under_tinylfu() -> None:
    clock = FakeClock()
    d = MemoryDriver(max_size=10, clock=clock, policy="tinylfu")
    d.put("none", None)
    d.put("short", 1, ttl=5)
    assert d.get("none") is None  # a stored None is a hit
    clock.advance(6)
    assert d.get("short") is MISSING  # expired: a miss, and gone from the policy
    assert "short" not in d.eviction and len(d.eviction) == len(d) == 1


def test_adaptive_window_moves() -> None:
    p = WTinyLFU(1000, sample_size=2000)
    start = p.window_max
    rng = random.Random(5)
    for i in range(30_000):  # recency-heavy: recent keys come back soon
        key = i - int(rng.expovariate(1 / 50))
        if key in p:
            p.hit(key)
        else:
            p.insert(key)
    assert p.window_max != start
    assert 1 <= p.window_max < 1000 and p.protected_max == int(0.8 * (1000 - p.window_max))


def test_unbounded_store_has_no_policy_work() -> None:
    d = MemoryDriver(max_size=None, policy="tinylfu")
    for i in range(100):
        d.put(str(i), i)
    assert len(d) == 100 and d.eviction is None and d.get("5") == 5


def test_config_policy_reaches_memory_provider_and_l1() -> None:
    rt = CacheConfig(**{
        "cache": {"multi_level": True},
        "providers": {"mem": {"type": "memory", "policy": "tinylfu", "max_size": 50},
                      "l1mem": {"type": "memory"}},
        "regions": {"a": {"provider": "mem"},
                    "b": {"provider": "mem", "l1": {"provider": "l1mem", "max_size": 20, "policy": "tinylfu"}}},
    }).compile()
    try:
        assert rt.region("a").l2.driver.policy == "tinylfu"
        assert rt.region("b").l1.driver.policy == "tinylfu"
    finally:
        rt.close()


def test_config_policy_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="policy"):
        CacheConfig(**{"providers": {"mem": {"type": "memory", "policy": "fifo"}}})


def test_region_reads_count_as_accesses() -> None:
    """The region's fast path reads the store's dict directly: its hits must still reach the policy."""
    rt = CacheConfig(**{
        "providers": {"mem": {"type": "memory", "policy": "tinylfu"}},
        "regions": {"r": {"provider": "mem", "max_size": 100}},
    }).compile()
    try:
        region = rt.region("r")
        hot = [f"hot{i}" for i in range(50)]
        for _ in range(3):
            for key in hot:
                if region.get(key) is None:
                    region.put(key, key)
        region.flush()
        for key in hot:
            region.put(key, key)
        for _ in range(2):
            for key in hot:
                assert region.get(key) == key
        for i in range(500):
            region.put(f"once{i}", i)
        assert all(region.get(key) == key for key in hot)
    finally:
        rt.close()


def test_hit_ratio_bench_bounds_hold_on_a_small_trace() -> None:
    """bench/hit_ratio.py: OPT is never beaten and never beats the infinite cache (a tiny trace)."""
    pytest.importorskip("numpy")
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    try:
        import hit_ratio as hr
    finally:
        sys.path.pop(0)
    sizes = hr.Sizes(keys=2000, accesses=6000, capacity=200, scan_every=1000, scan_length=250)
    base, by_rank = hr.zipf_trace_and_ranking(sizes)
    assert (hr.zipf_trace(sizes) == base).all()
    assert sorted(by_rank.tolist()) == list(range(sizes.keys))
    for trace in (base, hr.with_scans(base, sizes)):
        keys = [f"k{i}" for i in trace.tolist()]
        opt = hr.belady_hits(trace, sizes.capacity)
        assert opt <= hr.infinite_hits(trace)
        assert 0 < hr.irm_optimum_hits(trace, by_rank, sizes.capacity) <= opt
        for _, _, replay in hr.POLICIES:
            try:
                assert replay(keys, sizes.capacity) <= opt
            except ImportError:
                pass
    assert len(hr.with_scans(base, sizes)) == 6000 + 6 * 250
    assert hr.belady_hits(hr.np.array([1, 2, 1, 3, 1, 2]), 1) == 2  # keeps 1, skips 2 and 3
    # keeps the two most probable keys (5 and 9), each stored on its first access: 5 hits twice
    assert hr.irm_optimum_hits(hr.np.array([5, 7, 5, 9, 5, 7]), hr.np.array([5, 9, 7]), 2) == 2
