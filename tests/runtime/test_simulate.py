"""The what-if simulator and access traces (issue 13, items 3 and 4).

The validation tests record a trace by running a workload through a real region (memory store, fake
clock), then compare the simulator's prediction for a setting with a real run of a region at that
setting, including settings other than the one the trace was recorded under.
"""

from __future__ import annotations

import random
import subprocess
import sys
from collections import OrderedDict
from typing import Any

import pytest

pd = pytest.importorskip("pandas")
np = pytest.importorskip("numpy")

from docblocks import ROOT, page_blocks  # noqa: E402

from cachekit import CacheConfig, Runtime  # noqa: E402
from cachekit.simulate import OPS, Trace, lru_curve, policies, simulate  # noqa: E402
from cachekit.simulate_bounds import earlier_greater as _earlier_greater  # noqa: E402

LOAD_TIME = 0.01  # seconds a loader "takes" in the recorded workloads


# -- helpers ---------------------------------------------------------------------------------------
def region_config(max_size: int | None, ttl: float | None, l1_ttl: float | None = None,
                  l1_max_size: int | None = None) -> dict[str, Any]:
    rc: dict[str, Any] = {"max_size": max_size}
    if ttl is None:
        rc["forever"] = True
    else:
        rc["ttl"] = ttl
    if l1_ttl is not None or l1_max_size is not None:
        rc["provider"] = "redis"  # a fake runtime keeps it in memory; the L1 sits in front of it
        rc["l1"] = {"ttl": l1_ttl, "max_size": l1_max_size}
    return rc


def real_run(workload: Trace, *, max_size: int | None, ttl: float | None, l1_ttl: float | None = None,
             l1_max_size: int | None = None, record: Trace | None = None) -> dict[str, float]:
    """Replay the workload's reads through a real region (``remember``), on a fake clock set to each
    event's time; optionally record what happened into ``record``, as ``runtime.trace()`` will."""
    runtime = Runtime.fake(CacheConfig(regions={"r": region_config(max_size, ttl, l1_ttl, l1_max_size)}))
    region = runtime.region("r")
    clock = runtime.clock
    loaded = [False]

    def loader() -> int:
        loaded[0] = True
        return 1

    try:
        for t, k in zip(workload.time, workload.key_hash, strict=True):
            clock.set(t)
            loaded[0] = False
            region.remember(f"k{k}", None, loader)
            if record is not None:
                record.record(t, "r", k, Trace.GET, hit=not loaded[0])
                if loaded[0]:
                    record.record(t, "r", k, Trace.LOAD, load_time=LOAD_TIME)
        s = region.stats
        lookups = s.hits + s.misses
        return {"hit_ratio": s.hits / lookups, "l1_hit_ratio": s.l1_hits / lookups, "misses": s.misses,
                "loads": s.loads}
    finally:
        runtime.close()


def naive_lru_hit_ratio(keys: list[int], size: int) -> float:
    """A textbook LRU (move to end on every access), to check the stack-distance curve exactly."""
    store: OrderedDict[int, None] = OrderedDict()
    hits = 0
    for k in keys:
        if k in store:
            hits += 1
            store.move_to_end(k)
        else:
            store[k] = None
            if len(store) > size:
                store.popitem(last=False)
    return hits / len(keys)


@pytest.fixture(scope="module")
def zipf() -> Trace:
    return Trace.synthetic_zipf(n_keys=5_000, n_events=60_000, alpha=0.9, seed=7, rate=100.0)


@pytest.fixture(scope="module")
def scan() -> Trace:
    # 2 500 never-seen keys after every 10 000 Zipf reads (the classic 25k per 100k, scaled down)
    return Trace.synthetic_zipf(n_keys=5_000, n_events=50_000, alpha=1.0, seed=11, rate=100.0,
                                scan_every=10_000, scan_length=2_500)


RECORDED = {"max_size": 1_000, "ttl": 120.0}
# (max_size, ttl, l1_ttl, l1_max_size): the recording's setting, then others
SETTINGS = [
    (1_000, 120.0, None, None),
    (2_500, 30.0, None, None),
    (400, None, None, None),
    (1_500, 300.0, 20.0, 200),
]


