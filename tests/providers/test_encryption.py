"""Encryption at rest (issue 15 item 5): AES-256-GCM around the payloads of Redis, Memcached and file
stores, keys from the config or ``CACHEKIT_ENCRYPTION_KEYS``, a list of keys for rotation (encrypt
with the first, decrypt with any); an undecryptable value is a counted miss."""

from __future__ import annotations

import base64
import os
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import need_module

from cachekit.config import CacheConfig, parse_config
from cachekit.errors import ConfigError
from cachekit.providers.file import FileDriver
from cachekit.runtime.runtime import Runtime
from cachekit.serializers import Serializer, TamperedPayloadError

pytest.importorskip("cryptography")

from cachekit.encryption import EncryptedSerializer, decode_key

OLD = base64.b64encode(os.urandom(32)).decode()
NEW = os.urandom(32).hex()
SECRET = "4111-1111-1111-1111"
FULL_KEY = "cachekit:default:card"


class Store:
    """A provider config, with ways to read and write its raw bytes behind cachekit's back."""

    def __init__(self, provider: dict[str, Any], raw: Callable[[str], bytes | None],
                 plant: Callable[[str, bytes], None]) -> None:
        self.provider = provider
        self.raw = raw
        self.plant = plant

    def runtime(self, **options: Any) -> Runtime:
        return CacheConfig(providers={"shared": {**self.provider, **options}},
                           regions={"default": {"provider": "shared", "ttl": 60}}).compile()


@pytest.fixture
def redis_store(redis_server: Any) -> Iterator[Store]:
    need_module("redis")
    client = redis_server.client()
    yield Store({"type": "redis", "url": redis_server.url}, client.get, client.set)
    client.close()


@pytest.fixture
def memcached_store(memcached_server: Any) -> Iterator[Store]:
    need_module("pymemcache")
    from pymemcache.client.base import Client

    host, _, port = memcached_server.address.rpartition(":")
    client = Client((host, int(port)), connect_timeout=2, timeout=2, default_noreply=False)
    yield Store({"type": "memcached", "servers": [memcached_server.address]}, client.get, client.set)
    client.close()


class Verbatim(Serializer):
    """Reads and writes payload bytes as they are (an intruder with access to the directory)."""

    def dumps(self, obj: object) -> bytes:
        assert isinstance(obj, bytes)
        return obj

    def loads(self, data: bytes) -> object:
        return bytes(data)


@pytest.fixture
def file_store(tmp_path: Path) -> Store:
    path = tmp_path / "files"

    def raw(key: str) -> bytes | None:
        intruder = FileDriver(path, serializer=Verbatim())
        try:
            got = intruder.get(key)
            return got if isinstance(got, bytes) else None
        finally:
            intruder.close()

    def plant(key: str, data: bytes) -> None:
        intruder = FileDriver(path, serializer=Verbatim())
        intruder.put(key, data)
        intruder.close()

    return Store({"type": "file", "path": str(path)}, raw, plant)


@pytest.fixture(params=["redis", "memcached", "file"])
def store(request: pytest.FixtureRequest) -> Store:
    return request.getfixturevalue(f"{request.param}_store")  # type: ignore[no-any-return]


def errors(rt: Runtime) -> int:
    return rt.stats.totals()["errors"]


def test_round_trip_and_no_plaintext_in_the_store(store: Store) -> None:
    with store.runtime(encryption_keys=[OLD]) as rt:
        region = rt.region()
        value = {"card": SECRET, "pair": (1, 2), "obj": Path("/tmp/x")}   # pickle: the encrypted default
        assert region.put("card", value)
        assert region.get("card") == value
        raw = store.raw(FULL_KEY)
        assert raw is not None and raw[:2] == b"\xce\x01"
        assert SECRET.encode() not in raw and b"card" not in raw
        assert region.increment("visits") == 1 and region.increment("visits") == 2   # counters work
        assert errors(rt) == 0


def test_rotation_old_key_second_still_decrypts_new_writes_use_the_first(store: Store) -> None:
    with store.runtime(encryption_keys=[OLD]) as rt:
        assert rt.region().put("card", SECRET)
        written_with_old = store.raw(FULL_KEY)
    with store.runtime(encryption_keys=[NEW, OLD]) as rt:
        region = rt.region()
        assert region.get("card") == SECRET                    # the old key, second, still decrypts
        assert region.put("card", SECRET + "!")
    with store.runtime(encryption_keys=[NEW]) as rt:           # the new write used the first key
        assert rt.region().get("card") == SECRET + "!"
        assert errors(rt) == 0
        store.plant(FULL_KEY, written_with_old)                 # an entry of a key that was dropped
        assert rt.region().get("card", "miss") == "miss"
        assert errors(rt) == 1


