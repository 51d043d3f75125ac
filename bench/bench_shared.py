"""Shared-store scenarios: Redis get hit and get_many, memcached get hit, on private loopback servers.

Every client talks to a server this run started on a free port (never the machine's 6379). The same
value is stored by each library in its own format; the "raw" rows are the floor: the client library's
round trip plus ``pickle.loads``, with no envelope, expiry check or namespace.
"""

from __future__ import annotations

import pickle
from typing import Any

from bench_memory import TTL, VALUE, need
from harness import Bench, Scenario, Unavailable
from servers import memcached_server, missing_binaries, redis_server

from cachekit import CacheConfig, Runtime

__all__ = ["memcached_scenarios", "redis_scenarios"]

KEY = "user:42"
MANY = 100
PAYLOAD = pickle.dumps(VALUE, protocol=pickle.HIGHEST_PROTOCOL)


def _many_keys() -> list[str]:
    return [f"user:{i}" for i in range(MANY)]


def _unavailable(scenarios: list[Scenario], reason: str) -> list[Scenario]:
    for s in scenarios:
        s.unavailable("every row", "-", reason)
    return scenarios


# -- Redis ----------------------------------------------------------------------------------
def redis_scenarios(bench: Bench, sizes: Any = None) -> list[Scenario]:
    """Redis get hit and get_many of 100 keys; with ``sizes`` (a ``zipf.Sizes``), the Zipf cases too."""
    hit = Scenario("redis_get_hit", "Redis: get hit (one key, loopback)",
                   "One small dict under one key on a redis-server on 127.0.0.1; one round trip per get.")
    many = Scenario("redis_get_many", f"Redis: get_many of {MANY} keys (loopback)",
                    f"{MANY} small dicts read in one call (MGET or a pipeline under the hood).")
    missing = missing_binaries("redis-server")
    if missing:
        return _unavailable([hit, many], f"{', '.join(missing)} not on PATH (make servers)")
    try:
        import redis
    except ImportError:
        return _unavailable([hit, many], "redis-py not installed: pip install 'cachekit-config[redis]'")
    with redis_server() as srv:
        runtime = CacheConfig(
            cache={"prefix": "bench"},
            providers={"redis": {"type": "redis", "url": srv.url}},
            regions={"default": {"provider": "redis", "ttl": TTL}},
        ).compile()
        client = redis.Redis(host=srv.host, port=srv.port)
        setups = _RedisSetups(bench, srv, runtime, client)
        try:
            _redis_get_hit(bench, hit, setups)
            bench.execute(hit)
            _redis_get_many(bench, many, setups)
            bench.execute(many)
        finally:
            setups.close()
        if sizes is not None:
            from zipf_shared import redis_zipf_scenarios

            return [hit, many, *redis_zipf_scenarios(bench, srv, sizes)]
    return [hit, many]


