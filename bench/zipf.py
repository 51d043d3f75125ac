"""The Zipf workload users have, in memory: get, put, ``@cached`` and stats on/off (``bench/run.py``).

Keys are drawn from Zipf(1.0) over ``Sizes.keys`` (100 000) ids, seeded, into sequences built before
any timing; every store is filled with all the keys first (capacity twice that, so reads hit and no
store evicts), values are small dicts. A row times one pass over its sequence (ns/op = pass / length);
rows run interleaved, and the ratio of a row is the median over repeats of ``row time / reference
time`` for the two passes that ran side by side, with min..max beside it (above 1.00: cachekit is
faster). The shared-store cases (Redis, memcached, files, a warm L1) are in ``zipf_shared.py``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
from bench_memory import TTL, VALUE, need
from harness import Bench, Scenario

from cachekit import CacheConfig, Runtime

__all__ = ["Sizes", "memory_zipf_scenarios", "zipf_ids"]


@dataclass
class Sizes:
    """How big the Zipf workload is (``full`` for ``make bench``, ``quick``, ``smoke`` for the test)."""

    keys: int = 100_000
    skew: float = 1.0
    memory_ops: int = 200_000  # one pass of an in-memory row
    shared_ops: int = 5_000  # one pass of a Redis / memcached / L1 row
    batches: int = 200  # get_many(batch) calls per pass
    batch: int = 100
    file_ops: int = 3_000  # a cachekit file put fsyncs: about 2 ms each
    seed: int = 7

    @classmethod
    def of(cls, mode: str) -> Sizes:
        if mode == "quick":
            return cls(memory_ops=50_000, shared_ops=1_500, batches=40, file_ops=1_000)
        if mode == "smoke":
            return cls(keys=2_000, memory_ops=2_000, shared_ops=100, batches=3, file_ops=100)
        return cls()

    @property
    def capacity(self) -> int:
        return 2 * self.keys

    def slices(self, ops: int, per: int) -> int:
        """Slices of about ``per`` operations (at least two): one timed run is one slice."""
        return max(2, ops // per)

    @property
    def memory_slices(self) -> int:
        return self.slices(self.memory_ops, 10_000)

    @property
    def shared_slices(self) -> int:
        return self.slices(self.shared_ops, 500)

    @property
    def batch_slices(self) -> int:
        return self.slices(self.batches, 10)

    @property
    def file_slices(self) -> int:
        return self.slices(self.file_ops, 500)


def zipf_ids(sizes: Sizes, n: int, salt: int = 0) -> list[int]:
    """``n`` ids drawn from Zipf(``skew``) over ``keys`` ids; the popular ids are scattered, not the small ones."""
    rng = np.random.default_rng(sizes.seed + salt)
    weights = 1.0 / np.arange(1, sizes.keys + 1, dtype=np.float64) ** sizes.skew
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    ranks = np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), sizes.keys - 1)
    order = np.random.default_rng(sizes.seed).permutation(sizes.keys)  # one mapping for every sequence
    return [int(i) for i in order[ranks]]


def keys_of(ids: list[int], prefix: str = "user:") -> list[str]:
    return [f"{prefix}{i}" for i in ids]


def batches_of(sizes: Sizes, prefix: str = "user:", salt: int = 1) -> list[list[str]]:
    """``batches`` lists of ``batch`` distinct Zipf keys each (a ``get_many`` argument)."""
    out = []
    ids = iter(zipf_ids(sizes, sizes.batches * sizes.batch * 4, salt))
    for _ in range(sizes.batches):
        chosen: dict[int, None] = {}
        while len(chosen) < sizes.batch:
            chosen[next(ids)] = None
        out.append([f"{prefix}{i}" for i in chosen])
    return out


def describe(sizes: Sizes, ops: int, what: str = "") -> str:
    return (f"Zipf({sizes.skew}) over {sizes.keys:,} keys, {ops:,} precomputed {what or 'keys'} (timed in slices), "
            f"small dict values, stores filled first (capacity {sizes.capacity:,}, TTL {TTL} s).")


class _Stores:
    """The in-memory stores, each filled with every key once, shared by the get and put scenarios."""

    def __init__(self, bench: Bench, sizes: Sizes) -> None:
        self.bench = bench
        self.sizes = sizes
        self.seq = keys_of(zipf_ids(sizes, sizes.memory_ops))
        self.all_keys = keys_of(list(range(sizes.keys)))
        self.runtimes: list[Runtime] = []
        self.made: dict[str, Any] = {}

    def _ns(self, **names: Any) -> dict[str, Any]:
        return {"seq": self.seq, "v": VALUE, "VALUE": VALUE, **names}

    def _runtime(self, stats: bool) -> Runtime:
        rt = CacheConfig(cache={"stats": stats},
                         regions={"default": {"ttl": TTL, "max_size": self.sizes.capacity}}).compile()
        region = rt.region()
        for k in self.all_keys:
            region.put(k, VALUE)
        self.runtimes.append(rt)
        return rt

    def _once(self, name: str, build: Any) -> Any:
        if name not in self.made:
            self.made[name] = build()
        return self.made[name]

    def cachekit(self) -> dict[str, Any]:
        return self._ns(region=self._once("cachekit", lambda: self._runtime(True)).region())

    def cachekit_stats_off(self) -> dict[str, Any]:
        return self._ns(region=self._once("cachekit_off", lambda: self._runtime(False)).region())

    def plain_dict(self) -> dict[str, Any]:
        return self._ns(d=self._once("dict", lambda: dict.fromkeys(self.all_keys, VALUE)))

    def _fill(self, c: Any) -> Any:
        for k in self.all_keys:
            c[k] = VALUE
        return c

    def ttlcache(self) -> dict[str, Any]:
        ct = need("cachetools")
        return self._ns(c=self._once("ttlcache", lambda: self._fill(ct.TTLCache(self.sizes.capacity, TTL))))

    def cachebox(self) -> dict[str, Any]:
        cb = need("cachebox")
        return self._ns(c=self._once("cachebox", lambda: self._fill(cb.TTLCache(self.sizes.capacity, TTL))))

    def theine(self) -> dict[str, Any]:
        th = need("theine")
        ttl = dt.timedelta(seconds=TTL)

        def build() -> Any:
            c = th.Cache(self.sizes.capacity)
            for k in self.all_keys:
                c.set(k, VALUE, ttl)
            return c

        return self._ns(c=self._once("theine", build), ttl=ttl)

    def dogpile(self) -> dict[str, Any]:
        need("dogpile.cache")
        from dogpile.cache import make_region

        def build() -> Any:
            r = make_region().configure("dogpile.cache.memory", expiration_time=TTL)
            r.set_multi(dict.fromkeys(self.all_keys, VALUE))
            return r

        return self._ns(r=self._once("dogpile", build))

    # -- @cached with one int argument ----------------------------------------------------------
    def cachekit_decorated(self) -> dict[str, Any]:
        from cachekit import cached

        rt = self._once("cachekit_decorated", lambda: self._runtime(True))  # its keys stay out of the get rows' store

        @cached(ttl=TTL, runtime=rt)
        def fetch(user_id: int) -> dict[str, Any]:
            return VALUE

        return self._decorated(fetch)

    def cachetools_decorated(self) -> dict[str, Any]:
        ct = need("cachetools")

        @ct.cached(ct.TTLCache(self.sizes.capacity, TTL))
        def fetch(user_id: int) -> dict[str, Any]:
            return VALUE

        return self._decorated(fetch)

    def _decorated(self, fn: Any) -> dict[str, Any]:
        for i in range(self.sizes.keys):
            fn(i)
        return {"f": fn, "seq": self.int_seq(), "VALUE": VALUE}

    def int_seq(self) -> list[int]:
        return self._once("int_seq", lambda: zipf_ids(self.sizes, self.sizes.memory_ops, salt=2))

    def close(self) -> None:
        for rt in self.runtimes:
            rt.close()


def memory_zipf_scenarios(bench: Bench, sizes: Sizes) -> list[Scenario]:
    """Memory get and put over the Zipf sequence, ``@cached`` with one int argument, stats on vs off."""
    st = _Stores(bench, sizes)
    try:
        return [_get(bench, st), _put(bench, st), _decorated(bench, st), _stats(bench, st)]
    finally:
        st.close()


def _get(b: Bench, st: _Stores) -> Scenario:
    s = Scenario("zipf_memory_get", "Zipf: memory get hit", describe(st.sizes, st.sizes.memory_ops), paired=True,
                 slices=st.sizes.memory_slices)
    b.each(s, "region.get(k)", "cachekit", st.cachekit, "region.get(k)", probe="region.get(k)", expect=VALUE,
           reference=True)
    b.each(s, "dict.get(k) (floor)", "python", st.plain_dict, "d.get(k)", probe="d.get(k)", expect=VALUE,
           note="no expiry, no eviction, no stats")
    b.each(s, "memory region.get(k)", "dogpile.cache", st.dogpile, "r.get(k)", probe="r.get(k)", expect=VALUE)
    b.each(s, "TTLCache[k]", "cachetools", st.ttlcache, "c[k]", probe="c[k]", expect=VALUE)
    b.each(s, "TTLCache[k]", "cachebox", st.cachebox, "c[k]", probe="c[k]", expect=VALUE, note="Rust")
    b.each(s, "Cache.get(k)", "theine", st.theine, "c.get(k)", probe="c.get(k)", expect=(VALUE, True),
           note="Rust core; returns (value, found)")
    return b.execute(s)


def _put(b: Bench, st: _Stores) -> Scenario:
    s = Scenario("zipf_memory_put", "Zipf: memory put (overwrite, TTL)", describe(st.sizes, st.sizes.memory_ops),
                 paired=True, slices=st.sizes.memory_slices)
    b.each(s, "region.put(k, v)", "cachekit", st.cachekit, "region.put(k, v)", probe="region.get(k)",
           expect=VALUE, reference=True)
    b.each(s, "d[k] = v (floor)", "python", st.plain_dict, "d[k] = v", probe="d[k]", expect=VALUE)
    b.each(s, "memory region.set(k, v)", "dogpile.cache", st.dogpile, "r.set(k, v)", probe="r.get(k)",
           expect=VALUE)
    b.each(s, "TTLCache[k] = v", "cachetools", st.ttlcache, "c[k] = v", probe="c[k]", expect=VALUE)
    b.each(s, "TTLCache[k] = v", "cachebox", st.cachebox, "c[k] = v", probe="c[k]", expect=VALUE)
    b.each(s, "Cache.set(k, v, ttl)", "theine", st.theine, "c.set(k, v, ttl)", probe="c.get(k)",
           expect=(VALUE, True))
    return b.execute(s)


def _decorated(b: Bench, st: _Stores) -> Scenario:
    s = Scenario("zipf_cached", "Zipf: @cached hit (one int argument)",
                 describe(st.sizes, st.sizes.memory_ops, "int arguments") + " Every argument was called once before.",
                 paired=True, slices=st.sizes.memory_slices)
    b.each(s, "@cached f(k)", "cachekit", st.cachekit_decorated, "f(k)", probe="f(k)", expect=VALUE,
           reference=True)
    b.each(s, "@cached(TTLCache) f(k)", "cachetools", st.cachetools_decorated, "f(k)", probe="f(k)", expect=VALUE)
    return b.execute(s)


def _stats(b: Bench, st: _Stores) -> Scenario:
    s = Scenario("zipf_stats", "Zipf: memory get hit, stats on vs off",
                 describe(st.sizes, st.sizes.memory_ops) + " Two runtimes, `[cache] stats = false` and `true`; "
                 "here the ratio is the time of the row / the time with stats off: the cost of stats.", paired=True,
                 slices=st.sizes.memory_slices)
    b.each(s, "region.get(k), stats off", "cachekit", st.cachekit_stats_off, "region.get(k)", probe="region.get(k)",
           expect=VALUE, reference=True)
    b.each(s, "region.get(k), stats on", "cachekit", st.cachekit, "region.get(k)", probe="region.get(k)",
           expect=VALUE, note="the default; issue 13 allows 5 %")
    return b.execute(s)