@pytest.fixture(scope="module")
def recorded(zipf: Trace, scan: Trace) -> dict[str, Trace]:
    """Each workload run once through a real region at ``RECORDED``, traced."""
    traces = {}
    for name, workload in (("zipf", zipf), ("scan", scan)):
        trace = Trace()
        real_run(workload, **RECORDED, record=trace)
        traces[name] = trace
    return traces


# -- the trace -------------------------------------------------------------------------------------
def test_record_keeps_every_column_and_round_trips_through_a_frame() -> None:
    trace = Trace()
    assert trace.record(1.5, "users", "user:1", "get", hit=False, size=0)
    assert trace.record(1.6, "users", "user:1", Trace.LOAD, load_time=0.25)
    assert trace.record(1.7, "pages", 42, "put", size=512)
    assert trace.record(1.8, "users", "user:1", "get", hit=True, size=128)
    assert trace.record(1.9, "pages", 42, "delete")
    assert len(trace) == 5 and trace.regions == ["users", "pages"]
    assert trace.record(2.0, "pages", 2**70, "get")  # any hashable key fits the int64 column

    frame = trace.to_frame().iloc[:5]
    assert list(frame.columns) == list(Trace.columns)
    assert frame["op"].astype(str).tolist() == ["get", "load", "put", "get", "delete"]
    assert frame["region"].astype(str).tolist() == ["users", "users", "pages", "users", "pages"]
    assert frame["hit"].tolist() == [False, False, False, True, False]
    assert frame["key_hash"].tolist() == [hash("user:1"), hash("user:1"), 42, hash("user:1"), 42]
    assert frame["size"].tolist() == [0, 0, 512, 128, 0]
    assert frame["load_time"].tolist() == [0.0, 0.25, 0.0, 0.0, 0.0]
    assert frame["time"].tolist() == [1.5, 1.6, 1.7, 1.8, 1.9]

    back = Trace.from_frame(trace.to_frame())
    pd.testing.assert_frame_equal(back.to_frame(), trace.to_frame())
    # ops as codes, only the required columns
    minimal = frame[["time", "region", "key_hash"]].assign(op=[OPS[o] for o in frame["op"].astype(str)])
    again = Trace.from_frame(minimal).to_frame()
    assert again["op"].astype(str).tolist() == frame["op"].astype(str).tolist()
    assert not again["hit"].any() and (again["size"] == 0).all()


def test_from_frame_names_missing_columns_and_unknown_ops() -> None:
    with pytest.raises(ValueError, match="key_hash"):
        Trace.from_frame(pd.DataFrame({"time": [0.0], "region": ["r"], "op": ["get"]}))
    with pytest.raises(ValueError, match=r"unknown op.*'peek'.*known: get, put, delete, load"):
        Trace.from_frame(pd.DataFrame({"time": [0.0], "region": ["r"], "key_hash": [1], "op": ["peek"]}))


def test_max_events_bounds_the_trace_and_counts_what_it_dropped() -> None:
    trace = Trace(max_events=3)
    kept = [trace.record(float(i), "r", i, "get") for i in range(5)]
    assert kept == [True, True, True, False, False]
    assert len(trace) == 3 and trace.dropped == 2


def test_sampling_keeps_every_event_of_a_share_of_the_keys() -> None:
    trace = Trace(sample=0.25)
    for i in range(40_000):
        trace.record(float(i), "r", i % 4_000, "get")
    frame = trace.to_frame()
    kept_keys = frame["key_hash"].nunique()
    assert 800 < kept_keys < 1_200  # about a quarter of the 4 000 keys
    assert (frame.groupby("key_hash").size() == 10).all()  # each kept key: all of its 10 reads