class _RedisSetups:
    def __init__(self, bench: Bench, srv: Any, runtime: Runtime, client: Any) -> None:
        self.bench = bench
        self.srv = srv
        self.runtime = runtime
        self.client = client
        self._made: dict[str, Any] = {}
        region = runtime.region()
        region.put_many({k: VALUE for k in {KEY, *_many_keys()}})
        client.mset({f"raw:{k}": PAYLOAD for k in {KEY, *_many_keys()}})

    def cachekit(self) -> dict[str, Any]:
        return {"region": self.runtime.region(), "k": KEY, "keys": _many_keys()}

    def raw(self) -> dict[str, Any]:
        client = self.client

        def mget_loads(keys: list[str]) -> list[Any]:
            return [pickle.loads(raw) for raw in client.mget(keys)]

        return {"client": client, "loads": pickle.loads, "fk": f"raw:{KEY}", "mget_loads": mget_loads,
                "fkeys": [f"raw:{k}" for k in _many_keys()]}

    def raw_async(self) -> dict[str, Any]:
        if "raw_async" not in self._made:
            import redis.asyncio

            self._made["raw_async"] = redis.asyncio.Redis(host=self.srv.host, port=self.srv.port)
        client = self._made["raw_async"]

        async def get_loads(key: str) -> Any:
            return pickle.loads(await client.get(key))

        return {"get_loads": get_loads, "fk": f"raw:{KEY}"}

    def dogpile(self) -> dict[str, Any]:
        if "dogpile" not in self._made:
            need("dogpile.cache")
            from dogpile.cache import make_region

            region = make_region().configure(
                "dogpile.cache.redis", expiration_time=TTL,
                arguments={"host": self.srv.host, "port": self.srv.port, "db": 0},
            )
            region.set_multi({f"dp:{k}": VALUE for k in {KEY, *_many_keys()}})
            self._made["dogpile"] = region
        return {"r": self._made["dogpile"], "k": f"dp:{KEY}", "keys": [f"dp:{k}" for k in _many_keys()]}

    def cashews(self) -> dict[str, Any]:
        if "cashews" not in self._made:
            need("cashews")
            from cashews import Cache as CashewsCache

            c = CashewsCache()
            c.setup(self.srv.url, client_side=False)
            self.bench.wait(c.set_many({f"cw:{k}": VALUE for k in {KEY, *_many_keys()}}, expire=TTL))
            self._made["cashews"] = c
        return {"c": self._made["cashews"], "k": f"cw:{KEY}", "keys": [f"cw:{k}" for k in _many_keys()]}

    def aiocache(self) -> dict[str, Any]:
        if "aiocache" not in self._made:
            need("aiocache")
            from aiocache import RedisCache
            from aiocache.serializers import PickleSerializer

            c = RedisCache(endpoint=self.srv.host, port=self.srv.port, serializer=PickleSerializer())
            self.bench.wait(c.multi_set([(f"ac:{k}", VALUE) for k in {KEY, *_many_keys()}], ttl=TTL))
            self._made["aiocache"] = c
        return {"c": self._made["aiocache"], "k": f"ac:{KEY}", "keys": [f"ac:{k}" for k in _many_keys()]}

    def close(self) -> None:
        closers = {"raw_async": "aclose", "cashews": "close", "aiocache": "close"}
        for name, method in closers.items():
            obj = self._made.get(name)
            if obj is not None:
                try:
                    self.bench.wait(getattr(obj, method)())
                except Exception:  # best effort: the server is stopped next anyway
                    pass
        self.client.close()
        self.runtime.close()


def _redis_get_hit(b: Bench, s: Scenario, st: _RedisSetups) -> None:
    b.sync(s, "region.get(k)", "cachekit", st.cachekit, "region.get(k)", expect=VALUE, reference=True)
    b.async_(s, "await region.aget(k)", "cachekit", st.cachekit, "region.aget(k)", expect=VALUE)
    b.sync(s, "GET + pickle.loads (floor)", "redis-py", st.raw, "loads(client.get(fk))", expect=VALUE)
    b.sync(s, "GET only, no decoding", "redis-py", st.raw, "client.get(fk)", expect=PAYLOAD)
    b.async_(s, "await GET + pickle.loads", "redis.asyncio", st.raw_async, "get_loads(fk)", expect=VALUE)
    b.sync(s, "dogpile.cache.redis region.get(k)", "dogpile.cache", st.dogpile, "r.get(k)", expect=VALUE)
    b.async_(s, "redis:// await get(k)", "cashews", st.cashews, "c.get(k)", expect=VALUE)
    b.async_(s, "RedisCache await get(k)", "aiocache", st.aiocache, "c.get(k)", expect=VALUE)


def _redis_get_many(b: Bench, s: Scenario, st: _RedisSetups) -> None:
    expected = {k: VALUE for k in _many_keys()}
    values = [VALUE] * MANY
    b.sync(s, f"region.get_many({MANY} keys)", "cachekit", st.cachekit, "region.get_many(keys)",
           expect=expected, reference=True)
    b.sync(s, "MGET + pickle.loads each (floor)", "redis-py", st.raw, "mget_loads(fkeys)", expect=values)
    b.sync(s, "dogpile.cache.redis get_multi", "dogpile.cache", st.dogpile, "r.get_multi(keys)", expect=values)
    b.async_(s, "redis:// await get_many(*keys)", "cashews", st.cashews, "c.get_many(*keys)",
             expect=tuple(values))
    b.async_(s, "RedisCache await multi_get(keys)", "aiocache", st.aiocache, "c.multi_get(keys)",
             expect=values)


