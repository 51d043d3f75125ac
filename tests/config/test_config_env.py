"""Environment overrides: CACHEKIT_... variables > TOML file > defaults."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from cachekit import Cache, load
from cachekit.config import CacheConfig, load_config, parse_config, save_config
from cachekit.config.env import use_environ
from cachekit.errors import ConfigError

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "default.toml"

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


# -- built-in provider names imply their type --------------------------------------------------------


def test_env_url_for_an_undeclared_redis_provider_declares_a_redis_provider() -> None:
    # the README's example, on a config (like configs/default.toml) without [providers.redis]
    config = parse_config('[cache]\nprefix = "shop"\n', environ={"CACHEKIT_PROVIDERS__REDIS__URL": "redis://cache:6379/0"})
    redis = config.providers["redis"]
    assert redis.type == "redis" and redis.url.get_secret_value() == "redis://cache:6379/0"
    assert redis.port == 6379 and redis.on_error == "ignore"  # the defaults of a redis provider
    assert config.env_overrides == {"providers.redis.url": "CACHEKIT_PROVIDERS__REDIS__URL"}


@pytest.mark.parametrize(
    ("name", "key", "value", "expected_type"),
    [
        ("memory", "max_size", "5", "memory"),
        ("file", "path", "/tmp/cachekit-env", "file"),
        ("redis", "port", "7000", "redis"),
        ("memcached", "servers", '["10.0.0.1:11211"]', "memcached"),
    ],
)
def test_every_built_in_name_implies_its_type_from_the_environment(
    name: str, key: str, value: str, expected_type: str
) -> None:
    config = parse_config("", environ={f"CACHEKIT_PROVIDERS__{name.upper()}__{key.upper()}": value})
    assert config.providers[name].type == expected_type
    assert getattr(config.providers[name], key) is not None


def test_built_in_names_imply_their_type_in_toml_too_and_an_explicit_type_wins() -> None:
    config = parse_config(
        '[providers.redis]\nurl = "redis://r:1/0"\n\n[providers.file]\npath = "/tmp/x"\n\n'
        '[providers.memcached]\nservers = ["m:11211"]\n\n[providers.memory]\ntype = "memory"\n', environ={}
    )
    assert {name: p.type for name, p in config.providers.items()} == {
        "redis": "redis", "file": "file", "memcached": "memcached", "memory": "memory"
    }
    explicit = parse_config('[providers.redis]\ntype = "memory"\nmax_size = 3\n', environ={})
    assert explicit.providers["redis"].type == "memory"


def test_a_name_that_is_not_built_in_still_defaults_to_memory() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config('[providers.cache]\nurl = "redis://r:1/0"\n', environ={})
    (item,) = info.value.errors
    assert 'unknown key \'url\' for a memory provider (no type is set, so type = "memory")' in item.message


def test_unknown_key_on_a_built_in_name_says_the_name_implies_the_type() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config('[providers.redis]\nurll = "redis://r:1/0"\n', environ={})
    (item,) = info.value.errors
    assert "for a redis provider (no type is set, the name 'redis' implies type = \"redis\")" in item.message
    assert "did you mean 'url'?" in item.message


def test_env_redis_url_reaches_the_runtime_through_load_environ(redis_server: Any, tmp_path: Path) -> None:
    path = tmp_path / "app.toml"
    path.write_text(DEFAULT_CONFIG.read_text())  # the README's config: no [providers.redis]
    runtime = load(path, environ={"CACHEKIT_PROVIDERS__REDIS__URL": redis_server.url})
    try:
        runtime.store("redis").put("greeting", "hello", 60)
        assert runtime.store("redis").get("greeting") == "hello"
        assert any(b"greeting" in key for key in redis_server.client().keys("*"))  # the server of the URL
    finally:
        runtime.close()


def test_readme_example_cache_facade_with_redis_url_in_the_environment(
    redis_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: every Cache call raised "unknown key 'url' for a memory provider".
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CACHEKIT_CONFIG", str(DEFAULT_CONFIG))
    monkeypatch.setenv("CACHEKIT_PROVIDERS__REDIS__URL", redis_server.url)
    Cache.reset()
    try:
        Cache.put("greeting", "hello", 60)
        assert Cache.get("greeting") == "hello"
        Cache.store("redis").put("shared", 42, 60)
        assert Cache.store("redis").get("shared") == 42
        assert any(b"shared" in key for key in redis_server.client().keys("*"))
    finally:
        Cache.reset()


# -- load(path, environ=...), .env files, secrets directories, precedence ----------------------------


def test_load_takes_environ_like_load_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "app.toml"
    path.write_text(TEXT)
    monkeypatch.setenv("CACHEKIT_REGIONS__USER-PROFILES__TTL", "-1")  # ignored: environ is given
    runtime = load(path, environ={"CACHEKIT_CACHE__PREFIX": "given"})
    try:
        assert runtime.config.cache.prefix == "given"
        assert runtime.config.regions["user-profiles"].ttl == 600
    finally:
        runtime.close()
    default = load(None, environ={"CACHEKIT_CACHE__PREFIX": "given"})  # the embedded default too
    try:
        assert default.config.cache.prefix == "given"
    finally:
        default.close()


def test_env_file_is_read_when_asked_and_ignores_other_variables(tmp_path: Path) -> None:
    env_file = tmp_path / "app.env"
    env_file.write_text(
        "# deployment settings\nDATABASE_URL=postgres://db/app\nexport CACHEKIT_CACHE__PREFIX=fromdotenv\n"
        "CACHEKIT_REGIONS__USER-PROFILES__TTL='45'\n"
    )
    config = parse_config(TEXT, environ={}, env_file=env_file)
    assert config.cache.prefix == "fromdotenv"
    assert config.regions["user-profiles"].ttl == 45.0
    assert config.env_overrides == {
        "cache.prefix": "CACHEKIT_CACHE__PREFIX",
        "regions.user-profiles.ttl": "CACHEKIT_REGIONS__USER-PROFILES__TTL",
    }


def test_no_env_file_is_read_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("CACHEKIT_CACHE__PREFIX=fromdotenv\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CACHEKIT_ENV_FILE", raising=False)
    monkeypatch.delenv("CACHEKIT_CACHE__PREFIX", raising=False)
    assert parse_config(TEXT, environ={}).cache.prefix == "fromfile"
    assert parse_config(TEXT).cache.prefix == "fromfile"


def test_cachekit_env_file_names_the_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "prod.env").write_text("CACHEKIT_CACHE__PREFIX=fromdotenv\n")
    monkeypatch.chdir(tmp_path)
    assert parse_config(TEXT, environ={"CACHEKIT_ENV_FILE": "prod.env"}).cache.prefix == "fromdotenv"
    monkeypatch.setenv("CACHEKIT_ENV_FILE", str(tmp_path / "prod.env"))
    monkeypatch.delenv("CACHEKIT_CACHE__PREFIX", raising=False)
    path = tmp_path / "app.toml"
    path.write_text(TEXT)
    runtime = load(path)
    try:
        assert runtime.config.cache.prefix == "fromdotenv"
    finally:
        runtime.close()


def test_a_missing_env_file_or_secrets_dir_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(TEXT, file="app.toml", environ={}, env_file=tmp_path / "nope.env")
    (item,) = info.value.errors
    assert item.file == "app.toml" and item.message.startswith("no such file: ")
    assert "nope.env (the .env file named by env_file=)" in item.message
    with pytest.raises(ConfigError, match="named by environment variable CACHEKIT_ENV_FILE"):
        parse_config(TEXT, environ={"CACHEKIT_ENV_FILE": str(tmp_path / "nope.env")})
    with pytest.raises(ConfigError, match=r"no such directory: .*secrets \(the secrets directory named by"):
        parse_config(TEXT, environ={}, secrets_dir=tmp_path / "secrets")
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="not a directory"):
        parse_config(TEXT, environ={}, secrets_dir=tmp_path / "file")


def test_an_invalid_value_from_the_env_file_names_the_variable_and_the_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("CACHEKIT_REGIONS__USER-PROFILES__TTL=-1\n")
    with pytest.raises(ConfigError) as info:
        parse_config(TEXT, file="app.toml", environ={}, env_file=env_file)
    (item,) = info.value.errors
    assert item.line is None and item.path == "regions.user-profiles.ttl"
    assert item.message.endswith(f"(set by CACHEKIT_REGIONS__USER-PROFILES__TTL in {env_file})")


def test_secrets_dir_holds_one_file_per_variable(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "CACHEKIT_PROVIDERS__REDIS__PASSWORD").write_text("hunter2\n")  # trailing newline stripped
    (secrets / "cachekit_http__token").write_text("t0k3n")  # names are case-insensitive
    (secrets / "db_password").write_text("not ours")  # ignored
    config = parse_config(TEXT, environ={}, secrets_dir=secrets)
    password = config.providers["redis"].password
    assert password is not None and password.get_secret_value() == "hunter2"
    assert config.http.token is not None and config.http.token.get_secret_value() == "t0k3n"
    assert config.providers["redis"].url.get_secret_value() == "redis://file:6379/0"  # the file's, untouched
    assert config.env_overrides["providers.redis.password"] == "CACHEKIT_PROVIDERS__REDIS__PASSWORD"
    named = parse_config(TEXT, environ={"CACHEKIT_SECRETS_DIR": str(secrets)})
    assert named.http.token is not None and named.http.token.get_secret_value() == "t0k3n"


def test_an_invalid_value_from_a_secrets_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "CACHEKIT_PROVIDERS__REDIS__PORT").write_text("not-a-port")
    with pytest.raises(ConfigError) as info:
        parse_config(TEXT, environ={}, secrets_dir=tmp_path)
    (item,) = info.value.errors
    assert item.path == "providers.redis.port"
    assert item.message.endswith(f"(set by secrets file {tmp_path / 'CACHEKIT_PROVIDERS__REDIS__PORT'})")


def test_values_from_env_file_and_secrets_dir_are_not_saved(tmp_path: Path) -> None:
    path = tmp_path / "app.toml"
    path.write_text(TEXT)
    (tmp_path / ".env").write_text("CACHEKIT_CACHE__PREFIX=fromdotenv\n")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "CACHEKIT_PROVIDERS__REDIS__PASSWORD").write_text("hunter2")
    config = load_config(path, environ={}, env_file=tmp_path / ".env", secrets_dir=secrets)
    config.regions["user-profiles"].ttl = 42
    save_config(config)
    assert path.read_text() == TEXT.replace("ttl = 600", "ttl = 42")


PLACES = ["argument", "environment", ".env", "secrets dir", "toml"]


@pytest.mark.parametrize("highest", range(len(PLACES)), ids=PLACES)
def test_precedence_arguments_environment_env_file_secrets_dir_toml_defaults(tmp_path: Path, highest: int) -> None:
    """The same field set in the places from ``highest`` down: the highest one wins."""
    present = PLACES[highest:]
    toml = '[cache]\nprefix = "toml"\n' if "toml" in present else ""
    environ = {"CACHEKIT_CACHE__PREFIX": "environment"} if "environment" in present else {}
    env_file = tmp_path / ".env"
    env_file.write_text("CACHEKIT_CACHE__PREFIX=dotenv\n" if ".env" in present else "")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    if "secrets dir" in present:
        (secrets / "CACHEKIT_CACHE__PREFIX").write_text("secrets")
    overrides = {"cache": {"prefix": "argument"}} if "argument" in present else None
    config = parse_config(toml, environ=environ, env_file=env_file, secrets_dir=secrets, overrides=overrides)
    expected = {"argument": "argument", "environment": "environment", ".env": "dotenv",
                "secrets dir": "secrets", "toml": "toml"}[PLACES[highest]]
    assert config.cache.prefix == expected
    assert parse_config("", environ={}).cache.prefix == "cachekit"  # and the default below them all
    assert (config.env_overrides.get("cache.prefix") is None) == (expected in ("argument", "toml"))


def test_arguments_to_cache_config_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHEKIT_CACHE__PREFIX", "fromenv")
    monkeypatch.setenv("CACHEKIT_CACHE__DEFAULT_TTL", "42")
    monkeypatch.setenv("CACHEKIT_REGIONS__R__TTL", "5")
    config = CacheConfig(cache={"prefix": "fromcode"}, regions={"r": {}})
    assert config.cache.prefix == "fromcode"  # argument over environment
    assert config.cache.default_ttl == 42.0  # the environment still fills the rest of the section
    assert config.regions["r"].ttl == 5.0  # and of an empty table given as an argument
    assert config.env_overrides == {
        "cache.default_ttl": "CACHEKIT_CACHE__DEFAULT_TTL", "regions.r.ttl": "CACHEKIT_REGIONS__R__TTL"
    }


def test_providers_assigned_in_code_imply_their_type_too() -> None:
    config = parse_config("", environ={})
    config.providers = {"redis": {"url": "redis://code:6379/0"}, "other": {"max_size": 5}}
    assert config.providers["redis"].type == "redis" and config.providers["redis"].url.get_secret_value() == "redis://code:6379/0"
    assert config.providers["other"].type == "memory"


def test_pydantic_settings_own_env_file_and_secrets_dir_arguments_work(tmp_path: Path) -> None:
    (tmp_path / "app.env").write_text("CACHEKIT_CACHE__PREFIX=fromdotenv\n")
    (tmp_path / "CACHEKIT_HTTP__TOKEN").write_text("t0k3n")
    with use_environ({}):
        config = CacheConfig(_env_file=tmp_path / "app.env", _secrets_dir=tmp_path)  # type: ignore[call-arg]
    assert config.cache.prefix == "fromdotenv"
    assert config.http.token is not None and config.http.token.get_secret_value() == "t0k3n"
