"""TuningPanel v2: every control drives the runtime, the widgets follow the live config, what-if, safe save."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from servers import need_module

need_module("ipywidgets")
need_module("pandas")

import tomlkit  # noqa: E402

from cachekit import Trace, load  # noqa: E402
from cachekit.notebook import TuningPanel, capture_trace, fmt_count, fmt_ratio, stats_table  # noqa: E402
from cachekit.services import CacheRegionService  # noqa: E402

CONFIG = """\
# tuned in a notebook
[cache]
prefix = "nb"

[providers.local]
type = "memory"   # in-process
max_size = 5000

[regions.users]
provider = "local"
ttl = 600  # ten minutes
stale_ttl = 5

[regions.users.l1]
ttl = 30

[regions.products]
provider = "local"
max_size = 200

# rules below
[[rules]]
name = "short-sessions"
strategy = "time_based"
pattern = "session:*"
ttl = 60

[[rules]]
name = "user-changed"
strategy = "event_based"
events = ["user.updated"]
pattern = "user:{user_id}"
regions = ["users"]
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "cachekit.toml"
    path.write_text(CONFIG)
    return path


def test_region_controls_show_effective_values_and_drive_l1_and_stale_ttl(config: Path) -> None:
    rt = load(config)
    panel = TuningPanel(rt)
    users = panel.region_controls["users"]
    assert users.max_size.value == 5000          # the provider's bound, never 0
    assert panel.region_controls["products"].max_size.value == 200
    assert users.l1_ttl.value == 30 and not users.l1_ttl.disabled
    assert panel.region_controls["products"].l1_ttl.disabled
    assert users.stale_ttl.value == 5
    users.l1_ttl.value = 12
    assert rt.config.regions["users"].l1.ttl == 12
    assert rt.region("users").policy.l1_ttl == 12
    users.stale_ttl.value = 9
    assert rt.region("users").policy.stale_ttl == 9
    users.stale_ttl.value = 0
    assert rt.region("users").policy.stale_ttl is None
    users.max_size.value = 3
    assert rt.region("users").policy.max_size == 3


def test_rule_controls_switch_retime_and_repattern_rules(config: Path) -> None:
    rt = load(config)
    panel = TuningPanel(rt)
    session = panel.rule_controls["short-sessions"]
    assert session.ttl.value == 60 and not session.ttl.disabled
    assert panel.rule_controls["user-changed"].ttl.disabled
    rt.region("users").put("session:1", "x")
    session.ttl.value = 5
    assert rt.config.rules[0].ttl == 5
    assert rt.region("users").policy.ttl_for("session:2", None) == 5
    session.pattern.value = "sess:*"
    assert rt.config.rules[0].pattern == "sess:*"
    session.enabled.value = False
    assert rt.config.rules[0].enabled is False
    assert rt.region("users").policy.ttl_for("sess:2", None) == 600
    session.ttl.value = 0                        # refused, widget restored
    assert rt.config.rules[0].ttl == 5 and session.ttl.value == 5
    assert "greater than 0" in panel.status.value


def test_widgets_follow_changes_made_in_code_and_through_the_services(config: Path) -> None:
    rt = load(config)
    panel = TuningPanel(rt)
    rt.update_region("users", ttl=77)
    with rt.edit() as cfg:
        cfg.rules[1].enabled = False
    asyncio.run(CacheRegionService(rt).create_region("orders", provider_id="local", ttl=15))
    assert "orders" not in panel.region_controls
    panel.sync()
    assert panel.region_controls["users"].ttl.value == 77
    assert panel.rule_controls["user-changed"].enabled.value is False
    assert panel.region_controls["orders"].ttl.value == 15
    assert panel.region_controls["orders"].row in panel.regions_box.children
    assert "orders" in panel.target.options
    # the refresh did not write anything back
    assert rt.config.regions["users"].ttl == 77


def test_the_live_loop_samples_and_syncs(config: Path) -> None:
    rt = load(config)
    panel = TuningPanel(rt)
    rt.region("users").put("a", 1)
    rt.region("users").get("a")
    rt.update_region("products", ttl=33)
    panel.tabs.selected_index = 4
    panel.tick()
    panel.tick()
    assert len(rt.stats.timeseries()) >= 2
    assert panel.region_controls["products"].ttl.value == 33
    assert bytes(panel.plot.value).startswith(b"\x89PNG")   # the hit-ratio plot was drawn


