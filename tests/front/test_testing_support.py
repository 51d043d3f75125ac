"""The `cachekit_cache` fixture of our pytest plugin and `cachekit.testing`, as a user's test would use them."""

from __future__ import annotations

from typing import Any

from cachekit import Cache
from cachekit.testing import fake_cache

pytest_plugins = ["pytester"]


def test_cachekit_cache_fixture_binds_a_fresh_fake_to_the_facade(cachekit_cache: Any) -> None:
    Cache.put("user:1", "ada", ttl=60)
    assert cachekit_cache.get("user:1") == "ada"
    Cache.assert_has("user:1")
    cachekit_cache.advance(61)  # no sleeping: the clock is fake
    Cache.assert_missing("user:1")
    assert cachekit_cache.stats.rows()[0]["hits"] == 1  # assertions peek: they do not skew the stats


def test_cachekit_cache_fixture_is_fresh_for_every_test(cachekit_cache: Any) -> None:
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

        def test_ttl(cachekit_cache):
            Cache.put("k", "v", ttl=10)
            cachekit_cache.advance(11)
            Cache.assert_missing("k")

        def test_fails_when_missing(cachekit_cache):
            Cache.assert_has("absent")
        """
    )
    result = pytester.runpytest("-p", "no:asyncio")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*expected 'absent' in cache region 'default'*"])


def test_pytests_own_cache_fixture_still_works_with_the_plugin_loaded(pytester: Any) -> None:
    pytester.makepyfile(
        """
        def test_plugin_is_loaded(request, cachekit_cache):
            assert request.config.pluginmanager.hasplugin("cachekit")

        def test_pytest_cache_stores_values_and_makes_dirs(cache):
            cache.set("myproject/last", {"run": 1})
            assert cache.get("myproject/last", None) == {"run": 1}
            assert cache.mkdir("myproject").is_dir()

        def test_pytest_cache_persists_across_tests(cache):
            assert cache.get("myproject/last", None) == {"run": 1}
        """
    )
    result = pytester.runpytest("-p", "no:asyncio")
    result.assert_outcomes(passed=3)
    assert (pytester.path / ".pytest_cache" / "v" / "myproject" / "last").is_file()  # pytest's store, not ours


CONFIG = """
[providers.shared]
type = "redis"
url = "redis://db.invalid:6379/0"

[regions.sessions]
provider = "shared"
ttl = 90

[[rules]]
name = "tokens"
strategy = "time_based"
pattern = "token:*"
ttl = 5
"""

USES_FILE = """
from cachekit import Cache

def test_region_from_the_file(cachekit_cache):
    sessions = Cache.region("sessions")
    assert cachekit_cache.config.regions["sessions"].ttl == 90
    sessions.put("s:1", "ada")                      # a network provider became an in-process store
    cachekit_cache.advance(89)
    assert sessions.get("s:1") == "ada"
    cachekit_cache.advance(2)
    assert sessions.get("s:1") is None              # the file's 90 s
    sessions.put("token:1", "t")
    cachekit_cache.advance(6)
    assert sessions.get("token:1") is None          # the file's rule: 5 s
"""


def test_marker_starts_the_fixture_from_a_users_toml(pytester: Any) -> None:
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "cache.toml").write_text(CONFIG)
    pytester.makepyfile(
        test_marked="import pytest\n" + USES_FILE.replace(
            "def test_region_from_the_file", '@pytest.mark.cachekit(config="tests/cache.toml")\n'
            "def test_region_from_the_file"
        ) + "\ndef test_unmarked_is_the_default(cachekit_cache):\n"
            "    assert 'sessions' not in cachekit_cache.config.regions\n"
    )
    result = pytester.runpytest("-p", "no:asyncio", "--strict-markers")
    result.assert_outcomes(passed=2)


def test_ini_option_starts_the_fixture_from_a_users_toml(pytester: Any) -> None:
    (pytester.path / "cache.toml").write_text(CONFIG)
    pytester.makeini("[pytest]\ncachekit_config = cache.toml\n")
    pytester.makepyfile(test_ini=USES_FILE)
    result = pytester.runpytest("-p", "no:asyncio")
    result.assert_outcomes(passed=1)


def test_marker_is_registered(pytester: Any) -> None:
    result = pytester.runpytest("--markers", "-p", "no:asyncio")
    result.stdout.fnmatch_lines(["@pytest.mark.cachekit(config=PATH)*"])
