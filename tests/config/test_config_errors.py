"""Bad configs: every problem comes out as a ConfigError item with file, line, dotted path, and a
message that says what would be valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from cachekit.config import load_config, parse_config
from cachekit.errors import ConfigError, ConfigErrorItem

INVALID = Path(__file__).parent.parent / "data" / "configs" / "invalid"


def errors_of(name: str) -> list[ConfigErrorItem]:
    with pytest.raises(ConfigError) as info:
        load_config(INVALID / name, environ={})
    return info.value.errors


def where(items: list[ConfigErrorItem]) -> list[tuple[int | None, str]]:
    return [(item.line, item.path) for item in items]


# (file, [(line, path, words the message must contain)])
CASES = [
    ("malformed.toml", [(4, "", ["invalid TOML", "line 4", "column"])]),
    ("unknown_provider.toml", [
        (10, "regions.user-profiles.provider",
         ["unknown provider 'redsi'", "known: local, redis, memory, file, memcached", "did you mean 'redis'?"]),
    ]),
    ("unknown_provider_type.toml", [
        (2, "providers.cache.type", [
            "unknown provider type 'redsi'", "known: memory, file, redis, memcached",
            'driver = "pkg.mod:Class"', "cachekit.providers", "did you mean 'redis'?",
        ]),
    ]),
    ("negative_ttl.toml", [
        (3, "regions.sessions.ttl",
         ["must be greater than 0 seconds", "got -5", "omit it for the default or use forever"]),
    ]),
    ("zero_ttl.toml", [(2, "cache.default_ttl", ["must be greater than 0 seconds", "got 0"])]),
    ("rule_unknown_region.toml", [
        (13, "rules[1].regions[1]", ["unknown region 'order'", "known: users, default"]),
    ]),
    ("l1_on_redis.toml", [
        (7, "regions.user-profiles.l1.provider",
         ["L1 must be an in-process memory provider; 'redis' is redis"]),
    ]),
    ("duplicate_rule_names.toml", [
        (7, "rules[1].name", ["duplicate rule name 'flush-users'", "rules[0]"]),
    ]),
    ("typo_key.toml", [
        (3, "regions.users.tll", ["unknown key 'tll'", "did you mean 'ttl'?", "valid keys: provider, ttl"]),
    ]),
    ("dotted_and_inline.toml", [
        (2, "regions.users.serializer", ["invalid value 'yaml'", "expected one of: pickle, json, msgpack"]),
        (3, "providers.r.port", ["must be less than 65536", "got 70000"]),
    ]),
    ("bus_not_redis.toml", [(6, "bus.provider", ["needs a redis provider", "'local' is memory"])]),
    ("unknown_strategy.toml", [
        (8, "rules[1].strategy",
         ["unknown strategy 'time_basd'", "time_based, pattern_based, event_based", "did you mean 'time_based'?"]),
    ]),
    ("several_errors.toml", [
        (2, "cache.prefix", ["must be printable ASCII without ':' or whitespace"]),
        (3, "cache.default_provider", ["unknown provider 'locl'", "did you mean 'local'?"]),
        (7, "providers.local.max_size", ["must be greater than 0", "got 0"]),
        (12, "regions.users.serializer", ["invalid value 'xml'", "pickle, json, msgpack"]),
    ]),
    ("wrong_toml_types.toml", [
        (3, "cache.multi_level", ["expected true or false, got 0"]),
        (4, "cache.strict", ["expected true or false, got string 'yes'"]),
        (5, "cache.default_ttl", ["expected a number of seconds or a duration", "write 60 without quotes"]),
    ]),
    ("redis_key_on_memory.toml", [
        (3, "providers.cache.url", ["unknown key 'url' for a memory provider", 'no type is set, so type = "memory"']),
    ]),
]


@pytest.mark.parametrize(("name", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_config_reports_file_line_path_and_a_helpful_message(
    name: str, expected: list[tuple[int, str, list[str]]]
) -> None:
    items = errors_of(name)
    assert where(items) == [(line, path) for line, path, _ in expected]
    for item, (_, _, words) in zip(items, expected, strict=True):
        assert item.file == str(INVALID / name)
        for word in words:
            assert word in item.message, (word, item.message)


def test_every_invalid_example_is_covered_by_a_case() -> None:
    assert {p.name for p in INVALID.glob("*.toml")} == {name for name, _ in CASES}


def test_config_error_message_lists_every_item_as_file_line_path_message() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(INVALID / "several_errors.toml", environ={})
    text = str(info.value)
    assert text.startswith(f"4 error(s) in {INVALID / 'several_errors.toml'}")
    assert f"{INVALID / 'several_errors.toml'}:12: regions.users.serializer: invalid value 'xml'" in text


def test_missing_file_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(missing, environ={})
    (item,) = info.value.errors
    assert item.file == str(missing)
    assert item.message == f"no such file: {missing}"


def test_directory_instead_of_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path, environ={})


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "secret.toml"
    path.write_text("[cache]\n")
    path.chmod(0)
    try:
        if _can_read(path):  # running as root: permissions do not apply
            pytest.skip("root can read a file with mode 000")
        with pytest.raises(ConfigError, match="cannot read"):
            load_config(path, environ={})
    finally:
        path.chmod(0o644)


def _can_read(path: Path) -> bool:
    try:
        path.read_bytes()
    except PermissionError:
        return False
    return True


def test_non_utf8_file_reports_the_line_of_the_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[cache]\nprefix = "caf\xe9"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    (item,) = info.value.errors
    assert item.line == 2
    assert "not UTF-8" in item.message


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("a = 1\na = 2\n", 2, ["already exists"]),
        ("[regions.users\nttl = 1\n", 1, ["unexpected end of line"]),
        ('[cache]\nprefix = "unterminated\n', 2, ["invalid TOML"]),
    ],
)
def test_malformed_toml_gives_tomlkits_line_and_never_a_parser_exception(
    text: str, line: int, words: list[str]
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, file="x.toml", environ={})
    (item,) = info.value.errors
    assert (item.file, item.line, item.path) == ("x.toml", line, "")
    for word in words:
        assert word in item.message


def test_missing_required_key_points_at_the_rule_header() -> None:
    text = '[[rules]]\nname = "a"\nstrategy = "event_based"\npattern = "x"\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, environ={})
    (item,) = info.value.errors
    assert (item.line, item.path) == (1, "rules[0].events")
    assert item.message == "required key 'events' is missing"


def test_missing_strategy_lists_the_strategies() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config('[[rules]]\nname = "a"\n', environ={})
    (item,) = info.value.errors
    assert (item.line, item.path) == (1, "rules[0].strategy")
    assert "expected one of: time_based, pattern_based, event_based" in item.message


def test_unknown_top_level_section_is_reported_with_a_suggestion() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("[regoins.users]\nttl = 1\n", environ={})
    (item,) = info.value.errors
    assert (item.line, item.path) == (1, "regoins")
    assert "unknown section 'regoins'; did you mean 'regions'?" in item.message


def test_underscore_section_is_rejected_not_taken_as_a_settings_argument() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config('_env_prefix = "X_"\n', environ={"X_CACHE__PREFIX": "hijacked"})
    (item,) = info.value.errors
    assert (item.line, item.path) == (1, "_env_prefix")


def test_provider_without_type_says_it_defaulted_to_memory() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config('[providers.r]\nurl = "redis://x"\n', environ={})
    (item,) = info.value.errors
    assert (item.line, item.path) == (2, "providers.r.url")
    assert 'for a memory provider (no type is set, so type = "memory")' in item.message


def test_wrong_type_says_what_was_expected() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config('[regions.users]\nttl = "soon"\nlock = "yes please"\n', environ={})
    assert [(i.line, i.path) for i in info.value.errors] == [(2, "regions.users.ttl"), (3, "regions.users.lock")]
    assert info.value.errors[0].message == (
        'expected a number of seconds or a duration such as "90s", "5m", "1h30m", "2d", "250ms", got string \'soon\''
    )
    assert info.value.errors[1].message == "expected true or false, got string 'yes please'"


def test_custom_type_without_driver_or_entry_point_is_rejected_and_with_driver_accepted() -> None:
    with pytest.raises(ConfigError, match="a custom provider needs driver"):
        parse_config('[providers.x]\ntype = "custom"\n', environ={})
    config = parse_config('[providers.x]\ntype = "custom"\ndriver = "my.mod:Driver"\nhost = "h"\n', environ={})
    assert config.providers["x"].model_extra == {"host": "h"}


def test_custom_type_named_by_an_entry_point_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    from cachekit.config import checks

    monkeypatch.setattr(checks, "provider_entry_points", lambda: ["dynamo"])
    config = parse_config('[providers.d]\ntype = "dynamo"\ntable = "cache"\n', environ={})
    assert config.providers["d"].type == "dynamo"


def test_malformed_driver_path_is_rejected() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config('[providers.x]\ntype = "custom"\ndriver = "not a path"\n', environ={})
    (item,) = info.value.errors
    assert (item.line, item.path) == (3, "providers.x.driver")
    assert "package.module:ClassName" in item.message


def test_event_rule_that_invalidates_nothing_is_accepted_with_a_warning() -> None:
    from cachekit.config.checks import config_warnings

    config = parse_config('[[rules]]\nname = "a"\nstrategy = "event_based"\nevents = ["e"]\n', environ={})
    (item,) = config_warnings(config)
    assert (item.line, item.path) == (4, "rules[0].events")
    assert "invalidates nothing" in item.message
    runtime = config.compile()
    try:
        runtime.region().put("k", 1)
        assert runtime.emit("e").count == 0 and runtime.region().get("k") == 1  # invalidates nothing
    finally:
        runtime.close()
    flushing = parse_config('[[rules]]\nname = "a"\nstrategy = "event_based"\nevents = ["e"]\n'
                            'flush_regions = true\n', environ={})
    assert config_warnings(flushing) == []
    runtime = flushing.compile()
    try:
        runtime.region().put("k", 1)
        runtime.emit("e")
        assert runtime.region().get("k") is None  # flushing regions is explicit
    finally:
        runtime.close()


def test_default_region_must_be_declared_unless_it_is_default() -> None:
    parse_config('[cache]\ndefault_region = "default"\n', environ={})
    with pytest.raises(ConfigError) as info:
        parse_config('[cache]\ndefault_region = "user"\n[regions.users]\nttl = 1\n', environ={})
    (item,) = info.value.errors
    assert (item.line, item.path) == (2, "cache.default_region")
    assert "did you mean 'users'?" in item.message


@pytest.mark.parametrize("prefix", ["café", "a b", "a:b", "x" * 101])
def test_a_prefix_no_store_can_carry_is_a_config_error(prefix: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(f'[cache]\nprefix = "{prefix}"\n', file="p.toml", environ={})
    assert info.value.errors[0].path == "cache.prefix" and info.value.errors[0].line == 2


def test_an_empty_signing_key_is_a_config_error_not_silently_unsigned() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config('[providers.r]\ntype = "redis"\nsigning_key = ""\n', file="k.toml", environ={})
    item = info.value.errors[0]
    assert item.path == "providers.r.signing_key" and item.line == 3 and "signing_key is empty" in item.message
