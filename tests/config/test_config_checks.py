"""validate_config: shape and cross-references of a live config, after code edited it."""

from __future__ import annotations

from typing import Any

import pytest

from cachekit.config import CacheConfig, EventBasedRule, RegionConfig, parse_config, validate_config

TEXT = """\
[providers.local]
type = "memory"

[providers.shared]
type = "redis"

[regions.users]
provider = "shared"
ttl = 60
"""


def live() -> CacheConfig:
    return parse_config(TEXT, file="app.toml", environ={})


def test_a_valid_config_has_no_problems() -> None:
    assert validate_config(live()) == []


def test_built_in_provider_names_need_no_declaration() -> None:
    config = CacheConfig(regions={name: {"provider": name} for name in ("memory", "file", "redis", "memcached")})
    assert validate_config(config) == []


def test_edit_to_an_unknown_provider_is_found_with_the_line_of_the_kept_document() -> None:
    config = live()
    config.regions["users"].provider = "sharde"
    (item,) = validate_config(config)
    assert (item.file, item.line, item.path) == ("app.toml", 8, "regions.users.provider")
    assert item.message == (
        "unknown provider 'sharde'; known: local, shared, memory, file, redis, memcached; did you mean 'shared'?"
    )


def test_new_region_without_document_line_points_at_the_regions_table() -> None:
    config = live()
    config.regions["carts"] = RegionConfig(provider="nope")
    (item,) = validate_config(config)
    assert (item.line, item.path) == (7, "regions.carts.provider")


def test_a_raw_dict_put_into_the_config_is_validated_too() -> None:
    config = live()
    regions: dict[str, Any] = config.regions
    regions["bad"] = {"ttl": -1}
    (item,) = validate_config(config)
    assert item.path == "regions.bad.ttl"
    assert "must be greater than 0 seconds" in item.message


def test_appending_to_a_list_field_is_checked() -> None:
    config = live()
    config.rules.append(EventBasedRule(name="r", events=["e"], pattern="user:*", regions=["users"]))
    assert validate_config(config) == []
    config.rules[0].regions.append("user")
    (item,) = validate_config(config)
    assert item.path == "rules[0].regions[1]"
    assert "unknown region 'user'" in item.message and "did you mean 'users'?" in item.message


def test_assignment_of_a_bad_value_is_refused_by_pydantic_at_once() -> None:
    config = live()
    with pytest.raises(ValueError, match="greater than 0"):
        config.regions["users"].ttl = 0


@pytest.mark.parametrize(
    ("edit", "path", "words"),
    [
        (lambda c: setattr(c.bus, "provider", "local"), "bus.provider", "'local' is memory"),
        (lambda c: setattr(c.bus, "provider", "nope"), "bus.provider", "unknown provider 'nope'"),
        (lambda c: setattr(c.cache, "default_provider", "nope"), "cache.default_provider", "unknown provider"),
        (lambda c: setattr(c.regions["users"], "l1", {"provider": "shared"}), "regions.users.l1.provider",
         "L1 must be an in-process memory provider; 'shared' is redis"),
    ],
)
def test_cross_reference_problems_after_edits(edit: Any, path: str, words: str) -> None:
    config = live()
    edit(config)
    (item,) = validate_config(config)
    assert item.path == path
    assert words in item.message


def test_duplicate_rule_names_after_append() -> None:
    config = live()
    config.rules.append(EventBasedRule(name="r", events=["e"], tags=["t"]))
    config.rules.append(EventBasedRule(name="r", events=["f"], tags=["t"]))
    (item,) = validate_config(config)
    assert item.path == "rules[1].name"
