"""MemcachedDriver against real memcached servers: one server, and a pool of three (consistent hashing)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from servers import need_module

need_module("pymemcache")

from pymemcache.client.base import Client  # noqa: E402

from cachekit.clock import SystemClock  # noqa: E402
from cachekit.config.models import MemcachedProviderConfig  # noqa: E402
from cachekit.errors import ProviderError, UnsupportedOperation, ValueTooLargeError  # noqa: E402
from cachekit.providers.base import MISSING  # noqa: E402
from cachekit.providers.memcached import MAX_PLAIN_KEY, MemcachedDriver  # noqa: E402
from cachekit.providers.registry import build_driver  # noqa: E402
from cachekit.serializers import SerializationError, make_serializer  # noqa: E402

NS = "cachekit:"
ENTRY = ("value", float("inf"), (("cachekit:default:__gen__:tag:users", 3),))

UNSAFE_KEYS = [
    "cachekit:default:with space",
    "cachekit:default:new\nline",
    "cachekit:default:carriage\r\nreturn",
    "cachekit:default:tab\tkey",
    "cachekit:default:nul\x00byte",
    "cachekit:default:" + "x" * 300,
    "cachekit:default:" + "x" * 301,
    "cachekit:default:ключ",
    "cachekit:default:ключ2",
    "cachekit:default:emoji-\U0001f600",
    "",
    "cachekit:h:" + "0" * 64,  # looks like a hashed key: must not collide with one
]


def _parse(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def raw_get(address: str, key: str) -> bytes | None:
    """Read ``key`` with a plain pymemcache client on one server, behind the driver's back."""
    client = Client(_parse(address), connect_timeout=2, timeout=2, default_noreply=False)
    try:
        return client.get(key)  # type: ignore[no-any-return]
    finally:
        client.close()


def raw_set(address: str, key: str, value: bytes) -> None:
    """Write ``key`` with a plain pymemcache client on one server."""
    client = Client(_parse(address), connect_timeout=2, timeout=2, default_noreply=False)
    try:
        assert client.set(key, value)
    finally:
        client.close()


_open_drivers: list[MemcachedDriver] = []


def make_driver(servers: list[str], **options: Any) -> MemcachedDriver:
    """A driver on ``servers`` (closed after the test by the autouse fixture below)."""
    options.setdefault("serializer", make_serializer("pickle"))
    driver = MemcachedDriver(servers, connect_timeout=1, timeout=2, namespace=NS, **options)
    _open_drivers.append(driver)
    return driver


@pytest.fixture(autouse=True)
def _close_drivers() -> Iterator[None]:
    yield
    while _open_drivers:
        _open_drivers.pop().close()


@pytest.fixture(params=["single", "pool"])
def servers(request: pytest.FixtureRequest) -> list[str]:
    """The server list of a config: one memcached, or three."""
    if request.param == "single":
        return [request.getfixturevalue("memcached_server").address]
    return list(request.getfixturevalue("memcached_pool").servers)


@pytest.fixture
def driver(servers: list[str]) -> MemcachedDriver:
    return make_driver(servers)


def holders(servers: list[str], storage_key: str) -> list[str]:
    """The servers that hold ``storage_key``."""
    return [address for address in servers if raw_get(address, storage_key) is not None]


def run_threads(count: int, target: Callable[[], None]) -> None:
    errors: list[BaseException] = []

    def body() -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=body) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


# -- payloads (the basics of every driver are in tests/conformance/test_drivers.py) ----------------
def test_put_int_is_stored_as_decimal_ascii_that_memcached_incr_understands(servers: list[str]) -> None:
    driver = make_driver(servers)
    driver.put("cachekit:default:n", 41)
    (holder,) = holders(servers, "cachekit:default:n")
    assert raw_get(holder, "cachekit:default:n") == b"41"
    assert driver.increment("cachekit:default:n") == 42


# -- the pool ------------------------------------------------------------------------------------
def test_pool_spreads_keys_over_several_servers_each_key_on_exactly_one(memcached_pool: Any) -> None:
    servers = list(memcached_pool.servers)
    driver = make_driver(servers)
    keys = [f"cachekit:default:spread:{i}" for i in range(60)]
    driver.put_many({key: i for i, key in enumerate(keys)})
    placement = {key: holders(servers, key) for key in keys}
    assert all(len(where) == 1 for where in placement.values()), placement
    used = {where[0] for where in placement.values()}
    assert len(used) > 1
    assert driver.get_many(keys) == {key: i for i, key in enumerate(keys)}


