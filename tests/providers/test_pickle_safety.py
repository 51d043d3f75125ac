"""Pickle in shared stores: safe by default on Redis and Memcached, signed pickle with a key, unsigned pickle
only on request (and warned about), raw integers accepted only where counters live, the file store private."""

from __future__ import annotations

import datetime
import decimal
import json
import logging
import pickle
import stat
import uuid
import zoneinfo
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from cachekit.cli import run_validate
from cachekit.config import parse_config
from cachekit.config.models import CacheConfig
from cachekit.errors import CacheError, ConfigError
from cachekit.providers.file import FileDriver
from cachekit.runtime.runtime import Runtime
from cachekit.serializers import (
    ENV_SIGNING_KEY,
    Serializer,
    UnsafeSerializerError,
    UnsupportedValueError,
    make_serializer,
)

KEY = "planted"


class Exploit:
    """Unpickling this creates a marker file: the proof that a read ran code."""

    marker: Path

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def planted_pickle(marker: Path) -> bytes:
    """What an attacker writes: a cachekit pickle frame (magic, ``p``, no flags) around the exploit."""
    return b"\xcap\x00" + pickle.dumps((Exploit(marker), float("inf"), None))


# -- the stores, each with a way to write behind cachekit's back ----------------------------------------
class Store:
    def __init__(self, provider: dict[str, Any], plant: Callable[[str, bytes], None]) -> None:
        self.provider = provider
        self.plant = plant  # (full key, raw bytes)

    def runtime(self, **options: Any) -> Runtime:
        return CacheConfig(
            providers={"shared": {**self.provider, **options}},
            regions={"default": {"provider": "shared", "ttl": 60}},
        ).compile()


@pytest.fixture
def redis_store(redis_server: Any) -> Iterator[Store]:
    client = redis_server.client()
    yield Store({"type": "redis", "url": redis_server.url}, lambda key, data: client.set(key, data))
    client.close()


@pytest.fixture
def memcached_store(memcached_server: Any) -> Iterator[Store]:
    from pymemcache.client.base import Client

    host, _, port = memcached_server.address.rpartition(":")
    client = Client((host, int(port)), connect_timeout=2, timeout=2, default_noreply=False)
    yield Store({"type": "memcached", "servers": [memcached_server.address]},
                lambda key, data: client.set(key, data))
    client.close()


class Verbatim(Serializer):
    """Writes the bytes it is given: what an intruder with write access to the directory can do."""

    def dumps(self, obj: object) -> bytes:
        assert isinstance(obj, bytes)
        return obj


@pytest.fixture
def file_store(tmp_path: Path) -> Store:
    path = tmp_path / "files"

    def plant(key: str, data: bytes) -> None:
        intruder = FileDriver(path, serializer=Verbatim())  # writes the payload bytes as they are
        intruder.put(key, data)
        intruder.close()

    return Store({"type": "file", "path": str(path)}, plant)


@pytest.fixture(params=["redis", "memcached"])
def network_store(request: pytest.FixtureRequest) -> Store:
    return request.getfixturevalue(f"{request.param}_store")  # type: ignore[no-any-return]


@pytest.fixture(params=["redis", "memcached", "file"])
def any_store(request: pytest.FixtureRequest) -> Store:
    return request.getfixturevalue(f"{request.param}_store")  # type: ignore[no-any-return]


# -- a planted pickle never runs --------------------------------------------------------------------
def test_planted_pickle_on_a_network_store_with_the_default_config_is_a_counted_miss_and_never_runs(
        network_store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    marker = tmp_path / "pwned"
    with network_store.runtime() as rt:
        network_store.plant(f"cachekit:default:{KEY}", planted_pickle(marker))
        with caplog.at_level(logging.WARNING, "cachekit"):
            assert rt.region().get(KEY, "miss") == "miss"
        assert not marker.exists()
        assert rt.region().stats.errors == 1
        assert "refused" in caplog.text


def test_planted_pickle_on_a_signed_file_store_is_a_counted_miss_and_never_runs(
        file_store: Store, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with file_store.runtime(signing_key="s3cret") as rt:
        file_store.plant(f"cachekit:default:{KEY}", planted_pickle(marker))
        assert rt.region().get(KEY, "miss") == "miss"
        assert not marker.exists()
        assert rt.region().stats.errors == 1


def test_the_file_store_keeps_unsigned_pickle_by_default(file_store: Store, tmp_path: Path) -> None:
    """Documented: same machine, same user, directory 0700. This is also the control that the exploit
    does run when unpickled (so the tests above prove something)."""
    marker = tmp_path / "pwned"
    with file_store.runtime() as rt:
        file_store.plant(f"cachekit:default:{KEY}", planted_pickle(marker))
        rt.region().get(KEY)
        assert marker.exists()


# -- the safe default round-trips the tagged types -------------------------------------------------
TAGGED_VALUE = {
    "tuple": (1, ("nested", 2.5)),
    "set": {1, 2},
    "frozenset": frozenset({"a"}),
    "bytes": b"\x00\xff",
    "naive": datetime.datetime(2026, 1, 2, 3, 4, 5, 6),
    "aware": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))),
    "zoned": datetime.datetime(2026, 7, 1, 12, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
    "date": datetime.date(2026, 1, 2),
    "time": datetime.time(3, 4, 5),
    "delta": datetime.timedelta(days=-1, seconds=5),
    "decimal": decimal.Decimal("3.14159265358979323846"),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    7: "an int key",
    ("a", 1): "a tuple key",
    "nested": [{"~t": "a key that looks like a tag"}, [set()]],
}


