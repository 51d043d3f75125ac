"""The Zipf workload on shared stores: Redis and memcached get / put / get_many(100), files, a warm L1.

Same workload as ``zipf.py`` (Zipf(1.0) over 100 000 keys, precomputed sequences, paired repeats),
shorter passes since every operation is a round trip. The floors are the raw clients doing what a
cache needs at the least: ``pickle.dumps`` + SET with an expiry, GET + ``pickle.loads``, MGET +
``pickle.loads`` of each value; for files, diskcache. Servers are the ones ``bench_shared.py``
started on free loopback ports (never 6379).
"""

from __future__ import annotations

import pickle
import tempfile
from typing import Any

from bench_memory import TTL, VALUE, need
from harness import Bench, Scenario
from zipf import Sizes, batches_of, describe, keys_of, zipf_ids

from cachekit import CacheConfig, Runtime

__all__ = ["file_zipf_scenarios", "memcached_zipf_scenarios", "redis_zipf_scenarios"]

PAYLOAD = pickle.dumps(VALUE, protocol=pickle.HIGHEST_PROTOCOL)
CHUNK = 1_000


def _chunks(keys: list[str]) -> list[list[str]]:
    return [keys[i:i + CHUNK] for i in range(0, len(keys), CHUNK)]


def _region_fill(runtime: Runtime, keys: list[str]) -> None:
    region = runtime.region()
    for part in _chunks(keys):
        region.put_many(dict.fromkeys(part, VALUE))


class _Shared:
    """The sequences of one store kind: single keys, batches, each under a prefix per library."""

    def __init__(self, sizes: Sizes) -> None:
        self.sizes = sizes
        self.ids = zipf_ids(sizes, sizes.shared_ops, salt=3)
        self.all_ids = list(range(sizes.keys))

    def seq(self, prefix: str) -> list[str]:
        return keys_of(self.ids, prefix)

    def batches(self, prefix: str) -> list[list[str]]:
        return batches_of(self.sizes, prefix)


def _loads_all(getter: Any) -> Any:
    loads = pickle.loads

    def many(keys: list[str]) -> list[Any]:
        return [loads(raw) for raw in getter(keys)]

    return many


def _three(key: str, kind: str, sizes: Sizes) -> tuple[Scenario, Scenario, Scenario]:
    ops = sizes.shared_ops
    return (
        Scenario(f"zipf_{key}_get", f"Zipf: {kind} get hit (loopback)", describe(sizes, ops), paired=True,
                 slices=sizes.shared_slices),
        Scenario(f"zipf_{key}_put", f"Zipf: {kind} put (TTL, loopback)", describe(sizes, ops), paired=True,
                 slices=sizes.shared_slices),
        Scenario(f"zipf_{key}_get_many", f"Zipf: {kind} get_many({sizes.batch}) (loopback)",
                 describe(sizes, sizes.batches, f"batches of {sizes.batch} distinct keys") +
                 " ns/op is per call.", paired=True, slices=sizes.batch_slices),
    )


