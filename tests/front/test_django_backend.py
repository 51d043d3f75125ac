"""The Django cache backend (``cachekit.contrib.django.CachekitCache``) behaves as Django documents.

The behaviours are those of ``BaseCacheTests`` in Django's own ``tests/cache/tests.py`` (written anew
here), run through ``django.core.cache.caches`` on the memory and file stores, on Redis and on memcached
(real servers started by the fixtures). The network stores get a ``signing_key``, so that arbitrary objects
(functions, classes, ``HttpResponse``) are stored with signed pickle as Django's tests expect; the
safe json default without a key is tested on its own.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zlib import compress, decompress

import django
import pytest
from django.conf import settings

if not settings.configured:  # one configuration for the process; each test swaps CACHES in
    settings.configure(
        CACHES={"default": {"BACKEND": "cachekit.contrib.django.CachekitCache"}},
        ALLOWED_HOSTS=["testserver"],
        LOGGING_CONFIG=None,  # leave the test run's logging alone
        USE_TZ=True,
    )
    django.setup()

from django.core.cache import CacheKeyWarning, caches
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from cachekit import load
from cachekit.contrib.django import CachekitCache, get_runtime

BACKEND = "cachekit.contrib.django.CachekitCache"
STORES = ["memory", "file", "redis", "memcached"]
SIGNING_KEY = "django-backend-tests"
KEY_ERRORS_WITH_MEMCACHED_MSG = "Cache key contains characters that will cause errors if used with memcached: %r"


# -- objects of Django's data-type tests ------------------------------------------------------------
def f() -> int:
    return 42


class C:
    def m(n):  # as in Django's test module
        return 24


def custom_key_func(key: str, key_prefix: str, version: int) -> str:
    """A customized cache key function (Django's test of KEY_FUNCTION)."""
    return "CUSTOM-" + "-".join([key_prefix, str(version), key])


# -- configs and caches -----------------------------------------------------------------------------
def store_toml(store: str, request: pytest.FixtureRequest, *, signing_key: str | None = SIGNING_KEY) -> str:
    if store == "memory":
        provider = 'type = "memory"'
    elif store == "file":
        folder = request.getfixturevalue("tmp_path_factory").getbasetemp() / "django-file-store"
        provider = f'type = "file"\npath = "{folder.as_posix()}"'
    elif store == "redis":
        provider = f'type = "redis"\nurl = "{request.getfixturevalue("redis_server").url}"'
    else:
        provider = f'type = "memcached"\nservers = ["{request.getfixturevalue("memcached_server").address}"]'
    if store in ("redis", "memcached") and signing_key:
        provider += f'\nsigning_key = "{signing_key}"'
    return textwrap.dedent("""
        [cache]
        prefix = "djtest"

        [providers.store]
        {provider}

        [regions.default]
        provider = "store"

        [regions.other]
        provider = "store"
        """).format(provider=provider)


def config_file(store: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                **kwargs: Any) -> Path:
    """One file per store and session (the servers keep their ports), so the backend's
    one-runtime-per-file cache serves every test of a store, as it serves a Django process."""
    text = store_toml(store, request, **kwargs)
    name = f"django-{store}-{'signed' if 'signing_key' in text else 'json'}.toml"
    path = tmp_path_factory.getbasetemp() / name
    if not path.exists():
        path.write_text(text, encoding="utf-8")
    return path


def caches_setting(config: Path | None, **extra: Any) -> dict[str, Any]:
    """The aliases of Django's cache tests, all on one cachekit region."""
    options = {"OPTIONS": {"config": None if config is None else str(config), "region": "default"}}
    aliases: dict[str, dict[str, Any]] = {
        "default": {},
        "prefix": {"KEY_PREFIX": f"cacheprefix{os.getpid()}"},
        "v2": {"VERSION": 2},
        "custom_key": {"KEY_FUNCTION": custom_key_func},
        "custom_key2": {"KEY_FUNCTION": "test_django_backend.custom_key_func"},
    }
    return {alias: {"BACKEND": BACKEND, **options, **params, **extra} for alias, params in aliases.items()}


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def config(store: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return config_file(store, request, tmp_path_factory)


@pytest.fixture
def cache(config: Path) -> Iterator[CachekitCache]:
    """``caches["default"]`` on the store under test, emptied before and after (Django's tearDown)."""
    with override_settings(CACHES=caches_setting(config)):
        default = caches["default"]
        default.clear()
        try:
            yield default
        finally:
            default.clear()


# -- the basics ----------------------------------------------------------------------------------
def test_the_alias_is_a_cachekit_backend_on_the_configured_region(cache: CachekitCache, config: Path) -> None:
    assert isinstance(cache, CachekitCache)
    assert cache.region.name == "default"
    assert cache.runtime is get_runtime(config)
    cache.set("mapped", "value")
    # what Django stores is the key it makes (KEY_PREFIX:VERSION:key) in the cachekit region
    assert cache.runtime.region("default").get(":1:mapped") == "value"
    assert cache.runtime.region("other").get(":1:mapped") is None


def test_simple(cache: CachekitCache) -> None:
    cache.set("key", "value")
    assert cache.get("key") == "value"


def test_default_used_when_none_is_set(cache: CachekitCache) -> None:
    """If None is cached, get() returns it instead of the default."""
    cache.set("key_default_none", None)
    assert cache.get("key_default_none", default="default") is None


def test_add(cache: CachekitCache) -> None:
    assert cache.add("addkey1", "value") is True
    assert cache.add("addkey1", "newvalue") is False
    assert cache.get("addkey1") == "value"


def test_prefix(cache: CachekitCache) -> None:
    cache.set("somekey", "value")
    assert caches["prefix"].has_key("somekey") is False  # not set in the prefixed cache
    caches["prefix"].set("somekey", "value2")
    assert cache.get("somekey") == "value"
    assert caches["prefix"].get("somekey") == "value2"


def test_non_existent(cache: CachekitCache) -> None:
    assert cache.get("does_not_exist") is None
    assert cache.get("does_not_exist", "bang!") == "bang!"


def test_get_many(cache: CachekitCache) -> None:
    cache.set_many({"a": "a", "b": "b", "c": "c", "d": "d"})
    assert cache.get_many(["a", "c", "d"]) == {"a": "a", "c": "c", "d": "d"}
    assert cache.get_many(["a", "b", "e"]) == {"a": "a", "b": "b"}
    assert cache.get_many(iter(["a", "b", "e"])) == {"a": "a", "b": "b"}
    cache.set_many({"x": None, "y": 1})
    assert cache.get_many(["x", "y"]) == {"x": None, "y": 1}
    assert cache.get_many([]) == {}


def test_delete(cache: CachekitCache) -> None:
    cache.set_many({"key1": "spam", "key2": "eggs"})
    assert cache.get("key1") == "spam"
    assert cache.delete("key1") is True
    assert cache.get("key1") is None
    assert cache.get("key2") == "eggs"
    assert cache.delete("nonexistent_key") is False


def test_has_key_and_in(cache: CachekitCache) -> None:
    cache.set("hello1", "goodbye1")
    assert cache.has_key("hello1") is True
    assert cache.has_key("goodbye1") is False
    cache.set("no_expiry", "here", None)
    assert cache.has_key("no_expiry") is True
    cache.set("null", None)
    assert cache.has_key("null") is True
    assert "hello1" in cache
    assert "goodbye1" not in cache
    assert "null" in cache


def test_incr(cache: CachekitCache) -> None:
    cache.set("answer", 41)
    assert cache.incr("answer") == 42
    assert cache.get("answer") == 42
    assert cache.incr("answer", 10) == 52
    assert cache.get("answer") == 52
    assert cache.incr("answer", -10) == 42
    with pytest.raises(ValueError):
        cache.incr("does_not_exist")
    with pytest.raises(ValueError):
        cache.incr("does_not_exist", -1)
    assert cache.has_key("does_not_exist") is False  # a failed incr creates nothing
    cache.set("null", None)
    with pytest.raises(TypeError):
        cache.incr("null")


def test_decr(cache: CachekitCache) -> None:
    cache.set("answer", 43)
    assert cache.decr("answer") == 42
    assert cache.get("answer") == 42
    assert cache.decr("answer", 10) == 32
    assert cache.get("answer") == 32
    assert cache.decr("answer", -10) == 42
    with pytest.raises(ValueError):
        cache.decr("does_not_exist")
    cache.set("null", None)
    with pytest.raises(TypeError):
        cache.decr("null")


def test_incr_of_other_numbers_adds_them_as_django_does(cache: CachekitCache) -> None:
    cache.set("price", 1.5)
    assert cache.incr("price") == 2.5
    assert cache.get("price") == 2.5
    cache.set("word", "a")
    with pytest.raises(TypeError):
        cache.incr("word")


def test_incr_keeps_the_expiry_of_the_entry(cache: CachekitCache) -> None:
    for key, value in (("counter", 1), ("float", 1.5)):
        cache.set(key, value, timeout=1)
        cache.incr(key)
        time.sleep(1.5)
        assert cache.has_key(key) is False, key  # not made eternal (nor given the default 300 s)


def test_close(cache: CachekitCache) -> None:
    cache.set("kept", 1)
    cache.close()  # what Django calls at the end of every request: the shared runtime stays open
    assert cache.get("kept") == 1
    assert not cache.runtime.closed


def test_data_types(cache: CachekitCache) -> None:
    tests = {
        "string": "this is a string",
        "int": 42,
        "bool": True,
        "list": [1, 2, 3, 4],
        "tuple": (1, 2, 3, 4),
        "dict": {"A": 1, "B": 2},
        "function": f,
        "class": C,
    }
    for key, value in tests.items():
        cache.set(key, value)
        assert cache.get(key) == value, key
        assert type(cache.get(key)) is type(value), key


def test_expiration(cache: CachekitCache) -> None:
    cache.set("expire1", "very quickly", 1)
    cache.set("expire2", "very quickly", 1)
    cache.set("expire3", "very quickly", 1)
    cache.set_many({"key1": "spam", "key2": "eggs"}, 1)
    time.sleep(1.5)
    assert cache.get("expire1") is None
    assert cache.add("expire2", "newvalue") is True
    assert cache.get("expire2") == "newvalue"
    assert cache.has_key("expire3") is False
    assert cache.get("key1") is None
    assert cache.get("key2") is None


def test_touch(cache: CachekitCache) -> None:
    cache.set("expire1", "very quickly", timeout=1)
    assert cache.touch("expire1", timeout=3) is True
    time.sleep(1.5)
    assert cache.has_key("expire1") is True
    time.sleep(2)
    assert cache.has_key("expire1") is False
    # touch() without a timeout gives the default one (300 s)
    cache.set("expire1", "very quickly", timeout=1)
    assert cache.touch("expire1") is True
    time.sleep(1.5)
    assert cache.has_key("expire1") is True
    assert cache.get("expire1") == "very quickly"
    assert cache.touch("nonexistent") is False
    assert cache.has_key("nonexistent") is False


def test_unicode(cache: CachekitCache) -> None:
    stuff = {
        "ascii": "ascii_value",
        "unicode_ascii": "Iñtërnâtiônàlizætiøn1",
        "Iñtërnâtiônàlizætiøn": "Iñtërnâtiônàlizætiøn2",
        "ascii2": {"x": 1},
    }
    for key, value in stuff.items():
        cache.set(key, value)
        assert cache.get(key) == value
    for key, value in stuff.items():
        assert cache.delete(key) is True
        assert cache.add(key, value) is True
        assert cache.get(key) == value
    for key in stuff:
        assert cache.delete(key) is True
    cache.set_many(stuff)
    for key, value in stuff.items():
        assert cache.get(key) == value


def test_binary_string(cache: CachekitCache) -> None:
    value = "value_to_be_compressed"
    compressed_value = compress(value.encode())
    cache.set("binary1", compressed_value)
    assert cache.get("binary1") == compressed_value
    assert decompress(cache.get("binary1")).decode() == value
    assert cache.add("binary1-add", compressed_value) is True
    assert cache.get("binary1-add") == compressed_value
    cache.set_many({"binary1-set_many": compressed_value})
    assert decompress(cache.get("binary1-set_many")).decode() == value


def test_set_many(cache: CachekitCache) -> None:
    assert cache.set_many({"key1": "spam", "key2": "eggs"}) == []  # no failed key
    assert cache.get("key1") == "spam"
    assert cache.get("key2") == "eggs"
    assert cache.set_many({}) == []


def test_delete_many(cache: CachekitCache) -> None:
    cache.set_many({"key1": "spam", "key2": "eggs", "key3": "ham"})
    assert cache.delete_many(["key1", "key2"]) is None
    assert cache.get("key1") is None
    assert cache.get("key2") is None
    assert cache.get("key3") == "ham"
    assert cache.delete_many([]) is None


def test_clear_empties_the_region_and_nothing_else(cache: CachekitCache) -> None:
    cache.set_many({"key1": "spam", "key2": "eggs"})
    caches["v2"].set("key3", "ham")
    other = cache.runtime.region("other")
    other.put("elsewhere", "stays")
    cache.clear()
    assert cache.get("key1") is None
    assert cache.get("key2") is None
    assert caches["v2"].get("key3") is None  # the same region: every version and prefix goes
    assert other.get("elsewhere") == "stays"
    other.flush()


def test_long_timeout(cache: CachekitCache) -> None:
    """More than 30 days: memcached would read it as a timestamp in 1970; the value must stay."""
    month = 60 * 60 * 24 * 30 + 1
    cache.set("key1", "eggs", month)
    assert cache.get("key1") == "eggs"
    assert cache.add("key2", "ham", month) is True
    assert cache.get("key2") == "ham"
    cache.set_many({"key3": "sausage", "key4": "lobster bisque"}, month)
    assert cache.get("key3") == "sausage"
    assert cache.get("key4") == "lobster bisque"
    cache.set("key5", "fries", 1)
    assert cache.touch("key5", month) is True
    assert cache.get("key5") == "fries"


def test_forever_timeout(cache: CachekitCache) -> None:
    cache.set("key1", "eggs", None)
    assert cache.get("key1") == "eggs"
    assert cache.add("key2", "ham", None) is True
    assert cache.get("key2") == "ham"
    assert cache.add("key1", "new eggs", None) is False
    assert cache.get("key1") == "eggs"
    cache.set_many({"key3": "sausage", "key4": "lobster bisque"}, None)
    assert cache.get("key3") == "sausage"
    assert cache.get("key4") == "lobster bisque"
    for key in ("key1", "key2", "key3", "key4"):
        assert cache.region.entry(cache.make_key(key))[1] == float("inf"), key  # no expiry at all
    cache.set("key5", "belgian fries", timeout=1)
    assert cache.touch("key5", timeout=None) is True
    time.sleep(1.5)
    assert cache.get("key5") == "belgian fries"


def test_zero_timeout(cache: CachekitCache) -> None:
    """Zero (or less) means: do not cache."""
    cache.set("key1", "eggs", 0)
    assert cache.get("key1") is None
    assert cache.add("key2", "ham", 0) is True  # it would have been added
    assert cache.get("key2") is None
    cache.set_many({"key3": "sausage", "key4": "lobster bisque"}, 0)
    assert cache.get("key3") is None
    assert cache.get("key4") is None
    cache.set("key5", "belgian fries", timeout=5)
    assert cache.touch("key5", timeout=0) is True
    assert cache.get("key5") is None
    cache.set("key6", "old")
    cache.set("key6", "new", -1)  # a write with no lifetime removes what was there
    assert cache.has_key("key6") is False
    cache.set("key7", "here")
    assert cache.add("key7", "other", 0) is False
    assert cache.get("key7") == "here"


def test_float_timeout(cache: CachekitCache) -> None:
    cache.set("key1", "spam", 100.2)
    assert cache.get("key1") == "spam"
    cache.set("key2", "spam", 0.5)
    assert cache.get("key2") == "spam"
    time.sleep(0.8)
    assert cache.get("key2") is None


def test_default_timeout_is_the_alias_timeout(config: Path) -> None:
    with override_settings(CACHES=caches_setting(config, TIMEOUT=1)):
        short = caches["default"]
        short.set("k", "v")
        short.set_many({"m": "v"})
        assert short.add("a", "v") is True
        expires = short.region.entry(short.make_key("k"))[1]
        assert expires - short.runtime.clock.now() <= 1
        time.sleep(1.5)
        assert short.get_many(["k", "m", "a"]) == {}
    with override_settings(CACHES=caches_setting(config, TIMEOUT=None)):
        forever = caches["default"]
        forever.set("k", "v")
        assert forever.region.entry(forever.make_key("k"))[1] == float("inf")
        forever.clear()
    with override_settings(CACHES=caches_setting(config)):
        default = caches["default"]
        default.set("k", "v")
        left = default.region.entry(default.make_key("k"))[1] - default.runtime.clock.now()
        assert 295 < left <= 300  # Django's default TIMEOUT
        default.clear()


# -- keys ------------------------------------------------------------------------------------------
def _invalid_key_warnings(cache: CachekitCache, key: str, expected: str, key_func: Any = None) -> None:
    """Every operation warns about a key memcached would refuse, and still works (Django #6447)."""
    cache.key_func = key_func or (lambda key, *args: key)  # what a custom make_key does
    operations = [
        ("add", [key, 1]),
        ("get", [key]),
        ("set", [key, 1]),
        ("incr", [key]),
        ("decr", [key]),
        ("touch", [key]),
        ("delete", [key]),
        ("get_many", [[key, "b"]]),
        ("set_many", [{key: 1, "b": 2}]),
        ("delete_many", [[key, "b"]]),
    ]
    results = {}
    for operation, args in operations:
        with pytest.warns(CacheKeyWarning) as record:
            results[operation] = getattr(cache, operation)(*args)
        assert [str(w.message) for w in record] == [expected], operation
    assert results["add"] is True and results["get"] == 1 and results["incr"] == 2 and results["decr"] == 1
    assert results["touch"] is True and results["delete"] is True and results["get_many"] == {}


def test_invalid_key_characters(cache: CachekitCache) -> None:
    key = "key with spaces and 清"
    _invalid_key_warnings(cache, key, KEY_ERRORS_WITH_MEMCACHED_MSG % key)


def test_invalid_key_length(cache: CachekitCache) -> None:
    key = ("a" * 250) + "清"
    expected = f"Cache key will cause errors if used with memcached: {key!r} (longer than 250)"
    _invalid_key_warnings(cache, key, expected)


def test_invalid_with_version_key_length(cache: CachekitCache) -> None:
    def key_func(key: str, *args: Any) -> str:
        return key + ":1"

    key = "a" * 249
    expected = f"Cache key will cause errors if used with memcached: {key_func(key)!r} (longer than 250)"
    _invalid_key_warnings(cache, key, expected, key_func=key_func)


def test_custom_key_func(cache: CachekitCache) -> None:
    cache.set("answer1", 42)
    assert cache.get("answer1") == 42
    assert caches["custom_key"].get("answer1") is None
    assert caches["custom_key2"].get("answer1") is None
    caches["custom_key"].set("answer2", 42)
    assert cache.get("answer2") is None
    assert caches["custom_key"].get("answer2") == 42
    assert caches["custom_key2"].get("answer2") == 42
    assert cache.region.get("CUSTOM--1-answer2") == 42  # the key the function made


# -- versions ----------------------------------------------------------------------------------------
def test_cache_versioning_get_set(cache: CachekitCache) -> None:
    v2 = caches["v2"]
    cache.set("answer1", 42)
    assert cache.get("answer1") == 42
    assert cache.get("answer1", version=1) == 42
    assert cache.get("answer1", version=2) is None
    assert v2.get("answer1") is None
    assert v2.get("answer1", version=1) == 42
    cache.set("answer2", 42, version=2)
    assert cache.get("answer2") is None
    assert cache.get("answer2", version=2) == 42
    assert v2.get("answer2") == 42
    assert v2.get("answer2", version=1) is None
    v2.set("answer4", 42, version=1)
    assert cache.get("answer4") == 42
    assert v2.get("answer4") is None


def test_cache_versioning_add(cache: CachekitCache) -> None:
    v2 = caches["v2"]
    assert cache.add("answer1", 42, version=2) is True
    assert cache.get("answer1", version=1) is None
    assert cache.get("answer1", version=2) == 42
    assert cache.add("answer1", 37, version=2) is False
    assert cache.get("answer1", version=2) == 42
    assert cache.add("answer1", 37, version=1) is True
    assert cache.get("answer1", version=1) == 37
    assert v2.add("answer2", 42) is True
    assert v2.add("answer2", 37) is False
    assert v2.add("answer2", 37, version=1) is True
    assert cache.get("answer2", version=1) == 37
    assert cache.get("answer2", version=2) == 42


def test_cache_versioning_has_key(cache: CachekitCache) -> None:
    cache.set("answer1", 42)
    assert cache.has_key("answer1") is True
    assert cache.has_key("answer1", version=1) is True
    assert cache.has_key("answer1", version=2) is False
    assert caches["v2"].has_key("answer1") is False
    assert caches["v2"].has_key("answer1", version=1) is True


def test_cache_versioning_delete(cache: CachekitCache) -> None:
    cache.set("answer1", 37, version=1)
    cache.set("answer1", 42, version=2)
    assert cache.delete("answer1") is True
    assert cache.get("answer1", version=1) is None
    assert cache.get("answer1", version=2) == 42
    cache.set("answer3", 37, version=1)
    cache.set("answer3", 42, version=2)
    assert caches["v2"].delete("answer3") is True
    assert cache.get("answer3", version=1) == 37
    assert cache.get("answer3", version=2) is None


def test_cache_versioning_incr_decr(cache: CachekitCache) -> None:
    cache.set("answer1", 37, version=1)
    cache.set("answer1", 42, version=2)
    assert cache.incr("answer1") == 38
    assert cache.get("answer1", version=1) == 38
    assert cache.get("answer1", version=2) == 42
    assert cache.decr("answer1") == 37
    assert cache.incr("answer1", version=2) == 43
    assert cache.get("answer1", version=1) == 37
    assert caches["v2"].decr("answer1") == 42
    assert caches["v2"].incr("answer1", version=1) == 38
    assert cache.get("answer1", version=2) == 42


def test_cache_versioning_get_set_many(cache: CachekitCache) -> None:
    v2 = caches["v2"]
    cache.set_many({"ford1": 37, "arthur1": 42})
    assert cache.get_many(["ford1", "arthur1"]) == {"ford1": 37, "arthur1": 42}
    assert cache.get_many(["ford1", "arthur1"], version=2) == {}
    assert v2.get_many(["ford1", "arthur1"]) == {}
    assert v2.get_many(["ford1", "arthur1"], version=1) == {"ford1": 37, "arthur1": 42}
    v2.set_many({"ford3": 37, "arthur3": 42})
    assert cache.get_many(["ford3", "arthur3"]) == {}
    assert cache.get_many(["ford3", "arthur3"], version=2) == {"ford3": 37, "arthur3": 42}
    v2.delete_many(["ford3"])
    assert cache.get_many(["ford3", "arthur3"], version=2) == {"arthur3": 42}


def test_incr_version(cache: CachekitCache) -> None:
    cache.set("answer", 42, version=2)
    assert cache.get("answer") is None
    assert cache.get("answer", version=2) == 42
    assert cache.get("answer", version=3) is None
    assert cache.incr_version("answer", version=2) == 3
    assert cache.get("answer", version=2) is None
    assert cache.get("answer", version=3) == 42
    v2 = caches["v2"]
    v2.set("answer2", 42)
    assert v2.incr_version("answer2") == 3
    assert v2.get("answer2") is None
    assert v2.get("answer2", version=3) == 42
    with pytest.raises(ValueError):
        cache.incr_version("does_not_exist")
    cache.set("null", None)
    assert cache.incr_version("null") == 2
    assert cache.has_key("null", version=2) is True


def test_decr_version(cache: CachekitCache) -> None:
    cache.set("answer", 42, version=2)
    assert cache.decr_version("answer", version=2) == 1
    assert cache.get("answer") == 42
    assert cache.get("answer", version=2) is None
    v2 = caches["v2"]
    v2.set("answer2", 42)
    assert v2.decr_version("answer2") == 1
    assert v2.get("answer2") is None
    assert v2.get("answer2", version=1) == 42
    with pytest.raises(ValueError):
        cache.decr_version("does_not_exist", version=2)
    cache.set("null", None, version=2)
    assert cache.decr_version("null", version=2) == 1


# -- get_or_set ----------------------------------------------------------------------------------------
def test_get_or_set(cache: CachekitCache) -> None:
    assert cache.get("projector") is None
    assert cache.get_or_set("projector", 42) == 42
    assert cache.get("projector") == 42
    assert cache.get_or_set("projector", 43) == 42
    assert cache.get_or_set("null", None) is None
    assert cache.get("null", "default") is None  # the previous get_or_set stored None


def test_get_or_set_callable(cache: CachekitCache) -> None:
    calls = []

    def my_callable() -> str:
        calls.append(1)
        return "value"

    assert cache.get_or_set("mykey", my_callable) == "value"
    assert cache.get_or_set("mykey", my_callable) == "value"
    assert len(calls) == 1  # a hit does not call the default
    assert cache.get_or_set("null", lambda: None) is None
    assert cache.get("null", "default") is None


def test_get_or_set_version(cache: CachekitCache) -> None:
    msg = "get_or_set() missing 1 required positional argument: 'default'"
    assert cache.get_or_set("brian", 1979, version=2) == 1979
    with pytest.raises(TypeError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        cache.get_or_set("brian")  # type: ignore[call-arg]
    assert cache.get("brian", version=1) is None
    assert cache.get_or_set("brian", 42, version=1) == 42
    assert cache.get_or_set("brian", 1979, version=2) == 1979
    assert cache.get("brian", version=3) is None


def test_get_or_set_racing(cache: CachekitCache) -> None:
    """Another client stores the key while the default is computed: its value wins, as the
    second get of Django's get_or_set promises, and is not overwritten."""

    def default() -> str:
        other = threading.Thread(target=lambda: caches["default"].set("key", "theirs"))  # its own instance
        other.start()
        other.join()
        return "mine"

    assert cache.get_or_set("key", default) == "theirs"
    assert cache.get("key") == "theirs"


def test_get_or_set_with_a_timeout(cache: CachekitCache) -> None:
    assert cache.get_or_set("short", "v", timeout=1) == "v"
    assert cache.get_or_set("zero", "v", timeout=0) == "v"  # returned, not stored
    assert cache.has_key("zero") is False
    time.sleep(1.5)
    assert cache.has_key("short") is False


# -- async twins ---------------------------------------------------------------------------------------
async def test_async_twins(cache: CachekitCache) -> None:
    assert await cache.aget("a") is None
    assert await cache.aget("a", "default") == "default"
    await cache.aset("a", 1)
    assert await cache.aget("a") == 1
    assert await cache.aadd("a", 2) is False
    assert await cache.aadd("b", 2) is True
    assert await cache.aadd("zero", 2, 0) is True
    assert await cache.ahas_key("zero") is False
    assert await cache.aincr("a") == 2
    assert await cache.adecr("a", 5) == -3
    with pytest.raises(ValueError):
        await cache.aincr("missing")
    assert await cache.atouch("a", None) is True
    assert cache.region.entry(cache.make_key("a"))[1] == float("inf")
    assert await cache.atouch("missing") is False
    assert await cache.aset_many({"c": 3, "d": None}) == []
    assert await cache.aget_many(["a", "b", "c", "d", "e"]) == {"a": -3, "b": 2, "c": 3, "d": None}
    assert await cache.ahas_key("d") is True
    assert await cache.aget_or_set("e", lambda: "made") == "made"
    assert await cache.aget_or_set("e", "other") == "made"
    assert await cache.adelete("e") is True
    assert await cache.adelete("e") is False
    await cache.adelete_many(["c", "d"])
    assert await cache.aget_many(["c", "d"]) == {}
    assert await cache.aincr_version("b") == 2
    assert await cache.aget("b", version=2) == 2
    assert await cache.adecr_version("b", version=2) == 1
    await cache.aset("gone", "x", 0)
    assert await cache.ahas_key("gone") is False
    await cache.aset("forever", "x", None)
    assert cache.region.entry(cache.make_key("forever"))[1] == float("inf")
    assert await cache.aset_many({"z1": 1}, timeout=0) == []
    assert await cache.ahas_key("z1") is False
    await cache.aclear()
    assert await cache.aget_many(["a", "b", "forever"], version=None) == {}
    await cache.aclose()


async def test_async_twins_warn_about_invalid_keys(cache: CachekitCache) -> None:
    key = "key with spaces"
    expected = KEY_ERRORS_WITH_MEMCACHED_MSG % f":1:{key}"
    for call in (cache.aset(key, 1), cache.aadd(key, 1), cache.aget(key), cache.atouch(key), cache.aincr(key),
                 cache.ahas_key(key), cache.aget_many([key]), cache.aset_many({key: 2}),
                 cache.adelete(key), cache.adelete_many([key])):
        with pytest.warns(CacheKeyWarning) as record:
            await call
        assert [str(w.message) for w in record] == [expected]


async def test_async_twins_see_what_sync_calls_wrote(cache: CachekitCache) -> None:
    cache.set("shared", {"n": 1}, version=3)
    assert await cache.aget("shared", version=3) == {"n": 1}
    await cache.aset("from_async", [1, 2])
    assert cache.get("from_async") == [1, 2]


# -- Django's machinery on the backend ------------------------------------------------------------------
def test_cache_page_serves_the_second_request_from_the_cache(cache: CachekitCache) -> None:
    from django.http import HttpResponse
    from django.test import RequestFactory
    from django.views.decorators.cache import cache_page

    calls = []

    @cache_page(60)
    def view(request: Any) -> HttpResponse:
        calls.append(request.path)
        return HttpResponse(f"rendered {len(calls)}")

    factory = RequestFactory()
    first = view(factory.get("/report"))
    second = view(factory.get("/report"))
    assert first.content == second.content == b"rendered 1"
    assert calls == ["/report"]
    assert view(factory.get("/other")).content == b"rendered 2"
    cache.clear()
    assert view(factory.get("/report")).content == b"rendered 3"


def test_instances_of_every_alias_and_thread_share_one_runtime(cache: CachekitCache, config: Path) -> None:
    seen: list[Any] = []
    worker = threading.Thread(target=lambda: seen.append(caches["default"]))
    worker.start()
    worker.join()
    assert seen[0] is not cache  # Django builds one instance per thread...
    assert seen[0].runtime is cache.runtime is caches["v2"].runtime is get_runtime(config)  # ...on one runtime
    assert seen[0].region is cache.region
    seen[0].set("from_thread", 1)
    assert cache.get("from_thread") == 1


def test_a_second_region_is_a_separate_cache(config: Path) -> None:
    setting = caches_setting(config)
    setting["sessions"] = {"BACKEND": BACKEND, "OPTIONS": {"config": str(config), "region": "other"}}
    with override_settings(CACHES=setting):
        default, sessions = caches["default"], caches["sessions"]
        default.set("k", "default's")
        sessions.set("k", "sessions'")
        assert default.get("k") == "default's"
        assert sessions.get("k") == "sessions'"
        sessions.clear()
        assert default.get("k") == "default's"
        assert sessions.get("k") is None
        default.clear()


# -- options -------------------------------------------------------------------------------------------
def test_without_options_the_embedded_default_is_used() -> None:
    with override_settings(CACHES={"default": {"BACKEND": BACKEND}}):
        cache = caches["default"]
        assert cache.runtime is get_runtime(None)
        assert cache.runtime.source == "<cachekit default>"
        assert cache.region.name == "default" and cache.region.provider == "memory"
        cache.set("k", "v")
        assert cache.get("k") == "v"
        cache.clear()


def test_an_existing_runtime_can_be_given(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[regions.pages]\nprovider = "memory"\n', encoding="utf-8")
    with load(path) as runtime:
        setting = {"default": {"BACKEND": BACKEND, "OPTIONS": {"runtime": runtime, "region": "pages"}}}
        with override_settings(CACHES=setting):
            caches["default"].set("k", "v")
            assert runtime.region("pages").get(":1:k") == "v"
            assert caches["default"].runtime is runtime
            assert get_runtime(path) is not runtime  # a runtime given is not cached by path


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"OPTIONS": {"MAX_ENTRIES": 10}}, r"unknown OPTIONS \['MAX_ENTRIES'\]; known: config, region, runtime"),
        ({"LOCATION": "cachekit.toml"}, r"takes no LOCATION .*OPTIONS\['config'\]"),
        ({"OPTIONS": {"runtime": "not a runtime"}}, r"must be a cachekit Runtime, not str"),
        ({"OPTIONS": {"runtime": None, "config": "x.toml", "region": "r"}}, None),
    ],
)
def test_options_are_checked(entry: dict[str, Any], message: str | None, tmp_path: Path) -> None:
    if message is None:  # a config file that does not exist: cachekit's own error, naming the file
        from cachekit import ConfigError

        with override_settings(CACHES={"default": {"BACKEND": BACKEND, **entry}}), \
                pytest.raises((ConfigError, FileNotFoundError), match=r"x\.toml"):
            caches["default"]
        return
    with override_settings(CACHES={"default": {"BACKEND": BACKEND, **entry}}), \
            pytest.raises(ImproperlyConfigured, match=message):
        caches["default"]


