"""docs/invalidation.md and docs/multi-level.md: every example runs, and the pages say what the code does.

- Each ```python block runs on its own (``run_block``) in the ``docs_sandbox`` fixture (conftest.py): an
  empty working directory, no ``CACHEKIT_`` variables, a fresh ``Cache.fake()``. A block that declares
  ``[providers.redis]`` or ``[providers.mc]`` gets a real server from the fixtures, reached through
  ``CACHEKIT_PROVIDERS__REDIS__URL`` / ``CACHEKIT_PROVIDERS__MC__SERVERS``, the way an operator overrides a
  deployed config. A block preceded by ``<!-- no-test -->`` is skipped.
- Each ```toml block is a valid config.
- The links between the pages resolve, the bus latencies quoted match docs/benchmarks.md, and the claims
  that an example cannot show (a bus that comes back empties every L1) are tested here.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from docblocks import CodeBlock, as_params, page_blocks, run_block

from cachekit import CacheError, FakeClock
from cachekit.config import parse_config

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("docs/invalidation.md", "docs/multi-level.md")
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _page_blocks(lang: str) -> list[CodeBlock]:
    return page_blocks(PAGES, lang)


def _params(lang: str) -> list[Any]:
    return as_params(_page_blocks(lang))


def _point_at_test_servers(code: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Start the servers a block's config declares and point the config at them through the environment."""
    if "[providers.redis]" in code:
        monkeypatch.setenv("CACHEKIT_PROVIDERS__REDIS__URL", request.getfixturevalue("redis_server").url)
    if "[providers.mc]" in code:
        server = request.getfixturevalue("memcached_server")
        monkeypatch.setenv("CACHEKIT_PROVIDERS__MC__SERVERS", json.dumps([server.address]))


# -- the examples ----------------------------------------------------------------------------------------
@pytest.mark.usefixtures("docs_sandbox")
@pytest.mark.parametrize("block", _params("python"))
def test_python_example_runs(block: CodeBlock, request: pytest.FixtureRequest,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    _point_at_test_servers(block.code, request, monkeypatch)
    run_block(block.code, str(ROOT / block.file), block.line + 1)


@pytest.mark.parametrize("block", _params("toml"))
def test_toml_example_is_a_valid_config(block: CodeBlock) -> None:
    config = parse_config(block.code, file=block.id, environ={})
    assert config.regions or config.rules  # every snippet declares something


@pytest.mark.parametrize("name", PAGES)
def test_page_has_executed_examples_that_assert(name: str) -> None:
    blocks = [b for b in _page_blocks("python") if b.file == name]
    assert len(blocks) >= 5
    assert not any(b.skip for b in blocks)  # everything on these pages runs
    assert all("assert " in b.code for b in blocks)  # and proves what it shows


def test_example_servers_are_really_used() -> None:
    """The blocks that need a server name the provider the test overrides; none silently runs offline."""
    codes = [b.code for b in _page_blocks("python")]
    redis_blocks = [c for c in codes if "[providers.redis]" in c]
    assert len(redis_blocks) >= 3 and all("redis://localhost:6379/0" in c for c in redis_blocks)
    assert any("[providers.mc]" in c and 'type = "memcached"' in c for c in codes)


def test_the_override_mechanism_reaches_the_examples_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHEKIT_PROVIDERS__REDIS__URL", "redis://example:1/0")
    config = parse_config('[providers.redis]\ntype = "redis"\nurl = "redis://localhost:6379/0"\n')
    assert config.providers["redis"].url.get_secret_value() == "redis://example:1/0"  # type: ignore[union-attr]


# -- the pages fit in the docs ---------------------------------------------------------------------------
def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)  # headings only outside code
    return {_slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, flags=re.M)}


@pytest.mark.parametrize("name", PAGES)
def test_links_and_anchors_resolve(name: str) -> None:
    page = ROOT / name
    links = _LINK.findall(page.read_text(encoding="utf-8"))
    assert links
    for link in links:
        if link.startswith(("http://", "https://")):
            continue
        target_text, _, anchor = link.partition("#")
        target = (page.parent / target_text).resolve() if target_text else page
        assert target.exists(), f"{name}: broken link {link}"
        if anchor:
            assert anchor in _anchors(target), f"{name}: no heading for #{anchor} in {target.name}"