def redis_zipf_scenarios(bench: Bench, srv: Any, sizes: Sizes) -> list[Scenario]:
    """Redis get / put / get_many(100) against raw redis-py, and a warm L1 against raw GET."""
    import redis

    wl = _Shared(sizes)
    runtime = CacheConfig(cache={"prefix": "zipf"}, providers={"redis": {"type": "redis", "url": srv.url}},
                          regions={"default": {"provider": "redis", "ttl": TTL}}).compile()
    l1_runtime = CacheConfig(
        cache={"prefix": "zipf"}, providers={"redis": {"type": "redis", "url": srv.url}},
        regions={"default": {"provider": "redis", "ttl": TTL,
                             "l1": {"ttl": TTL, "max_size": sizes.capacity}}}).compile()
    client = redis.Redis(host=srv.host, port=srv.port)
    try:
        _region_fill(runtime, keys_of(wl.all_ids))
        for part in _chunks(keys_of(wl.all_ids, "raw:")):
            pipe = client.pipeline(transaction=False)
            for k in part:
                pipe.set(k, PAYLOAD, ex=TTL)
            pipe.execute()
        dumps, loads = pickle.dumps, pickle.loads

        def ck(prefix: str = "user:", rt: Runtime = runtime) -> dict[str, Any]:
            return {"region": rt.region(), "seq": wl.seq(prefix), "batches": wl.batches(prefix), "v": VALUE}

        def raw() -> dict[str, Any]:
            return {"client": client, "get": client.get, "loads": loads, "dumps": dumps, "v": VALUE, "TTL": TTL,
                    "P": pickle.HIGHEST_PROTOCOL, "mget_loads": _loads_all(client.mget),
                    "seq": wl.seq("raw:"), "batches": wl.batches("raw:")}

        get, put, many = _three("redis", "Redis", sizes)
        bench.each(get, "region.get(k)", "cachekit", ck, "region.get(k)", probe="region.get(k)", expect=VALUE,
                   reference=True)
        bench.each(get, "GET + pickle.loads (floor)", "redis-py", raw, "loads(client.get(k))",
                   probe="loads(client.get(k))", expect=VALUE)
        bench.execute(get)
        bench.each(put, "region.put(k, v)", "cachekit", ck, "region.put(k, v)", probe="region.get(k)",
                   expect=VALUE, reference=True)
        bench.each(put, "SET EX + pickle.dumps (floor)", "redis-py", raw, "client.set(k, dumps(v, P), ex=TTL)",
                   probe="loads(client.get(k))", expect=VALUE)
        bench.execute(put)
        expected = [VALUE] * sizes.batch
        bench.each(many, f"region.get_many({sizes.batch})", "cachekit", ck, "region.get_many(k)",
                   probe="list(region.get_many(k).values())", expect=expected, reference=True, seq="batches")
        bench.each(many, "MGET + pickle.loads each (floor)", "redis-py", raw, "mget_loads(k)",
                   probe="mget_loads(k)", expect=expected, seq="batches")
        bench.execute(many)

        warm = Scenario("zipf_redis_l1", "Zipf: L1-warm region on Redis vs raw GET",
                        describe(sizes, sizes.shared_ops) + " The region has a memory L1 (TTL and capacity "
                        "above the run's); one untimed pass warms it.", paired=True, slices=sizes.shared_slices)
        bench.each(warm, "region.get(k), L1 warm", "cachekit", lambda: ck(rt=l1_runtime), "region.get(k)",
                   probe="region.get(k)", expect=VALUE, reference=True)
        bench.each(warm, "GET + pickle.loads (floor)", "redis-py", raw, "loads(client.get(k))",
                   probe="loads(client.get(k))", expect=VALUE)
        bench.execute(warm)
        return [get, put, many, warm]
    finally:
        client.close()
        runtime.close()
        l1_runtime.close()


