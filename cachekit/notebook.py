"""Tune a live cache from a Jupyter notebook: regions, rules, invalidation, what-if, statistics, save.

>>> from cachekit import load                      # doctest: +SKIP
>>> from cachekit.notebook import TuningPanel      # doctest: +SKIP
>>> runtime = load("configs/default.toml")         # doctest: +SKIP
>>> TuningPanel(runtime)                            # doctest: +SKIP

Every control edits the live config through ``Runtime.edit()`` / ``Runtime.update_region`` (a change takes
effect at once) or calls ``Runtime.invalidate`` / ``Runtime.emit``; **Save** writes the tuned config back to
its TOML file with comments kept, and refuses to overwrite a file changed since it was loaded.
Requires the ``notebook`` extra (ipywidgets; matplotlib for the plot; pandas for the what-if section).

This module is the panel itself (tabs, following the live config, the Statistics tab and the live loop);
its parts live beside it: ``notebook_controls`` (the region and rule rows), ``notebook_invalidate`` (the
Invalidate tab), ``notebook_whatif`` (the What-if tab, ``capture_trace``), ``notebook_save`` (the save
bar) and ``notebook_format`` (numbers, the stats table, CSS).
"""

from __future__ import annotations

import html
import threading
from typing import Any

from .errors import require
from .notebook_controls import RegionControls, RuleControls
from .notebook_format import CSS, fmt_count, fmt_ratio, stats_table
from .notebook_invalidate import InvalidateSection
from .notebook_save import SaveSection
from .notebook_whatif import WhatIfSection, capture_trace
from .runtime.runtime import Runtime

widgets: Any = require("ipywidgets", "notebook")

__all__ = ["RegionControls", "RuleControls", "TuningPanel", "capture_trace", "fmt_count", "fmt_ratio",
           "stats_table"]

TABS = ("Regions", "Rules", "Invalidate", "What-if", "Statistics")