def test_pages_are_in_the_docs_index() -> None:
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    for name in PAGES:
        assert f"]({Path(name).name})" in index


def test_bus_latencies_quoted_match_the_benchmarks_page() -> None:
    bench = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    section = bench.split("### Bus:", 1)[1]
    page = (ROOT / "docs" / "multi-level.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `put\(\)` (start|return) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|", section,
                      flags=re.M)
    assert [r[0] for r in rows] == ["start", "return"]
    for moment, p50, p90, p99, worst in rows:
        quoted = f"| `put()` {moment} | {p50} ms | {p90} ms | {p99} ms | {worst} ms |"
        assert quoted in page, f"multi-level.md should quote: {quoted}"


# -- claims the examples cannot show ---------------------------------------------------------------------
def test_a_bus_that_is_down_bypasses_every_l1_and_empties_them_when_whole_again(
        redis_server: Any, tmp_path: Path) -> None:
    """multi-level.md: while the bus is down L1 reads go to L2; whole again, the bus empties every L1."""
    runtime = parse_config(f"""
[providers.disk]
type = "file"
path = "{(tmp_path / "l2").as_posix()}"

[providers.redis]
type = "redis"
url = "{redis_server.url}"
retries = 0
connect_timeout = 0.2
socket_timeout = 0.2

[regions.profiles]
provider = "disk"
l1 = {{ provider = "memory", ttl = 300 }}

[bus]
enabled = true
provider = "redis"
""", environ={}).compile()
    try:
        region = runtime.region("profiles")
        assert runtime.bus.wait_ready()
        region.put("k", "v")
        assert region.get("k") == "v" and region.stats.l1_hits == 1  # served by L1
        redis_server.stop()
        deadline = time.monotonic() + 10
        while not runtime.bus.down and time.monotonic() < deadline:
            time.sleep(0.02)
        assert runtime.bus.down
        assert not runtime.bus.whole and runtime.bus.gaps == 1
        assert region.get("k") == "v" and region.stats.l1_hits == 1  # read from L2: L1 is bypassed
        redis_server.start()
        deadline = time.monotonic() + 15
        while runtime.bus.down and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not runtime.bus.down and runtime.bus.whole and runtime.bus.gaps == 1
        assert region.get("k") == "v"
        assert region.stats.l1_hits == 1  # read from L2: being whole again emptied the L1
        assert region.get("k") == "v" and region.stats.l1_hits == 2  # and L1 serves again
    finally:
        runtime.close()


def test_missing_tag_template_parameter_raises_cache_error_and_changes_nothing() -> None:
    """invalidation.md: every template is filled before anything is invalidated."""
    runtime = parse_config("""
[[rules]]
name = "first"
strategy = "event_based"
events = ["e"]
pattern = "user:{user_id}"

[[rules]]
name = "r"
strategy = "event_based"
events = ["e"]
tags = ["orders-of-{order_id}"]
""", environ={}).compile(clock=FakeClock())
    try:
        runtime.region().put("user:1", "Ada")
        with pytest.raises(CacheError, match=re.escape("tag 'orders-of-{order_id}' needs parameter 'order_id'")):
            runtime.emit("e", user_id=1)
        assert runtime.region().get("user:1") == "Ada"  # the first rule did not run either
    finally:
        runtime.close()


def test_lock_is_a_no_op_on_an_in_process_region() -> None:
    """multi-level.md: on a memory region `lock` takes no lock in any store: single flight covers it."""
    runtime = parse_config("[regions.reports]\nlock = true\n", environ={}).compile(clock=FakeClock())
    try:
        region = runtime.region("reports")
        assert region.remember("k", None, lambda: 1) == 1
        assert region.keys("*") == ["k"]  # no __lock__ key was ever written next to it
    finally:
        runtime.close()
