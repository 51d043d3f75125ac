"""The `cache` fixture of our pytest plugin and `cachekit.testing`, as a user's test would use them."""

from __future__ import annotations

from typing import Any

from cachekit import Cache
from cachekit.testing import fake_cache

pytest_plugins = ["pytester"]


def test_cache_fixture_binds_a_fresh_fake_to_the_facade(cache: Any) -> None:
    Cache.put("user:1", "ada", ttl=60)
    assert cache.get("user:1") == "ada"
    Cache.assert_has("user:1")
    cache.advance(61)  # no sleeping: the clock is fake
    Cache.assert_missing("user:1")
    assert cache.stats.rows()[0]["hits"] == 1  # assertions peek: they do not skew the stats


def test_cache_fixture_is_fresh_for_every_test(cache: Any) -> None:
    Cache.assert_missing("user:1")


def test_fake_cache_context_unbinds_afterwards() -> None:
    with fake_cache({"regions": {"users": {"ttl": 5}}}) as fake:
        fake.region("users").put("k", 1)
        fake.advance(6)
        assert fake.region("users").get("k") is None
        bound = Cache.runtime()
        assert bound is fake.runtime
    assert Cache.runtime() is not fake.runtime
    Cache.reset()


def test_plugin_fixture_is_available_to_user_projects(pytester: Any) -> None:
    pytester.makepyfile(
        """
        from cachekit import Cache

        def test_ttl(cache):
            Cache.put("k", "v", ttl=10)
            cache.advance(11)
            Cache.assert_missing("k")

        def test_fails_when_missing(cache):
            Cache.assert_has("absent")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:asyncio")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*expected 'absent' in cache region 'default'*"])
