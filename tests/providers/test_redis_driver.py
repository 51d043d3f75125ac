"""RedisDriver against a real redis-server (standalone and Sentinel)."""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from servers import free_port, need_module

redis = need_module("redis")

from cachekit.clock import SystemClock  # noqa: E402
from cachekit.config.models import RedisProviderConfig  # noqa: E402
from cachekit.errors import ProviderError, UnsupportedOperation, ValueTooLargeError  # noqa: E402
from cachekit.providers.base import MISSING  # noqa: E402
from cachekit.providers.redis import RedisDriver  # noqa: E402
from cachekit.providers.registry import build_driver  # noqa: E402
from cachekit.serializers import SerializationError, TamperedPayloadError, make_serializer  # noqa: E402

pytestmark = pytest.mark.timeout(60)

NS = "ck:"
ENTRY = ("value", math.inf, None)


@pytest.fixture
def driver(redis_server: Any) -> Iterator[RedisDriver]:
    d = RedisDriver(url=redis_server.url, namespace=NS)
    yield d
    d.close()


@pytest.fixture
def raw(redis_server: Any) -> Iterator[Any]:
    client = redis_server.client()
    yield client
    client.close()


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    """Poll ``condition`` every 10 ms; ``True`` as soon as it holds, ``False`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


class SendCounter:
    """Counts the writes redis-py makes to its sockets (one per round trip)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from redis.connection import AbstractConnection

        self.sends = 0
        original = AbstractConnection.send_packed_command

        def counting(conn: Any, command: Any, check_health: bool = True) -> None:
            self.sends += 1
            original(conn, command, check_health)

        monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)


def command_calls(client: Any) -> dict[str, int]:
    """``{command: calls}`` from ``INFO commandstats``, without the probing commands themselves."""
    stats = client.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}
    return {name: n for name, n in calls.items() if not name.startswith(("info", "config"))}


# -- payloads (the basics of every driver are in tests/conformance/test_drivers.py) ----------------
def test_values_are_stored_as_serializer_payloads(driver: RedisDriver, raw: Any) -> None:
    driver.put("ck:a", ENTRY)
    assert make_serializer("pickle").loads(raw.get("ck:a")) == ENTRY


def test_json_serializer_reads_back_the_tuple_as_a_tuple(redis_server: Any) -> None:
    d = RedisDriver(url=redis_server.url, serializer=make_serializer("json"))
    try:
        d.put("ck:a", ("v", 1.5, None))
        assert d.get("ck:a") == ("v", 1.5, None)
    finally:
        d.close()


# -- TTL ------------------------------------------------------------------------------------------
def test_ttl_is_set_on_the_server_and_the_server_expires_the_key(driver: RedisDriver, raw: Any) -> None:
    driver.put("ck:short", ENTRY, ttl=0.05)
    assert 0 < raw.pttl("ck:short") <= 50
    assert wait_until(lambda: raw.exists("ck:short") == 0)
    assert driver.get("ck:short") is MISSING


def test_put_without_ttl_never_expires(driver: RedisDriver, raw: Any) -> None:
    driver.put("ck:a", ENTRY)
    driver.put("ck:b", ENTRY, ttl=math.inf)
    assert raw.pttl("ck:a") == -1
    assert raw.pttl("ck:b") == -1


def test_a_ttl_of_zero_or_less_expires_at_once_instead_of_failing(driver: RedisDriver, raw: Any) -> None:
    assert driver.put("ck:a", ENTRY, ttl=0) is True
    assert wait_until(lambda: driver.get("ck:a") is MISSING)


