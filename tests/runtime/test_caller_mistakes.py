"""Issue 12 item 3: a caller's mistake (a bad key, a bad TTL, a bad counter amount) raises a typed error
before any I/O, on every store and every operation, sync and async, and is never counted as a store
failure: ``errors`` stays 0 and the provider is not marked down."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dict_driver import DictDriver
from servers import need_module

from cachekit import (
    CacheConfig,
    CacheError,
    InvalidKeyError,
    InvalidTTLError,
    InvalidValueError,
    Region,
    Runtime,
)

STORES = ["memory", "memory+l1", "file", "redis", "redis+l1", "memcached", "custom"]

BAD_KEYS = {
    "int": 123,
    "none": None,
    "bytes": b"user:1",
    "lone-surrogate": "user:\ud800",
    "too-long": "k" * 2000,
    "empty": "",
}
BAD_TTLS = {"huge": 10**30, "negative": -1, "nan": float("nan"), "inf": float("inf"), "zero": 0}

# operations taking a key: (name, call(region, key)); sync then async twins
KEY_OPS: dict[str, Callable[[Region, Any], Any]] = {
    "get": lambda r, k: r.get(k),
    "put": lambda r, k: r.put(k, "v"),
    "add": lambda r, k: r.add(k, "v"),
    "has": lambda r, k: r.has(k),
    "forget": lambda r, k: r.forget(k),
    "remember": lambda r, k: r.remember(k, 60, lambda: "v"),
    "increment": lambda r, k: r.increment(k),
    "decrement": lambda r, k: r.decrement(k),
    "get_many": lambda r, k: r.get_many(["ok", k]),
    "put_many": lambda r, k: r.put_many({"ok": 1, k: 2}),
    "tags.put": lambda r, k: r.tags("t").put(k, "v"),
    "aget": lambda r, k: asyncio.run(r.aget(k)),
    "aput": lambda r, k: asyncio.run(r.aput(k, "v")),
    "ahas": lambda r, k: asyncio.run(r.ahas(k)),
    "aforget": lambda r, k: asyncio.run(r.aforget(k)),
    "aremember": lambda r, k: asyncio.run(r.aremember(k, 60, lambda: "v")),
    "aincrement": lambda r, k: asyncio.run(r.aincrement(k)),
    "aget_many": lambda r, k: asyncio.run(r.aget_many(["ok", k])),
    "aput_many": lambda r, k: asyncio.run(r.aput_many({"ok": 1, k: 2})),
}

# operations taking a TTL
TTL_OPS: dict[str, Callable[[Region, Any], Any]] = {
    "put": lambda r, t: r.put("k", "v", t),
    "add": lambda r, t: r.add("fresh", "v", t),
    "remember": lambda r, t: r.remember("fresh", t, lambda: "v"),
    "put_many": lambda r, t: r.put_many({"a": 1, "b": 2}, t),
    "tags.put": lambda r, t: r.tags("t").put("k", "v", t),
    "aput": lambda r, t: asyncio.run(r.aput("k", "v", t)),
    "aremember": lambda r, t: asyncio.run(r.aremember("fresh", t, lambda: "v")),
    "aput_many": lambda r, t: asyncio.run(r.aput_many({"a": 1, "b": 2}, t)),
}


def provider(store: str, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    kind = store.split("+")[0]
    if kind == "memory":
        return {"type": "memory"}
    if kind == "file":
        return {"type": "file", "path": str(tmp_path / "files")}
    if kind == "redis":
        need_module("redis")
        server = request.getfixturevalue("redis_server")
        return {"type": "redis", "url": server.url, "on_error": "ignore"}
    if kind == "memcached":
        need_module("pymemcache")
        server = request.getfixturevalue("memcached_server")
        return {"type": "memcached", "servers": [f"{server.host}:{server.port}"]}
    raise AssertionError(store)


@pytest.fixture(params=STORES)
def store_region(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Runtime, Region]]:
    store: str = request.param
    if store == "custom":
        runtime = CacheConfig(cache={"prefix": "mistakes"}).compile()
        runtime.register_store("dict", DictDriver())
        with runtime:
            yield runtime, runtime.store("dict")
        return
    region: dict[str, Any] = {"provider": "store", "ttl": 60}
    if store.endswith("+l1"):
        region["l1"] = {"provider": "memory", "ttl": 8}
    runtime = CacheConfig(cache={"prefix": "mistakes"},
                          providers={"store": provider(store, tmp_path, request)},
                          regions={"default": region}).compile()
    with runtime:
        yield runtime, runtime.region()


def assert_not_an_outage(runtime: Runtime, region: Region, caplog: pytest.LogCaptureFixture) -> None:
    assert sum(row["errors"] for row in runtime.stats.rows()) == 0
    assert region.l2.down is False
    assert not [r for r in caplog.records if "failed" in r.getMessage()]
    assert region.put("ok", "fine") is True  # the store still works
    assert region.get("ok") == "fine"


@pytest.mark.parametrize("op", list(KEY_OPS))
def test_a_bad_key_raises_invalid_key_error_before_any_io(
    store_region: tuple[Runtime, Region], op: str, caplog: pytest.LogCaptureFixture,
) -> None:
    runtime, region = store_region
    with caplog.at_level(logging.WARNING, logger="cachekit"):
        for name, key in BAD_KEYS.items():
            with pytest.raises(InvalidKeyError):
                KEY_OPS[op](region, key)
                pytest.fail(f"{op}({name}) did not raise")
    assert_not_an_outage(runtime, region, caplog)


@pytest.mark.parametrize("op", list(TTL_OPS))
def test_a_ttl_out_of_range_raises_invalid_ttl_error_before_any_io(
    store_region: tuple[Runtime, Region], op: str, caplog: pytest.LogCaptureFixture,
) -> None:
    runtime, region = store_region
    with caplog.at_level(logging.WARNING, logger="cachekit"):
        for name, ttl in BAD_TTLS.items():
            with pytest.raises(InvalidTTLError):
                TTL_OPS[op](region, ttl)
                pytest.fail(f"{op}(ttl={name}) did not raise")
    assert region.get("fresh") is None  # nothing was stored
    assert_not_an_outage(runtime, region, caplog)


def test_a_bad_counter_amount_raises_invalid_value_error(store_region: tuple[Runtime, Region]) -> None:
    runtime, region = store_region
    for amount in ("1", 1.5, True, None):
        with pytest.raises(InvalidValueError):
            region.increment("n", amount)  # type: ignore[arg-type]
    assert sum(row["errors"] for row in runtime.stats.rows()) == 0


def test_the_typed_errors_are_cache_errors_and_value_errors() -> None:
    for cls in (InvalidKeyError, InvalidValueError, InvalidTTLError):
        assert issubclass(cls, CacheError) and issubclass(cls, ValueError)
    assert issubclass(InvalidTTLError, InvalidValueError)