def test_default_network_config_round_trips_every_tagged_type_exactly(network_store: Store) -> None:
    with network_store.runtime() as rt:
        assert rt.region().put("k", TAGGED_VALUE)
        back = rt.region().get("k")
        assert back == TAGGED_VALUE
        assert type(back["tuple"][1]) is tuple and type(back["frozenset"]) is frozenset
        assert back["zoned"].tzinfo == zoneinfo.ZoneInfo("Europe/Paris")
        assert back["naive"].tzinfo is None
        assert rt.region().stats.errors == 0


# -- a value json cannot carry ----------------------------------------------------------------------
def test_a_value_the_safe_serializer_cannot_encode_fails_its_write_counted_with_the_hint(
        network_store: Store, caplog: pytest.LogCaptureFixture) -> None:
    with network_store.runtime() as rt:
        region = rt.region()
        assert region.put("k", "previous")
        with caplog.at_level(logging.WARNING, "cachekit"):
            assert region.put("k", {"x": Fraction(1, 3)}) is False
        assert region.stats.errors == 1
        assert region.get("k") == "previous"  # the previous value is kept
        assert "fractions.Fraction" in caplog.text
        assert "signing_key" in caplog.text and "allow_unsigned_pickle = true" in caplog.text


def test_with_on_error_raise_the_unencodable_value_raises_a_typed_cache_error(network_store: Store) -> None:
    with network_store.runtime(on_error="raise") as rt:
        with pytest.raises(UnsupportedValueError, match="signing_key") as info:
            rt.region().put("k", Fraction(1, 3))
        assert isinstance(info.value, CacheError)
        assert rt.region().stats.errors == 1


# -- a signing key: signed pickle -------------------------------------------------------------------
def test_a_signing_key_makes_signed_pickle_the_default(network_store: Store) -> None:
    with network_store.runtime(signing_key="s3cret") as rt:
        assert rt.region().put("k", Fraction(1, 3))
        assert rt.region().get("k") == Fraction(1, 3)


def test_the_environment_signing_key_also_selects_signed_pickle(
        network_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_SIGNING_KEY, "from-the-environment")
    with network_store.runtime() as rt:
        assert rt.region().put("k", Fraction(2, 3))
        assert rt.region().get("k") == Fraction(2, 3)


# -- unsigned pickle: a config error, unless allowed (then a warning) -------------------------------------
@pytest.mark.parametrize("kind", ["redis", "memcached"])
def test_unsigned_pickle_on_a_network_store_is_a_config_error_naming_the_ways_out(kind: str) -> None:
    text = f'[providers.shared]\ntype = "{kind}"\nserializer = "pickle"\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, file="app.toml", environ={})
    (item,) = info.value.errors
    assert (item.path, item.line) == ("providers.shared.serializer", 3)
    assert "signing_key" in item.message and "allow_unsigned_pickle = true" in item.message


def test_a_regions_unsigned_pickle_on_a_network_store_is_a_config_error() -> None:
    text = '[providers.r]\ntype = "redis"\n\n[regions.api]\nprovider = "r"\nserializer = "pickle"\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, file="app.toml", environ={})
    (item,) = info.value.errors
    assert (item.path, item.line) == ("regions.api.serializer", 6)


def test_a_signing_key_from_the_file_or_the_environment_allows_pickle() -> None:
    parse_config('[providers.r]\ntype = "redis"\nserializer = "pickle"\nsigning_key = "k"\n', environ={})
    parse_config('[providers.r]\ntype = "redis"\nserializer = "pickle"\n',
                 environ={"CACHEKIT_PROVIDERS__R__SIGNING_KEY": "k"})
    parse_config('[providers.r]\ntype = "redis"\nserializer = "pickle"\n', environ={ENV_SIGNING_KEY: "k"})
    parse_config('[providers.f]\ntype = "file"\nserializer = "pickle"\n', environ={})  # files may


def test_a_config_built_in_python_is_checked_too() -> None:
    with pytest.raises(ConfigError, match="allow_unsigned_pickle"):
        CacheConfig(providers={"r": {"type": "redis", "serializer": "pickle"}}).compile()


def test_the_driver_refuses_unsigned_pickle_even_when_built_directly() -> None:
    from cachekit.config.models import RedisProviderConfig
    from cachekit.providers.registry import serializer_for

    with pytest.raises(UnsafeSerializerError, match="allow_unsigned_pickle"):
        serializer_for(RedisProviderConfig(serializer="pickle"))


