"""FileDriver: every operation, expiry on a fake clock, damaged files, odd keys, and real processes."""

from __future__ import annotations

import doctest
import math
import os
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from cachekit.clock import FakeClock
from cachekit.errors import ProviderError
from cachekit.providers import file as file_module
from cachekit.providers.base import MISSING
from cachekit.providers.file import FileDriver
from cachekit.serializers import SerializationError, TamperedPayloadError, make_serializer

ENTRY = ("value", math.inf, (("cachekit:default:__gen__:tag:users", 3),))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_000_000.0)


@pytest.fixture
def driver(tmp_path: Path, clock: FakeClock) -> Iterator[FileDriver]:
    d = FileDriver(tmp_path / "store", clock=clock)
    yield d
    d.close()


def entry_files(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("[0-9a-f][0-9a-f]/*.ck"))


def path_of(d: FileDriver, key: str) -> Path:
    return Path(d._slot(key)[1])


# -- payloads (the basics of every driver are in tests/conformance/test_drivers.py) ----------------
def test_put_overwrites_in_place_one_file_per_key(driver: FileDriver) -> None:
    driver.put("k", "old")
    driver.put("k", "new")
    assert driver.get("k") == "new"
    assert len(entry_files(driver.path)) == 1


def test_counter_payload_is_decimal_ascii(driver: FileDriver) -> None:
    driver.increment("n", 42)
    assert path_of(driver, "n").read_bytes().endswith(b"n42")


def test_flush_removes_every_entry_file(driver: FileDriver) -> None:
    for i in range(50):
        driver.put(f"k{i}", i)
    assert driver.flush() is True
    assert entry_files(driver.path) == []
    assert driver.get("k1") is MISSING
    driver.put("after", 1)
    assert driver.get("after") == 1


def test_flush_leaves_foreign_files_alone(driver: FileDriver) -> None:
    driver.put("k", 1)
    fanout = path_of(driver, "k").parent
    foreign = [
        driver.path / "README.txt",
        fanout / "notes.txt",
        fanout / ("0" * 64 + ".txt"),
        driver.path / "other" / ("0" * 64 + ".ck"),
        driver.path / "zz" / ("0" * 64 + ".ck"),
    ]
    for path in foreign:
        path.parent.mkdir(exist_ok=True)
        path.write_text("not yours")
    driver.flush()
    assert driver.get("k") is MISSING
    assert all(path.read_text() == "not yours" for path in foreign)


def test_ping_leaves_no_file_behind(driver: FileDriver) -> None:
    driver.ping()
    assert entry_files(driver.path) == []


def test_json_serializer_returns_the_entry_exactly(tmp_path: Path) -> None:
    d = FileDriver(tmp_path, serializer=make_serializer("json"))
    d.put("k", ENTRY)
    assert d.get("k") == ("value", math.inf, (("cachekit:default:__gen__:tag:users", 3),))
    d.close()


def test_files_are_private_to_the_owner(driver: FileDriver) -> None:
    driver.put("k", 1)
    assert path_of(driver, "k").stat().st_mode & 0o077 == 0


def test_no_temporary_files_are_left_behind(driver: FileDriver) -> None:
    for i in range(20):
        driver.put("k", i)
        driver.increment("n")
    leftovers = [p for p in driver.path.rglob("*.tmp")]
    assert leftovers == []


def test_module_docstring_examples_run() -> None:
    result = doctest.testmod(file_module)
    assert result.attempted > 5 and result.failed == 0


# -- expiry ---------------------------------------------------------------------------------------
def test_entry_expires_after_ttl_and_its_file_is_removed(driver: FileDriver, clock: FakeClock) -> None:
    driver.put("k", "v", ttl=10)
    clock.advance(9.999)
    assert driver.get("k") == "v"
    clock.advance(0.001)
    assert driver.get("k") is MISSING
    assert not path_of(driver, "k").exists()


def test_expired_entry_is_not_had_not_scanned_and_can_be_added(driver: FileDriver, clock: FakeClock) -> None:
    driver.put("k", "v", ttl=1)
    clock.advance(2)
    assert driver.has("k") is False
    assert list(driver.scan("*")) == []
    assert driver.add("k", "again", ttl=5) is True
    assert driver.get("k") == "again"