def test_config_and_runtime_together_are_refused(tmp_path: Path) -> None:
    with load(None) as runtime:
        setting = {"default": {"BACKEND": BACKEND, "OPTIONS": {"runtime": runtime, "config": "c.toml"}}}
        with override_settings(CACHES=setting), pytest.raises(ImproperlyConfigured, match="not both"):
            caches["default"]


def test_a_closed_runtime_is_loaded_again(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[cache]\nprefix = \"again\"\n", encoding="utf-8")
    first = get_runtime(path)
    assert get_runtime(str(path)) is first  # the same file, however spelled
    first.close()
    second = get_runtime(path)
    assert second is not first and not second.closed
    second.close()


# -- serialization on network stores -------------------------------------------------------------------
@pytest.mark.parametrize("network", ["redis", "memcached"])
def test_without_a_signing_key_values_are_stored_as_safe_json(
    network: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = config_file(network, request, tmp_path_factory, signing_key=None)
    with override_settings(CACHES=caches_setting(path)):
        cache = caches["default"]
        value = {"list": [1, 2], "tuple": (1, 2), "bytes": b"\x00", "none": None}
        cache.set("json", value)
        assert cache.get("json") == value
        cache.set("n", 1)
        assert cache.incr("n") == 2
        # no pickle without a key: a value json cannot encode is not stored; as every cachekit write
        # failure it is logged and counted (on_error = "raise" would raise it), not raised
        with caplog.at_level(logging.WARNING, logger="cachekit"):
            cache.set("function", f)
        assert cache.get("function") is None
        assert "give the provider a signing_key" in caplog.text
        cache.clear()


@pytest.mark.parametrize("store_name", STORES)
def test_cached_sessions_work_on_the_safe_json_default(
    store_name: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """django.contrib.sessions' cache engine stores the session dict: json carries it, no key needed."""
    from django.contrib.sessions.backends.cache import SessionStore

    path = config_file(store_name, request, tmp_path_factory, signing_key=None)
    with override_settings(CACHES=caches_setting(path), SESSION_CACHE_ALIAS="default"):
        session = SessionStore()
        session["user_id"] = 7
        session["cart"] = [1, 2]
        session.save()
        key = session.session_key
        again = SessionStore(session_key=key)
        assert again["user_id"] == 7 and again["cart"] == [1, 2]
        assert again.exists(key) is True
        again.delete()
        assert SessionStore().exists(key) is False
        caches["default"].clear()


# -- packaging -----------------------------------------------------------------------------------------
def test_importing_cachekit_imports_no_django() -> None:
    code = "import sys, cachekit, cachekit.contrib; print(sorted(m for m in sys.modules if m.startswith('django')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_without_django_the_error_names_the_extra() -> None:
    code = textwrap.dedent("""
        import sys
        sys.modules["django"] = None  # as if Django were not installed
        from cachekit import MissingExtraError
        try:
            import cachekit.contrib.django
        except MissingExtraError as exc:
            print(exc)
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert "pip install 'cachekit-config[django]'" in out.stdout


def test_the_runtime_is_closed_at_exit(tmp_path: Path) -> None:
    code = textwrap.dedent("""
        import atexit
        from django.conf import settings
        settings.configure(CACHES={"default": {"BACKEND": "cachekit.contrib.django.CachekitCache"}})
        import django
        django.setup()
        from django.core.cache import cache
        runtimes = []
        atexit.register(lambda: print("closed at exit:", runtimes[0].closed))  # runs after the backend's
        cache.set("k", 1)
        runtimes.append(cache.runtime)
        print("open:", not cache.runtime.closed)
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60,
                         cwd=tmp_path)
    assert out.stdout.split("\n")[:2] == ["open: True", "closed at exit: True"], out.stdout + out.stderr


def test_the_docs_page_runs(tmp_path: Path) -> None:
    """docs/django.md's python blocks, in order, in a fresh interpreter (Django is configured once)."""
    page = Path(__file__).resolve().parents[2] / "docs" / "django.md"
    runner = textwrap.dedent("""
        import sys
        sys.path.insert(0, sys.argv[1])
        from docblocks import page_blocks
        namespace = {"__name__": "__main__"}
        for block in page_blocks([sys.argv[2]], "python"):
            if not block.skip:
                exec(compile("\\n" * block.line + block.code, block.file, "exec"), namespace)
        print("all blocks ran")
        """)
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("CACHEKIT_", "DJANGO_"))}
    out = subprocess.run([sys.executable, "-c", runner, str(Path(__file__).parent.parent), str(page)], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "all blocks ran" in out.stdout
    from docblocks import page_blocks

    from cachekit.config.loader import parse_config

    tomls = page_blocks([str(page)], "toml")
    assert tomls
    for block in tomls:  # each config shown is valid and declares the regions the settings name
        assert set(parse_config(block.code, environ={}).regions) >= {"default", "sessions"}


def test_async_twins_run_concurrently_on_a_running_loop(cache: CachekitCache) -> None:
    async def main() -> list[Any]:
        await asyncio.gather(*(cache.aset(f"k{i}", i) for i in range(20)))
        return await asyncio.gather(*(cache.aincr(f"k{i}") for i in range(20)))

    assert asyncio.run(main()) == list(range(1, 21))