def test_wrong_key_is_a_counted_miss(store: Store) -> None:
    with store.runtime(encryption_keys=[OLD]) as rt:
        assert rt.region().put("card", SECRET)
    with store.runtime(encryption_keys=[NEW]) as rt:
        assert rt.region().get("card", "miss") == "miss"
        assert errors(rt) == 1


def test_a_tampered_byte_is_a_counted_miss(store: Store) -> None:
    with store.runtime(encryption_keys=[OLD]) as rt:
        assert rt.region().put("card", SECRET)
        raw = bytearray(store.raw(FULL_KEY) or b"")
        raw[-5] ^= 0x01
        store.plant(FULL_KEY, bytes(raw))
        assert rt.region().get("card", "miss") == "miss"
        assert errors(rt) == 1


def test_a_planted_plain_pickle_is_refused_and_never_runs(store: Store, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple[Any, ...]:
            return (Path.touch, (marker,))

    with store.runtime(encryption_keys=[OLD]) as rt:
        store.plant(FULL_KEY, b"\xcap\x00" + pickle.dumps((Exploit(), float("inf"), None)))
        assert rt.region().get("card", "miss") == "miss"
        store.plant(FULL_KEY, b"42")                            # a raw number over an encrypted entry
        assert rt.region().get("card", "miss") == "miss"
        assert errors(rt) == 2
    assert not marker.exists()


def test_keys_from_the_environment(redis_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHEKIT_ENCRYPTION_KEYS", f"{NEW}, {OLD}")
    with redis_store.runtime() as rt:
        assert rt.region().put("card", SECRET)
        assert SECRET.encode() not in (redis_store.raw(FULL_KEY) or b"")
    monkeypatch.setenv("CACHEKIT_ENCRYPTION_KEYS", NEW)
    with redis_store.runtime() as rt:
        assert rt.region().get("card") == SECRET
    monkeypatch.delenv("CACHEKIT_ENCRYPTION_KEYS")
    with redis_store.runtime(allow_unsigned_pickle=True, serializer="pickle") as rt:
        assert rt.region().get("card", "miss") == "miss"       # a reader without the key: refused


def test_a_bad_key_in_the_environment_is_a_config_error(redis_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHEKIT_ENCRYPTION_KEYS", f"{NEW},not-a-key")
    with redis_store.runtime() as rt, pytest.raises(ConfigError, match="CACHEKIT_ENCRYPTION_KEYS: key 2"):
        rt.region().get("card")


def test_pickle_on_a_network_store_is_allowed_with_encryption_alone() -> None:
    toml = '[providers.r]\ntype = "redis"\nserializer = "pickle"\n'
    with pytest.raises(ConfigError, match="signing_key"):
        parse_config(toml, environ={}).compile()
    parse_config(toml + f'encryption_keys = ["{OLD}"]\n', environ={})   # valid: encrypted is authenticated


@pytest.mark.parametrize("bad", ["short", base64.b64encode(os.urandom(16)).decode(), "z" * 64])
def test_a_bad_key_is_a_config_error_that_does_not_echo_it(bad: str) -> None:
    with pytest.raises(ConfigError) as failed:
        parse_config(f'[providers.r]\ntype = "redis"\nencryption_keys = ["{bad}"]\n', environ={})
    assert "encryption_keys" in str(failed.value) and "32 bytes" in str(failed.value)
    assert bad not in str(failed.value)


def test_keys_are_masked_in_the_config() -> None:
    config = parse_config(f'[providers.r]\ntype = "redis"\nencryption_keys = ["{OLD}", "{NEW}"]\n', environ={})
    shown = repr(config) + str(config.model_dump(mode="json")) + config.model_dump_json()
    assert OLD not in shown and NEW not in shown and "**********" in shown


def test_serializer_level_format() -> None:
    key = decode_key(OLD)
    s = EncryptedSerializer(Serializer("json"), [key])
    a, b = s.dumps("same"), s.dumps("same")
    assert a != b and len(a) == 6 + 12 + len(Serializer("json").dumps("same")) + 16   # a fresh nonce each time
    assert s.loads(a) == "same" and s.dumps(7) == b"7" and s.loads(b"7") == 7
    assert s.signed
    with pytest.raises(TamperedPayloadError):
        s.loads(Serializer("json").dumps("plain"))
    assert pickle.loads(pickle.dumps(s)).loads(a) == "same"
