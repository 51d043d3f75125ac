"""Environment overrides: CACHEKIT_... variables > TOML file > defaults."""

from __future__ import annotations

import threading

import pytest

from cachekit.config import CacheConfig, parse_config
from cachekit.errors import ConfigError

TEXT = """\
[cache]
prefix = "fromfile"

[providers.redis]
type = "redis"
url = "redis://file:6379/0"

[regions.user-profiles]
provider = "redis"
ttl = 600
"""


def test_environment_beats_file_and_file_beats_defaults() -> None:
    config = parse_config(TEXT, environ={"CACHEKIT_REGIONS__USER-PROFILES__TTL": "42"})
    assert config.regions["user-profiles"].ttl == 42.0  # env over file
    assert config.regions["user-profiles"].provider == "redis"  # file, untouched by env
    assert config.cache.prefix == "fromfile"  # file over default
    assert config.cache.default_ttl == 300  # default


def test_variable_names_are_case_insensitive_and_nested_with_double_underscore() -> None:
    config = parse_config(TEXT, environ={"cachekit_providers__redis__url": "redis://env:1/2"})
    redis = config.providers["redis"]
    assert redis.type == "redis" and redis.url.get_secret_value() == "redis://env:1/2"


def test_env_overrides_lists_each_path_with_its_variable() -> None:
    config = parse_config(
        TEXT, environ={"CACHEKIT_REGIONS__USER-PROFILES__TTL": "42", "CACHEKIT_CACHE__STRICT": "true", "PATH": "/x"}
    )
    assert config.env_overrides == {
        "regions.user-profiles.ttl": "CACHEKIT_REGIONS__USER-PROFILES__TTL",
        "cache.strict": "CACHEKIT_CACHE__STRICT",
    }


def test_json_variable_for_a_whole_section_is_recorded_under_that_variable() -> None:
    config = parse_config("", environ={"CACHEKIT_PROVIDERS": '{"r": {"type": "redis", "port": 7000}}'})
    assert config.providers["r"].port == 7000
    assert config.env_overrides["providers.r.port"] == "CACHEKIT_PROVIDERS"


def test_explicit_empty_environ_ignores_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHEKIT_CACHE__PREFIX", "fromenv")
    assert parse_config(TEXT, environ={}).cache.prefix == "fromfile"
    assert parse_config(TEXT).cache.prefix == "fromenv"  # environ=None: os.environ


def test_config_built_in_code_reads_os_environ_and_records_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHEKIT_CACHE__PREFIX", "fromenv")
    config = CacheConfig()
    assert config.cache.prefix == "fromenv"
    assert config.env_overrides == {"cache.prefix": "CACHEKIT_CACHE__PREFIX"}


def test_invalid_env_value_names_the_variable_instead_of_a_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(TEXT, file="app.toml", environ={"CACHEKIT_REGIONS__USER-PROFILES__TTL": "-1"})
    (item,) = info.value.errors
    assert (item.file, item.line, item.path) == ("app.toml", None, "regions.user-profiles.ttl")
    assert "must be greater than 0 seconds" in item.message
    assert item.message.endswith("(set by environment variable CACHEKIT_REGIONS__USER-PROFILES__TTL)")


def test_env_key_on_an_undeclared_provider_is_blamed_on_the_variable() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("", environ={"CACHEKIT_PROVIDERS__NEW__URL": "redis://x"})
    (item,) = info.value.errors
    assert item.path == "providers.new.url"
    assert "CACHEKIT_PROVIDERS__NEW__URL" in item.message


def test_malformed_json_in_a_variable_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("", environ={"CACHEKIT_PROVIDERS": "{not json"})
    (item,) = info.value.errors
    assert "invalid environment override" in item.message


def test_concurrent_loads_each_see_their_own_environ() -> None:
    results: dict[int, float | None] = {}
    barrier = threading.Barrier(8)

    def load(n: int) -> None:
        barrier.wait()
        for _ in range(20):
            config = parse_config(TEXT, environ={"CACHEKIT_REGIONS__USER-PROFILES__TTL": str(n + 1)})
            results[n] = config.regions["user-profiles"].ttl
            assert results[n] == n + 1

    threads = [threading.Thread(target=load, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {n: float(n + 1) for n in range(8)}
