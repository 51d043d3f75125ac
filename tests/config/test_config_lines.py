"""Every config problem has a line: malformed TOML and duplicate keys (with the column and the offending
line shown, secrets masked), and names the runtime could not use, refused when validated."""

from __future__ import annotations

import re

import pytest

from cachekit.config import loader as loader_module
from cachekit.config import parse_config, validate_config
from cachekit.errors import ConfigError


def only_problem(text: str):  # -> ConfigErrorItem
    with pytest.raises(ConfigError) as info:
        parse_config(text, file="app.toml", environ={})
    (item,) = info.value.errors
    assert item.file == "app.toml"
    return item


@pytest.mark.parametrize(
    ("text", "line", "shown"),
    [
        ('[regions.users]\nttl = 60\nttl = 90\n', 3, "ttl = 90"),  # a key twice in one table
        ('[regions.users]\nl1 = { provider = "memory", ttl = 1, ttl = 2 }\n', 2, 'l1 = { provider'),
        ('[cache]\nprefix = "a"\n\n[cache]\nprefix = "b"\n', 4, "[cache]"),  # a table twice
        ('[regions]\nusers.ttl = 60\n\n[regions.users]\nttl = 90\n', 4, "[regions.users]"),
        ('[regions.users]\nttl = 60\n\n[regions.users]\nmax_size = 5\n', 4, "[regions.users]"),
        ('regions.users.ttl = 1\nregions.users.ttl = 2\n', 2, "regions.users.ttl = 2"),
        ('[cache]\nprefix = \n', 2, "prefix ="),
        ('[regions.users\nttl = 1\n', 1, "[regions.users"),
    ],
)
def test_malformed_toml_and_duplicate_keys_name_line_column_and_the_line(
    text: str, line: int, shown: str
) -> None:
    item = only_problem(text)
    assert item.line == line
    place = re.search(r"\(line (\d+), column (\d+)\): (.*)$", item.message)
    assert place is not None, item.message
    assert int(place[1]) == line
    assert 1 <= int(place[2]) <= len(text.splitlines()[line - 1]) + 1
    assert item.message.startswith("invalid TOML: ")
    assert place[3].startswith(shown)


def test_the_duplicate_key_message_names_the_key() -> None:
    item = only_problem('[providers.redis]\ntype = "redis"\ntimeout = 1\ntype = "redis"\n')
    assert item.line == 4 and 'Key "type" already exists' in item.message


@pytest.mark.parametrize(
    "text",
    [
        '[providers.redis]\ntype = "redis"\npassword = "hunter22\n',  # unterminated: the secret is on the line
        '[providers.redis]\ntype = "redis"\npassword = "hunter22"\npassword = "hunter22"\n',
        '[providers.redis]\ntype = "redis"\nurl = "redis://app:hunter22@db:6379/0"\nurl = "x"\n',
        '[providers.redis]\ntype = "redis"\nurl = "redis://app:hunter22@db:6379/0" x\n',
    ],
)
def test_the_line_shown_never_shows_a_secret(text: str) -> None:
    item = only_problem(text)
    assert item.line is not None
    assert "hunter22" not in item.message and "hunter22" not in str(item)


def test_a_long_line_is_shortened() -> None:
    item = only_problem('[cache]\nprefix = "' + "x" * 300 + '" junk\n')
    assert item.line == 2 and item.message.endswith("...") and len(item.message) < 250


def test_without_a_strict_parser_the_place_comes_from_the_first_failing_prefix() -> None:
    # the fallback of Python 3.10 without tomli: the shortest prefix that tomlkit rejects the same way
    text = '[cache]\nprefix = "a"\n\n[regions.users]\nttl = 1\n# a comment\nttl = 2\n\n[regions.other]\n'
    assert loader_module._first_failing_prefix(text, 'Key "ttl" already exists') == (7, 1)
    assert loader_module._first_failing_prefix(text, "some other reason") is None


def test_a_document_only_tomlkit_rejects_gets_the_line_of_the_first_prefix_it_rejects() -> None:
    # valid TOML (tomllib reads it) that tomlkit cannot merge when unwrapping: found by the fuzz test
    text = '[regions.a]\nttl = 1\n\n[[regions.a.events]]\nx = 1\n\n[[other.events]]\n\n[regions.a.events.bus]\n'
    item = only_problem(text)
    assert item.line == 9
    assert item.message.endswith("(line 9, column 1): [regions.a.events.bus]")


# -- names checked when validated -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "path", "line", "words"),
    [
        ('[providers.""]\ntype = "memory"\n', 'providers.""', 1, ["non-empty"]),
        ('[cache]\nprefix = "app"\n\n[providers."disk/2"]\ntype = "memory"\n', 'providers."disk/2"', 4, ["'/'"]),
        ('[providers."a\\u0000json"]\ntype = "memory"\n', 'providers."a\\u0000json"', 1, ["control character"]),
        ('[[rules]]\nname = "evil\\nINFO forged log line"\nstrategy = "pattern_based"\npattern = "a*"\n',
         "rules[0].name", 2, ["control character"]),
        ('[regions.users]\n\n[[rules]]\nname = "r"\nstrategy = "event_based"\nevents = ["saved"]\n'
         'tags = ["users", ""]\n', "rules[0].tags[1]", 7, ["tag name", "non-empty"]),
        ('[[rules]]\nname = "r"\nstrategy = "event_based"\nevents = ["saved", ""]\ntags = ["t"]\n',
         "rules[0].events[1]", 4, ["event name", "non-empty"]),
        ('[regions."a\\tb"]\nttl = 1\n', 'regions."a\\tb"', 1, ["control character"]),
    ],
)
def test_names_that_cannot_work_are_refused_with_path_and_line(
    text: str, path: str, line: int, words: list[str]
) -> None:
    item = only_problem(text)
    assert (item.path, item.line) == (path, line)
    for word in words:
        assert word in item.message


def test_a_rule_added_to_a_live_config_with_a_bad_name_is_reported_by_validate_config() -> None:
    config = parse_config('[regions.users]\nttl = 60\n', environ={})
    assert validate_config(config) == []
    config.providers = {"bad/name": {"type": "memory"}}  # type: ignore[assignment]
    problems = validate_config(config)
    assert [p.path for p in problems] == ['providers."bad/name"']


def test_names_that_work_stay_valid() -> None:
    config = parse_config(
        '[providers."local-2"]\ntype = "memory"\n\n[regions."user profiles"]\nprovider = "local-2"\n\n'
        '[[rules]]\nname = "user:update rule"\nstrategy = "event_based"\nevents = ["user.updated"]\n'
        'tags = ["user:{id}", "Ünïcode"]\n',
        environ={},
    )
    assert config.rules[0].name == "user:update rule"