def test_entry_without_ttl_never_expires(driver: FileDriver, clock: FakeClock) -> None:
    driver.put("k", "v")
    clock.advance(10 * 365 * 86400)
    assert driver.get("k") == "v"


def test_non_positive_ttl_removes_the_key(driver: FileDriver) -> None:
    driver.put("k", "v")
    assert driver.put("k", "w", ttl=0) is True
    assert driver.get("k") is MISSING
    assert driver.add("k", "w", ttl=-1) is True
    assert driver.get("k") is MISSING


def test_increment_with_ttl_sets_expiry_and_without_keeps_it(driver: FileDriver, clock: FakeClock) -> None:
    assert driver.increment("n", 1, ttl=10) == 1
    clock.advance(5)
    assert driver.increment("n") == 2  # keeps the deadline at t+10
    clock.advance(5)
    assert driver.get("n") is MISSING
    assert driver.increment("n") == 1  # expired counter restarts from 0
    clock.advance(1000)
    assert driver.get("n") == 1


def test_increment_with_ttl_moves_the_deadline(driver: FileDriver, clock: FakeClock) -> None:
    driver.increment("n", 1, ttl=10)
    clock.advance(8)
    driver.increment("n", 1, ttl=10)
    clock.advance(8)
    assert driver.get("n") == 2


def test_processes_with_different_clocks_agree_on_absolute_expiry(tmp_path: Path) -> None:
    writer = FileDriver(tmp_path, clock=FakeClock(100.0))
    reader_before = FileDriver(tmp_path, clock=FakeClock(109.0))
    reader_after = FileDriver(tmp_path, clock=FakeClock(110.0))
    writer.put("k", "v", ttl=10)
    assert reader_before.get("k") == "v"
    assert reader_after.get("k") is MISSING
    for d in (writer, reader_before, reader_after):
        d.close()


# -- damaged files --------------------------------------------------------------------------------
def damage_truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-3])


def damage_garbage(path: Path) -> None:
    path.write_bytes(b"this is not a cache entry at all, just text")


def damage_flip_payload_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-2] ^= 0xFF
    path.write_bytes(bytes(data))


def damage_flip_expiry(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[9] ^= 0x10
    path.write_bytes(bytes(data))


def damage_empty(path: Path) -> None:
    path.write_bytes(b"")


def damage_header_only(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:20])


def damage_trailing_bytes(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"tail")


def damage_trailing_past_a_read(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"\0" * 70_000)  # longer than one read of the file


DAMAGES = [
    damage_trailing_bytes,
    damage_trailing_past_a_read,
    damage_truncate,
    damage_garbage,
    damage_flip_payload_byte,
    damage_flip_expiry,
    damage_empty,
    damage_header_only,
]


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda f: f.__name__)
def test_damaged_file_raises_serialization_error_and_is_removed(driver: FileDriver, damage: object) -> None:
    driver.put("bad", {"payload": list(range(100))})
    driver.put("good", "intact")
    damage(path_of(driver, "bad"))  # type: ignore[operator]
    with pytest.raises(SerializationError):
        driver.get("bad")
    assert not path_of(driver, "bad").exists()
    assert driver.get("bad") is MISSING
    assert driver.get("good") == "intact"
    assert list(driver.scan("*")) == ["good"]


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda f: f.__name__)
def test_scan_and_flush_survive_damaged_files(driver: FileDriver, damage: object) -> None:
    driver.put("bad", "x")
    driver.put("good", "y")
    damage(path_of(driver, "bad"))  # type: ignore[operator]
    assert "good" in list(driver.scan("*"))
    assert driver.flush() is True
    assert entry_files(driver.path) == []


def test_increment_of_a_corrupt_counter_raises_then_restarts(driver: FileDriver) -> None:
    driver.increment("n", 5)
    damage_garbage(path_of(driver, "n"))
    with pytest.raises(SerializationError):
        driver.increment("n")
    assert driver.increment("n") == 1