# -- batches --------------------------------------------------------------------------------------
def test_get_many_of_200_keys_is_one_mget_in_one_round_trip(
    driver: RedisDriver, raw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = [f"ck:k{i}" for i in range(200)]
    driver.put_many({k: i for i, k in enumerate(keys[:150])})
    driver.ping()  # connection established before counting
    raw.config_resetstat()
    counter = SendCounter(monkeypatch)

    values = driver.get_many(keys)

    assert counter.sends == 1
    assert command_calls(raw) == {"mget": 1}
    assert [values[k] for k in keys[:150]] == list(range(150))
    assert all(values[k] is MISSING for k in keys[150:])


def test_put_many_sets_every_key_with_its_expiry_in_one_round_trip(
    driver: RedisDriver, raw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    mapping = {f"ck:k{i}": ("v", i, None) for i in range(100)}
    driver.ping()
    counter = SendCounter(monkeypatch)

    assert driver.put_many(mapping, ttl=30) is True

    assert counter.sends == 1
    assert driver.get_many(mapping) == mapping
    assert all(0 < raw.pttl(k) <= 30_000 for k in mapping)


# -- add and counters -----------------------------------------------------------------------------
def test_add_sets_the_ttl_on_the_server_and_a_second_add_leaves_it(driver: RedisDriver, raw: Any) -> None:
    assert driver.add("ck:lock", "first", ttl=10) is True
    assert driver.add("ck:lock", "second", ttl=1000) is False
    assert driver.get("ck:lock") == "first"
    assert 0 < raw.pttl("ck:lock") <= 10_000


def test_raw_ints_put_by_the_driver_are_incrby_able_on_the_server(driver: RedisDriver, raw: Any) -> None:
    driver.put("ck:gen", 41)
    assert raw.incrby("ck:gen", 1) == 42
    assert driver.get("ck:gen") == 42
    assert driver.increment("ck:gen", 8) == 50
    assert raw.get("ck:gen") == b"50"  # the counter stays decimal ASCII on the server


def test_increment_with_ttl_sets_the_expiry_only_when_it_creates_the_key(
    driver: RedisDriver, raw: Any
) -> None:
    assert driver.increment("ck:new", 1, ttl=30) == 1
    assert 0 < raw.pttl("ck:new") <= 30_000
    raw.set("ck:old", 7)
    assert driver.increment("ck:old", 1, ttl=30) == 8
    assert raw.pttl("ck:old") == -1


def test_increment_with_ttl_expires_on_the_server(driver: RedisDriver, raw: Any) -> None:
    driver.increment("ck:n", 3, ttl=0.05)
    assert wait_until(lambda: raw.exists("ck:n") == 0)
    assert driver.increment("ck:n", 1, ttl=0.05) == 1


def test_increment_of_a_non_integer_value_keeps_the_server_error_as_cause(driver: RedisDriver) -> None:
    driver.put("ck:text", "not a number")
    with pytest.raises(ProviderError) as info:
        driver.increment("ck:text")
    assert isinstance(info.value.__cause__, redis.ResponseError)


# -- flush and scan -------------------------------------------------------------------------------
def test_flush_deletes_the_namespace_and_leaves_foreign_keys(driver: RedisDriver, raw: Any) -> None:
    driver.put_many({f"ck:k{i}": i for i in range(2500)})  # more than one SCAN/UNLINK batch
    raw.set("other:key", b"foreign")
    raw.set("ckx", b"foreign too")  # shares the letters, not the namespace

    assert driver.flush() is True

    assert raw.keys("ck:*") == []
    assert raw.get("other:key") == b"foreign"
    assert raw.get("ckx") == b"foreign too"


def test_flush_escapes_glob_characters_of_the_namespace(redis_server: Any, raw: Any) -> None:
    d = RedisDriver(url=redis_server.url, namespace="a[1]*:")
    try:
        d.put("a[1]*:x", 1)
        raw.set("a1z:x", 1)  # would match an unescaped a[1]*:*
        raw.set("a[1]b:x", 1)
        d.flush()
        assert raw.exists("a[1]*:x") == 0
        assert raw.exists("a1z:x", "a[1]b:x") == 2
    finally:
        d.close()


def test_scan_uses_fnmatch_syntax_for_character_classes(driver: RedisDriver) -> None:
    driver.put_many({"ck:a1": 1, "ck:b1": 1, "ck:c1": 1})
    assert sorted(driver.scan("ck:[!a]1")) == ["ck:b1", "ck:c1"]
    assert sorted(driver.scan("ck:[ab]*")) == ["ck:a1", "ck:b1"]


def test_scan_lists_many_keys_once_each(driver: RedisDriver) -> None:
    keys = {f"ck:k{i}" for i in range(3000)}
    driver.put_many(dict.fromkeys(keys, 1))
    found = list(driver.scan("ck:*"))
    assert len(found) == len(keys)
    assert set(found) == keys


# -- payload errors -------------------------------------------------------------------------------
def test_garbage_payload_raises_serialization_error(driver: RedisDriver, raw: Any) -> None:
    raw.set("ck:bad", b"\x00garbage")
    with pytest.raises(SerializationError):
        driver.get("ck:bad")
    with pytest.raises(SerializationError):
        driver.get_many(["ck:bad"])


def test_signing_key_from_the_config_rejects_a_tampered_payload(redis_server: Any, raw: Any) -> None:
    cfg = RedisProviderConfig(url=redis_server.url, signing_key=SecretStr("s3cret"))
    d = build_driver(cfg, namespace="", clock=SystemClock())
    try:
        d.put("ck:a", ENTRY)
        assert d.get("ck:a") == ENTRY
        payload = bytearray(raw.get("ck:a"))
        payload[-1] ^= 0x01
        raw.set("ck:a", bytes(payload))
        with pytest.raises(TamperedPayloadError):
            d.get("ck:a")
    finally:
        d.close()


def test_value_over_max_value_size_is_refused_and_not_stored(redis_server: Any, raw: Any) -> None:
    d = RedisDriver(url=redis_server.url, max_value_size=100)
    try:
        with pytest.raises(ValueTooLargeError):
            d.put("ck:big", "x" * 500)
        with pytest.raises(ValueTooLargeError):
            d.put_many({"ck:small": 1, "ck:big": "x" * 500})
        assert raw.exists("ck:big", "ck:small") == 0
    finally:
        d.close()


# -- failures -------------------------------------------------------------------------------------
OPERATIONS: dict[str, Callable[[RedisDriver], object]] = {
    "get": lambda d: d.get("ck:a"),
    "put": lambda d: d.put("ck:a", 1, 10),
    "forget": lambda d: d.forget("ck:a"),
    "flush": lambda d: d.flush(),
    "has": lambda d: d.has("ck:a"),
    "get_many": lambda d: d.get_many(["ck:a", "ck:b"]),
    "put_many": lambda d: d.put_many({"ck:a": 1}, 10),
    "delete_many": lambda d: d.delete_many(["ck:a"]),
    "add": lambda d: d.add("ck:a", 1, 10),
    "increment": lambda d: d.increment("ck:a", 1, 10),
    "scan": lambda d: list(d.scan("ck:*")),
    "ping": lambda d: d.ping(),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_every_operation_raises_provider_error_while_the_server_is_down_and_works_after_restart(
    redis_server: Any, operation: str
) -> None:
    d = RedisDriver(url=redis_server.url, retries=1)
    try:
        d.put("ck:warm", 1)  # a pooled connection that the restart will break
        redis_server.stop()
        with pytest.raises(ProviderError) as info:
            OPERATIONS[operation](d)
        assert isinstance(info.value.__cause__, redis.ConnectionError)
        redis_server.start()
        OPERATIONS[operation](d)
        assert d.put("ck:after", 1) and d.get("ck:after") == 1
    finally:
        d.close()


ASYNC_OPERATIONS: dict[str, Callable[[RedisDriver], Any]] = {
    "get": lambda d: d.aget("ck:a"),
    "get_many": lambda d: d.aget_many(["ck:a", "ck:b"]),
    "put": lambda d: d.aput("ck:a", 1, 10),
    "put_many": lambda d: d.aput_many({"ck:a": 1}, 10),
    "forget": lambda d: d.aforget("ck:a"),
    "add": lambda d: d.aadd("ck:a", 1, 10),
    "increment": lambda d: d.aincrement("ck:a", 1, 10),
}


@pytest.mark.parametrize("operation", sorted(ASYNC_OPERATIONS))
async def test_every_async_operation_raises_provider_error_without_the_password_while_the_server_is_down(
    redis_server: Any, operation: str
) -> None:
    d = RedisDriver(host="127.0.0.1", port=free_port(), password="pw-secret-42", retries=0)
    try:
        with pytest.raises(ProviderError, match=f"redis {operation} failed") as info:
            await ASYNC_OPERATIONS[operation](d)
        assert isinstance(info.value.__cause__, redis.ConnectionError)
        assert "pw-secret-42" not in str(info.value)
    finally:
        await d.aclose()


def test_constructing_a_driver_does_not_connect(redis_server: Any) -> None:
    d = RedisDriver(host="127.0.0.1", port=free_port(), retries=0)
    with pytest.raises(ProviderError):
        d.get("ck:a")
    d.close()


def test_a_server_that_never_answers_times_out_after_socket_timeout() -> None:
    with socket.socket() as listener:  # accepts connections (kernel backlog), never replies
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        d = RedisDriver(host="127.0.0.1", port=port, socket_timeout=0.2, retries=0)
        start = time.monotonic()
        with pytest.raises(ProviderError) as info:
            d.get("ck:a")
        assert time.monotonic() - start < 2
        assert isinstance(info.value.__cause__, redis.TimeoutError)
        d.close()


# -- configuration --------------------------------------------------------------------------------
def test_timeouts_retries_and_pool_size_come_from_the_config(redis_server: Any) -> None:
    d = RedisDriver(url=redis_server.url, connect_timeout=0.7, socket_timeout=0.3, retries=4, max_connections=7)
    try:
        pool = d.client.connection_pool
        assert pool.connection_kwargs["socket_connect_timeout"] == 0.7
        assert pool.connection_kwargs["socket_timeout"] == 0.3
        assert pool.connection_kwargs["retry"]._retries == 4
        assert pool.max_connections == 7
    finally:
        d.close()


def test_host_port_db_settings_select_the_database(redis_server: Any) -> None:
    d = RedisDriver(host=redis_server.host, port=redis_server.port, db=3)
    db0, db3 = redis_server.client(), redis_server.client(db=3)
    try:
        d.put("ck:a", 1)
        assert db3.get("ck:a") == b"1"
        assert db0.exists("ck:a") == 0
    finally:
        for c in (db0, db3):
            c.close()
        d.close()


def test_username_and_password_authenticate_an_acl_user(redis_server: Any, raw: Any) -> None:
    raw.acl_setuser("alice", enabled=True, passwords=["+s3cret"], keys=["*"], commands=["+@all"])
    try:
        good = RedisDriver(host=redis_server.host, port=redis_server.port, username="alice", password="s3cret")
        bad = RedisDriver(host=redis_server.host, port=redis_server.port, username="alice", password="wrong")
        try:
            assert good.client.acl_whoami() in ("alice", b"alice")
            with pytest.raises(ProviderError) as info:
                bad.get("ck:a")
            assert isinstance(info.value.__cause__, redis.AuthenticationError)
        finally:
            good.close()
            bad.close()
    finally:
        raw.acl_deluser("alice")


def test_password_is_not_shown_in_repr() -> None:
    d = RedisDriver(url="redis://user:hunter2@127.0.0.1:1/0", namespace=NS)
    assert "hunter2" not in repr(d)
    assert "ck:" in repr(d)


# -- from_client ----------------------------------------------------------------------------------
def test_from_client_uses_the_given_client_and_leaves_it_open(redis_server: Any, raw: Any) -> None:
    d = RedisDriver.from_client(raw, namespace=NS)
    d.put("ck:a", ENTRY)
    assert d.get("ck:a") == ENTRY
    d.close()
    assert raw.ping() is True
    assert d.get("ck:a") == ENTRY
    with pytest.raises(UnsupportedOperation):
        d.async_client()


def test_get_put_get_many_send_the_commands_their_client_methods_send(redis_server: Any, driver: RedisDriver) -> None:
    """On a client the driver built, get / put / get_many call ``execute_command`` as redis-py's get /
    set / mget do (the same command, retries and parsing) without their argument handling; a client
    given to from_client is called through its methods (which it may override)."""
    import redis

    sent: list[tuple[Any, ...]] = []

    class Recording(redis.Redis):  # type: ignore[misc]
        def execute_command(self, *args: Any, **options: Any) -> Any:
            sent.append((*args, options))
            return super().execute_command(*args, **options)

        def get(self, name: Any) -> Any:
            sent.append(("get()", name))
            return super().get(name)

    built = Recording(host=redis_server.host, port=redis_server.port)
    driver.clients.current = built  # as if RedisOptions.build had made it
    assert driver.put("ck:a", ENTRY, 5) is True and driver.put("ck:b", 7) is True
    assert driver.get("ck:a") == ENTRY and driver.get("ck:none") is MISSING
    assert driver.get_many(["ck:a", "ck:b", "ck:none"]) == {"ck:a": ENTRY, "ck:b": 7, "ck:none": MISSING}
    assert [c[0] for c in sent] == ["SET", "SET", "GET", "GET", "MGET"]
    assert sent[0][3:5] == ("PX", 5000) and len(sent[1]) == 4  # no expiry: no PX
    assert sent[2][2] == {"keys": ["ck:a"]} and sent[4][-1] == {"keys": ["ck:a", "ck:b", "ck:none"]}
    assert 0 < built.pttl("ck:a") <= 5000 and built.ttl("ck:b") == -1
    assert driver.get_values(["ck:a", "ck:none", "ck:a"]) == [ENTRY, MISSING, ENTRY] and driver.get_values([]) == []
    sent.clear()
    given = RedisDriver.from_client(Recording(host=redis_server.host, port=redis_server.port), namespace=NS)
    assert given.get("ck:a") == ENTRY and sent[0] == ("get()", "ck:a")
    built.close()


def test_get_values_is_get_many_in_order_on_any_driver() -> None:
    from cachekit.providers.memory import MemoryDriver

    d = MemoryDriver()
    d.put("a", 1)
    assert d.get_values(["a", "b", "a"]) == [1, MISSING, 1]  # CacheDriver's default, through get_many


async def test_from_client_with_connection_options_also_serves_asyncio(redis_server: Any, raw: Any) -> None:
    d = RedisDriver.from_client(raw, namespace=NS, url=redis_server.url, socket_timeout=0.4, max_value_size=100)
    try:
        await d.aput("ck:a", ENTRY)
        assert d.get("ck:a") == ENTRY  # the caller's sync client and the driver's asyncio one: one server
        assert d.async_client().connection_pool.connection_kwargs["socket_timeout"] == 0.4
        with pytest.raises(ValueTooLargeError):
            d.put("ck:big", "x" * 500)
    finally:
        await d.aclose()
    assert raw.ping() is True  # still the caller's


def test_from_client_refuses_a_client_that_decodes_responses(redis_server: Any) -> None:
    client = redis_server.client(decode_responses=True)
    try:
        with pytest.raises(ValueError, match="decode_responses"):
            RedisDriver.from_client(client)
    finally:
        client.close()


# -- async client ---------------------------------------------------------------------------------
async def test_async_client_shares_the_settings_and_sees_the_driver_data(redis_server: Any) -> None:
    d = RedisDriver(url=redis_server.url, socket_timeout=0.4)
    try:
        d.put("ck:a", 1)
        client = d.async_client()
        assert d.async_client() is client
        assert await client.get("ck:a") == b"1"
        assert client.connection_pool.connection_kwargs["socket_timeout"] == 0.4
    finally:
        await d.aclose()
        d.close()


# -- sentinel -------------------------------------------------------------------------------------
def test_sentinel_config_finds_the_primary(redis_sentinel: Any) -> None:
    d = RedisDriver(sentinel=redis_sentinel.sentinels, service_name=redis_sentinel.service_name, namespace=NS)
    primary = redis_sentinel.master.client()
    try:
        d.put("ck:a", 1)
        assert primary.get("ck:a") == b"1"
        assert d.get("ck:a") == 1
        d.flush()
        assert primary.exists("ck:a") == 0
    finally:
        primary.close()
        d.close()


async def test_sentinel_async_client_finds_the_primary(redis_sentinel: Any) -> None:
    d = RedisDriver(sentinel=redis_sentinel.sentinels, service_name=redis_sentinel.service_name)
    try:
        d.put("ck:a", 5)
        assert await d.async_client().get("ck:a") == b"5"
    finally:
        await d.aclose()
        d.close()