# -- memcached ------------------------------------------------------------------------------
def memcached_scenarios(bench: Bench, sizes: Any = None) -> list[Scenario]:
    """Memcached get hit; with ``sizes`` (a ``zipf.Sizes``), the Zipf cases too."""
    s = Scenario("memcached_get_hit", "Memcached: get hit (one key, loopback)",
                 "One small dict under one key on a memcached on 127.0.0.1.")
    missing = missing_binaries("memcached")
    if missing:
        return _unavailable([s], f"{', '.join(missing)} not on PATH (make servers)")
    try:
        from pymemcache.client.base import Client, PooledClient
    except ImportError:
        return _unavailable([s], "pymemcache not installed: pip install 'cachekit-config[memcached]'")
    with memcached_server() as srv:
        runtime = CacheConfig(
            cache={"prefix": "bench"},
            providers={"mc": {"type": "memcached", "servers": [srv.address]}},
            regions={"default": {"provider": "mc", "ttl": TTL}},
        ).compile()
        region = runtime.region()
        client = Client((srv.host, srv.port), no_delay=True)
        cfg = runtime.config.providers["mc"]
        pooled = PooledClient((srv.host, srv.port), no_delay=True, timeout=cfg.timeout,  # type: ignore[union-attr]
                              connect_timeout=cfg.connect_timeout)  # type: ignore[union-attr]
        made: dict[str, Any] = {}
        try:
            region.put(KEY, VALUE)
            client.set(f"raw:{KEY}", PAYLOAD, expire=TTL)
            gen_key = region.l2.gen_key("region", "")  # the region generation read with every entry

            def cachekit() -> dict[str, Any]:
                return {"region": region, "k": KEY}

            def raw() -> dict[str, Any]:
                def get_many_loads(keys: list[str], client: Any = client) -> Any:
                    return pickle.loads(client.get_many(keys)[keys[0]])

                def pooled_get_many_loads(keys: list[str]) -> Any:
                    return get_many_loads(keys, pooled)

                return {"client": client, "loads": pickle.loads, "fk": f"raw:{KEY}",
                        "get_many_loads": get_many_loads, "pooled_get_many_loads": pooled_get_many_loads,
                        "pair": [f"raw:{KEY}", gen_key]}

            def dogpile() -> dict[str, Any]:
                need("dogpile.cache")
                from dogpile.cache import make_region

                if "dogpile" not in made:
                    r = make_region().configure("dogpile.cache.pymemcache", expiration_time=TTL,
                                                arguments={"url": srv.address})
                    r.set(f"dp:{KEY}", VALUE)
                    made["dogpile"] = r
                return {"r": made["dogpile"], "k": f"dp:{KEY}"}

            bench.sync(s, "region.get(k)", "cachekit", cachekit, "region.get(k)", expect=VALUE, reference=True,
                       note="one multi-get: the entry and the region's generation counter")
            bench.sync(s, "get + pickle.loads (floor)", "pymemcache", raw, "loads(client.get(fk))", expect=VALUE)
            if gen_key is None:
                s.unavailable("get_many([k, gen]) + pickle.loads", "pymemcache", "region has no generation key")
            else:
                bench.sync(s, "get_many([k, gen]) + pickle.loads", "pymemcache", raw,
                           "get_many_loads(pair)", expect=VALUE,
                           note="the round trip cachekit makes, without the envelope")
                bench.sync(s, "same, PooledClient with timeouts", "pymemcache", raw,
                           "pooled_get_many_loads(pair)", expect=VALUE,
                           note="the client settings cachekit uses (thread-safe pool, socket timeouts)")
            bench.sync(s, "dogpile.cache.pymemcache region.get(k)", "dogpile.cache", dogpile, "r.get(k)",
                       expect=VALUE)
            bench.execute(s)
        except Unavailable as exc:
            s.unavailable("remaining rows", "-", str(exc))
        finally:
            client.close()
            pooled.close()
            runtime.close()
        s.notes.append("cashews and aiocache are left out: cashews has no memcached backend and aiocache's "
                       "needs aiomcache, which the bench does not install.")
        if sizes is not None:
            from zipf_shared import memcached_zipf_scenarios

            return [s, *memcached_zipf_scenarios(bench, srv, sizes)]
    return [s]
