"""A/B of two cachekit checkouts in one process on Redis, against raw redis-py.

``.venv/bin/python bench/ab_redis.py A_ROOT B_ROOT [--rounds 15] [--n 2000] [--serializer json|pickle]``
(e.g. ``/work/main .``): each checkout's ``cachekit`` is imported in turn (``sys.modules`` cleared in
between; what one imported keeps its own code), both regions write to one redis-server started on a free
port (never 6379), and every round times region ``get`` / ``put`` / ``get_many(100)`` of A, of B and raw
redis-py GET + ``pickle.loads`` / SET EX + ``pickle.dumps`` / MGET + ``pickle.loads`` each, in rotating
order, so load on a busy machine hits all three alike. Prints the medians (µs per call) and the ratio
raw/cachekit (median, min..max over the rounds): 1.0 is as fast as raw.

``--raw-vs-raw`` checks the comparison is fair instead: the same raw loops on a second redis-py client
(its own connection) and on a client built as cachekit builds its own (``RedisOptions.build``: socket
timeouts, retries, reads bounded by the call's deadline), interleaved with the first client's; the
ratios should be 1.0 (Redis is single-threaded: every connection is served by the one server thread).
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

VALUE = {"id": 42, "name": "Ada Lovelace", "email": "ada@example.com", "tags": ["a", "b"], "score": 3.5}
KEYS = [f"user:{i}" for i in range(100)]


def _region(root: str, prefix: str, url: str, serializer: str) -> Any:
    for name in [m for m in sys.modules if m == "cachekit" or m.startswith("cachekit.")]:
        del sys.modules[name]
    sys.path.insert(0, root)
    try:
        import cachekit
        from cachekit import CacheConfig

        assert str(Path(cachekit.__file__).resolve()).startswith(str(Path(root).resolve())), cachekit.__file__
        extra = {"serializer": "pickle", "allow_unsigned_pickle": True} if serializer == "pickle" else {}
        runtime = CacheConfig(cache={"prefix": prefix},
                              providers={"redis": {"type": "redis", "url": url, **extra}},
                              regions={"default": {"provider": "redis", "ttl": 600}}).compile()
    finally:
        sys.path.remove(root)
    region = runtime.region()
    region.put_many({k: VALUE for k in KEYS})
    return region


def _loops(region: Any, n: int, many: int) -> list[Callable[[], None]]:
    def get() -> None:
        g = region.get
        for _ in range(n):
            g("user:42")

    def put() -> None:
        p = region.put
        for _ in range(n):
            p("user:42", VALUE)

    def get_many() -> None:
        g = region.get_many
        for _ in range(many):
            g(KEYS)

    return [get, put, get_many]


def _raw_loops(client: Any, n: int, many: int) -> list[Callable[[], None]]:
    raw_keys = [f"raw:{k}" for k in KEYS]
    client.mset({k: pickle.dumps(VALUE, pickle.HIGHEST_PROTOCOL) for k in raw_keys})
    loads, dumps, proto = pickle.loads, pickle.dumps, pickle.HIGHEST_PROTOCOL

    def get() -> None:
        g = client.get
        for _ in range(n):
            loads(g("raw:user:42"))

    def put() -> None:
        s = client.set
        for _ in range(n):
            s("raw:user:42", dumps(VALUE, proto), ex=600)

    def get_many() -> None:
        m = client.mget
        for _ in range(many):
            [loads(v) for v in m(raw_keys)]

    return [get, put, get_many]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", help="root of checkout A (holds cachekit/)")
    parser.add_argument("b", help="root of checkout B")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--n", type=int, default=2000, help="calls of get and put per round (get_many: n/10)")
    parser.add_argument("--serializer", choices=["json", "pickle"], default="json")
    parser.add_argument("--raw-vs-raw", action="store_true",
                        help="A: a second raw client, B: a client built as cachekit builds it (fairness check)")
    args = parser.parse_args(argv)
    import redis
    from servers import redis_server

    with redis_server() as srv:
        client = redis.Redis(host=srv.host, port=srv.port)
        many = max(1, args.n // 10)
        if args.raw_vs_raw:
            sys.path.insert(0, args.b)
            from cachekit.providers.redis_client import RedisOptions

            built = RedisOptions(host=srv.host, port=srv.port).build(asyncio=False)[0]
            a = b = None
            sets = [_raw_loops(redis.Redis(host=srv.host, port=srv.port), args.n, many),
                    _raw_loops(built, args.n, many), _raw_loops(client, args.n, many)]
        else:
            a = _region(args.a, "A", srv.url, args.serializer)
            b = _region(args.b, "B", srv.url, args.serializer)
            sets = [_loops(a, args.n, many), _loops(b, args.n, many), _raw_loops(client, args.n, many)]
        names = ["get", "put", "get_many(100)"]
        per_call = [args.n, args.n, many]
        times: list[list[list[float]]] = [[[], [], []] for _ in names]
        for r in range(args.rounds):
            for c in range(len(names)):
                for i in (r % 3, (r + 1) % 3, (r + 2) % 3):
                    started = time.perf_counter()
                    sets[i][c]()
                    times[c][i].append((time.perf_counter() - started) / per_call[c] * 1e6)
        assert a is None or (a.stats.errors == 0 and b.stats.errors == 0), (a.stats.errors, b.stats.errors)
    print(f"serializer={args.serializer} rounds={args.rounds} n={args.n}; ratio = raw / cachekit (1.0: as fast as raw)")
    for c, name in enumerate(names):
        ta, tb, raw = times[c]
        cells = []
        for label, t in (("A", ta), ("B", tb)):
            ratios = [y / x for x, y in zip(t, raw, strict=True)]
            cells.append(f"{label} {statistics.median(t):7.2f}us ratio {statistics.median(ratios):.3f} "
                         f"({min(ratios):.2f}..{max(ratios):.2f})")
        print(f"{name:<14} raw {statistics.median(raw):7.2f}us | " + " | ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
