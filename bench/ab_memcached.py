"""A/B of two cachekit checkouts on memcached, against raw pymemcache; and the raw-vs-raw thread check.

``.venv/bin/python bench/ab_memcached.py A_ROOT B_ROOT [--rounds 8]`` (e.g. ``/tmp/base .``): one memcached
(``bench/servers.py``: free port, one worker thread) serves both; each round runs one subprocess per
checkout, in alternating order, that times region ``get`` / ``put`` / ``get_many(100)`` against raw
pymemcache ``get`` + ``pickle.loads`` / ``set(noreply=False)`` + ``pickle.dumps`` / ``get_many`` + ``pickle.loads``
each, in side-by-side slices. Prints per checkout the median µs per call and the ratio raw/cachekit
(median, min..max over the rounds): 1.0 is as fast as raw.

``bench/ab_memcached.py --threads`` instead times four raw clients on four connections in rotating
slices, on a memcached with 4, 2 and 1 worker threads: with several threads the connections can differ
by a factor of 3 on a loaded 2-CPU machine (the thread a connection lands on), with one they do not.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
VALUE = {"id": 42, "name": "Ada Lovelace", "email": "ada@example.com", "tags": ["a", "b"], "score": 3.5}


def _timed(fn: Any, items: list[Any]) -> float:
    started = time.perf_counter()
    for item in items:
        fn(item)
    return (time.perf_counter() - started) / len(items) * 1e6


def worker(address: str) -> None:
    """One checkout's timings (the ``cachekit`` on ``sys.path``), as JSON on stdout."""
    from pymemcache.client.base import Client

    from cachekit import CacheConfig

    host, port = address.rsplit(":", 1)
    runtime = CacheConfig(cache={"prefix": "ab"}, providers={"mc": {"type": "memcached", "servers": [address]}},
                          regions={"default": {"provider": "mc", "ttl": 600}}).compile()
    region, client = runtime.region(), Client((host, int(port)), no_delay=True)
    dumps, loads, proto = pickle.dumps, pickle.loads, pickle.HIGHEST_PROTOCOL
    keys = [f"user:{i}" for i in range(2000)]
    for k in keys:
        region.put(k, VALUE)
        client.set("raw:" + k, dumps(VALUE, proto), expire=600)
    rnd = random.Random(1)
    seq = [rnd.choice(keys) for _ in range(300)]
    raw_seq = ["raw:" + k for k in seq]
    batches = [rnd.sample(keys, 100) for _ in range(10)]
    raw_batches = [["raw:" + k for k in b] for b in batches]

    def raw_many(batch: list[str]) -> list[Any]:
        got = client.get_many(batch)
        return [loads(got[k]) for k in batch if k in got]

    pairs = {
        "get": (lambda: _timed(region.get, seq), lambda: _timed(lambda k: loads(client.get(k)), raw_seq)),
        "put": (lambda: _timed(lambda k: region.put(k, VALUE), seq),
                lambda: _timed(lambda k: client.set(k, dumps(VALUE, proto), expire=600, noreply=False), raw_seq)),
        "get_many": (lambda: _timed(region.get_many, batches), lambda: _timed(raw_many, raw_batches)),
    }
    out: dict[str, list[tuple[float, float]]] = {name: [] for name in pairs}
    for i in range(15):
        for name, (ours, raw) in pairs.items():
            if i % 2:
                a, b = ours(), raw()
            else:
                b, a = raw(), ours()
            out[name].append((a, b))
    print(json.dumps({name: [statistics.median(a for a, _ in v), statistics.median(b / a for a, b in v)]
                      for name, v in out.items()}))
    runtime.close()
    client.close()


def ab(roots: list[str], rounds: int) -> None:
    sys.path.insert(0, str(BENCH_DIR))
    from servers import memcached_server

    results: dict[str, dict[str, list[list[float]]]] = {r: {} for r in roots}
    with memcached_server() as server:
        for i in range(rounds):
            for root in roots if i % 2 == 0 else roots[::-1]:
                env = dict(os.environ, PYTHONPATH=str(Path(root).resolve()))
                done = subprocess.run([sys.executable, __file__, "--worker", server.address], env=env,
                                      capture_output=True, text=True, check=True, cwd="/")
                for name, row in json.loads(done.stdout).items():
                    results[root].setdefault(name, []).append(row)
    for root, rows in results.items():
        print(root)
        for name, v in rows.items():
            ratios = [r for _, r in v]
            print(f"  {name:9s} {statistics.median(t for t, _ in v):9.1f} us   raw/cachekit "
                  f"{statistics.median(ratios):.2f} ({min(ratios):.2f}..{max(ratios):.2f})")


def threads_check() -> None:
    sys.path.insert(0, str(BENCH_DIR))
    from pymemcache.client.base import Client
    from servers import memcached_server

    for threads in (4, 2, 1):
        with memcached_server(threads=threads) as server:
            clients = [Client((server.host, server.port), no_delay=True) for _ in range(4)]
            clients[0].set("k", b"x" * 100)
            times: list[list[float]] = [[] for _ in clients]
            for r in range(40):
                for i in [(r + j) % len(clients) for j in range(len(clients))]:
                    times[i].append(_timed(lambda _, c=clients[i]: c.get("k"), [0] * 200))
            medians = [statistics.median(t) for t in times]
            print(f"-t {threads}: " + "  ".join(f"{m:5.1f} us" for m in medians) +
                  f"   slowest/fastest connection {max(medians) / min(medians):.2f}")
            for c in clients:
                c.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="*", help="two cachekit checkouts")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--threads", action="store_true", help="the raw-vs-raw worker thread check")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
    elif args.threads:
        threads_check()
    elif len(args.roots) == 2:
        ab(args.roots, args.rounds)
    else:
        parser.error("give two checkouts, or --threads")


if __name__ == "__main__":
    main()
