"""Strict TOML types (the file's values must have their TOML type; the environment's are converted)
and durations ("90s", "5m", "1h30m", "2d", "250ms") on every TTL-like field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cachekit.clock import FakeClock
from cachekit.config import load_config, parse_config, save_config
from cachekit.config.durations import parse_duration
from cachekit.errors import ConfigError

SCRIPT = Path(sys.executable).parent / "cachekit"
FORMS = 'a number of seconds or a duration such as "90s", "5m", "1h30m", "2d", "250ms"'


def errors(text: str, **kwargs: Any) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, file="app.toml", **{"environ": {}, **kwargs})
    return [(item.line, item.path, item.message) for item in info.value.errors]


# -- strict TOML types -------------------------------------------------------------------------------

WRONG = '[cache]\nmulti_level = 0\nstrict = "yes"\ndefault_ttl = "60"\n'


def test_cachekit_validate_rejects_values_of_the_wrong_toml_type(tmp_path: Path) -> None:
    (tmp_path / "app.toml").write_text(WRONG)
    environ = {"PATH": "/usr/bin:/bin"}
    result = subprocess.run([str(SCRIPT), "validate", "app.toml"], cwd=tmp_path, env=environ,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stdout
    assert result.stdout.splitlines() == [
        "app.toml:2: cache.multi_level: expected true or false, got 0",
        "app.toml:3: cache.strict: expected true or false, got string 'yes'",
        f"app.toml:4: cache.default_ttl: expected {FORMS}, got string '60' (a string: write 60 without quotes)",
    ]


def test_wrong_toml_types_are_config_errors_with_file_and_line() -> None:
    assert errors(WRONG) == [
        (2, "cache.multi_level", "expected true or false, got 0"),
        (3, "cache.strict", "expected true or false, got string 'yes'"),
        (4, "cache.default_ttl", f"expected {FORMS}, got string '60' (a string: write 60 without quotes)"),
    ]


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        ('[cache]\nenabled = "true"\n', "cache.enabled", "expected true or false, got string 'true' (a string: "
                                                        "write true without quotes)"),
        ('[cache]\nmax_key_length = 1.5\n', "cache.max_key_length", "expected an integer, got 1.5"),
        ('[cache]\nmax_key_length = "512"\n', "cache.max_key_length",
         "expected an integer, got string '512' (a string: write 512 without quotes)"),
        ('[cache]\nprefix = 5\n', "cache.prefix", "expected a string, got 5"),
        ('[providers.r]\ntype = "redis"\nport = "6379"\n', "providers.r.port",
         "expected an integer, got string '6379' (a string: write 6379 without quotes)"),
        ('[providers.redis]\nport = "6379"\n', "providers.redis.port",  # type implied by the name
         "expected an integer, got string '6379' (a string: write 6379 without quotes)"),
        ('[providers.m]\ntype = "memory"\nmax_size = true\n', "providers.m.max_size", "expected an integer, got true"),
        ('[regions.r]\nlock = 1\n', "regions.r.lock", "expected true or false, got 1"),
        ('[regions.r]\nl1 = { ttl = "30" }\n', "regions.r.l1.ttl",
         f"expected {FORMS}, got string '30' (a string: write 30 without quotes)"),
        ('[[rules]]\nname = "r"\nstrategy = "time_based"\nttl = true\n', "rules[0].ttl", f"expected {FORMS}, got true"),
        ('[bus]\nenabled = "false"\n', "bus.enabled",
         "expected true or false, got string 'false' (a string: write false without quotes)"),
    ],
)
def test_each_kind_of_field_is_strict_in_toml(text: str, path: str, message: str) -> None:
    ((_, got_path, got_message),) = errors(text)
    assert (got_path, got_message) == (path, message)


def test_an_integer_where_a_number_is_expected_is_fine() -> None:
    config = parse_config('[regions.r]\nttl = 60\nlock_timeout = 5\n', environ={})
    assert config.regions["r"].ttl == 60.0 and isinstance(config.regions["r"].ttl, float)


def test_environment_values_are_strings_and_stay_converted() -> None:
    config = parse_config("", environ={
        "CACHEKIT_CACHE__MULTI_LEVEL": "0", "CACHEKIT_CACHE__STRICT": "yes", "CACHEKIT_CACHE__DEFAULT_TTL": "60",
        "CACHEKIT_CACHE__MAX_KEY_LENGTH": "512", "CACHEKIT_PROVIDERS__REDIS__PORT": "7000",
    })
    assert config.cache.multi_level is False and config.cache.strict is True
    assert config.cache.default_ttl == 60.0 and config.cache.max_key_length == 512
    assert config.providers["redis"].port == 7000


def test_a_wrong_type_in_the_file_and_a_dangling_reference_are_both_reported() -> None:
    assert [(line, path) for line, path, _ in errors('[cache]\ndefault_ttl = "60"\ndefault_provider = "redsi"\n')] == [
        (2, "cache.default_ttl"), (3, "cache.default_provider")
    ]


def test_a_value_that_is_wrong_either_way_is_reported_once() -> None:
    assert errors('[regions.r]\nttl = "soon"\n') == [(2, "regions.r.ttl", f"expected {FORMS}, got string 'soon'")]


# -- durations -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("5m", 300), ("1h30m", 5400), ("2d", 172800), ("250ms", 0.25), ("1.5h", 5400),
     ("1d2h3m4s5ms", 93784.005), ("45", None), ("", None), ("5 m", None), ("m", None), ("30m1h", None),
     ("1h1h", None), ("5x", None), ("-5s", None), (".5s", None)],
)
def test_duration_grammar(text: str, seconds: float | None) -> None:
    got = parse_duration(text)
    assert got == pytest.approx(seconds) if seconds is not None else got is None


TTL_FIELDS = [
    ('[cache]\ndefault_ttl = "{}"\n', lambda c: c.cache.default_ttl),
    ('[regions.r]\nttl = "{}"\n', lambda c: c.regions["r"].ttl),
    ('[regions.r]\nstale_ttl = "{}"\n', lambda c: c.regions["r"].stale_ttl),
    ('[regions.r]\nlock_timeout = "{}"\n', lambda c: c.regions["r"].lock_timeout),
    ('[regions.r]\nl1 = {{ ttl = "{}" }}\n', lambda c: c.regions["r"].l1.ttl),
    ('[[rules]]\nname = "t"\nstrategy = "time_based"\nttl = "{}"\n', lambda c: c.rules[0].ttl),
    ('[providers.r]\ntype = "redis"\nconnect_timeout = "{}"\n', lambda c: c.providers["r"].connect_timeout),
    ('[providers.r]\ntype = "redis"\nsocket_timeout = "{}"\n', lambda c: c.providers["r"].socket_timeout),
    ('[providers.m]\ntype = "memcached"\nconnect_timeout = "{}"\n', lambda c: c.providers["m"].connect_timeout),
    ('[providers.m]\ntype = "memcached"\ntimeout = "{}"\n', lambda c: c.providers["m"].timeout),
]


@pytest.mark.parametrize(("template", "get"), TTL_FIELDS, ids=[t.splitlines()[-1] for t, _ in TTL_FIELDS])
def test_every_ttl_like_field_takes_a_duration_string(template: str, get: Any) -> None:
    assert get(parse_config(template.format("1h30m"), environ={})) == 5400.0
    assert get(parse_config(template.format("250ms"), environ={})) == 0.25
    number = template.replace('"{}"', "{}").format(90)
    assert get(parse_config(number, environ={})) == 90.0  # numbers stay seconds
    ((line, _, message),) = errors(template.format("ninety seconds"))
    assert message == f"expected {FORMS}, got string 'ninety seconds'" and line is not None
    ((_, _, zero),) = errors(template.format("0s"))
    assert zero.startswith("must be greater than 0 seconds, got 0")


def test_durations_from_the_environment() -> None:
    config = parse_config("", environ={"CACHEKIT_REGIONS__R__TTL": "5m", "CACHEKIT_CACHE__DEFAULT_TTL": "60"})
    assert config.regions["r"].ttl == 300.0 and config.cache.default_ttl == 60.0
    with pytest.raises(ConfigError) as info:
        parse_config("", environ={"CACHEKIT_REGIONS__R__TTL": "5 minutes"})
    (item,) = info.value.errors
    assert item.message == (
        f"expected {FORMS}, got string '5 minutes' (set by environment variable CACHEKIT_REGIONS__R__TTL)"
    )


def test_a_duration_ttl_drives_the_runtime() -> None:
    clock = FakeClock(1000.0)
    runtime = parse_config('[regions.r]\nttl = "2s"\nprovider = "memory"\n', environ={}).compile(clock=clock)
    try:
        region = runtime.region("r")
        region.put("k", "v")
        clock.advance(1.5)
        assert region.get("k") == "v"
        clock.advance(1.0)
        assert region.get("k") is None
    finally:
        runtime.close()


DURATIONS = """\
[cache]
default_ttl = "5m"   # five minutes

