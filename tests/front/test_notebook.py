"""The notebook tuning panel edits the live runtime and saves back to TOML."""

from __future__ import annotations

from pathlib import Path

import pytest
from servers import need_module

need_module("ipywidgets")

from cachekit import load  # noqa: E402
from cachekit.notebook import TuningPanel  # noqa: E402

CONFIG = """\
# tuned in a notebook
[cache]
prefix = "nb"

[providers.local]
type = "memory"   # in-process

[regions.default]
provider = "local"

[regions.users]
provider = "local"
ttl = 600  # ten minutes
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "cachekit.toml"
    path.write_text(CONFIG)
    return path


def test_changing_the_ttl_widget_changes_the_live_region(config: Path) -> None:
    rt = load(config)
    panel = TuningPanel(rt)
    assert panel.region_controls["users"].ttl.value == 600
    panel.region_controls["users"].ttl.value = 42
    assert rt.region("users").policy.ttl == 42
    assert rt.config.regions["users"].ttl == 42
    assert "ttl = 42" in panel.status.value


def test_an_invalid_ttl_is_refused_and_the_widget_restored(config: Path) -> None:
    rt = load(config)
    panel = TuningPanel(rt)
    panel.region_controls["users"].ttl.value = 0
    assert rt.region("users").policy.ttl == 600
    assert panel.region_controls["users"].ttl.value == 600
    assert "greater than 0" in panel.status.value


def test_disable_and_max_size(config: Path) -> None:
    rt = load(config)
    panel = TuningPanel(rt)
    controls = panel.region_controls["users"]
    controls.enabled.value = False
    assert rt.region("users").put("k", 1) is False
    controls.enabled.value = True
    controls.max_size.value = 2
    users = rt.region("users")
    for i in range(3):
        users.put(f"k{i}", i)
    assert users.get("k0") is None and users.get("k2") == 2


def test_preview_then_invalidate_by_pattern(config: Path) -> None:
    rt = load(config)
    panel = TuningPanel(rt)
    for i in range(3):
        rt.region("users").put(f"user:{i}", i)
    panel.pattern.value = "user:*"
    panel.target.value = "users"
    panel.preview.click()
    assert "would remove" in panel.result.value and "3 key(s)" in panel.result.value
    assert rt.region("users").get("user:1") == 1
    panel.invalidate.click()
    assert rt.region("users").get("user:1") is None


def test_save_writes_the_tuned_ttl_and_keeps_comments(config: Path) -> None:
    rt = load(config)
    panel = TuningPanel(rt)
    panel.region_controls["users"].ttl.value = 90
    panel.save.click()
    text = config.read_text()
    assert "ttl = 90  # ten minutes" in text
    assert "# tuned in a notebook" in text and "# in-process" in text
    assert load(config).region("users").policy.ttl == 90


def test_stats_table_shows_regions(config: Path) -> None:
    rt = load(config)
    rt.region("users").put("a", 1)
    rt.region("users").get("a")
    panel = TuningPanel(rt)
    assert "<td class='txt'>users</td>" in panel.table.value
    assert "100.0 %" in panel.region_controls["users"].stats.value