class TuningPanel(InvalidateSection, WhatIfSection, SaveSection, widgets.VBox):  # type: ignore[misc]
    """An ipywidgets panel over a live :class:`~cachekit.Runtime`, in tabs: Regions, Rules, Invalidate,
    What-if, Statistics.

    ``panel.region_controls[name].ttl`` is that region's TTL widget: changing its value changes the live
    region; ``panel.rule_controls[name].enabled`` switches a rule. :meth:`sync` brings the widgets in line
    with the live config (a change made in code or over HTTP; regions and rules created later); the live
    loop (:meth:`start`, started when the panel is displayed) runs the runtime's background sampler, calls
    it and redraws the statistics from the sampler's snapshots.
    """

    def __init__(self, runtime: Runtime | None = None, *, trace: Any = None, interval: float = 1.0) -> None:
        if runtime is None:
            from .facade import Cache

            runtime = Cache.runtime()
        self.runtime = runtime
        self.interval = interval
        self.status = widgets.HTML()
        self.region_controls: dict[str, RegionControls] = {}
        self.rule_controls: dict[str, RuleControls] = {}
        self.regions_box = widgets.VBox()
        self._rules_box = widgets.VBox()
        self._build_invalidate()
        self._build_whatif(trace)
        self._build_stats()
        self._build_save()
        self.tabs = widgets.Tab(children=[self.regions_box, self._rules_box, self._invalidate_box,
                                          self._whatif_box, self._stats_box])
        for index, title in enumerate(TABS):
            self.tabs.set_title(index, title)
        title = widgets.HTML("<div style='font-size:1.25em;font-weight:600;margin:4px 0'>cachekit · tuning"
                             "</div>" + CSS)
        super().__init__([title, self.tabs, self._save_box, self.status],
                         layout=widgets.Layout(max_width="1400px"))
        self.add_class("cachekit-panel")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._own_sampler = False      # the runtime's sampler was started by this panel
        self._drawn: Any = None        # the last snapshot the plot shows
        self.tabs.observe(lambda _: self._redraw(), names="selected_index")
        self.sync()

    # -- keeping up with the live config ------------------------------------------------------------
    def sync(self) -> None:
        """Add controls for new regions and rules, drop removed ones, show every live value again."""
        rt = self.runtime
        names = sorted(set(rt.regions()) | set(rt.config.regions))
        for name in names:
            if name not in self.region_controls:
                self.region_controls[name] = RegionControls(self, name)
            else:
                self.region_controls[name].refresh()
        for name in [n for n in self.region_controls if n not in names]:
            del self.region_controls[name]
        rules = [rule.name for rule in rt.config.rules]
        for name in rules:
            if name not in self.rule_controls:
                self.rule_controls[name] = RuleControls(self, name)
            else:
                self.rule_controls[name].refresh()
        for name in [n for n in self.rule_controls if n not in rules]:
            del self.rule_controls[name]
        rows = [c.row for c in self.region_controls.values()]
        if list(self.regions_box.children) != rows:
            self.regions_box.children = rows
        rule_rows = [c.row for c in self.rule_controls.values()] or [widgets.HTML("<i>no rules declared</i>")]
        if [id(c) for c in self._rules_box.children] != [id(c) for c in rule_rows] and (
                self.rule_controls or not self._rules_box.children):
            self._rules_box.children = rule_rows
        targets = ["(all regions)", *self.region_controls]
        if list(self.target.options) != targets:
            current = self.target.value
            self.target.options = targets
            self.target.value = current if current in targets else "(all regions)"
        if list(self.whatif_region.options) != list(self.region_controls):
            self.whatif_region.options = list(self.region_controls)
        self.refresh_stats()

    def start(self, interval: float | None = None) -> None:
        """Follow the runtime live: start the runtime's background sampler (``runtime.stats.start_sampling``)
        unless it runs already, and call :meth:`tick` every ``interval`` seconds in a daemon thread until
        :meth:`stop`."""
        if self._thread is not None and self._thread.is_alive():
            return
        self.interval = interval or self.interval
        stats = self.runtime.stats
        if not stats.sampling:
            stats.start_sampling(self.interval)
            self._own_sampler = True
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(self.interval):
                try:
                    self.tick()
                except Exception as exc:  # keep the loop alive; say what went wrong
                    self.say(f"live refresh: {exc}", error=True)

        self._thread = threading.Thread(target=loop, name="cachekit-panel", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the live loop, and the runtime's sampler if :meth:`start` started it."""
        self._stop.set()
        if self._own_sampler:
            self._own_sampler = False
            self.runtime.stats.stop_sampling()

    def close(self) -> None:
        self.stop()
        super().close()

    def tick(self) -> None:
        """One step of the live loop: follow the config, redraw the stats table, and redraw the hit-ratio
        plot when the sampler took a new snapshot and the Statistics tab is shown. Driven by hand (the
        runtime's sampler not running), it takes the snapshot itself."""
        if not self.runtime.stats.sampling:
            self.runtime.stats.sample()
        self.sync()
        self._redraw()

    def _redraw(self) -> None:
        """Plot the snapshots if the Statistics tab is shown and the plot does not show the latest one."""
        if self.tabs.selected_index != TABS.index("Statistics"):
            return
        frame = self.runtime.stats.timeseries()
        latest = (len(frame), frame.index[-1][0] if len(frame) else None)
        if latest != self._drawn:
            self.plot_hit_ratio(frame)

    def _ipython_display_(self) -> None:  # displayed: follow the runtime live
        from IPython.display import display

        display(widgets.VBox([self]))
        self.start()

    def say(self, message: str, *, error: bool = False) -> None:
        color = "#b00020" if error else "#1b5e20"
        self.status.value = f'<span style="color:{color}">{html.escape(message)}</span>'

    # -- Statistics ---------------------------------------------------------------------------------
    def _build_stats(self) -> None:
        self.table = widgets.HTML()
        self.refresh = widgets.Button(description="refresh", icon="refresh")
        self.refresh.on_click(lambda _: (self.runtime.stats.sample(), self.refresh_stats(), self.plot_hit_ratio()))
        self.plot = widgets.Image(format="png")
        self._stats_box = widgets.VBox([self.refresh, self.table, self.plot])

    def refresh_stats(self) -> None:
        """Redraw the stats table and each region's hit ratio label."""
        rows = {row["region"]: row for row in self.runtime.stats.rows()}
        for name, controls in self.region_controls.items():
            row = rows.get(name)
            if row is not None:
                controls.stats.value = (f"<b>{fmt_ratio(row['hit_ratio'])}</b> <small style='color:#666'>"
                                        f"{fmt_count(row['hits'])} hits / {fmt_count(row['misses'])} misses"
                                        "</small>")
        self.table.value = stats_table(rows.values())

    def plot_hit_ratio(self, frame: Any = None) -> None:
        """Plot each region's hit ratio per sampling interval (from ``runtime.stats.timeseries()``, or
        ``frame``) into ``panel.plot`` (a PNG image widget)."""
        import io

        from matplotlib.figure import Figure

        frame = self.runtime.stats.timeseries() if frame is None else frame
        self._drawn = (len(frame), frame.index[-1][0] if len(frame) else None)
        fig = Figure(figsize=(8, 2.6))
        ax = fig.subplots()
        if frame.empty:
            ax.text(0.5, 0.5, "no samples yet", ha="center", va="center", transform=ax.transAxes)
        else:
            counts = frame[["hits", "misses"]].unstack("region").sort_index()
            delta = counts.diff().fillna(counts)
            for region in counts["hits"].columns:
                reads = delta["hits"][region] + delta["misses"][region]
                ratio = (delta["hits"][region] / reads.where(reads > 0)).ffill()
                ax.plot(ratio.index, ratio.values * 100, label=region, marker=".")
            ax.legend(loc="lower right", fontsize="small")
        ax.set_ylabel("hit ratio (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80)
        self.plot.value = buffer.getvalue()