def test_add_over_a_corrupt_file_raises_then_succeeds(driver: FileDriver) -> None:
    driver.put("k", "v")
    damage_truncate(path_of(driver, "k"))
    with pytest.raises(SerializationError):
        driver.add("k", "w")
    assert driver.add("k", "w") is True
    assert driver.get("k") == "w"


def test_unsigned_file_is_rejected_by_a_signed_driver(tmp_path: Path) -> None:
    plain = FileDriver(tmp_path)
    signed = FileDriver(tmp_path, serializer=make_serializer("pickle", signing_key="k"))
    plain.put("k", "forged")
    with pytest.raises(TamperedPayloadError):
        signed.get("k")
    assert signed.get("k") is MISSING
    signed.put("k", "genuine")
    assert signed.get("k") == "genuine"
    plain.close()
    signed.close()


def test_file_replaced_between_read_and_discard_is_kept(driver: FileDriver, clock: FakeClock) -> None:
    driver.put("k", "old", ttl=1)
    path = path_of(driver, "k")
    stale = path.read_bytes()
    clock.advance(2)
    driver.put("k", "fresh")
    driver._discard(driver._slot("k"), stale)  # a reader that saw the expired file removes it late
    assert driver.get("k") == "fresh"


def test_unreadable_entry_raises_provider_error(driver: FileDriver) -> None:
    driver.put("k", 1)
    path = path_of(driver, "k")
    path.unlink()
    path.mkdir()  # reading a directory fails with an OSError other than "not found"
    with pytest.raises(ProviderError):
        driver.get("k")


# -- keys -----------------------------------------------------------------------------------------
ODD_KEYS = [
    "a/b/c",
    "../../../../etc/passwd",
    "..",
    ".",
    "/",
    "",
    "ключ:ünïcødé:✓:🙂",
    "back\\slash",
    "tab\tnewline\n",
    "x" * 10_000,
    "lone surrogate \udcff",
    "*?[glob]",
]


@pytest.mark.parametrize("key", ODD_KEYS, ids=lambda k: repr(k[:30]))
def test_odd_keys_work_and_stay_inside_the_directory(driver: FileDriver, key: str, tmp_path: Path) -> None:
    driver.put(key, key)
    assert driver.get(key) == key
    assert driver.has(key)
    assert list(driver.scan("*")) == [key]
    assert driver.increment(key + "#n") == 1
    for path in tmp_path.rglob("*"):
        assert path.resolve().is_relative_to(driver.path.resolve())
    files = entry_files(driver.path)
    assert len(files) == 2 and all(len(p.name) == 67 for p in files)
    assert driver.forget(key) is True
    assert driver.get(key) is MISSING


def test_all_odd_keys_coexist(driver: FileDriver) -> None:
    for key in ODD_KEYS:
        driver.put(key, key)
    assert sorted(driver.scan("*")) == sorted(ODD_KEYS)
    assert all(driver.get(key) == key for key in ODD_KEYS)


def test_a_file_holding_another_key_reads_as_missing(driver: FileDriver) -> None:
    # Simulates a digest collision: the file at B's path records key A.
    driver.put("A", "a-value")
    path_of(driver, "B").parent.mkdir(exist_ok=True)
    os.replace(path_of(driver, "A"), path_of(driver, "B"))
    assert driver.get("B") is MISSING
    assert driver.has("B") is False
    assert list(driver.scan("*")) == ["A"]  # scan reports the real key


# -- concurrency ----------------------------------------------------------------------------------
def test_concurrent_add_has_exactly_one_winner(tmp_path: Path) -> None:
    d = FileDriver(tmp_path)
    barrier = threading.Barrier(8)
    wins: list[bool] = []

    def work(i: int) -> None:
        barrier.wait()
        wins.append(d.add("lock", i))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 1
    d.close()


WORKER = """
import sys
from cachekit.providers.file import FileDriver

driver = FileDriver(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
for _ in range(int(sys.argv[3])):
    driver.increment(sys.argv[2])
driver.close()
print("done", flush=True)
"""


