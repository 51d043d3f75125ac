"""Whatever text it is given, parse_config returns a config or raises ConfigError, nothing else; every
problem it reports carries a line of the text (issue 12: a duplicate key used to come without one)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import tomlkit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cachekit.config import CacheConfig, parse_config
from cachekit.config.toml_lines import LineMap
from cachekit.errors import ConfigError

# Words the config understands, so that random documents often reach deep validation paths.
WORDS = [
    "cache", "providers", "regions", "rules", "bus", "http", "type", "memory", "file", "redis", "memcached",
    "custom", "driver", "provider", "ttl", "tll", "l1", "max_size", "strategy", "event_based", "time_based",
    "pattern_based", "name", "events", "pattern", "patterns", "tags", "regions", "url", "servers", "prefix",
    "default_region", "default_provider", "default_ttl", "enabled", "serializer", "json", "pickle", "token",
    "password", "signing_key", "channel", "lock", "forever", "stale_ttl", "_env_prefix", "a.b", "x y",
]

keys = st.one_of(st.sampled_from(WORDS), st.text(min_size=1, max_size=8))
scalars = st.one_of(
    st.sampled_from(WORDS),
    st.text(max_size=20),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.dates(min_value=dt.date(1, 1, 1)),
    st.datetimes(),
    st.times(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=25,
)
documents = st.dictionaries(keys, values, max_size=6)
sections = st.fixed_dictionaries(
    {},
    optional={
        "cache": st.dictionaries(keys, values, max_size=4),
        "providers": st.dictionaries(keys, st.dictionaries(keys, values, max_size=4), max_size=3),
        "regions": st.dictionaries(keys, st.dictionaries(keys, values, max_size=4), max_size=3),
        "rules": st.lists(st.dictionaries(keys, values, max_size=5), max_size=3),
        "bus": st.dictionaries(keys, values, max_size=3),
    },
)


def parse_or_config_error(text: str) -> None:
    try:
        config = parse_config(text, file="fuzz.toml", environ={})
    except ConfigError as exc:
        assert exc.errors, "a ConfigError always lists at least one problem"
        for item in exc.errors:
            assert item.file == "fuzz.toml"
            assert item.line is not None, f"no line: {item}\n--- text ---\n{text}"
            assert 1 <= item.line <= text.count("\n") + 1, f"line out of the text: {item}"
            assert isinstance(item.message, str) and item.message
    else:
        assert isinstance(config, CacheConfig)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_arbitrary_text_raises_nothing_but_config_error(text: str) -> None:
    parse_or_config_error(text)
    LineMap.from_text(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(documents, sections))
def test_arbitrary_toml_documents_raise_nothing_but_config_error(document: dict[str, Any]) -> None:
    parse_or_config_error(tomlkit.dumps(document))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sections, st.integers(min_value=0, max_value=400), st.text(max_size=5))
def test_damaged_toml_documents_raise_nothing_but_config_error(
    document: dict[str, Any], position: int, junk: str
) -> None:
    text = tomlkit.dumps(document)
    position %= len(text) + 1
    parse_or_config_error(text[:position] + junk + text[position:])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sections, st.integers(min_value=0, max_value=400), st.integers(min_value=0, max_value=400))
def test_documents_with_a_line_repeated_elsewhere_report_every_problem_with_a_line(
    document: dict[str, Any], source: int, target: int
) -> None:
    # a repeated key or table header: tomlkit's "Key ... already exists" comes without a place of its own
    lines = tomlkit.dumps(document).splitlines(keepends=True) or ["\n"]
    copied = lines[source % len(lines)]
    position = target % (len(lines) + 1)
    parse_or_config_error("".join([*lines[:position], copied, *lines[position:]]))
