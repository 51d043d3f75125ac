"""The file store's in-place rewrite against other processes (spawned, real flocks), and a planted FIFO.

Readers in other processes race a writer process that rewrites a key in place with values that grow
and shrink across the 64 KiB read chunk: every read is one whole value that was written (never half
of one, never an error). Counters incremented by several processes while another process overwrites
other keys on the same lock stripes count exactly. Behaviour only: no timing is asserted.
"""

from __future__ import annotations

import multiprocessing
import os
import stat
import threading
from pathlib import Path

import pytest

from cachekit.providers.base import MISSING
from cachekit.providers.file import FileDriver
from cachekit.serializers import SerializationError

SIZES = (10, 70_000, 300, 140_000, 65_536 - 40, 65_536 + 40, 5)  # across READ_CHUNK (64 KiB) both ways
ROUNDS = 300


def value_for(i: int) -> bytes:
    size = SIZES[i % len(SIZES)]
    tag = b"%08d" % i
    return tag + bytes([i % 251]) * (size - 16) + tag


def whole(value: object) -> bool:
    if not isinstance(value, bytes) or len(value) < 16:
        return False
    i = int(value[:8])
    return value == value_for(i)


def rewriter(path: str, keys: list[str], rounds: int, bounded: bool) -> None:
    d = FileDriver(path, max_bytes=2_000_000 if bounded else None)
    for i in range(rounds):
        for k in keys:
            d.put(k, value_for(i), ttl=None if i % 5 else 0.001)  # some expire at once: torn AND expired
    d.close()


def reader(path: str, keys: list[str], stop: multiprocessing.synchronize.Event, bad: multiprocessing.Queue) -> None:
    d = FileDriver(path)
    reads = 0
    try:
        while not stop.is_set() or reads < 50:
            for k in keys:
                value = d.get(k)
                reads += 1
                if value is not MISSING and not whole(value):
                    bad.put(repr(value)[:80])
                    return
            list(d.scan("k*"))  # header-only reads while files change: skipped or whole, never an error
    except Exception as exc:  # any error (a torn read surfacing as corruption) is a failure
        bad.put(f"{type(exc).__name__}: {exc}")
    finally:
        d.close()


def incrementer(path: str, n: int) -> None:
    d = FileDriver(path)
    for _ in range(n):
        d.increment("counter")
    d.close()


def overwriter(path: str, n: int) -> None:
    d = FileDriver(path)
    for i in range(n):
        d.put(f"other{i % 70}", i)  # 70 keys: several share the counter's lock stripe (64 stripes)
        d.put("counter-neighbour", i)
    d.close()


@pytest.mark.parametrize("bounded", [False, True], ids=["unbounded", "max_bytes"])
def test_readers_in_other_processes_get_whole_values_only(tmp_path: Path, bounded: bool) -> None:
    ctx = multiprocessing.get_context("spawn")
    path = str(tmp_path / "store")
    keys = ["k1", "k2"]
    seed = FileDriver(path)
    for k in keys:
        seed.put(k, value_for(0))
    stop, bad = ctx.Event(), ctx.Queue()
    readers = [ctx.Process(target=reader, args=(path, keys, stop, bad)) for _ in range(2)]
    writer = ctx.Process(target=rewriter, args=(path, keys, ROUNDS, bounded))
    for p in (*readers, writer):
        p.start()
    writer.join(300)
    stop.set()
    for p in readers:
        p.join(120)
    assert writer.exitcode == 0 and all(p.exitcode == 0 for p in readers)
    assert bad.empty(), bad.get()
    assert whole(seed.get("k1")) or seed.get("k1") is MISSING
    seed.close()


def test_increments_in_processes_racing_puts_on_the_same_stripes_count_exactly(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    path = str(tmp_path / "store")
    n = 300
    procs = [ctx.Process(target=incrementer, args=(path, n)) for _ in range(3)]
    procs.append(ctx.Process(target=overwriter, args=(path, n)))
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert all(p.exitcode == 0 for p in procs)
    d = FileDriver(path)
    assert d.get("counter") == 3 * n
    d.close()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
def test_a_fifo_planted_at_the_entry_path_does_not_hang_a_put(tmp_path: Path) -> None:
    """``overwrite`` opens the entry for writing before it checks that it is a plain file: a FIFO
    there (anyone who can write to a shared directory can plant one) would block the open until a
    reader comes, holding the key's lock. It is replaced by a new file instead, like a symlink."""
    d = FileDriver(tmp_path / "store")
    d.put("k", "first")
    entry = d._slot("k")[1]
    os.unlink(entry)
    os.mkfifo(entry, 0o600)
    done = threading.Event()

    def put() -> None:
        d.put("k", "second")
        done.set()

    thread = threading.Thread(target=put, daemon=True)
    thread.start()
    if not done.wait(30):
        fd = os.open(entry, os.O_RDONLY | os.O_NONBLOCK)  # unblock the writer so the test can end
        thread.join(5)
        os.close(fd)
        pytest.fail("put blocked on a FIFO at the entry path")
    assert stat.S_ISREG(os.lstat(entry).st_mode)
    assert d.get("k") == "second"
    d.close()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
def test_a_fifo_planted_at_the_entry_path_does_not_hang_a_get(tmp_path: Path) -> None:
    """A read opens the entry too: a FIFO reads as an empty, corrupt entry (removed, an error), not a hang."""
    d = FileDriver(tmp_path / "store")
    entry = d._slot("k")[1]
    os.makedirs(os.path.dirname(entry), exist_ok=True)
    os.mkfifo(entry, 0o600)
    outcome: list[object] = []

    def get() -> None:
        try:
            outcome.append(d.get("k"))
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=get, daemon=True)
    thread.start()
    thread.join(30)
    if thread.is_alive():
        fd = os.open(entry, os.O_WRONLY | os.O_NONBLOCK)  # unblock the reader so the test can end
        os.close(fd)
        pytest.fail("get blocked on a FIFO at the entry path")
    assert outcome and (outcome[0] is MISSING or isinstance(outcome[0], SerializationError)), outcome
    assert not os.path.exists(entry)
    d.close()
