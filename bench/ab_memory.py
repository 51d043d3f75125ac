"""Interleaved A/B of two cachekit checkouts on the in-process Zipf rows, against their peers.

``.venv/bin/python bench/ab_memory.py A_ROOT B_ROOT [--rounds 8] [--repeats 2]`` (a root holds a
``cachekit`` package: a worktree, or ``git archive HEAD cachekit | tar -x -C /tmp/a``). Each round runs
one process per checkout, A and B alternating (ABBA...), and each process times, slice by slice over the
Zipf(1.0) sequences of ``zipf.py`` (100 000 keys, capacity 200 000, TTL 600 s), in rotating order:
``region.get`` / ``region.put`` / ``@cached f(k)`` (one int argument, the bench's function name)
and dogpile.cache ``get`` / ``set`` / cachetools ``@cached(TTLCache)``. Prints, per checkout, the median
over its processes of the per-slice median ratio peer/cachekit (above 1: cachekit faster) and ns/op.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
TTL = 600
PAIRS = {"get": ("get", "dogpile_get"), "put": ("put", "dogpile_set"), "cached": ("cached", "cachetools_cached")}


def _child(repeats: int) -> None:
    sys.path.insert(0, str(BENCH_DIR))
    import cachetools
    from dogpile.cache import make_region
    from zipf import VALUE, Sizes, keys_of, zipf_ids

    import cachekit
    from cachekit import CacheConfig, cached

    root = os.environ["PYTHONPATH"]
    assert str(Path(cachekit.__file__).resolve()).startswith(root), (cachekit.__file__, root)
    sizes = Sizes()
    seq, ints = keys_of(zipf_ids(sizes, 100_000)), zipf_ids(sizes, 100_000, salt=2)
    every = keys_of(list(range(sizes.keys)))

    def runtime() -> Any:
        rt = CacheConfig(cache={"stats": True}, regions={"default": {"ttl": TTL, "max_size": sizes.capacity}}).compile()
        for k in every:
            rt.region().put(k, VALUE)
        return rt

    region = runtime().region()
    dogpile = make_region().configure("dogpile.cache.memory", expiration_time=TTL)
    dogpile.set_multi(dict.fromkeys(every, VALUE))

    def fetch(user_id: int) -> Any:
        return VALUE

    fetch.__module__, fetch.__qualname__ = "zipf", "_Stores.cachekit_decorated.<locals>.fetch"  # the bench's key
    mine = cached(ttl=TTL, runtime=runtime())(fetch)
    theirs = cachetools.cached(cachetools.TTLCache(sizes.capacity, TTL))(fetch)
    for i in range(sizes.keys):
        mine(i), theirs(i)

    def loop(stmt: str, **names: Any) -> Any:
        exec(f"def run(seq):\n    for k in seq:\n        {stmt}\n", names)
        return names["run"]

    rows = {"get": loop("region.get(k)", region=region), "dogpile_get": loop("r.get(k)", r=dogpile),
            "put": loop("region.put(k, v)", region=region, v=VALUE),
            "dogpile_set": loop("r.set(k, v)", r=dogpile, v=VALUE),
            "cached": loop("f(k)", f=mine), "cachetools_cached": loop("f(k)", f=theirs)}
    ns: dict[str, list[float]] = {name: [] for name in rows}
    ratios: dict[str, list[float]] = {p: [] for p in PAIRS}
    names, turn, size = list(rows), 0, 10_000
    gc.disable()
    for _ in range(repeats):
        for start in range(0, len(seq), size):
            turn += 1
            took = {}
            for name in names[turn % len(names):] + names[:turn % len(names)]:
                part = (ints if "cached" in name else seq)[start:start + size]
                t0 = time.perf_counter()
                rows[name](part)
                took[name] = time.perf_counter() - t0
                ns[name].append(took[name] / len(part) * 1e9)
            for pair, (ours, peer) in PAIRS.items():
                ratios[pair].append(took[peer] / took[ours])
    assert region.get(seq[0]) == VALUE and mine(ints[0]) == VALUE
    print(json.dumps({"ratio": {p: statistics.median(v) for p, v in ratios.items()},
                      "ns": {n: statistics.median(v) for n, v in ns.items()}}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2, help="passes over the sequence per process")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args.repeats)
    runs: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
    for i in range(args.rounds):
        for label in ("A", "B") if i % 2 == 0 else ("B", "A"):
            root = str(Path(args.a if label == "A" else args.b).resolve())
            env = dict(os.environ, PYTHONPATH=root)
            out = subprocess.run([sys.executable, __file__, args.a, args.b, "--child", "--repeats", str(args.repeats)],
                                 env=env, capture_output=True, text=True, cwd="/", check=True)
            runs[label].append(json.loads(out.stdout))
    for label, root in (("A", args.a), ("B", args.b)):
        got = runs[label]
        ratio = {p: round(statistics.median(r["ratio"][p] for r in got), 3) for p in PAIRS}
        ns = {n: round(statistics.median(r["ns"][n] for r in got), 1) for n in got[0]["ns"]}
        print(f"{label} {root}\n  peer/cachekit: {ratio}\n  ns/op: {ns}")


if __name__ == "__main__":
    main()
