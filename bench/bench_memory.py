"""In-process scenarios: get hit (the hot path), get miss, set, remember / decorator hit.

Every store holds ``PREFILL`` keys and the measured key is one of them. cachekit's region has a TTL
(entries carry an expiry, as in a real config), so the peers are given a TTL too where they have one.
"""

from __future__ import annotations

from typing import Any

from harness import Bench, Scenario, Unavailable
from peers import peer

from cachekit import Cache, CacheConfig, Runtime
from cachekit.providers.base import MISSING

__all__ = ["VALUE", "memory_scenarios"]

VALUE = {"id": 42, "name": "Ada Lovelace", "roles": ["admin", "dev"]}
KEY = "user:42"
ABSENT = "user:absent"
PREFILL = 1000
TTL = 600


def load_value() -> dict[str, Any]:
    """The loader given to remember-style calls (never called on a hit)."""
    return VALUE


def need(name: str) -> Any:
    """Import peer ``name`` or raise :class:`Unavailable`."""
    module, why = peer(name)
    if module is None:
        raise Unavailable(f"{name}: {why}")
    return module


def _fill(put: Any) -> None:
    for i in range(PREFILL):
        put(f"user:{i}", VALUE)


class _Setups:
    """The stores under test, built once per scenario group and shared by its cases."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self._runtime: Runtime | None = None
        self._lru_runtime: Runtime | None = None
        self._events_runtime: Runtime | None = None
        self._cache: dict[str, Any] = {}

    # -- cachekit -------------------------------------------------------------------------
    def runtime(self) -> Runtime:
        if self._runtime is None:
            rt = CacheConfig(regions={"default": {"ttl": TTL}}).compile()
            _fill(rt.region().put)
            Cache.configure(rt)
            self._runtime = rt
        return self._runtime

    def cachekit(self) -> dict[str, Any]:
        rt = self.runtime()
        return {"rt": rt, "region": rt.region(), "Cache": Cache, "k": KEY, "absent": ABSENT, "v": VALUE,
                "load": load_value, "MISSING": MISSING}

    def cachekit_stats_off(self) -> dict[str, Any]:
        """A runtime of its own with latency timing off (``runtime.stats.set_timing(False)``)."""
        rt = CacheConfig(regions={"default": {"ttl": TTL}}).compile()
        _fill(rt.region().put)
        rt.stats.set_timing(False)
        return {"region": rt.region(), "k": KEY}

    def cachekit_lru(self) -> dict[str, Any]:
        if self._lru_runtime is None:
            # max_size = PREFILL: the store is more than half full, so every hit keeps LRU order
            rt = CacheConfig(regions={"default": {"ttl": TTL, "max_size": PREFILL}}).compile()
            _fill(rt.region().put)
            self._lru_runtime = rt
        region = self._lru_runtime.region()
        if not region.l2.driver.lru_active:  # type: ignore[attr-defined]
            raise AssertionError("expected the LRU bookkeeping to be active")
        return {"region": region, "k": KEY}

    def cachekit_events(self) -> dict[str, Any]:
        """A runtime with a ``hit`` listener: its regions take the instrumented path."""
        if self._events_runtime is None:
            rt = CacheConfig(regions={"default": {"ttl": TTL}}).compile()
            _fill(rt.region().put)
            rt.on("hit", lambda event: None)
            self._events_runtime = rt
        return {"region": self._events_runtime.region(), "k": KEY}

    def cachekit_decorated(self, is_async: bool) -> dict[str, Any]:
        from cachekit import cached

        self.runtime()
        if is_async:
            async def fetch_async(user_id: int) -> dict[str, Any]:
                return VALUE

            fn: Any = cached(ttl=TTL)(fetch_async)
            self.bench.wait(fn(42))
        else:
            def fetch(user_id: int) -> dict[str, Any]:
                return VALUE

            fn = cached(ttl=TTL)(fetch)
            fn(42)
        return {"f": fn}

    def close(self) -> None:
        for rt in (self._runtime, self._lru_runtime, self._events_runtime):
            if rt is not None:
                rt.close()
        Cache.reset()

    # -- peers ----------------------------------------------------------------------------
    def plain_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        _fill(d.__setitem__)
        return {"d": d, "k": KEY, "absent": ABSENT, "v": VALUE}

    def cachetools(self, kind: str) -> dict[str, Any]:
        ct = need("cachetools")
        c = ct.TTLCache(maxsize=10_000, ttl=TTL) if kind == "ttl" else ct.LRUCache(maxsize=10_000)
        _fill(c.__setitem__)
        return {"c": c, "k": KEY, "absent": ABSENT, "v": VALUE}

    def cachetools_decorated(self) -> dict[str, Any]:
        ct = need("cachetools")

        @ct.cached(ct.TTLCache(maxsize=10_000, ttl=TTL))
        def fetch(user_id: int) -> dict[str, Any]:
            return VALUE

        fetch(42)
        return {"f": fetch}

    def dogpile(self) -> dict[str, Any]:
        if "dogpile" not in self._cache:
            need("dogpile.cache")
            from dogpile.cache import make_region

            region = make_region().configure("dogpile.cache.memory", expiration_time=TTL)
            _fill(region.set)
            self._cache["dogpile"] = region
        region = self._cache["dogpile"]
        return {"r": region, "k": KEY, "absent": ABSENT, "v": VALUE, "load": load_value}

    def dogpile_decorated(self) -> dict[str, Any]:
        region = self.dogpile()["r"]

        @region.cache_on_arguments()
        def fetch(user_id: int) -> dict[str, Any]:
            return VALUE

        fetch(42)
        return {"f": fetch}

    def cashews(self) -> dict[str, Any]:
        if "cashews" not in self._cache:
            need("cashews")
            from cashews import Cache as CashewsCache

            c = CashewsCache()
            c.setup("mem://")

            async def fill() -> None:
                for i in range(PREFILL):
                    await c.set(f"user:{i}", VALUE, expire=TTL)

            self.bench.wait(fill())
            self._cache["cashews"] = c
        return {"c": self._cache["cashews"], "k": KEY, "absent": ABSENT, "v": VALUE}

    def cashews_decorated(self) -> dict[str, Any]:
        c = self.cashews()["c"]

        @c(ttl=TTL)
        async def fetch(user_id: int) -> dict[str, Any]:
            return VALUE

        self.bench.wait(fetch(42))
        return {"f": fetch}

    def aiocache(self) -> dict[str, Any]:
        if "aiocache" not in self._cache:
            need("aiocache")
            from aiocache import SimpleMemoryCache

            c = SimpleMemoryCache()

            async def fill() -> None:
                for i in range(PREFILL):
                    await c.set(f"user:{i}", VALUE, ttl=TTL)

            self.bench.wait(fill())
            self._cache["aiocache"] = c
        return {"c": self._cache["aiocache"], "k": KEY, "absent": ABSENT, "v": VALUE}


def memory_scenarios(bench: Bench) -> list[Scenario]:
    """Run the in-process scenarios."""
    st = _Setups(bench)
    try:
        return [_get_hit(bench, st), _get_miss(bench, st), _set(bench, st), _remember_hit(bench, st)]
    finally:
        st.close()


def _get_hit(b: Bench, st: _Setups) -> Scenario:
    s = Scenario("memory_get_hit", "Memory: get hit (the hot path)",
                 f"One hot key in an in-process store of {PREFILL} entries with a {TTL}s TTL.")
    b.sync(s, "region.get(k)", "cachekit", st.cachekit, "region.get(k)", expect=VALUE, reference=True)
    b.sync(s, "Cache.get(k) (facade)", "cachekit", st.cachekit, "Cache.get(k)", expect=VALUE)
    b.sync(s, "runtime.region().get(k)", "cachekit", st.cachekit, "rt.region().get(k)", expect=VALUE)
    b.sync(s, "region.get(k), stats off", "cachekit", st.cachekit_stats_off, "region.get(k)", expect=VALUE,
           note="latency timing off; compare with region.get(k) (stats on): issue 13 allows 5 %")
    b.sync(s, "region.get(k), LRU active", "cachekit", st.cachekit_lru, "region.get(k)", expect=VALUE,
           note="store more than half full: every hit moves the key to the LRU end")
    b.sync(s, "region.get(k), events on", "cachekit", st.cachekit_events, "region.get(k)", expect=VALUE,
           note="a runtime.on('hit') listener: the instrumented path; no listener is the first row")
    b.async_(s, "await region.aget(k)", "cachekit", st.cachekit, "region.aget(k)", expect=VALUE)
    b.sync(s, "dict.get(k) (floor)", "python", st.plain_dict, "d.get(k)", expect=VALUE,
           note="no expiry, no eviction, no stats")
    b.sync(s, "TTLCache[k]", "cachetools", lambda: st.cachetools("ttl"), "c[k]", expect=VALUE)
    b.sync(s, "LRUCache[k]", "cachetools", lambda: st.cachetools("lru"), "c[k]", expect=VALUE)
    b.sync(s, "memory region.get(k)", "dogpile.cache", st.dogpile, "r.get(k)", expect=VALUE)
    b.async_(s, "mem:// await get(k)", "cashews", st.cashews, "c.get(k)", expect=VALUE)
    b.async_(s, "SimpleMemoryCache await get(k)", "aiocache", st.aiocache, "c.get(k)", expect=VALUE)
    return b.execute(s)


def _get_miss(b: Bench, st: _Setups) -> Scenario:
    s = Scenario("memory_get_miss", "Memory: get miss",
                 "A key that is not there; the default (None) comes back.")
    b.sync(s, "region.get(absent)", "cachekit", st.cachekit, "region.get(absent)", expect=None, reference=True)
    b.sync(s, "Cache.get(absent) (facade)", "cachekit", st.cachekit, "Cache.get(absent)", expect=None)
    b.sync(s, "dict.get(absent) (floor)", "python", st.plain_dict, "d.get(absent)", expect=None)
    b.sync(s, "TTLCache.get(absent)", "cachetools", lambda: st.cachetools("ttl"), "c.get(absent)",
           expect=None)
    b.sync(s, "memory region.get(absent)", "dogpile.cache", st.dogpile, "r.get(absent)",
           note="returns NO_VALUE")
    b.async_(s, "mem:// await get(absent)", "cashews", st.cashews, "c.get(absent)", expect=None)
    b.async_(s, "SimpleMemoryCache await get(absent)", "aiocache", st.aiocache, "c.get(absent)", expect=None)
    return b.execute(s)


def _set(b: Bench, st: _Setups) -> Scenario:
    s = Scenario("memory_set", "Memory: set (overwrite an existing key, with TTL)",
                 "Overwrite one existing key with the region's / store's TTL.")
    b.sync(s, "region.put(k, v)", "cachekit", st.cachekit, "region.put(k, v)", expect=True, reference=True)
    b.sync(s, "Cache.put(k, v) (facade)", "cachekit", st.cachekit, "Cache.put(k, v)", expect=True)
    b.sync(s, "d[k] = v (floor)", "python", st.plain_dict, "d.__setitem__(k, v)")
    b.sync(s, "TTLCache[k] = v", "cachetools", lambda: st.cachetools("ttl"), "c.__setitem__(k, v)")
    b.sync(s, "LRUCache[k] = v", "cachetools", lambda: st.cachetools("lru"), "c.__setitem__(k, v)")
    b.sync(s, "memory region.set(k, v)", "dogpile.cache", st.dogpile, "r.set(k, v)")
    b.async_(s, "mem:// await set(k, v)", "cashews", st.cashews, "c.set(k, v, expire=600)")
    b.async_(s, "SimpleMemoryCache await set(k, v)", "aiocache", st.aiocache, "c.set(k, v, ttl=600)")
    s.notes.append("`d[k] = v` and `c[k] = v` are timed as `__setitem__` calls (an assignment is not an "
                   "expression); the call costs a few ns more than the statement.")
    return b.execute(s)


def _remember_hit(b: Bench, st: _Setups) -> Scenario:
    s = Scenario("memory_remember_hit", "Memory: remember / decorator hit",
                 "Get-or-load where the value is cached: the loader never runs.")
    b.sync(s, "region.remember(k, ttl, load)", "cachekit", st.cachekit, "region.remember(k, 600, load)",
           expect=VALUE, reference=True)
    b.sync(s, "Cache.remember(k, ttl, load)", "cachekit", st.cachekit, "Cache.remember(k, 600, load)",
           expect=VALUE)
    b.sync(s, "@cached f(42)", "cachekit", lambda: st.cachekit_decorated(False), "f(42)", expect=VALUE,
           note="key built from the arguments")
    b.async_(s, "@cached async f(42)", "cachekit", lambda: st.cachekit_decorated(True), "f(42)",
             expect=VALUE)
    b.sync(s, "@cached(TTLCache) f(42)", "cachetools", st.cachetools_decorated, "f(42)", expect=VALUE)
    b.sync(s, "get_or_create(k, load)", "dogpile.cache", st.dogpile, "r.get_or_create(k, load)", expect=VALUE)
    b.sync(s, "@cache_on_arguments f(42)", "dogpile.cache", st.dogpile_decorated, "f(42)", expect=VALUE)
    b.async_(s, "@cache(ttl) async f(42)", "cashews", st.cashews_decorated, "f(42)", expect=VALUE)
    return b.execute(s)
