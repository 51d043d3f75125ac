"""Bus latency: how long another runtime's L1 keeps a key that this runtime just overwrote.

Runtime A (this process) and runtime B (a child process, or a thread when a child cannot be started)
load one multi-level config: Redis L2, memory L1, ``[bus] enabled = true``. Each iteration B fills
its L1 with the key and starts polling its L1 dict; A puts a new value; B reports the moment the key
left its L1. Latency = that moment - the moment A's ``put`` started (the staleness window a reader of
B can see), and also from the moment ``put`` returned (publish -> delivery -> eviction).
"""

from __future__ import annotations

import os
import queue
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bus_follower import POLL_INTERVAL, follow
from servers import missing_binaries, redis_server

__all__ = ["bus_latency"]

KEY = "user:42"
WARMUP = 10


def _config(url: str, path: Path) -> Path:
    path.write_text(textwrap.dedent(f"""
        [cache]
        prefix = "busbench"

        [providers.redis]
        type = "redis"
        url = "{url}"

        [providers.local]
        type = "memory"

        [regions.default]
        provider = "redis"
        ttl = 600
        l1 = {{ provider = "local", ttl = 300 }}

        [bus]
        enabled = true
    """))
    return path


def _percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def _summary(values_ns: list[int]) -> dict[str, float]:
    ms = sorted(v / 1e6 for v in values_ns)
    return {"p50_ms": _percentile(ms, 0.50), "p90_ms": _percentile(ms, 0.90), "p99_ms": _percentile(ms, 0.99),
            "max_ms": ms[-1], "mean_ms": statistics.fmean(ms)}


def _measure(put: Callable[[int], Any], next_line: Callable[[], str], iterations: int) -> dict[str, Any]:
    first = next_line()
    if first != "ready":
        raise RuntimeError(f"follower did not start: {first!r}")
    from_start: list[int] = []
    from_return: list[int] = []
    timeouts = 0
    for i in range(iterations + WARMUP):
        line = next_line()
        if line != "armed":
            raise RuntimeError(f"follower said {line!r} instead of 'armed'")
        started = time.perf_counter_ns()
        put(i)
        returned = time.perf_counter_ns()
        line = next_line()
        if line == "timeout":
            timeouts += 1
            continue
        if not line.startswith("gone "):
            raise RuntimeError(f"follower said {line!r}")
        gone = int(line.split()[1])
        if i >= WARMUP:
            from_start.append(gone - started)
            from_return.append(gone - returned)
    if not from_start:
        raise RuntimeError(f"no invalidation arrived ({timeouts} timeouts)")
    return {"samples": len(from_start), "timeouts": timeouts,
            "from_put_start": _summary(from_start), "from_put_return": _summary(from_return)}


def _in_process(config: Path, put: Callable[[int], Any], iterations: int) -> dict[str, Any]:
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("bus_follower.py")), str(config), KEY,
         str(iterations + WARMUP)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent),
                                                                         os.environ.get("PYTHONPATH")]))},
    )
    assert child.stdout is not None

    def next_line() -> str:
        line = child.stdout.readline()  # type: ignore[union-attr]
        if not line:
            child.wait(5)
            raise RuntimeError(f"follower exited ({child.returncode}): "
                               f"{(child.stderr.read() if child.stderr else '')[-500:]}")
        return line.strip()

    try:
        return _measure(put, next_line, iterations)
    finally:
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(5)


def _in_thread(config: Path, put: Callable[[int], Any], iterations: int) -> dict[str, Any]:
    from cachekit import load

    runtime_b = load(config)
    lines: queue.Queue[str] = queue.Queue()
    thread = threading.Thread(target=follow, args=(runtime_b, KEY, iterations + WARMUP, lines.put),
                              daemon=True)
    thread.start()
    try:
        return _measure(put, lambda: lines.get(timeout=10), iterations)
    finally:
        thread.join(10)
        runtime_b.close()


def bus_latency(iterations: int = 300) -> dict[str, Any]:
    """Run the bus benchmark; returns its summary (``status`` "n/a" with a ``note`` when it cannot run)."""
    result: dict[str, Any] = {"iterations": iterations, "warmup": WARMUP, "poll_interval_us": POLL_INTERVAL * 1e6}
    missing = missing_binaries("redis-server")
    if missing:
        return {**result, "status": "n/a", "note": f"{', '.join(missing)} not on PATH"}
    from cachekit import load

    with redis_server() as srv, tempfile.TemporaryDirectory(prefix="cachekit-bench-bus-") as tmp:
        config = _config(srv.url, Path(tmp) / "cachekit.toml")
        runtime_a = load(config)
        try:
            region = runtime_a.region()
            region.put(KEY, -1)
            if not runtime_a.bus.wait_ready(10):
                return {**result, "status": "n/a", "note": "runtime A's bus did not connect"}

            def put(i: int) -> Any:
                return region.put(KEY, i)

            errors: list[str] = []
            for mode, run in (("two processes", _in_process), ("two threads, one process", _in_thread)):
                try:
                    measured = run(config, put, iterations)
                except Exception as exc:  # fall back to threads, then give up with the reason
                    errors.append(f"{mode}: {type(exc).__name__}: {exc}")
                    continue
                return {**result, "status": "ok", "mode": mode, **measured,
                        "published": runtime_a.bus.published, "errors": errors}
            return {**result, "status": "n/a", "note": "; ".join(errors)}
        finally:
            runtime_a.close()