[regions.users]
provider = "memory"
ttl = "1h30m"
stale_ttl = "30s"
l1 = { provider = "memory", ttl = "250ms" }
max_size = 100
"""


def test_save_keeps_the_duration_strings_the_user_wrote(tmp_path: Path) -> None:
    path = tmp_path / "app.toml"
    path.write_text(DURATIONS)
    config = load_config(path, environ={})
    assert config.regions["users"].ttl == 5400.0
    config.regions["users"].max_size = 200
    save_config(config)
    assert path.read_text() == DURATIONS.replace("max_size = 100", "max_size = 200")
    config = load_config(path, environ={})
    config.regions["users"].ttl = 120  # a changed value is written as seconds
    config.cache.default_ttl = 300  # the same value as "5m": not a change, kept as written
    save_config(config)
    assert path.read_text() == DURATIONS.replace("max_size = 100", "max_size = 200").replace('"1h30m"', "120")
    assert load_config(path, environ={}).regions["users"].ttl == 120.0


def test_a_file_provider_typed_by_the_environment_is_checked_strictly_as_that_type() -> None:
    text = '[providers.cache]\nport = "6379"\n'
    assert errors(text, environ={"CACHEKIT_PROVIDERS__CACHE__TYPE": "redis"}) == [
        (2, "providers.cache.port", "expected an integer, got string '6379' (a string: write 6379 without quotes)")
    ]
    assert errors(text, overrides={"providers": {"cache": {"type": "redis"}}})[0][:2] == (2, "providers.cache.port")
    config = parse_config('[providers.cache]\nport = 6379\n', environ={"CACHEKIT_PROVIDERS__CACHE__TYPE": "redis"})
    assert config.providers["cache"].type == "redis" and config.providers["cache"].port == 6379
