"""Input that must not grow memory or reach across namespaces: region names, tags, generations."""

from __future__ import annotations

from typing import Any

import pytest

from cachekit import CacheConfig, CacheError
from cachekit.config import parse_config
from cachekit.errors import ConfigError


# -- names that cannot be namespaced ------------------------------------------------------------
@pytest.mark.parametrize(("name", "why"), [("a:b", "':'"), ("__x", "'__'"), ("", "non-empty")])
def test_declared_region_names_that_cannot_be_namespaced_are_rejected_at_validation(name: str, why: str) -> None:
    text = f'[cache]\nprefix = "app"\n\n[regions."{name}"]\nttl = 60\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, file="app.toml", environ={})
    item = info.value.errors[0]
    assert item.path.startswith("regions.") and item.line == 4 and why in item.message


def test_a_default_region_that_cannot_be_namespaced_is_rejected_at_validation() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config('[cache]\ndefault_region = "a:b"\n', file="app.toml", environ={})
    assert [(e.path, e.line) for e in info.value.errors] == [("cache.default_region", 2)]


@pytest.mark.parametrize("name", ["a:b", "__gen__", "", 3])
def test_adhoc_region_names_that_cannot_be_namespaced_raise_a_clear_error(name: Any) -> None:
    rt = CacheConfig().compile()
    try:
        with pytest.raises(CacheError, match="invalid region name"):
            rt.region(name)
    finally:
        rt.close()


def test_a_prefix_with_glob_characters_never_lists_or_flushes_another_prefix(redis_server: Any) -> None:
    def runtime(prefix: str) -> Any:
        return CacheConfig(cache={"prefix": prefix},
                           providers={"redis": {"type": "redis", "url": redis_server.url}},
                           regions={"default": {"provider": "redis"}}).compile()

    mine, other = runtime("a?"), runtime("ab")
    try:
        other.region().put("k", "theirs")
        mine.region().put("k", "mine")
        assert mine.region().keys() == ["k"]
        assert mine.region().flush()
        assert other.region().get("k") == "theirs"
        assert redis_server.client().exists("ab:default:k")
    finally:
        mine.close()
        other.close()