def start_worker(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_incrementing_one_key_give_the_exact_total(tmp_path: Path) -> None:
    workers = [start_worker(str(tmp_path), "cachekit:default:__gen__:tag:users", "200") for _ in range(2)]
    try:
        for w in workers:
            assert w.stdout is not None and w.stdout.readline().strip() == "ready"
        for w in workers:  # released together, so the increments interleave
            assert w.stdin is not None
            w.stdin.write("go\n")
            w.stdin.flush()
        results = [w.communicate(timeout=60) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
    for w, (out, err) in zip(workers, results, strict=True):
        assert w.returncode == 0, err
        assert out.strip() == "done"
    d = FileDriver(tmp_path)
    assert d.get("cachekit:default:__gen__:tag:users") == 400
    d.close()


def test_forked_children_sharing_a_driver_object_do_not_share_its_locks(tmp_path: Path) -> None:
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    d = FileDriver(tmp_path)
    d.increment("n")  # opens the lock file before forking: children inherit the descriptor
    read_end, write_end = os.pipe()
    children = []
    for _ in range(2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork in a threaded process (3.12+)
            pid = os.fork()
        if pid == 0:  # child
            code = 1
            try:
                os.close(write_end)
                os.read(read_end, 1)
                for _ in range(200):
                    d.increment("n")
                code = 0
            finally:
                os._exit(code)
        children.append(pid)
    os.close(read_end)
    os.write(write_end, b"go")  # one byte per child
    for _ in range(200):
        d.increment("n")
    os.close(write_end)
    statuses = [os.waitpid(pid, 0)[1] for pid in children]
    assert statuses == [0, 0]
    assert d.get("n") == 601
    d.close()


READER = """
import sys
from cachekit.providers.file import FileDriver

driver = FileDriver(sys.argv[1])
print(repr(driver.get(sys.argv[2])))
driver.put("from-child", {"pid-free": ("tuple", 1.5, None)})
driver.close()
"""


def test_one_process_writes_and_another_reads(tmp_path: Path) -> None:
    d = FileDriver(tmp_path)
    d.put("cachekit:default:user:1", ENTRY, ttl=3600)
    done = subprocess.run(
        [sys.executable, "-c", READER, str(tmp_path), "cachekit:default:user:1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == repr(ENTRY)
    assert d.get("from-child") == {"pid-free": ("tuple", 1.5, None)}
    d.close()


def test_oversize_value_is_refused_and_the_previous_value_is_kept(tmp_path: Path) -> None:
    from cachekit import CacheConfig
    from cachekit.errors import ValueTooLargeError

    d = FileDriver(tmp_path / "c", max_value_size=200)
    assert d.put("k", "small")
    with pytest.raises(ValueTooLargeError, match="max_value_size is 200"):
        d.put("k", "x" * 1000)
    with pytest.raises(ValueTooLargeError):
        d.add("new", "x" * 1000)
    assert d.get("k") == "small" and d.get("new") is MISSING

    # through a region: a failed write, counted, never raised; the old value stays
    rt = CacheConfig(providers={"disk": {"type": "file", "path": str(tmp_path / "r"), "max_value_size": 200}},
                     regions={"default": {"provider": "disk"}}).compile()
    try:
        r = rt.region()
        assert r.put("k", "small")
        assert r.put("k", "x" * 1000) is False
        assert r.get("k") == "small" and r.stats.errors == 1
    finally:
        rt.close()


def test_entries_larger_than_one_read_round_trip(driver: FileDriver) -> None:
    big = bytes(range(256)) * 1000  # 256 kB: read in several os.read calls
    assert driver.put("big", big)
    assert driver.get("big") == big
    assert driver.get("big") == big  # the remembered digest of the key finds the same file


def test_temporary_file_names_are_unique_and_reclaimable(driver: FileDriver) -> None:
    from cachekit.providers.file_format import TEMP_NAME, write_temp

    target = path_of(driver, "k")
    target.parent.mkdir(parents=True, exist_ok=True)
    temps = {write_temp(str(target), b"x") for _ in range(50)}
    assert len(temps) == 50
    assert all(TEMP_NAME.fullmatch(Path(t).name) for t in temps)
    for t in temps:
        Path(t).unlink()
