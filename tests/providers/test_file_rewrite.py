"""FileDriver rewrites an existing entry in place: same file, readers never use half a write, and the
cases where it must not (a symlink, a second hard link, a failed write) are handled."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cachekit.errors import ProviderError
from cachekit.providers import file_format
from cachekit.providers.base import MISSING
from cachekit.providers.file import FileDriver


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[FileDriver]:
    d = FileDriver(tmp_path / "store")
    yield d
    d.close()


def path_of(d: FileDriver, key: str) -> Path:
    return Path(d._slot(key)[1])


def test_an_existing_entry_is_rewritten_in_the_same_file(driver: FileDriver) -> None:
    driver.put("k", "first value, the longer one")
    inode = path_of(driver, "k").stat().st_ino
    driver.put("k", "short")
    assert driver.get("k") == "short"
    driver.put("k", "x" * 5000)  # longer than the file was
    assert driver.get("k") == "x" * 5000
    assert path_of(driver, "k").stat().st_ino == inode
    driver.put("k", "short again")  # shorter: the file is cut to the new length
    assert driver.get("k") == "short again"
    assert path_of(driver, "k").stat().st_size < 100
    assert [p.name for p in path_of(driver, "k").parent.iterdir()] == [path_of(driver, "k").name]


def test_counters_and_ttl_extensions_rewrite_in_place_too(driver: FileDriver) -> None:
    assert driver.increment("n", 5) == 5
    inode = path_of(driver, "n").stat().st_ino
    assert driver.increment("n", 7) == 12
    assert driver.extend_ttl(["n"], 3600)
    assert path_of(driver, "n").stat().st_ino == inode
    assert driver.increment("n") == 13


def test_a_symlink_at_the_entry_path_is_replaced_not_followed(driver: FileDriver, tmp_path: Path) -> None:
    driver.put("k", "v1")
    target = tmp_path / "elsewhere.txt"
    target.write_bytes(b"not yours")
    entry = path_of(driver, "k")
    entry.unlink()
    entry.symlink_to(target)
    driver.put("k", "v2")
    assert target.read_bytes() == b"not yours"
    assert not entry.is_symlink()
    assert driver.get("k") == "v2"


def test_a_file_with_a_second_hard_link_is_replaced_not_rewritten(driver: FileDriver, tmp_path: Path) -> None:
    driver.put("k", "v1")
    entry = path_of(driver, "k")
    other = tmp_path / "hard-link"
    os.link(entry, other)
    before = other.read_bytes()
    driver.put("k", "v2")
    assert other.read_bytes() == before  # the other name still holds the old bytes
    assert entry.stat().st_nlink == 1
    assert driver.get("k") == "v2"


def test_a_rewrite_that_fails_midway_leaves_no_half_entry(driver: FileDriver, monkeypatch: pytest.MonkeyPatch) -> None:
    driver.put("k", "old value")

    def disk_full(fd: int, data: object, offset: int) -> int:
        os.write(fd, b"CKF\x01garbage")  # some bytes made it, as a real short write would leave
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(file_format.os, "pwrite", disk_full)
    with pytest.raises(ProviderError, match="No space left"):
        driver.put("k", "new value")
    monkeypatch.undo()
    assert not path_of(driver, "k").exists()
    assert driver.get("k") is MISSING
    driver.put("k", "after")
    assert driver.get("k") == "after"


@pytest.mark.parametrize("sizes", [(10, 3000), (200, 200)], ids=["lengths differ", "same length"])
def test_readers_racing_a_rewriter_get_whole_values_only(tmp_path: Path, sizes: tuple[int, int]) -> None:
    """One thread rewrites a key in place without pause; readers read it meanwhile (syscalls release the
    GIL, so the reads and writes overlap in the kernel). A torn read must be read again under the lock:
    every read is one of the two whole values, never an error, a miss, or a removed file."""
    writer_driver = FileDriver(tmp_path / "store")
    values = ["a" * sizes[0], "b" * sizes[1]]
    writer_driver.put("k", values[0], ttl=None)
    stop = threading.Event()
    problems: list[object] = []
    reads = [0]

    def write() -> None:
        i = 0
        while not stop.is_set():
            writer_driver.put("k", values[i % 2])
            i += 1

    def read() -> None:
        d = FileDriver(tmp_path / "store")  # its own driver: locks shared through the lock files only
        try:
            while not stop.is_set():
                try:
                    got = d.get("k")
                except Exception as exc:  # any error is what the test looks for
                    problems.append(exc)
                    continue
                reads[0] += 1
                if got not in values:
                    problems.append(got if got is MISSING else f"{str(got)[:20]}... ({len(got)} chars)")
        finally:
            d.close()

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join()
    writer_driver.close()
    assert problems == []
    assert reads[0] > 100
