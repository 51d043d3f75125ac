"""What one memory hit costs, counted rather than timed: ``.venv/bin/python bench/hotpath.py``.

For each implementation of a memory get hit this counts, for one call, the Python frames entered,
the bytecode instructions executed and the C functions called (``sys.settrace`` with opcode events
and ``sys.setprofile``). Counts do not depend on the machine's load, so they show where time goes
even on a busy machine; ``--dis`` also prints the bytecode of ``Region.get`` and ``--profile`` a
cProfile of a million hits. ``--redis`` counts a Redis region's get / put / get_many(100) beside raw
redis-py GET / SET EX with pickle / MGET, on a redis-server started on a free port (never 6379).
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


def _redis_cases(url: str, host: str, port: int) -> list[tuple[str, Callable[[], Any]]]:
    """A Redis region (no L1, the default serializer) beside the raw redis-py floor, on ``url``."""
    import pickle

    import redis
    from bench_memory import VALUE

    from cachekit import CacheConfig

    rt = CacheConfig(cache={"prefix": "hotpath"}, providers={"redis": {"type": "redis", "url": url}},
                     regions={"default": {"provider": "redis", "ttl": 600}}).compile()
    region = rt.region()
    client = redis.Redis(host=host, port=port)
    keys = [f"user:{i}" for i in range(100)]
    raw_keys = [f"raw:{k}" for k in keys]
    region.put_many({k: VALUE for k in keys})
    client.mset({k: pickle.dumps(VALUE, pickle.HIGHEST_PROTOCOL) for k in raw_keys})
    loads, dumps = pickle.loads, pickle.dumps
    return [
        ("redis-py GET + pickle.loads", lambda: loads(client.get(raw_keys[42]))),
        ("cachekit redis region.get", lambda: region.get(keys[42])),
        ("redis-py SET EX + pickle.dumps", lambda: client.set(raw_keys[42], dumps(VALUE, 5), ex=600)),
        ("cachekit redis region.put", lambda: region.put(keys[42], VALUE)),
        ("redis-py MGET(100) + loads each", lambda: [loads(v) for v in client.mget(raw_keys)]),
        ("cachekit redis get_many(100)", lambda: region.get_many(keys)),
    ]


def count_all(redis_cases: bool = False) -> list[dict[str, Any]]:
    """One row per operation: name, frames, bytecodes, C calls and what was entered (``redis_cases``:
    the Redis rows instead, on a private redis-server)."""
    from cachekit import Cache

    rows = []
    if redis_cases:
        from servers import redis_server

        with redis_server() as srv:
            for name, fn in _redis_cases(srv.url, srv.host, srv.port):
                rows.append(_row(name, fn))
        return rows
    try:
        for name, fn in _cases():
            rows.append(_row(name, fn))
    finally:
        Cache.reset()
    return rows


def _row(name: str, fn: Callable[[], Any]) -> dict[str, Any]:
    got = count(fn)
    return {"operation": name, "frames": sum(got["frames"].values()), "bytecodes": got["bytecodes"],
            "c_calls": sum(got["c_calls"].values()),
            "detail": ", ".join(f"{k}" + (f" x{v}" if v > 1 else "") for k, v in
                                [*got["frames"].items(), *got["c_calls"].items()])}


def main(argv: list[str] | None = None) -> int:
    """Print the counts (and optionally bytecode and a profile)."""
    parser = argparse.ArgumentParser(description="count the work of one memory hit")
    parser.add_argument("--dis", action="store_true", help="disassemble Region.get")
    parser.add_argument("--profile", action="store_true", help="cProfile 1e6 region.get hits")
    parser.add_argument("--redis", action="store_true", help="Redis region get/put/get_many(100) vs raw redis-py")
    args = parser.parse_args(argv)
    print(f"{'operation':<32} {'frames':>6} {'bytecodes':>9} {'C calls':>7}  detail")
    for row in count_all(redis_cases=args.redis):
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
