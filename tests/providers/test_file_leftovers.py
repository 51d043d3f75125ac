"""The file store reclaims what crashed writers leave behind, and keeps within max_size / max_bytes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cachekit import CacheConfig
from cachekit.providers.base import MISSING
from cachekit.providers.file import STALE_TEMP_AFTER, FileDriver


def temp_files(root: Path) -> list[Path]:
    return sorted(root.glob("[0-9a-f][0-9a-f]/.*.tmp"))


def entry_files(root: Path) -> list[Path]:
    return sorted(root.glob("[0-9a-f][0-9a-f]/*.ck"))


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def plant_temp(d: FileDriver, key: str, pid: int = 4242) -> Path:
    """A temporary file named as the driver names them, next to ``key``'s entry file."""
    entry = Path(d._slot(key)[1])
    entry.parent.mkdir(parents=True, exist_ok=True)
    temp = entry.parent / f".{entry.name}.{pid}.0123456789ab.tmp"
    temp.write_bytes(b"half a value")
    return temp


# A writer that dies between writing its temporary file and moving it into place: os.replace says
# where it is, then waits to be killed. The parent SIGKILLs it there, as a crash would.
KILLED_WRITER = """
import os, sys, time
from cachekit.providers.file import FileDriver

def stall(src, dst):
    print(src, flush=True)
    time.sleep(60)

driver = FileDriver(sys.argv[1])
os.replace = stall
driver.put(sys.argv[2], b"x" * 65536)
"""


def kill_writer_mid_write(root: Path, key: str) -> Path:
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(root), key],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        temp = Path(proc.stdout.readline().strip())
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return temp


def test_temp_files_of_sigkilled_writers_are_reclaimed_on_open_once_stale(tmp_path: Path) -> None:
    root = tmp_path / "store"
    FileDriver(root).close()
    leftovers = [kill_writer_mid_write(root, f"key:{i}") for i in range(3)]
    assert sorted(leftovers) == temp_files(root)
    assert all(p.stat().st_size > 65536 for p in leftovers)  # whole values, never moved into place

    # just killed: as young as a live writer's file, so an open keeps them
    FileDriver(root).close()
    assert temp_files(root) == sorted(leftovers)

    for p in leftovers:
        age(p, STALE_TEMP_AFTER + 5)
    d = FileDriver(root)
    assert temp_files(root) == []
    assert d.get("key:0") is MISSING  # never moved into place: the key has no value
    d.close()


def test_flush_removes_stale_temp_files_and_keeps_a_live_writers(tmp_path: Path) -> None:
    d = FileDriver(tmp_path)
    d.put("a", 1)
    stale = plant_temp(d, "a", pid=1)
    live = plant_temp(d, "b", pid=2)
    age(stale, STALE_TEMP_AFTER + 1)
    assert d.flush() is True
    assert not stale.exists()
    assert live.exists() and live.read_bytes() == b"half a value"
    assert entry_files(tmp_path) == []
    d.close()


def test_stale_temp_age_is_configurable_and_foreign_files_are_left_alone(tmp_path: Path) -> None:
    d = FileDriver(tmp_path)
    d.put("a", 1)
    temp = plant_temp(d, "a")
    foreign = temp.parent / ".notes.tmp"
    foreign.write_text("mine")
    age(temp, 10)
    age(foreign, 10_000)
    assert FileDriver(tmp_path, stale_temp_after=60).reclaim_temp_files() == 0
    assert FileDriver(tmp_path, stale_temp_after=5).reclaim_temp_files() == 0  # removed on open already
    assert not temp.exists() and foreign.exists()
    assert d.get("a") == 1
    d.close()


# -- max_size / max_bytes ---------------------------------------------------------------------------
def set_access_times(d: FileDriver, keys: list[str], start: float) -> None:
    """Give ``keys`` increasing access times, one second apart, ``start`` seconds ago."""
    for i, key in enumerate(keys):
        age(Path(d._slot(key)[1]), start - i)


def test_max_size_evicts_the_entries_accessed_longest_ago(tmp_path: Path) -> None:
    d = FileDriver(tmp_path, max_size=10)
    keys = [f"k{i}" for i in range(10)]
    for key in keys:
        d.put(key, key)
    assert len(entry_files(tmp_path)) == 10  # at the bound, not over it
    set_access_times(d, keys, start=1000)
    assert d.get("k0") == "k0"  # read: now the most recently accessed
    d.put("k10", "k10")  # 11 > 10: sweep down to 9 (90 %)
    assert len(entry_files(tmp_path)) == 9
    assert [k for k in [*keys, "k10"] if d.get(k) is MISSING] == ["k1", "k2"]
    d.close()


def test_max_bytes_bounds_the_total_size_of_the_entry_files(tmp_path: Path) -> None:
    d = FileDriver(tmp_path, max_bytes=50_000)
    for i in range(40):
        d.put(f"k{i}", b"x" * 4000)
        total = sum(p.stat().st_size for p in entry_files(tmp_path))
        assert total <= 50_000
    assert d.get("k39") == b"x" * 4000  # the newest stays
    assert d.get("k0") is MISSING  # the oldest went
    assert 9 <= len(entry_files(tmp_path)) <= 12
    d.close()


def test_overwrites_and_counters_count_once_and_increments_keep_the_bound(tmp_path: Path) -> None:
    d = FileDriver(tmp_path, max_size=5)
    for _ in range(20):
        d.put("same", "v")
        d.increment("n")
    assert len(entry_files(tmp_path)) == 2
    for i in range(20):
        d.increment(f"c{i}")
        assert len(entry_files(tmp_path)) <= 5
    d.close()


def test_a_second_process_sees_the_bound_at_its_next_sweep(tmp_path: Path) -> None:
    one, two = FileDriver(tmp_path, max_size=20), FileDriver(tmp_path, max_size=20)
    for i in range(15):
        one.put(f"a{i}", i)
    for i in range(15):
        two.put(f"b{i}", i)  # two counts the directory on its first write: 15 + its own
        assert len(entry_files(tmp_path)) <= 20
    one.close()
    two.close()


def test_unbounded_store_never_sweeps_and_reads_do_not_touch(tmp_path: Path) -> None:
    d = FileDriver(tmp_path)
    for i in range(50):
        d.put(f"k{i}", i)
    set_access_times(d, ["k0"], start=1000)
    before = Path(d._slot("k0")[1]).stat().st_mtime
    assert d.get("k0") == 0
    assert Path(d._slot("k0")[1]).stat().st_mtime == before
    assert len(entry_files(tmp_path)) == 50
    d.close()


@pytest.mark.parametrize("bound", [{"max_size": 5}, {"max_bytes": 2000}])
def test_provider_bounds_from_the_config_reach_the_driver(tmp_path: Path, bound: dict[str, int]) -> None:
    config = CacheConfig(providers={"disk": {"type": "file", "path": str(tmp_path), **bound}},
                         regions={"default": {"provider": "disk"}})
    with config.compile() as runtime:
        region = runtime.region()
        for i in range(30):
            assert region.put(f"user:{i}", {"i": i})
        assert region.get("user:29") == {"i": 29}
    files = entry_files(tmp_path)
    assert 1 <= len(files) <= bound.get("max_size", 30)
    assert sum(p.stat().st_size for p in files) <= bound.get("max_bytes", 10**9)
