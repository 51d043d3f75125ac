"""Runtime B of the bus-latency benchmark: keeps a key in its L1 and reports when the bus drops it.

Run as a child process (``python bench/bus_follower.py CONFIG KEY ITERATIONS``) or called in a
thread through :func:`follow`. Protocol, one line per message on ``emit``:

- ``ready``: the bus subscription is live;
- then per iteration ``armed`` (the key is in B's L1, polling starts) followed by
  ``gone <perf_counter_ns>`` when the key left B's L1, or ``timeout``.

``perf_counter_ns`` is CLOCK_MONOTONIC on Linux, one clock for every process of the machine, so the
parent can subtract its own timestamps from B's.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["POLL_INTERVAL", "follow"]

#: Sleep between polls of the L1 dict: short, but it releases the GIL so B's bus thread can run.
POLL_INTERVAL = 20e-6
TIMEOUT = 2.0


def follow(runtime: Any, key: str, iterations: int, emit: Callable[[str], None]) -> None:
    """Refill ``key`` into the L1 of ``runtime``'s default region, then time its eviction, ``iterations`` times."""
    region = runtime.region()
    data = region.l1.driver.data
    if not runtime.bus.wait_ready(10):
        emit("error bus not ready")
        return
    emit("ready")
    clock = time.perf_counter_ns
    sleep = time.sleep
    for _ in range(iterations):
        deadline = time.monotonic() + TIMEOUT
        while key not in data:  # refill L1 from L2 after the previous invalidation
            region.get(key)
            if time.monotonic() > deadline:
                emit("error cannot fill L1")
                return
        emit("armed")
        deadline = time.monotonic() + TIMEOUT
        while key in data:
            if time.monotonic() > deadline:
                break
            sleep(POLL_INTERVAL)
        else:
            emit(f"gone {clock()}")
            continue
        emit("timeout")


def main(argv: list[str]) -> int:
    """Child-process entry point: ``CONFIG KEY ITERATIONS``."""
    from cachekit import load

    config, key, iterations = argv[0], argv[1], int(argv[2])
    runtime = load(config)

    def emit(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    try:
        follow(runtime, key, iterations, emit)
    finally:
        runtime.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