def test_pool_keeps_a_dead_servers_keys_failing_instead_of_moving_them(memcached_pool: Any) -> None:
    servers = list(memcached_pool.servers)
    driver = make_driver(servers)
    keys = [f"cachekit:default:dead:{i}" for i in range(30)]
    driver.put_many(dict.fromkeys(keys, "before"))
    victim = memcached_pool.members[0]
    on_victim = [k for k in keys if holders(servers, k) == [victim.address]]
    elsewhere = [k for k in keys if k not in on_victim]
    assert on_victim and elsewhere
    victim.stop()
    try:
        with pytest.raises(ProviderError):
            driver.get(on_victim[0])
        with pytest.raises(ProviderError):
            driver.put(on_victim[0], "during")  # not silently written to another server
        assert driver.get(elsewhere[0]) == "before"
    finally:
        victim.start()
    assert driver.put(on_victim[0], "after") is True
    assert holders(servers, on_victim[0]) == [victim.address]
    assert driver.get(on_victim[0]) == "after"


# -- one round trip for get_many -----------------------------------------------------------------
def _count_calls(monkeypatch: pytest.MonkeyPatch, client: Any, name: str, calls: list[str]) -> None:
    original = getattr(client, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(client, name, counted)


def test_get_many_is_one_get_multi_on_one_server(
    memcached_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = make_driver([memcached_server.address])
    keys = [f"cachekit:default:rt:{i}" for i in range(20)] + ["cachekit:default:with space"]
    driver.put_many(dict.fromkeys(keys, "v"))
    calls: list[str] = []
    for name in ("get", "get_many", "gets", "gets_many"):
        _count_calls(monkeypatch, driver.client, name, calls)
    got = driver.get_many([*keys, "cachekit:default:absent"])
    assert calls == ["get_many"]
    assert sum(1 for v in got.values() if v == "v") == len(keys)


def test_get_many_on_a_pool_asks_each_server_at_most_once(
    memcached_pool: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = make_driver(list(memcached_pool.servers))
    keys = [f"cachekit:default:rt:{i}" for i in range(40)]
    driver.put_many(dict.fromkeys(keys, "v"))
    per_server: dict[str, list[str]] = {}
    for address, client in driver.client.clients.items():
        per_server[address] = []
        for name in ("get", "get_many"):
            _count_calls(monkeypatch, client, name, per_server[address])
    assert driver.get_many(keys) == dict.fromkeys(keys, "v")
    assert all(calls in ([], ["get_many"]) for calls in per_server.values()), per_server
    assert sum(len(calls) for calls in per_server.values()) > 1


# -- expiry ---------------------------------------------------------------------------------------
def _gone_within(driver: MemcachedDriver, key: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if driver.get(key) is MISSING:
            return True
        time.sleep(0.1)  # the server's clock, not ours: nothing to fake
    return False


def test_ttl_of_one_second_expires_on_the_server(driver: MemcachedDriver) -> None:
    driver.put("cachekit:default:short", "v", ttl=1)
    driver.put("cachekit:default:long", "v", ttl=60)
    driver.put("cachekit:default:fraction", "v", ttl=0.2)  # rounded up to 1 s, never to 0 (= forever)
    assert _gone_within(driver, "cachekit:default:short", 4)
    assert _gone_within(driver, "cachekit:default:fraction", 1)
    assert driver.get("cachekit:default:long") == "v"


def test_ttl_over_thirty_days_is_sent_as_absolute_time_and_does_not_expire_at_once(
    driver: MemcachedDriver,
) -> None:
    driver.put("cachekit:default:month", "v", ttl=31 * 24 * 3600)
    driver.put_many({"cachekit:default:month2": "v"}, ttl=45 * 24 * 3600)
    assert driver.get("cachekit:default:month") == "v"  # read as a 1970 timestamp it would be gone
    assert driver.get("cachekit:default:month2") == "v"


def test_zero_ttl_stores_nothing_lasting(driver: MemcachedDriver) -> None:
    driver.put("cachekit:default:zero", "v", ttl=0)
    assert driver.get("cachekit:default:zero") is MISSING


def test_increment_ttl_applies_to_a_new_counter(driver: MemcachedDriver) -> None:
    assert driver.increment("cachekit:default:rate", 1, ttl=1) == 1
    assert _gone_within(driver, "cachekit:default:rate", 4)


# -- atomic counters ------------------------------------------------------------------------------
def test_increments_of_a_hashed_key_from_threads_are_atomic(driver: MemcachedDriver) -> None:
    key = "cachekit:default:counter with spaces"

    def work() -> None:
        for _ in range(50):
            driver.increment(key)

    run_threads(4, work)
    assert driver.get(key) == 200


# -- keys memcached would refuse ------------------------------------------------------------------
def test_unsafe_keys_round_trip_and_stay_distinct(driver: MemcachedDriver) -> None:
    for i, key in enumerate(UNSAFE_KEYS):
        assert driver.put(key, ("value", i)) is True
    for i, key in enumerate(UNSAFE_KEYS):
        assert driver.get(key) == ("value", i), key
    assert driver.get_many(UNSAFE_KEYS) == {key: ("value", i) for i, key in enumerate(UNSAFE_KEYS)}
    assert driver.forget(UNSAFE_KEYS[0]) is True
    assert driver.get(UNSAFE_KEYS[0]) is MISSING
    assert driver.get(UNSAFE_KEYS[1]) == ("value", 1)


def test_unsafe_keys_map_to_short_printable_storage_keys_under_the_namespace(driver: MemcachedDriver) -> None:
    storage = [driver.storage_key(key) for key in UNSAFE_KEYS]
    assert len(set(storage)) == len(UNSAFE_KEYS)
    for skey in storage:
        assert skey.startswith(NS + "h:")
        assert len(skey.encode()) <= 250 and skey.isascii() and skey.isprintable() and " " not in skey
    safe = "cachekit:default:" + "y" * (MAX_PLAIN_KEY - len("cachekit:default:"))
    assert driver.storage_key(safe) == safe
    assert driver.storage_key(safe + "y") != safe + "y"


def test_a_frame_naming_another_key_reads_as_a_miss(driver: MemcachedDriver, servers: list[str]) -> None:
    a, b = "cachekit:default:key a", "cachekit:default:key b"
    driver.put(a, "a's value")
    (holder,) = holders(servers, driver.storage_key(a))
    stolen = raw_get(holder, driver.storage_key(a))
    assert stolen is not None
    for address in servers:  # wherever b hashes, it now holds a's framed value: a simulated collision
        raw_set(address, driver.storage_key(b), stolen)
    assert driver.get(b) is MISSING
    assert driver.has(b) is False
    assert driver.get_many([a, b]) == {a: "a's value", b: MISSING}


def test_garbage_under_a_hashed_key_raises_serialization_error(
    driver: MemcachedDriver, servers: list[str]
) -> None:
    key = "cachekit:default:garbled key"
    for address in servers:
        raw_set(address, driver.storage_key(key), b"not a frame")
    with pytest.raises(SerializationError):
        driver.get(key)


# -- value size -----------------------------------------------------------------------------------
def test_oversize_value_is_refused_and_the_previous_value_is_kept(servers: list[str]) -> None:
    driver = make_driver(servers, max_value_size=2000)
    driver.put("cachekit:default:doc", "small")
    with pytest.raises(ValueTooLargeError) as raised:
        driver.put("cachekit:default:doc", "x" * 5000)
    message = str(raised.value)
    assert "cachekit:default:doc" in message and "2000" in message and "max_value_size" in message
    assert isinstance(raised.value, ProviderError)
    assert driver.get("cachekit:default:doc") == "small"


def test_put_many_with_one_oversize_value_stores_nothing(servers: list[str]) -> None:
    driver = make_driver(servers, max_value_size=2000)
    with pytest.raises(ValueTooLargeError):
        driver.put_many({"cachekit:default:ok": "small", "cachekit:default:big": "x" * 5000})
    assert driver.get_many(["cachekit:default:ok", "cachekit:default:big"]) == {
        "cachekit:default:ok": MISSING,
        "cachekit:default:big": MISSING,
    }


def test_add_of_an_oversize_value_is_refused(servers: list[str]) -> None:
    driver = make_driver(servers, max_value_size=2000)
    with pytest.raises(ValueTooLargeError):
        driver.add("cachekit:default:big", b"x" * 5000)
    assert driver.get("cachekit:default:big") is MISSING


def test_value_over_the_servers_item_limit_raises_value_too_large(servers: list[str]) -> None:
    driver = make_driver(servers, max_value_size=None)
    with pytest.raises(ValueTooLargeError, match="refused by the server"):
        driver.put("cachekit:default:huge", b"\x00" * (2 * 1024 * 1024))


# -- tenants, flush, scan -------------------------------------------------------------------------
def test_scan_raises_unsupported_and_suggests_a_pattern_rule(driver: MemcachedDriver) -> None:
    with pytest.raises(UnsupportedOperation, match="cannot enumerate keys") as raised:
        driver.scan("cachekit:default:user:*")
    assert "pattern_based" in str(raised.value)


def test_flush_without_owning_the_server_raises_and_deletes_nothing(driver: MemcachedDriver) -> None:
    driver.put("cachekit:default:k", "v")
    with pytest.raises(UnsupportedOperation, match="owns_server=True"):
        driver.flush()
    assert driver.get("cachekit:default:k") == "v"


def test_foreign_key_survives_everything_but_an_owned_server_flush(servers: list[str]) -> None:
    foreign = "otherapp:session:42"
    for address in servers:
        raw_set(address, foreign, b"keep me")
    driver = make_driver(servers)
    driver.put("cachekit:default:a", ENTRY, ttl=30)
    driver.put_many({"cachekit:default:b": 1, "cachekit:default:c d": 2})
    driver.get_many(["cachekit:default:a", "cachekit:default:b", "cachekit:default:absent"])
    driver.add("cachekit:default:e", "v")
    driver.increment("cachekit:default:n", 3)
    driver.decrement("cachekit:default:n", 7)
    driver.forget("cachekit:default:a")
    driver.delete_many(["cachekit:default:b", "cachekit:default:c d"])
    with pytest.raises(UnsupportedOperation):
        driver.flush()
    with pytest.raises(UnsupportedOperation):
        driver.scan("*")
    driver.ping()
    driver.close()
    assert all(raw_get(address, foreign) == b"keep me" for address in servers)

    owner = make_driver(servers, owns_server=True)
    owner.put("cachekit:default:mine", "v")
    assert owner.flush() is True
    assert owner.get("cachekit:default:mine") is MISSING
    assert all(raw_get(address, foreign) is None for address in servers)


# -- failures -------------------------------------------------------------------------------------
def test_stopped_server_raises_provider_error_and_the_driver_recovers_after_start(
    memcached_server: Any,
) -> None:
    driver = make_driver([memcached_server.address])
    driver.put("cachekit:default:k", "before")
    memcached_server.stop()
    try:
        for call in (
            lambda: driver.get("cachekit:default:k"),
            lambda: driver.put("cachekit:default:k", "during"),
            lambda: driver.get_many(["cachekit:default:k"]),
            lambda: driver.increment("cachekit:default:n"),
            lambda: driver.add("cachekit:default:new", 1),
            driver.ping,
        ):
            with pytest.raises(ProviderError) as raised:
                call()
            assert memcached_server.address in str(raised.value)
            assert raised.value.__cause__ is not None
    finally:
        memcached_server.start()
    assert driver.put("cachekit:default:k", "after") is True
    assert driver.get("cachekit:default:k") == "after"
    assert driver.increment("cachekit:default:n") == 1


def test_first_call_after_a_server_restart_succeeds_on_a_fresh_connection(memcached_server: Any) -> None:
    driver = make_driver([memcached_server.address])
    driver.put("cachekit:default:k", "v")  # leaves an idle pooled connection behind
    memcached_server.stop()
    memcached_server.start()
    assert driver.get("cachekit:default:k") is MISSING  # a restarted memcached is empty
    assert driver.put("cachekit:default:k", "again") is True


def test_default_serializer_follows_the_config(memcached_server: Any) -> None:
    config = MemcachedProviderConfig(servers=[memcached_server.address], serializer="json")
    driver = build_driver(config, namespace=NS, clock=SystemClock())
    _open_drivers.append(driver)
    driver.put("cachekit:default:k", ("a", 1))
    assert driver.get("cachekit:default:k") == ("a", 1)  # tagged json: a tuple stays a tuple
    assert (raw_get(memcached_server.address, "cachekit:default:k") or b"")[:2] == b"\xcaJ"


def test_namespace_that_memcached_cannot_carry_is_refused(memcached_server: Any) -> None:
    with pytest.raises(ValueError, match="namespace"):
        MemcachedDriver([memcached_server.address], namespace="my app:")
