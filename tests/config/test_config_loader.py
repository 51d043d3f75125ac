"""Loading: the document is kept, and the line of any dotted path is found in the TOML text."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomlkit

from cachekit.config import CacheConfig, load_config, parse_config
from cachekit.config.toml_lines import LineMap, format_path

VALID = Path(__file__).parent.parent / "data" / "configs" / "valid"


def test_load_config_keeps_the_document_and_the_resolved_path() -> None:
    config = load_config(VALID / "full.toml", environ={})
    assert config.source_path == (VALID / "full.toml").resolve()
    assert config.document is not None
    assert config.document.as_string() == (VALID / "full.toml").read_text()
    assert config.regions["user-profiles"].l1 is not None
    assert config.regions["user-profiles"].l1.provider == "local"
    assert [rule.name for rule in config.rules] == ["user-update-rule", "short-sessions"]


def test_parse_config_has_no_source_path_but_keeps_the_document() -> None:
    config = parse_config("[regions.users]\nttl = 60\n", environ={})
    assert config.source_path is None
    assert isinstance(config.document, tomlkit.TOMLDocument)
    assert config.regions["users"].ttl == 60.0


def test_config_built_in_code_has_no_document() -> None:
    config = CacheConfig(regions={"users": {"ttl": 5}})
    assert config.document is None and config.source_path is None


def test_empty_text_gives_the_defaults() -> None:
    config = parse_config("", environ={})
    assert config.cache.prefix == "cachekit" and config.providers == {} and config.rules == []


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        (("rules", 1, "events"), "rules[1].events"),
        (("regions", "user-profiles", "ttl"), "regions.user-profiles.ttl"),
        (("regions", "a.b", "ttl"), 'regions."a.b".ttl'),
        (("providers", "mc", "servers", 0), "providers.mc.servers[0]"),
        ((), ""),
    ],
)
def test_paths_use_dots_for_keys_and_brackets_for_indices(path: tuple[str | int, ...], shown: str) -> None:
    assert format_path(path) == shown


TEXT = '''\
# header comment
title = "x"
[cache]
prefix = "a"   # trailing
regions.dotted.ttl = 5

[regions.users]
ttl = 60
l1 = { provider = "local", ttl = 3 }
note = """
fake = 1
[fake.header]
"""
after = 1

[[rules]]
name = "a"
events = [
  "one",
  "two",
]

[rules.extra]
x = 1

[[rules]]
name = "b"
"quoted.key" = 2
'literal' = 3

[providers.r]
servers = ["a", "b"]
'''


@pytest.mark.parametrize(
    ("path", "line"),
    [
        (("title",), 2),
        (("cache",), 3),
        (("cache", "prefix"), 4),
        (("cache", "regions", "dotted", "ttl"), 5),
        (("regions", "users"), 7),
        (("regions",), 7),
        (("regions", "users", "ttl"), 8),
        (("regions", "users", "l1"), 9),
        (("regions", "users", "l1", "ttl"), 9),
        (("regions", "users", "note"), 10),
        (("regions", "users", "after"), 14),
        (("rules",), 16),
        (("rules", 0), 16),
        (("rules", 0, "name"), 17),
        (("rules", 0, "events"), 18),
        (("rules", 0, "events", 1), 20),
        (("rules", 0, "extra", "x"), 24),
        (("rules", 1), 26),
        (("rules", 1, "quoted.key"), 28),
        (("rules", 1, "literal"), 29),
        (("providers", "r", "servers", 1), 32),
    ],
)
def test_line_map_finds_headers_keys_dotted_keys_inline_tables_and_array_elements(
    path: tuple[str | int, ...], line: int
) -> None:
    lines = LineMap.from_text(TEXT)
    assert lines.has(path)
    assert lines.line_of(path) == line


def test_line_map_ignores_lookalikes_inside_multiline_strings() -> None:
    lines = LineMap.from_text(TEXT)
    assert not lines.has(("fake",))
    assert not lines.has(("regions", "users", "fake"))


@pytest.mark.parametrize(
    ("path", "line"),
    [
        (("regions", "users", "provider"), 7),  # absent key: its table
        (("rules", 1, "events"), 26),  # absent key of the second [[rules]]
        (("rules", 5, "name"), 16),  # absent element: the array
        (("nowhere", "at", "all"), None),
    ],
)
def test_line_map_falls_back_to_the_nearest_enclosing_line(path: tuple[str | int, ...], line: int | None) -> None:
    assert LineMap.from_text(TEXT).line_of(path) == line


def test_line_map_counts_crlf_lines() -> None:
    lines = LineMap.from_text("[cache]\r\nprefix = 'a'\r\n\r\n[regions.x]\r\nttl = 1\r\n")
    assert lines.line_of(("regions", "x", "ttl")) == 5


def test_line_map_never_raises_on_garbage() -> None:
    for text in ["[[[", "a = {", '"unterminated', "[a.'b", "x = [1, {y = ", "\\"]:
        LineMap.from_text(text).line_of(("a",))
