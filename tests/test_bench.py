"""The benchmark cannot rot: ``bench/run.py --smoke`` runs every scenario on tiny sizes and its checks hold.

Nothing here is timed. The smoke run checks, before any timing, that every store returns the value
(a hit that is secretly a miss fails its row); this test then requires every cachekit row and every
row of an installed peer to be measured, every target of issue 14 to have a number, and the hit-ratio
bounds to bound the policies.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from servers import need_module

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"

need_module("numpy")  # the bench needs it: skipped without it locally, a failure when CI=true


def _bench_module(name: str):  # type: ignore[no-untyped-def]
    """Import ``bench/<name>.py`` (the bench's modules import each other by plain name)."""
    if str(BENCH) not in sys.path:
        sys.path.append(str(BENCH))  # appended: the tests' own modules keep precedence
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench")
    env = {**os.environ, "CACHEKIT_BENCH_NO_INSTALL": "1"}
    done = subprocess.run([sys.executable, str(BENCH / "run.py"), "--smoke", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    results["_doc"] = (out / "benchmarks.md").read_text()
    results["_stdout"] = done.stdout
    return results


def _installed(library: str) -> bool:
    name = {"dogpile.cache": "dogpile", "redis-py": "redis", "redis.asyncio": "redis", "python": "json",
            "bound": "numpy"}.get(
        library, library)
    return importlib.util.find_spec(name) is not None


def _needs_missing_server(key: str) -> bool:
    binary = "redis-server" if "redis" in key or key == "bus" else "memcached" if "memcached" in key else None
    return binary is not None and shutil.which(binary) is None


@pytest.mark.timeout(660)
def test_every_cachekit_row_and_every_installed_peer_row_is_measured(smoke: dict) -> None:
    keys = {s["key"] for s in smoke["scenarios"]}
    for expected in ("zipf_memory_get", "zipf_memory_put", "zipf_cached", "zipf_stats", "zipf_redis_get",
                     "zipf_redis_put", "zipf_redis_get_many", "zipf_redis_l1", "zipf_memcached_get",
                     "zipf_memcached_put", "zipf_memcached_get_many", "zipf_file_get", "zipf_file_put", "import"):
        assert expected in keys, f"scenario {expected} missing from the run"
    for s in smoke["scenarios"]:
        if _needs_missing_server(s["key"]):
            continue
        for row in s["rows"]:
            if row["library"] == "cachekit" or _installed(row["library"].split()[0]):
                assert row["status"] == "ok", f"{s['key']}: {row['library']} {row['label']}: {row['note']}"
                assert row["ns_min"] > 0 and row["ratio"] is not None
        if s["key"].startswith("zipf_") or s["key"] == "import":
            ref = [r for r in s["rows"] if r["reference"]]
            assert len(ref) == 1 and ref[0]["ratio"] == pytest.approx(1.0)
            assert all(r["ratio_min"] <= r["ratio"] <= r["ratio_max"] for r in s["rows"] if r["status"] == "ok")


@pytest.mark.timeout(660)
def test_every_target_of_the_issue_has_a_number_and_a_verdict(smoke: dict) -> None:
    targets = _bench_module("targets")
    rows = smoke["targets"]
    assert [r["case"] for r in rows] == [t.case for t in targets.TARGETS]
    for t, r in zip(targets.TARGETS, rows, strict=True):
        if _needs_missing_server(t.scenario) or not _installed(t.library.split()[0]):
            continue
        assert r["value"] is not None, f"{t.case} / {t.goal}: {r['measured']}"
        assert r["met"] in (True, False)
    doc = smoke["_doc"]
    assert doc.index("## Targets") < doc.index("## Reproduce") < doc.index("## Results")
    for r in rows:
        assert f"| {r['case']} | {r['target']} | {r['measured']} |" in doc
    assert "== Targets" in smoke["_stdout"]


@pytest.mark.timeout(660)
def test_hit_ratio_bounds_hold_and_every_cachekit_policy_is_replayed(smoke: dict) -> None:
    from cachekit.providers.memory import POLICIES

    for label, trace in smoke["hit_ratio"]["traces"].items():
        by = {(r["library"], r["policy"]): r["ratio"] for r in trace["rows"]}
        infinite, opt = by[("bound", "infinite cache")], by[("bound", "Belady OPT")]
        assert opt <= infinite
        for (library, policy), ratio in by.items():
            if library != "bound" and ratio is not None:
                assert 0 < ratio <= opt + 1e-12, f"{label}: {library} {policy} beats OPT"
        for policy in POLICIES:
            assert by[("cachekit", f'MemoryDriver(policy="{policy}")')] is not None


def test_paired_ratio_is_the_median_of_side_by_side_repeats() -> None:
    harness = _bench_module("harness")
    s = harness.Scenario("x", "x", paired=True)
    ref = harness.Row("ref", "cachekit", reference=True, ns_min=1.0, times=[1.0, 2.0, 4.0])
    peer = harness.Row("peer", "peer", ns_min=3.0, times=[3.0, 2.0, 20.0])
    s.rows += [ref, peer]
    s.finish()
    assert (peer.ratio, peer.ratio_min, peer.ratio_max) == (3.0, 1.0, 5.0)
    assert harness.format_spread(peer) == "3.00x (1.00..5.00)"


def test_targets_compare_in_the_right_direction() -> None:
    harness, targets = _bench_module("harness"), _bench_module("targets")
    speed = next(t for t in targets.TARGETS if t.scenario == "zipf_redis_l1")
    cost = next(t for t in targets.TARGETS if t.scenario == "zipf_stats")

    def scenario(t, ratio: float):  # type: ignore[no-untyped-def]
        s = harness.Scenario(t.scenario, t.scenario)
        s.rows.append(harness.Row(t.label, t.library, ratio=ratio, ns_min=1.0))
        return s

    def verdict(t, ratio: float) -> bool:  # type: ignore[no-untyped-def]
        rows = targets.evaluate([scenario(t, ratio)], None)
        return next(r["met"] for r, tt in zip(rows, targets.TARGETS, strict=True) if tt is t)

    assert verdict(speed, 25.0) and not verdict(speed, 19.0)
    assert verdict(cost, 1.04) and not verdict(cost, 1.06)