def memcached_zipf_scenarios(bench: Bench, srv: Any, sizes: Sizes) -> list[Scenario]:
    """Memcached get / put / get_many(100) against raw pymemcache."""
    from pymemcache.client.base import Client

    wl = _Shared(sizes)
    runtime = CacheConfig(cache={"prefix": "zipf"}, providers={"mc": {"type": "memcached", "servers": [srv.address]}},
                          regions={"default": {"provider": "mc", "ttl": TTL}}).compile()
    client = Client((srv.host, srv.port), no_delay=True)
    try:
        _region_fill(runtime, keys_of(wl.all_ids))
        for part in _chunks(keys_of(wl.all_ids, "raw:")):
            client.set_many(dict.fromkeys(part, PAYLOAD), expire=TTL)
        dumps, loads = pickle.dumps, pickle.loads

        def ck() -> dict[str, Any]:
            return {"region": runtime.region(), "seq": wl.seq("user:"), "batches": wl.batches("user:"), "v": VALUE}

        def raw() -> dict[str, Any]:
            def get_many_loads(keys: list[str]) -> list[Any]:
                got = client.get_many(keys)
                return [loads(got[k]) for k in keys if k in got]

            return {"client": client, "loads": loads, "dumps": dumps, "v": VALUE, "TTL": TTL,
                    "P": pickle.HIGHEST_PROTOCOL, "get_many_loads": get_many_loads,
                    "seq": wl.seq("raw:"), "batches": wl.batches("raw:")}

        get, put, many = _three("memcached", "Memcached", sizes)
        bench.each(get, "region.get(k)", "cachekit", ck, "region.get(k)", probe="region.get(k)", expect=VALUE,
                   reference=True)
        bench.each(get, "get + pickle.loads (floor)", "pymemcache", raw, "loads(client.get(k))",
                   probe="loads(client.get(k))", expect=VALUE)
        bench.execute(get)
        bench.each(put, "region.put(k, v)", "cachekit", ck, "region.put(k, v)", probe="region.get(k)",
                   expect=VALUE, reference=True)
        bench.each(put, "set(expire) + pickle.dumps (floor)", "pymemcache", raw,
                   "client.set(k, dumps(v, P), expire=TTL, noreply=False)", probe="loads(client.get(k))",
                   expect=VALUE, note="waits for STORED, as cachekit does")
        bench.each(put, "same, noreply (pymemcache's default)", "pymemcache", raw,
                   "client.set(k, dumps(v, P), expire=TTL)", probe="loads(client.get(k))", expect=VALUE,
                   note="fire and forget: a failed write goes unseen")
        bench.execute(put)
        expected = [VALUE] * sizes.batch
        bench.each(many, f"region.get_many({sizes.batch})", "cachekit", ck, "region.get_many(k)",
                   probe="list(region.get_many(k).values())", expect=expected, reference=True, seq="batches")
        bench.each(many, "get_many + pickle.loads each (floor)", "pymemcache", raw, "get_many_loads(k)",
                   probe="get_many_loads(k)", expect=expected, seq="batches")
        bench.execute(many)
        for s in (get, put, many):
            s.notes.append("the floor is pymemcache's plain `Client` (no pool, no socket timeouts).")
            s.notes.append("the memcached runs one worker thread (`-t 1`): it hands each connection to its "
                           "threads in turn, and on a small machine a round trip can cost a different time on "
                           "each thread, so with several the two clients' connections could be timed on "
                           "unequal servers (a factor of 3 measured by `bench/ab_memcached.py --threads`).")
        return [get, put, many]
    finally:
        client.close()
        runtime.close()


def file_zipf_scenarios(bench: Bench, sizes: Sizes) -> list[Scenario]:
    """File store get / put against diskcache, both in fresh temporary directories."""
    get = Scenario("zipf_file_get", "Zipf: file get hit", describe(sizes, sizes.file_ops) +
                   " Only the keys of the sequence are stored (a file store of 100 000 files takes long to fill).",
                   paired=True, slices=sizes.file_slices)
    put = Scenario("zipf_file_put", "Zipf: file put (overwrite, TTL)", describe(sizes, sizes.file_ops), paired=True,
                   slices=sizes.file_slices)
    seq = keys_of(zipf_ids(sizes, sizes.file_ops, salt=4))
    distinct = list(dict.fromkeys(seq))
    with tempfile.TemporaryDirectory(prefix="cachekit-bench-files-") as tmp:
        runtime = CacheConfig(providers={"files": {"type": "file", "path": f"{tmp}/cachekit"}},
                              regions={"default": {"provider": "files", "ttl": TTL}}).compile()
        made: dict[str, Any] = {}
        try:
            _region_fill(runtime, distinct)

            def ck() -> dict[str, Any]:
                return {"region": runtime.region(), "seq": seq, "v": VALUE}

            def dc() -> dict[str, Any]:
                if "dc" not in made:
                    diskcache = need("diskcache")
                    c = diskcache.Cache(f"{tmp}/diskcache")
                    for k in distinct:
                        c.set(k, VALUE, expire=TTL)
                    made["dc"] = c
                return {"c": made["dc"], "seq": seq, "v": VALUE, "TTL": TTL}

            bench.each(get, "region.get(k)", "cachekit", ck, "region.get(k)", probe="region.get(k)", expect=VALUE,
                       reference=True)
            bench.each(get, "Cache.get(k)", "diskcache", dc, "c.get(k)", probe="c.get(k)", expect=VALUE,
                       note="SQLite index + pickle")
            bench.execute(get)
            bench.each(put, "region.put(k, v)", "cachekit", ck, "region.put(k, v)", probe="region.get(k)",
                       expect=VALUE, reference=True)
            bench.each(put, "Cache.set(k, v, expire)", "diskcache", dc, "c.set(k, v, expire=TTL)", probe="c.get(k)",
                       expect=VALUE)
            bench.execute(put)
        finally:
            runtime.close()
            if "dc" in made:
                made["dc"].close()
    return [get, put]
