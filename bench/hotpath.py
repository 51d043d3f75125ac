"""What one memory hit costs, counted rather than timed: ``.venv/bin/python bench/hotpath.py``.

For each implementation of a memory get hit this counts, for one call, the Python frames entered,
the bytecode instructions executed and the C functions called (``sys.settrace`` with opcode events
and ``sys.setprofile``). Counts do not depend on the machine's load, so they show where time goes
even on a busy machine; ``--dis`` also prints the bytecode of ``Region.get`` and ``--profile`` a
cProfile of a million hits.
"""

from __future__ import annotations

import argparse
import cProfile
import dis
import pstats
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

__all__ = ["count", "count_all", "main"]


def count(fn: Callable[[], Any]) -> dict[str, Any]:
    """Frames, bytecodes and C calls executed by one ``fn()`` (the lambda's own frame excluded)."""
    frames: Counter[str] = Counter()
    ops = 0
    c_calls: Counter[str] = Counter()
    outer = fn.__code__ if hasattr(fn, "__code__") else None

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal ops
        if frame.f_code is outer:
            return None
        if event == "call":
            frames[f"{Path(frame.f_code.co_filename).name}:{frame.f_code.co_name}"] += 1
            frame.f_trace_opcodes = True
        elif event == "opcode":
            ops += 1
        return tracer

    def profiler(frame: FrameType, event: str, arg: Any) -> None:
        if event == "c_call":
            c_calls[getattr(arg, "__qualname__", repr(arg))] += 1

    fn()  # warm caches (adaptive specialisation does not change the counts, but first-call set-up would)
    sys.settrace(tracer)
    sys.setprofile(profiler)
    try:
        fn()
    finally:
        sys.setprofile(None)
        sys.settrace(None)
    c_calls.pop("settrace", None)
    c_calls.pop("setprofile", None)
    return {"frames": dict(frames), "bytecodes": ops, "c_calls": dict(c_calls)}


def _cases() -> list[tuple[str, Callable[[], Any]]]:
    from bench_memory import KEY, VALUE, load_value

    from cachekit import Cache, CacheConfig

    rt = CacheConfig(regions={"default": {"ttl": 600}}).compile()
    region = rt.region()
    region.put(KEY, VALUE)
    Cache.configure(rt)
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("dict.get", lambda d={KEY: VALUE}: d.get(KEY)),
        ("cachekit region.get", lambda: region.get(KEY)),
        ("cachekit Cache.get", lambda: Cache.get(KEY)),
        ("cachekit runtime.region().get", lambda: rt.region().get(KEY)),
        ("cachekit region.get miss", lambda: region.get("absent")),
        ("cachekit region.remember hit", lambda: region.remember(KEY, 600, load_value)),
        ("cachekit region.put", lambda: region.put(KEY, VALUE)),
    ]
    from cachekit import cached

    @cached(ttl=600)
    def fetch(user_id: int) -> Any:
        return VALUE

    cases.append(("cachekit @cached f(42) hit", lambda: fetch(42)))
    try:
        import cachetools

        ttl = cachetools.TTLCache(maxsize=100, ttl=600)
        ttl[KEY] = VALUE
        lru = cachetools.LRUCache(maxsize=100)
        lru[KEY] = VALUE
        cases += [("cachetools TTLCache[k]", lambda: ttl[KEY]), ("cachetools LRUCache[k]", lambda: lru[KEY])]

        @cachetools.cached(cachetools.TTLCache(maxsize=100, ttl=600))
        def fetch_ct(user_id: int) -> Any:
            return VALUE

        cases.append(("cachetools @cached f(42) hit", lambda: fetch_ct(42)))
    except ImportError:
        pass
    try:
        from dogpile.cache import make_region

        dp = make_region().configure("dogpile.cache.memory", expiration_time=600)
        dp.set(KEY, VALUE)
        cases.append(("dogpile.cache region.get", lambda: dp.get(KEY)))
    except ImportError:
        pass
    return cases


def count_all() -> list[dict[str, Any]]:
    """One row per operation: name, frames, bytecodes, C calls and what was entered."""
    from cachekit import Cache

    rows = []
    try:
        for name, fn in _cases():
            got = count(fn)
            rows.append({"operation": name, "frames": sum(got["frames"].values()),
                         "bytecodes": got["bytecodes"], "c_calls": sum(got["c_calls"].values()),
                         "detail": ", ".join(f"{k}" + (f" x{v}" if v > 1 else "") for k, v in
                                             [*got["frames"].items(), *got["c_calls"].items()])})
    finally:
        Cache.reset()
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print the counts (and optionally bytecode and a profile)."""
    parser = argparse.ArgumentParser(description="count the work of one memory hit")
    parser.add_argument("--dis", action="store_true", help="disassemble Region.get")
    parser.add_argument("--profile", action="store_true", help="cProfile 1e6 region.get hits")
    args = parser.parse_args(argv)
    print(f"{'operation':<32} {'frames':>6} {'bytecodes':>9} {'C calls':>7}  detail")
    for row in count_all():
        print(f"{row['operation']:<32} {row['frames']:>6} {row['bytecodes']:>9} {row['c_calls']:>7}  "
              f"{row['detail']}")
    if args.dis:
        from cachekit.runtime.region import Region

        print("\n-- dis(Region.get)")
        dis.dis(Region.get)
    if args.profile:
        region_get = next(fn for name, fn in _cases() if name == "cachekit region.get")
        profiler = cProfile.Profile()
        profiler.runcall(lambda: [region_get() for _ in range(1_000_000)])
        pstats.Stats(profiler).sort_stats("tottime").print_stats(8)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
