"""Every example in the docs runs, and every config under configs/ is valid (and works).

- Each ```python block of the pages in ``DOC_FILES`` is executed on its own, on a
  fresh ``Cache.fake()``, in an empty working directory holding a copy of ``configs/``. Top-level
  ``await`` is allowed. A block preceded by ``<!-- no-test -->`` is skipped.
- Each ```toml block of those pages must be a valid config.
- Each ``configs/**/*.toml`` file must validate; the example configs for servers are also compiled
  against real servers (started by the fixtures) with the addresses overridden from the environment,
  the way an operator would deploy them.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from docblocks import ROOT, CodeBlock, as_params, extract_blocks, page_blocks, run_block

from cachekit import ConfigError, FakeClock
from cachekit.config.loader import load_config, parse_config
from cachekit.runtime.tier import SharedTier

DOC_FILES = ["README.md", "docs/facade.md", "docs/stats.md", "docs/notebook.md", "docs/testing.md",
             "docs/decorators.md", "docs/services.md", "docs/http.md", "docs/response-caching.md",
             "docs/locks.md", "docs/events.md"]


def doc_blocks(lang: str) -> list[Any]:
    return as_params(page_blocks(DOC_FILES, lang))


# -- the extractor ---------------------------------------------------------------------------------
def test_extractor_finds_blocks_with_their_language_line_and_no_test_marker() -> None:
    text = "# t\n\n```python\nx = 1\n```\n\n<!-- no-test -->\n\n```python\nserver()\n```\n```toml\na = 1\n```\n"
    blocks = extract_blocks(text, "t.md")
    assert [(b.lang, b.line, b.code, b.skip) for b in blocks] == [
        ("python", 3, "x = 1\n", False),
        ("python", 9, "server()\n", True),
        ("toml", 12, "a = 1\n", False),
    ]


@pytest.mark.parametrize("name", DOC_FILES)
def test_every_doc_page_has_executed_python_examples(name: str) -> None:
    blocks = [b for b in extract_blocks((ROOT / name).read_text(encoding="utf-8"), name) if b.lang == "python"]
    assert blocks and any(not b.skip for b in blocks)


def test_a_failing_example_fails_the_run() -> None:
    with pytest.raises(AssertionError):
        run_block("from cachekit import Cache\nCache.put('k', 1)\nassert Cache.get('k') == 2\n", "<t>")
    with pytest.raises(AssertionError):
        run_block("import asyncio\nawait asyncio.sleep(0)\nassert False\n", "<t>")


# -- the examples ----------------------------------------------------------------------------------
@pytest.mark.parametrize("block", doc_blocks("python"))
def test_python_example_runs(block: CodeBlock, docs_sandbox: Path) -> None:
    with warnings.catch_warnings():  # the HTTP page's TestClient, on some httpx versions
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        run_block(block.code, str(ROOT / block.file), block.line + 1)


@pytest.mark.parametrize("block", doc_blocks("toml"))
def test_toml_example_is_a_valid_config(block: CodeBlock) -> None:
    config = parse_config(block.code, file=block.id, environ={})
    assert config.cache.prefix


# -- configs/ --------------------------------------------------------------------------------------
CONFIG_FILES = sorted((ROOT / "configs").rglob("*.toml"))


def test_configs_folder_has_the_default_and_the_examples() -> None:
    names = {p.relative_to(ROOT / "configs").as_posix() for p in CONFIG_FILES}
    assert {"default.toml", "examples/redis.toml", "examples/redis-cluster.toml", "examples/redis-sentinel.toml",
            "examples/memcached.toml", "examples/multi-level.toml", "examples/invalidation.toml"} <= names


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_config_file_validates_and_compiles_offline(path: Path) -> None:
    try:
        config = load_config(path, environ={})
    except ConfigError as exc:  # show every problem, not only the first
        pytest.fail(str(exc))
    runtime = config.compile()
    try:
        regions = runtime.regions()  # builds every declared region; shared clients connect lazily
        assert set(config.regions) <= set(regions)
    finally:
        runtime.close()


def test_commented_default_config_equals_the_embedded_one() -> None:
    from importlib import resources

    embedded = resources.files("cachekit").joinpath("default.toml").read_text(encoding="utf-8")
    commented = load_config(ROOT / "configs" / "default.toml", environ={})
    assert commented.model_dump() == parse_config(embedded, environ={}).model_dump()


def test_invalidation_example_rules_behave_as_commented() -> None:
    clock = FakeClock()
    runtime = load_config(ROOT / "configs/examples/invalidation.toml", environ={}).compile(clock=clock)
    try:
        users, search, default = runtime.region("users"), runtime.region("search"), runtime.region("default")
        default.put("token:abc", "t")
        default.put("country:fr", "France")
        default.put("page", "p")
        users.put("country:de", "Germany")
        clock.advance(31)
        assert not default.has("token:abc")  # time_based: 30 s
        assert default.has("page")  # the region's 300 s
        clock.advance(600)
        assert default.get("country:fr") == "France"  # time_based: a day, in region default only
        assert not default.has("page")
        assert not users.has("country:de")  # the users region's 600 s: the rule is not for it

        users.put("user:42", "Ada")
        users.put("profile:42", "bio")
        users.put("user:7", "Grace")
        users.tags(["user-lists"]).put("active-users", [42, 7])
        runtime.emit("user_updated", user_id=42)
        assert not users.has("user:42") and not users.has("profile:42") and not users.has("active-users")
        assert users.get("user:7") == "Grace"

        search.put("search:cats", [1])
        search.put("other", 2)
        runtime.invalidate(pattern="search:*", region="search")
        assert not search.has("search:cats") and search.get("other") == 2
        runtime.emit("search_reindexed")
        assert not search.has("other")
    finally:
        runtime.close()


# -- the server examples, on real servers ---------------------------------------------------------
def _redis_env(request: pytest.FixtureRequest) -> dict[str, str]:
    server = request.getfixturevalue("redis_server")
    return {"CACHEKIT_PROVIDERS__REDIS__URL": server.url}


def _cluster_env(request: pytest.FixtureRequest) -> dict[str, str]:
    cluster = request.getfixturevalue("redis_cluster")
    return {"CACHEKIT_PROVIDERS__CLUSTER__STARTUP_NODES": json.dumps(cluster.startup_nodes)}


def _sentinel_env(request: pytest.FixtureRequest) -> dict[str, str]:
    sentinel = request.getfixturevalue("redis_sentinel")
    return {"CACHEKIT_PROVIDERS__REDIS__SENTINEL": json.dumps(sentinel.sentinels)}


def _memcached_env(request: pytest.FixtureRequest) -> dict[str, str]:
    pool = request.getfixturevalue("memcached_pool")
    return {"CACHEKIT_PROVIDERS__MC__SERVERS": json.dumps(pool.servers)}


SERVER_EXAMPLES = [
    pytest.param("redis.toml", _redis_env, "user-profiles", id="redis"),
    pytest.param("redis-cluster.toml", _cluster_env, "catalog", id="redis-cluster"),
    pytest.param("redis-sentinel.toml", _sentinel_env, "invoices", id="redis-sentinel"),
    pytest.param("memcached.toml", _memcached_env, "pages", id="memcached"),
    pytest.param("multi-level.toml", _redis_env, "user-profiles", id="multi-level"),
]


@pytest.mark.parametrize(("name", "environment", "region_name"), SERVER_EXAMPLES)
def test_server_example_config_works_against_a_real_server(
    name: str, environment: Any, region_name: str, request: pytest.FixtureRequest
) -> None:
    environ = environment(request)
    config = load_config(ROOT / "configs" / "examples" / name, environ=environ)
    runtime = config.compile()
    try:
        region = runtime.region(region_name)
        assert isinstance(region.l2, SharedTier)  # really on the server, not a fallback
        calls: list[int] = []
        for _ in range(3):
            value = region.remember("item:1", 60, lambda: calls.append(1) or {"id": 1})
        assert value == {"id": 1} and calls == [1]
        region.tags(["items"]).put("item:2", "two")
        region.tags(["items"]).flush()
        assert region.get("item:2") is None and region.get("item:1") == {"id": 1}
        assert region.increment("hits", 2) == 2
        assert region.stats.errors == 0
    finally:
        runtime.close()