def test_importing_cachekit_imports_no_pandas_numpy_or_tqdm() -> None:
    code = ("import sys, cachekit, cachekit.simulate; cachekit.simulate; "
            "print(sorted(m for m in ('pandas', 'numpy', 'tqdm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_simulate_is_exported_from_cachekit() -> None:
    import cachekit

    assert cachekit.simulate is simulate
    assert cachekit.Trace is Trace


# -- validation against real runs ------------------------------------------------------------------
@pytest.mark.parametrize("workload", ["zipf", "scan"])
@pytest.mark.parametrize(("max_size", "ttl", "l1_ttl", "l1_max_size"), SETTINGS)
def test_prediction_matches_a_real_run_within_one_point(
        recorded: dict[str, Trace], zipf: Trace, scan: Trace, workload: str, max_size: int, ttl: float | None,
        l1_ttl: float | None, l1_max_size: int | None) -> None:
    trace = recorded[workload]
    predicted = simulate(trace, max_size=max_size, ttl=ttl, l1_ttl=l1_ttl, l1_max_size=l1_max_size)
    assert len(predicted) == 1
    row = predicted.iloc[0]
    real = real_run({"zipf": zipf, "scan": scan}[workload], max_size=max_size, ttl=ttl, l1_ttl=l1_ttl,
                    l1_max_size=l1_max_size)
    print(f"{workload} max_size={max_size} ttl={ttl} l1_ttl={l1_ttl}: "
          f"predicted {row.hit_ratio:.4f}, real {real['hit_ratio']:.4f}")
    assert abs(row.hit_ratio - real["hit_ratio"]) <= 0.01
    assert abs(row.misses - real["misses"]) <= 0.01 * row.lookups
    assert row.loads == row.misses
    assert row.est_load_time_s == pytest.approx(row.misses * LOAD_TIME)
    if l1_ttl is not None:
        assert abs(row.l1_hit_ratio - real["l1_hit_ratio"]) <= 0.01
    # the settings differ enough for the check to mean something
    assert 0.05 < row.hit_ratio < 0.99


def test_the_settings_give_distinct_hit_ratios(recorded: dict[str, Trace]) -> None:
    """A prediction that ignored the setting would pass the check above only by luck: here they differ."""
    for trace in recorded.values():
        ratios = [simulate(trace, max_size=s, ttl=t, l1_ttl=lt, l1_max_size=m).hit_ratio[0]
                  for s, t, lt, m in SETTINGS]
        assert min(abs(a - b) for i, a in enumerate(ratios) for b in ratios[i + 1:]) > 0.01


def test_the_recorded_hits_are_what_the_simulator_replays(recorded: dict[str, Trace]) -> None:
    """At the recording's own setting the replay agrees with the trace's hit column event by event
    in total."""
    for trace in recorded.values():
        frame = trace.to_frame()
        gets = frame[frame["op"] == "get"]
        row = simulate(trace, **RECORDED).iloc[0]
        assert row.hits == int(gets["hit"].sum())


# -- the curve -------------------------------------------------------------------------------------
def test_earlier_greater_counts_inversions_per_element() -> None:
    values = np.random.default_rng(3).permutation(400)
    expected = [int((values[:i] > values[i]).sum()) for i in range(len(values))]
    assert _earlier_greater(values).tolist() == expected
    assert _earlier_greater(np.array([5])).tolist() == [0]


def test_curve_is_exact_lru_at_every_size() -> None:
    rng = random.Random(5)
    keys = [int(rng.paretovariate(0.8)) % 300 for _ in range(6_000)]
    trace = Trace()
    for i, k in enumerate(keys):
        trace.record(float(i), "r", k, "put" if i % 17 == 0 else "get")
    curve = simulate(trace, max_size="curve")
    assert curve["max_size"].tolist() == list(range(1, len(set(keys)) + 1))
    gets = [k for i, k in enumerate(keys) if i % 17]
    for size in (1, 2, 3, 10, 50, 100, len(set(keys))):
        # a put moves its key to the top without being a lookup
        store: OrderedDict[int, None] = OrderedDict()
        hits = 0
        for i, k in enumerate(keys):
            if i % 17 and k in store:
                hits += 1
            store[k] = None
            store.move_to_end(k)
            if len(store) > size:
                store.popitem(last=False)
        assert curve.loc[curve.max_size == size, "hit_ratio"].item() == pytest.approx(hits / len(gets))
    assert naive_lru_hit_ratio(keys, 10) > 0  # the workload has reuse


@pytest.mark.parametrize("workload", ["zipf", "scan"])
def test_curve_agrees_with_the_memory_store_replay(workload: str, zipf: Trace, scan: Trace) -> None:
    """The memory store keeps LRU order only once half full, so the exact replay and the pure-LRU curve
    can differ a little after warm-up (0.13 point on the scan trace at 4 000); they agree within half a
    point."""
    trace = {"zipf": zipf, "scan": scan}[workload]
    sizes = [100, 1_000, 2_500, 4_000]
    curve = lru_curve(trace, sizes=sizes)
    exact = simulate(trace, max_size=sizes)
    assert curve["max_size"].tolist() == sizes
    for c, e in zip(curve.hit_ratio, exact.hit_ratio, strict=True):
        assert abs(c - e) < 0.005
    assert curve.hit_ratio.is_monotonic_increasing


def test_curve_refuses_a_ttl() -> None:
    with pytest.raises(ValueError, match="no TTL"):
        simulate(Trace.synthetic_zipf(10, 100), max_size="curve", ttl=60)


# -- bounds, policies, regions, L1 ----------------------------------------------------------------
def test_belady_on_a_hand_counted_trace() -> None:
    # size 2: a b c a b c a b c — LRU never hits; OPT keeps a and switches b/c: 4 hits
    trace = Trace()
    for i, k in enumerate("abcabcabc"):
        trace.record(float(i), "r", k, "get")
    frame = simulate(trace, max_size=2, policy=["lru", "opt", "infinite"])
    by = frame.set_index("policy")
    assert by.loc["lru", "hits"] == 0
    assert by.loc["opt", "hits"] == 4
    assert by.loc["infinite", "hits"] == 6 and pd.isna(by.loc["infinite", "max_size"])


def test_bounds_bracket_lru_with_a_ttl(zipf: Trace) -> None:
    frame = simulate(zipf, max_size=[200, 2_000], ttl=[None, 60], policy=["lru", "opt", "infinite"])
    for (ttl, size), group in frame[frame.policy != "infinite"].groupby(["ttl", "max_size"], dropna=False):
        lru = group.loc[group.policy == "lru", "hit_ratio"].item()
        opt = group.loc[group.policy == "opt", "hit_ratio"].item()
        inf = frame.loc[(frame.policy == "infinite") & (frame.ttl.isna() if pd.isna(ttl) else frame.ttl == ttl),
                        "hit_ratio"].item()
        assert lru < opt <= inf, (ttl, size)
    # with a TTL, even an unbounded store misses on expiry
    inf = frame[frame.policy == "infinite"].set_index("ttl", drop=False)
    assert inf["hit_ratio"].iloc[0] > inf["hit_ratio"].iloc[1]
    assert (frame.loc[frame.ttl.isna(), "expirations"] == 0).all()
    assert (frame.loc[frame.ttl == 60, "expirations"] > 0).all()


def test_one_row_per_combination_with_the_contract_columns(zipf: Trace) -> None:
    frame = simulate(zipf, max_size=[100, 1_000], ttl=[None, 60, 600], policy="lru")
    assert list(frame.columns[:8]) == ["region", "max_size", "ttl", "policy", "hit_ratio", "misses", "loads",
                                       "est_load_time_s"]
    assert len(frame) == 6
    assert frame[["max_size", "ttl"]].drop_duplicates().shape[0] == 6
    assert (frame.region == "default").all()
    # bigger and longer-lived is never worse
    ordered = frame.sort_values(["ttl", "max_size"])
    for _, group in ordered.groupby("ttl", dropna=False):
        assert group.hit_ratio.is_monotonic_increasing


def test_unknown_policy_names_the_known_ones(zipf: Trace) -> None:
    assert policies() == ("lru", "tinylfu", "opt", "infinite")  # the memory driver's, then the bounds
    with pytest.raises(ValueError, match=r"unknown memory policy 'arc'; choose one of lru, tinylfu"):
        simulate(zipf, max_size=10, policy="arc")


def test_regions_are_replayed_apart() -> None:
    trace = Trace()
    # two regions reading the same keys in turn: apart, each has a store of its own
    for i in range(2_000):
        trace.record(float(i), "a" if i % 2 else "b", i % 20, "get")
    frame = simulate(trace, max_size=20).set_index("region")
    assert set(frame.index) == {"a", "b"}
    assert frame.loc["a", "misses"] == 10 and frame.loc["b", "misses"] == 10  # cold misses only
    only = simulate(trace, region="a", max_size=20)
    assert only.region.tolist() == ["a"]
    with pytest.raises(ValueError, match="not in the trace"):
        simulate(trace, region="c", max_size=20)


def test_deletes_and_puts_replay_as_writes() -> None:
    trace = Trace()
    for i, (op, k) in enumerate([("get", 1), ("get", 1), ("delete", 1), ("get", 1), ("put", 2), ("get", 2)]):
        trace.record(float(i), "r", k, op)
    row = simulate(trace, max_size=10).iloc[0]
    assert (row.lookups, row.hits, row.misses) == (4, 2, 2)


def test_per_key_load_times_estimate_the_load_time() -> None:
    trace = Trace()
    trace.record(0.0, "r", "slow", "get")
    trace.record(0.0, "r", "slow", "load", load_time=2.0)
    trace.record(1.0, "r", "fast", "get")
    trace.record(1.0, "r", "fast", "load", load_time=0.5)
    trace.record(2.0, "r", "new", "get")  # never loaded in the trace: the mean, 1.25
    trace.record(3.0, "r", "slow", "get")  # expired with ttl=1: loaded again
    frame = simulate(trace, max_size=10, ttl=[None, 1.0]).set_index("ttl", drop=False)
    assert frame["est_load_time_s"].tolist() == pytest.approx([2.0 + 0.5 + 1.25, 2.0 + 0.5 + 1.25 + 2.0])


def test_a_sampled_trace_predicts_the_full_one(zipf: Trace) -> None:
    sampled = Trace(sample=0.5)
    for t, k in zip(zipf.time, zipf.key_hash, strict=True):
        sampled.record(t, "default", k, "get")
    assert 0.4 < len(sampled) / len(zipf) < 0.6
    full = simulate(zipf, max_size=1_000, ttl=120)
    part = simulate(sampled, max_size=1_000, ttl=120)
    assert part.max_size[0] == 1_000
    # half the keys of a 5 000-key Zipf: an estimate within a few points (3.1 here); more keys, closer
    assert abs(part.hit_ratio[0] - full.hit_ratio[0]) < 0.05
    assert abs(part.lookups[0] - full.lookups[0]) < 0.15 * full.lookups[0]  # counts scaled back by 2


def test_progress_bar_is_shown_on_long_replays(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tqdm")
    trace = Trace.synthetic_zipf(100, 2_000)
    simulate(trace, max_size=10, progress=True)
    assert "simulate" in capsys.readouterr().err
    simulate(trace, max_size=10)  # short: no bar by default
    simulate(trace, max_size=10, progress=False)
    assert capsys.readouterr().err == ""


# -- the docs page -------------------------------------------------------------------------------
def test_docs_page_runs_top_to_bottom() -> None:
    """docs/simulate.md reads as one story: its blocks run in order in one namespace."""
    blocks = [b for b in page_blocks(["docs/simulate.md"], "python") if not b.skip]
    assert len(blocks) >= 5
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    for block in blocks:
        code = "\n" * block.line + block.code
        exec(compile(code, str(ROOT / block.file), "exec", dont_inherit=True), namespace)


def test_docstring_examples_run() -> None:
    import doctest

    module = sys.modules["cachekit.simulate"]  # ``cachekit.simulate`` itself is the function
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 4 and result.failed == 0
    result = doctest.testmod(sys.modules["cachekit.trace"], optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3 and result.failed == 0


def test_ttls_are_taken_as_the_config_takes_them(zipf: Trace) -> None:
    from datetime import timedelta

    frame = simulate(zipf, max_size=500, ttl=[60, "1m", timedelta(minutes=1), "2m"])
    assert frame.ttl.tolist() == [60.0, 120.0]  # the same setting once
    assert frame.hit_ratio[0] < frame.hit_ratio[1]
    with pytest.raises(ValueError, match="duration"):
        simulate(zipf, max_size=500, ttl="soon")
    with pytest.raises(ValueError, match="positive"):
        simulate(zipf, max_size=500, ttl=0)