def test_allowed_unsigned_pickle_works_and_validate_warns(
        network_store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with network_store.runtime(serializer="pickle", allow_unsigned_pickle=True) as rt:
        assert rt.region().put("k", Fraction(1, 3))
        assert rt.region().get("k") == Fraction(1, 3)

    kind = network_store.provider["type"]
    (tmp_path / "app.toml").write_text(
        f'[providers.shared]\ntype = "{kind}"\nserializer = "pickle"\nallow_unsigned_pickle = true\n')
    from cachekit.cli import ValidateFormat

    assert run_validate([tmp_path / "app.toml"], ValidateFormat("text")) == 0
    out = capsys.readouterr().out
    assert "app.toml:3: warning: providers.shared.serializer: unsigned pickle" in out
    assert run_validate([tmp_path / "app.toml"], ValidateFormat("github")) == 0
    assert "::warning file=" in capsys.readouterr().out
    assert run_validate([tmp_path / "app.toml"], ValidateFormat("json")) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["severity"], row["path"], row["line"]) == ("warning", "providers.shared.serializer", 3)


def test_validate_prints_no_warning_for_the_safe_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cachekit.cli import ValidateFormat

    (tmp_path / "app.toml").write_text('[providers.r]\ntype = "redis"\n')
    assert run_validate([tmp_path / "app.toml"], ValidateFormat("text")) == 0
    assert "warning" not in capsys.readouterr().out


# -- raw integers only where counters live -----------------------------------------------------------------
def test_a_planted_integer_over_a_signed_entry_is_a_counted_miss(any_store: Store) -> None:
    with any_store.runtime(signing_key="s3cret") as rt:
        region = rt.region()
        assert region.put("role", {"name": "admin", "level": 3})
        any_store.plant("cachekit:default:role", b"1")
        assert region.get("role", "miss") == "miss"
        assert region.stats.errors == 1


def test_signed_counters_still_count_and_a_put_integer_can_be_incremented(any_store: Store) -> None:
    with any_store.runtime(signing_key="s3cret") as rt:
        region = rt.region()
        assert region.put("n", 5)
        assert region.increment("n") == 6
        assert region.decrement("n", 2) == 4
        assert region.increment("fresh", 3) == 3
        assert (region.get("n"), region.get("fresh")) == (4, 3)
        assert region.stats.errors == 0


def test_signed_counters_are_exact_under_concurrent_increments(redis_store: Store) -> None:
    import threading

    with redis_store.runtime(signing_key="s3cret") as rt:
        region = rt.region()

        def work() -> None:
            for _ in range(25):
                assert region.increment("hits") is not None

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert region.get("hits") == 100


def test_a_planted_integer_over_a_signed_counter_is_a_counted_miss(any_store: Store) -> None:
    with any_store.runtime(signing_key="s3cret") as rt:
        region = rt.region()
        assert region.increment("n", 10) == 10
        any_store.plant("cachekit:default:n", b"999")
        assert region.get("n", "miss") == "miss"
        assert region.stats.errors == 1


def test_generations_still_work_under_signing(any_store: Store) -> None:
    """Generation keys are cachekit's own counter namespace: raw integers there are accepted."""
    with any_store.runtime(signing_key="s3cret") as rt:
        region = rt.region()
        assert region.tags("t").put("a", "tagged")
        assert region.get("a") == "tagged"
        region.tags("t").flush()
        assert region.get("a", "miss") == "miss"
        assert region.stats.errors == 0


def test_unsigned_stores_keep_raw_counters_for_the_server(redis_store: Store, redis_server: Any) -> None:
    with redis_store.runtime() as rt:
        assert rt.region().increment("n", 2) == 2
        client = redis_server.client()
        assert client.get("cachekit:default:n") == b"2"  # INCRBY on the server, as before
        client.close()


# -- the file store's directory ------------------------------------------------------------------------
def test_the_file_store_creates_its_directory_0700(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "cache"
    driver = FileDriver(path, serializer=make_serializer("pickle"))
    driver.put("k", ("v", float("inf"), None))
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    for sub in path.iterdir():
        assert stat.S_IMODE(sub.stat().st_mode) & 0o077 == 0, sub
    driver.close()


def test_an_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "shared"
    path.mkdir(mode=0o755)
    path.chmod(0o755)
    FileDriver(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o755


async def test_the_async_twins_follow_the_same_rules(redis_store: Store, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with redis_store.runtime(signing_key="s3cret") as rt:
        region = rt.region()
        assert await region.aput("role", {"name": "admin"})
        redis_store.plant("cachekit:default:role", b"1")
        assert await region.aget("role", "miss") == "miss"
        assert await region.aincrement("n", 2) == 2 and await region.aget("n") == 2
    with redis_store.runtime() as rt:
        redis_store.plant(f"cachekit:default:{KEY}", planted_pickle(marker))
        assert await rt.region().aget(KEY, "miss") == "miss"
        assert not marker.exists()