def _wait_for(condition: Callable[[], bool], seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_shown_the_panel_is_refreshed_by_the_runtimes_sampler(config: Path) -> None:
    rt = load(config)
    panel = TuningPanel(rt)
    assert not rt.stats.sampling
    panel.start(interval=0.05)                  # what displaying the panel does
    try:
        assert rt.stats.sampling                # the runtime's background sampler, started for the panel
        users = rt.region("users")
        users.put("a", 1)
        for _ in range(3):
            users.get("a")
        assert _wait_for(lambda: "3 hits" in panel.region_controls["users"].stats.value)
        assert "<td class='num'>3</td>" in panel.table.value
        assert panel.plot.value == b""          # Statistics tab not shown: nothing drawn
        panel.tabs.selected_index = 4
        assert bytes(panel.plot.value).startswith(b"\x89PNG")     # drawn when the tab is shown
        first = bytes(panel.plot.value)
        assert _wait_for(lambda: bytes(panel.plot.value) != first)  # and again after the next snapshots
    finally:
        panel.stop()
    assert not rt.stats.sampling                # the panel stops the sampler it started


def test_with_the_sampler_running_the_panel_does_not_sample_itself(config: Path) -> None:
    rt = load(config)
    panel = TuningPanel(rt)
    rt.stats.start_sampling(interval=3600)       # someone else's sampler: one snapshot now
    try:
        panel.tabs.selected_index = 4
        snapshots = len(rt.stats.timeseries())
        assert snapshots == len(panel.region_controls)
        panel.tick()
        panel.tick()
        assert len(rt.stats.timeseries()) == snapshots
        assert bytes(panel.plot.value).startswith(b"\x89PNG")
        panel.start(interval=0.05)
        panel.close()                            # closing the widget ends the live loop...
        assert rt.stats.sampling                 # ...but not a sampler the panel did not start
    finally:
        rt.stats.stop_sampling()


def test_event_box_dry_run_then_emit(config: Path) -> None:
    rt = load(config)
    panel = TuningPanel(rt)
    rt.region("users").put("user:42", "ann")
    rt.region("users").put("user:7", "bob")
    panel.event.value = "user.updated"
    panel.event_params.value = "user_id=42"
    panel.event_preview.click()
    assert "user:42" in panel.result.value and "1 item(s)" in panel.result.value
    assert rt.region("users").get("user:42") == "ann"
    panel.emit.click()
    assert rt.region("users").get("user:42") is None
    assert rt.region("users").get("user:7") == "bob"
    panel.event_params.value = "nope"
    panel.emit.click()
    assert "name=value" in panel.status.value


def test_what_if_shows_the_prediction_before_applying(config: Path) -> None:
    rt = load(config)
    workload = Trace.synthetic_zipf(n_keys=2_000, n_events=8_000, alpha=0.8, seed=3, rate=100.0)
    with capture_trace(rt) as trace:
        for t, key in zip(workload.time, workload.key_hash, strict=True):
            trace.record(float(t), "products", int(key), "get", hit=False)
    panel = TuningPanel(rt, trace=trace)
    panel.whatif_region.value = "products"
    assert panel.whatif_max_size.value == 200
    current, predicted = panel.predict()
    assert current == pytest.approx(predicted)
    panel.whatif_max_size.value = 1_500
    current, bigger = panel.predict()
    assert bigger > current + 0.1
    assert fmt_ratio(bigger) in panel.whatif_result.value and fmt_ratio(current) in panel.whatif_result.value
    assert rt.region("products").policy.max_size == 200      # not applied yet
    panel.whatif_apply.click()
    assert rt.region("products").policy.max_size == 1_500
    assert panel.region_controls["products"].max_size.value == 1_500


def test_save_refuses_a_file_changed_since_loaded_then_overwrites(config: Path) -> None:
    rt = load(config)
    panel = TuningPanel(rt)
    panel.region_controls["users"].ttl.value = 90
    config.write_text(CONFIG.replace("prefix = \"nb\"", "prefix = \"edited\""))
    panel.save.click()
    assert "prefix = \"edited\"" in config.read_text() and "ttl = 600" in config.read_text()
    assert "changed since it was loaded" in panel.diff.value
    assert "+prefix = &quot;edited&quot;" in panel.diff.value
    assert panel.overwrite.layout.display != "none"
    panel.overwrite.click()
    text = config.read_text()
    assert "ttl = 90  # ten minutes" in text and "# rules below" in text
    assert panel.diff.value == "" and panel.overwrite.layout.display == "none"
    panel.region_controls["users"].ttl.value = 91   # saved by us: no conflict now
    panel.save.click()
    assert "ttl = 91" in config.read_text()


def test_save_as_and_a_new_region_table_lands_with_the_regions(config: Path, tmp_path: Path) -> None:
    rt = load(config)
    panel = TuningPanel(rt)
    asyncio.run(CacheRegionService(rt).create_region("orders", provider_id="local", ttl=15))
    panel.sync()
    other = tmp_path / "tuned.toml"
    panel.save_as.value = str(other)
    panel.save.click()
    text = other.read_text()
    assert config.read_text() == CONFIG
    doc = tomlkit.parse(text)
    assert doc["regions"]["orders"]["ttl"] == 15
    assert text.index("[regions.orders]") < text.index("[[rules]]")
    assert "# tuned in a notebook" in text


def test_numbers_are_formatted() -> None:
    assert fmt_ratio(0.8734) == "87.3 %" and fmt_ratio(float("nan")) == "—"
    assert fmt_count(1234567) == "1,234,567" and fmt_count(None) == "—"
    table = stats_table([{"region": "r", "provider": "p", "hits": 12000, "misses": 0,
                          "hit_ratio": float("nan")}])
    assert "12,000" in table and "—" in table and "nan" not in table


def test_tabs_are_named(config: Path) -> None:
    panel = TuningPanel(load(config))
    assert [panel.tabs.get_title(i) for i in range(5)] == ["Regions", "Rules", "Invalidate", "What-if",
                                                          "Statistics"]
