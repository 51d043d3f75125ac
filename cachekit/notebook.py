"""Tune a live cache from a Jupyter notebook: regions, rules, invalidation, what-if, statistics, save.

>>> from cachekit import load                      # doctest: +SKIP
>>> from cachekit.notebook import TuningPanel      # doctest: +SKIP
>>> runtime = load("configs/default.toml")         # doctest: +SKIP
>>> TuningPanel(runtime)                            # doctest: +SKIP

Every control edits the live config through ``Runtime.edit()`` / ``Runtime.update_region`` (a change takes
effect at once) or calls ``Runtime.invalidate`` / ``Runtime.emit``; **Save** writes the tuned config back to
its TOML file with comments kept, and refuses to overwrite a file changed since it was loaded.
Requires the ``notebook`` extra (ipywidgets; matplotlib for the plot; pandas for the what-if section).
"""

from __future__ import annotations

import difflib
import html
import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .config.models import EventBasedRule, TimeBasedRule
from .errors import CacheError, require
from .runtime.runtime import Runtime

widgets: Any = require("ipywidgets", "notebook")

__all__ = ["RegionControls", "RuleControls", "TuningPanel", "capture_trace", "fmt_count", "fmt_ratio"]

_STYLE = {"description_width": "64px"}
_MAX_TTL = 10 * 365 * 86400.0
TABS = ("Regions", "Rules", "Invalidate", "What-if", "Statistics")


def fmt_ratio(value: Any) -> str:
    """``0.8734`` → ``"87.3 %"``; ``nan``/``None`` → ``"—"``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.1%}".replace("%", " %")


def fmt_count(value: Any) -> str:
    """``12345`` → ``"12,345"``; floats get 3 decimals; ``nan``/``None`` → ``"—"``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.3f}"


@contextmanager
def capture_trace(runtime: Runtime, **options: Any) -> Iterator[Any]:
    """``with capture_trace(runtime) as trace:`` — ``runtime.trace(**options)`` where the runtime records
    traces itself; otherwise an empty :class:`~cachekit.Trace` for the workload to fill with
    ``trace.record(...)`` (``trace.recording`` says which: ``"runtime"`` or ``"manual"``)."""
    recorder = getattr(runtime, "trace", None)
    if callable(recorder):
        with recorder(**options) as trace:
            trace.recording = "runtime"
            yield trace
        return
    from .simulate import Trace

    trace = Trace(**options)
    trace.recording = "manual"
    yield trace


def _silently(widget: Any, value: Any, handler: Callable[[Any], None] | None) -> None:
    """Set ``widget.value`` without running ``handler`` (a refresh from the live config, not a user edit)."""
    if widget.value == value:
        return
    if handler is not None:
        widget.unobserve(handler, names="value")
    try:
        widget.value = value
    finally:
        if handler is not None:
            widget.observe(handler, names="value")


class _Controls:
    panel: TuningPanel
    name: str

    def apply_change(self, change: Callable[[], Any], done: str) -> bool:
        try:
            change()
        except (CacheError, ValueError) as exc:
            self.panel.say(f"{self.name}: {exc}", error=True)
            self.refresh()
            return False
        self.panel.say(done)
        self.panel.refresh_stats()
        return True

    def refresh(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class RegionControls(_Controls):
    """The widgets of one region: ``ttl`` (+ ``forever``), ``max_size`` (the effective bound), ``l1_ttl``,
    ``stale_ttl``, ``enabled``, ``flush`` and a stats label."""

    def __init__(self, panel: TuningPanel, name: str) -> None:
        self.panel = panel
        self.name = name
        rt = panel.runtime
        policy = rt.region(name).policy
        small = widgets.Layout(width="170px")
        self.ttl = widgets.BoundedFloatText(value=policy.ttl or 0.0, min=0.0, max=_MAX_TTL, step=1.0,
                                            description="TTL (s)", style=_STYLE, layout=small)
        self.forever = widgets.Checkbox(value=policy.ttl is None, description="forever", indent=False,
                                        layout=widgets.Layout(width="75px"))
        self.max_size = widgets.BoundedIntText(value=1, min=1, max=2**62, description="max size", style=_STYLE,
                                               layout=widgets.Layout(width="190px"))
        self.l1_ttl = widgets.BoundedFloatText(value=0.0, min=0.0, max=_MAX_TTL, step=1.0, description="L1 TTL",
                                               style=_STYLE, layout=small)
        self.stale_ttl = widgets.BoundedFloatText(value=0.0, min=0.0, max=_MAX_TTL, step=1.0,
                                                  description="stale (s)", style=_STYLE, layout=small)
        self.enabled = widgets.Checkbox(value=policy.enabled, description="enabled", indent=False,
                                        layout=widgets.Layout(width="75px"))
        self.flush = widgets.Button(description="flush", icon="trash", layout=widgets.Layout(width="90px",
                                                                                            flex="0 0 90px"),
                                    tooltip=f"empty {name}")
        self.stats = widgets.HTML(layout=widgets.Layout(flex="1 0 220px"))
        self.label = widgets.HTML(layout=widgets.Layout(width="130px", flex="0 0 130px"))
        self.row = widgets.HBox([self.label, self.ttl, self.forever, self.max_size, self.l1_ttl, self.stale_ttl,
                                 self.enabled, self.flush, self.stats],
                                layout=widgets.Layout(align_items="center", border_bottom="1px solid #eee"))
        for field, widget in (("ttl", self.ttl), ("max-size", self.max_size), ("l1-ttl", self.l1_ttl),
                              ("stale-ttl", self.stale_ttl), ("enabled", self.enabled), ("flush", self.flush)):
            widget.add_class(f"cachekit-region-{field}")  # CSS hooks (the browser test finds them)
        self.row.add_class(f"cachekit-region-{name}")
        self.ttl.observe(self._on_ttl, names="value")
        self.forever.observe(self._on_ttl, names="value")
        self.max_size.observe(self._on_max_size, names="value")
        self.l1_ttl.observe(self._on_l1_ttl, names="value")
        self.stale_ttl.observe(self._on_stale_ttl, names="value")
        self.enabled.observe(self._on_enabled, names="value")
        self.flush.on_click(lambda _: self.apply_change(lambda: rt.region(name).flush(), f"flushed {name}"))
        self.refresh()

    # -- what the region's size is, whoever bounds it ------------------------------------------
    def effective_max_size(self) -> int | None:
        """The region's own ``max_size``, else its provider's (``None``: the store is not bounded by us)."""
        policy = self.panel.runtime.region(self.name).policy
        if policy.max_size is not None:
            return int(policy.max_size)
        size = getattr(self.panel.runtime.provider_config(policy.provider), "max_size", None)
        return int(size) if size is not None else None

    def _on_ttl(self, _: Any) -> None:
        if self.forever.value:
            ttl = None
        elif self.ttl.value <= 0:
            self.panel.say(f"{self.name}: ttl must be greater than 0 seconds (or tick forever)", error=True)
            self.refresh()
            return
        else:
            ttl = float(self.ttl.value)
        self.apply_change(lambda: self.panel.runtime.update_region(self.name, ttl=ttl, forever=ttl is None),
                    f"{self.name}: ttl = {'forever' if ttl is None else ttl}")

    def _on_max_size(self, _: Any) -> None:
        size = int(self.max_size.value)
        self.apply_change(lambda: self.panel.runtime.update_region(self.name, max_size=size),
                    f"{self.name}: max_size = {size:,}")

    def _on_l1_ttl(self, _: Any) -> None:
        value = float(self.l1_ttl.value)
        if value <= 0:
            self.panel.say(f"{self.name}: the L1 TTL must be greater than 0 seconds", error=True)
            self.refresh()
            return

        def change() -> None:
            with self.panel.runtime.edit() as config:
                rc = config.regions.get(self.name)
                if rc is None or rc.l1 is None:
                    raise ValueError("this region has no L1 tier (declare [regions.<name>.l1] first)")
                rc.l1.ttl = value

        self.apply_change(change, f"{self.name}: l1.ttl = {value}")

    def _on_stale_ttl(self, _: Any) -> None:
        value = float(self.stale_ttl.value) or None
        self.apply_change(lambda: self.panel.runtime.update_region(self.name, stale_ttl=value),
                    f"{self.name}: stale_ttl = {value if value is not None else 'off'}")

    def _on_enabled(self, _: Any) -> None:
        self.apply_change(lambda: self.panel.runtime.update_region(self.name, enabled=bool(self.enabled.value)),
                    f"{self.name}: {'enabled' if self.enabled.value else 'disabled'}")

    def refresh(self) -> None:
        """Show the live policy again (after a rejected edit or a change made elsewhere)."""
        rt = self.panel.runtime
        region = rt.region(self.name)
        policy = region.policy
        rc = rt.config.regions.get(self.name)
        size = self.effective_max_size()
        has_l1 = rc is not None and rc.l1 is not None
        _silently(self.ttl, policy.ttl or 0.0, self._on_ttl)
        _silently(self.forever, policy.ttl is None, self._on_ttl)
        _silently(self.max_size, size if size is not None else 1, self._on_max_size)
        self.max_size.disabled = size is None
        self.max_size.tooltip = ("bounded by the store itself (not enforced by cachekit)" if size is None
                                 else "entries before eviction")
        _silently(self.l1_ttl, float(rc.l1.ttl or 0.0) if has_l1 and rc is not None and rc.l1 is not None
                  else 0.0, self._on_l1_ttl)
        self.l1_ttl.disabled = not has_l1
        _silently(self.stale_ttl, float(policy.stale_ttl or 0.0), self._on_stale_ttl)
        _silently(self.enabled, bool(rc.enabled if rc is not None else policy.enabled), self._on_enabled)
        tier = " + L1" if has_l1 else ""
        self.label.value = (f"<b>{html.escape(self.name)}</b><br><small style='color:#666'>"
                            f"{html.escape(region.provider)}{tier}</small>")


class RuleControls(_Controls):
    """The widgets of one invalidation rule: ``enabled``, ``ttl`` (time-based rules) and ``pattern``."""

    def __init__(self, panel: TuningPanel, name: str) -> None:
        self.panel = panel
        self.name = name
        rule = self.rule()
        self.enabled = widgets.Checkbox(value=rule.enabled, description="enabled", indent=False,
                                        layout=widgets.Layout(width="80px"))
        self.ttl = widgets.BoundedFloatText(value=float(getattr(rule, "ttl", 0.0) or 0.0), min=0.0, max=_MAX_TTL,
                                            step=1.0, description="TTL (s)", style=_STYLE,
                                            disabled=not isinstance(rule, TimeBasedRule),
                                            layout=widgets.Layout(width="170px"))
        self.pattern = widgets.Text(value=rule.pattern or "", description="pattern", style=_STYLE,
                                    continuous_update=False, layout=widgets.Layout(width="300px"))
        self.label = widgets.HTML(layout=widgets.Layout(width="260px"))
        self.row = widgets.HBox([self.label, self.enabled, self.ttl, self.pattern],
                                layout=widgets.Layout(align_items="center", border_bottom="1px solid #eee"))
        self.enabled.observe(self._on_enabled, names="value")
        self.ttl.observe(self._on_ttl, names="value")
        self.pattern.observe(self._on_pattern, names="value")
        self.refresh()

    def rule(self, config: Any = None) -> Any:
        config = config if config is not None else self.panel.runtime.config
        for rule in config.rules:
            if rule.name == self.name:
                return rule
        raise ValueError(f"no rule named {self.name!r}")

    def _set(self, field: str, value: Any) -> Callable[[], None]:
        def change() -> None:
            with self.panel.runtime.edit() as config:
                setattr(self.rule(config), field, value)
        return change

    def _on_enabled(self, _: Any) -> None:
        value = bool(self.enabled.value)
        self.apply_change(self._set("enabled", value), f"rule {self.name}: {'enabled' if value else 'disabled'}")

    def _on_ttl(self, _: Any) -> None:
        value = float(self.ttl.value)
        if value <= 0:
            self.panel.say(f"rule {self.name}: ttl must be greater than 0 seconds", error=True)
            self.refresh()
            return
        self.apply_change(self._set("ttl", value), f"rule {self.name}: ttl = {value}")

    def _on_pattern(self, _: Any) -> None:
        value = self.pattern.value.strip()
        if not value:
            self.panel.say(f"rule {self.name}: the pattern cannot be empty", error=True)
            self.refresh()
            return
        self.apply_change(self._set("pattern", value), f"rule {self.name}: pattern = {value}")

    def refresh(self) -> None:
        try:
            rule = self.rule()
        except ValueError:
            return
        _silently(self.enabled, rule.enabled, self._on_enabled)
        _silently(self.ttl, float(getattr(rule, "ttl", 0.0) or 0.0), self._on_ttl)
        _silently(self.pattern, rule.pattern or "", self._on_pattern)
        where = ", ".join(rule.regions) or "all regions"
        extra = f" · on {', '.join(rule.events)}" if isinstance(rule, EventBasedRule) else ""
        self.label.value = (f"<b>{html.escape(rule.name)}</b><br><small style='color:#666'>"
                            f"{html.escape(rule.strategy)} · {html.escape(where)}{html.escape(extra)}</small>")


class TuningPanel(widgets.VBox):  # type: ignore[misc]
    """An ipywidgets panel over a live :class:`~cachekit.Runtime`, in tabs: Regions, Rules, Invalidate,
    What-if, Statistics.

    ``panel.region_controls[name].ttl`` is that region's TTL widget: changing its value changes the live
    region; ``panel.rule_controls[name].enabled`` switches a rule. :meth:`sync` brings the widgets in line
    with the live config (a change made in code or over HTTP; regions and rules created later); the live
    loop (:meth:`start`, started when the panel is displayed) calls it and samples the statistics.
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
                             "</div>" + _CSS)
        super().__init__([title, self.tabs, self._save_box, self.status],
                         layout=widgets.Layout(max_width="1400px"))
        self.add_class("cachekit-panel")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
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
        """Run :meth:`tick` every ``interval`` seconds in a daemon thread until :meth:`stop`."""
        if self._thread is not None and self._thread.is_alive():
            return
        self.interval = interval or self.interval
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
        self._stop.set()

    def tick(self) -> None:
        """One step of the live loop: sample the statistics, follow the config, redraw what is visible."""
        self.runtime.stats.sample()
        self.sync()
        if self.tabs.selected_index == TABS.index("Statistics"):
            self.plot_hit_ratio()

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

    def plot_hit_ratio(self) -> None:
        """Plot each region's hit ratio per sampling interval (from ``runtime.stats.timeseries()``) into
        ``panel.plot`` (a PNG image widget)."""
        import io

        from matplotlib.figure import Figure

        frame = self.runtime.stats.timeseries()
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

    # -- Invalidate ---------------------------------------------------------------------------------
    def _build_invalidate(self) -> None:
        self.pattern = widgets.Text(placeholder="user:*", description="pattern")
        self.tags = widgets.Text(placeholder="users, active", description="tags")
        self.target = widgets.Dropdown(options=["(all regions)"], description="region")
        self.preview = widgets.Button(description="preview (dry run)", icon="eye")
        self.invalidate = widgets.Button(description="invalidate", button_style="warning", icon="times")
        self.result = widgets.HTML()
        self.preview.on_click(lambda _: self._invalidate(dry_run=True))
        self.invalidate.on_click(lambda _: self._invalidate(dry_run=False))
        self.event = widgets.Text(placeholder="user.updated", description="event")
        self.event_params = widgets.Text(placeholder="user_id=42, org=7", description="parameters")
        self.event_preview = widgets.Button(description="dry run", icon="eye")
        self.emit = widgets.Button(description="emit", button_style="warning", icon="bolt")
        self.event_preview.on_click(lambda _: self._emit(dry_run=True))
        self.emit.on_click(lambda _: self._emit(dry_run=False))
        self._invalidate_box = widgets.VBox([
            widgets.HTML("<b>By pattern, tags or region</b>"),
            widgets.HBox([self.pattern, self.tags, self.target]),
            widgets.HBox([self.preview, self.invalidate]),
            widgets.HTML("<b>Fire an event</b> (its <code>event_based</code> rules run)"),
            widgets.HBox([self.event, self.event_params]),
            widgets.HBox([self.event_preview, self.emit]),
            self.result,
        ])

    def _invalidate(self, *, dry_run: bool) -> None:
        pattern = self.pattern.value.strip() or None
        tags = [t.strip() for t in self.tags.value.split(",") if t.strip()] or None
        region = None if self.target.value == "(all regions)" else self.target.value
        if pattern is None and tags is None and region is None:
            self.say("give a pattern, tags or a region", error=True)
            return
        try:
            result = self.runtime.invalidate(pattern=pattern, tags=tags, region=region, dry_run=dry_run)
        except CacheError as exc:
            self.say(str(exc), error=True)
            return
        verb = "would remove" if dry_run else "removed"
        self.result.value = f"<b>{verb}</b><br>" + (_describe(result) or "nothing")
        self.say(f"{verb} {result.count:,} item(s)")
        if not dry_run:
            self.refresh_stats()

    def event_parameters(self) -> dict[str, Any]:
        """The parameters box, ``user_id=42, org=7``, as ``{"user_id": 42, "org": 7}`` (digits become ints)."""
        params: dict[str, Any] = {}
        for part in self.event_params.value.split(","):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"parameters are name=value pairs, not {part.strip()!r}")
            value = value.strip()
            params[key.strip()] = int(value) if value.lstrip("-").isdigit() else value
        return params

    def _emit(self, *, dry_run: bool) -> None:
        event = self.event.value.strip()
        if not event:
            self.say("give an event name", error=True)
            return
        try:
            params = self.event_parameters()
            if dry_run:
                lines = []
                total = 0
                for rule in self.runtime.config.rules:
                    if not (isinstance(rule, EventBasedRule) and rule.enabled and event in rule.events):
                        continue
                    regions = rule.regions or None
                    for template in rule.all_patterns():
                        filled = template.format_map(params)
                        result = self.runtime.invalidate(pattern=filled, region=regions, dry_run=True)
                        total += result.count
                        lines.append(f"rule <b>{html.escape(rule.name)}</b>: {html.escape(filled)} → "
                                     f"{result.count:,} item(s)")
                    for tag in rule.tags:
                        lines.append(f"rule <b>{html.escape(rule.name)}</b>: tag "
                                     f"{html.escape(tag.format_map(params))}")
                    if rule.flush_regions:
                        lines.append(f"rule <b>{html.escape(rule.name)}</b>: flush "
                                     f"{html.escape(', '.join(rule.regions) or 'every region')}")
                self.result.value = (f"<b>{html.escape(event)} would run</b><br>"
                                     + ("<br>".join(lines) or "no enabled rule listens to this event"))
                self.say(f"{event}: would remove {total:,} item(s)")
                return
            result = self.runtime.emit(event, **params)
        except KeyError as exc:
            self.say(f"{event}: missing parameter {exc}", error=True)
            return
        except (CacheError, ValueError) as exc:
            self.say(f"{event}: {exc}", error=True)
            return
        self.result.value = f"<b>{html.escape(event)}: removed</b><br>" + (_describe(result) or "nothing")
        self.say(f"{event}: removed {result.count:,} item(s)")
        self.refresh_stats()

    # -- What-if ------------------------------------------------------------------------------------
    def _build_whatif(self, trace: Any) -> None:
        self.trace = trace
        self.whatif_region = widgets.Dropdown(options=[], description="region")
        self.whatif_max_size = widgets.BoundedIntText(value=1, min=1, max=2**62, description="max size",
                                                      style=_STYLE)
        self.whatif_ttl = widgets.BoundedFloatText(value=60.0, min=0.001, max=_MAX_TTL, description="TTL (s)",
                                                   style=_STYLE)
        self.whatif_result = widgets.HTML()
        self.whatif_apply = widgets.Button(description="apply to the live region", button_style="success",
                                           icon="check")
        self.whatif_region.observe(lambda _: self._whatif_load(), names="value")
        self.whatif_max_size.observe(lambda _: self.predict(), names="value")
        self.whatif_ttl.observe(lambda _: self.predict(), names="value")
        self.whatif_apply.on_click(lambda _: self._whatif_apply())
        self._whatif_box = widgets.VBox([
            widgets.HTML("Move a control to see the simulator's predicted hit ratio for the captured trace "
                         "<i>before</i> applying it."),
            widgets.HBox([self.whatif_region, self.whatif_max_size, self.whatif_ttl]),
            self.whatif_result, self.whatif_apply,
        ])

    def use_trace(self, trace: Any) -> None:
        """Give the what-if section a captured trace (see :func:`capture_trace`)."""
        self.trace = trace
        self._whatif_load()

    def _whatif_load(self) -> None:
        name = self.whatif_region.value
        if name is None or name not in self.region_controls:
            return
        controls = self.region_controls[name]
        policy = self.runtime.region(name).policy
        size = controls.effective_max_size()
        self.whatif_max_size.value = size if size is not None else 10_000
        self.whatif_ttl.value = policy.ttl or _MAX_TTL
        self.predict()

    def predict(self) -> tuple[float, float] | None:
        """Replay the trace at the region's current setting and at the what-if controls' setting;
        show both hit ratios and return ``(current, predicted)``."""
        name = self.whatif_region.value
        if self.trace is None or name is None:
            self.whatif_result.value = "<i>capture a trace first: panel.use_trace(trace)</i>"
            return None
        if name not in set(getattr(self.trace, "regions", [])):
            self.whatif_result.value = f"<i>the trace has no reads of {html.escape(name)}</i>"
            return None
        from .simulate import simulate

        policy = self.runtime.region(name).policy
        now_size = self.region_controls[name].effective_max_size()
        now = simulate(self.trace, region=name, max_size=now_size, ttl=policy.ttl)
        then = simulate(self.trace, region=name, max_size=int(self.whatif_max_size.value),
                        ttl=float(self.whatif_ttl.value))
        current, predicted = float(now.hit_ratio.iloc[0]), float(then.hit_ratio.iloc[0])
        delta = (predicted - current) * 100
        color = "#1b5e20" if delta >= 0 else "#b00020"
        self.whatif_result.value = (
            "<table class='ck'><tr><th></th><th>max size</th><th>TTL (s)</th><th>hit ratio</th>"
            f"<th>misses</th></tr><tr><td>now</td><td>{fmt_count(now_size)}</td>"
            f"<td>{fmt_count(policy.ttl)}</td><td>{fmt_ratio(current)}</td>"
            f"<td>{fmt_count(int(now.misses.iloc[0]))}</td></tr>"
            f"<tr><td>what if</td><td>{fmt_count(int(self.whatif_max_size.value))}</td>"
            f"<td>{fmt_count(float(self.whatif_ttl.value))}</td><td><b>{fmt_ratio(predicted)}</b> "
            f"<span style='color:{color}'>({delta:+.1f} pts)</span></td>"
            f"<td>{fmt_count(int(then.misses.iloc[0]))}</td></tr></table>")
        return current, predicted

    def _whatif_apply(self) -> None:
        name = self.whatif_region.value
        if name is None:
            return
        controls = self.region_controls[name]
        size, ttl = int(self.whatif_max_size.value), float(self.whatif_ttl.value)
        controls.apply_change(lambda: self.runtime.update_region(name, max_size=size, ttl=ttl, forever=False),
                        f"{name}: max_size = {size:,}, ttl = {ttl}")
        controls.refresh()
        self.predict()

    # -- Save ---------------------------------------------------------------------------------------
    def _build_save(self) -> None:
        self.save = widgets.Button(description="save", button_style="primary", icon="save",
                                   tooltip="write the tuned values back to the TOML file")
        self.save_as = widgets.Text(placeholder="save as… (a path; empty: the file it came from)",
                                    layout=widgets.Layout(width="360px"))
        self.overwrite = widgets.Button(description="overwrite", button_style="danger", icon="exclamation",
                                        layout=widgets.Layout(display="none"))
        self.diff = widgets.HTML()
        self.save.add_class("cachekit-save")
        self.save.on_click(lambda _: self._save())
        self.overwrite.on_click(lambda _: self._save(force=True))
        self._save_box = widgets.VBox([widgets.HBox([self.save, self.save_as, self.overwrite]), self.diff])

    def _save(self, *, force: bool = False) -> Path | None:
        target = Path(self.save_as.value).expanduser() if self.save_as.value.strip() else None
        path = target or self.runtime.config.source_path
        document = self.runtime.config.document
        if not force and path is not None and path.exists():
            disk = path.read_text()
            loaded = document.as_string() if document is not None and path == self.runtime.config.source_path \
                else None
            if (loaded is None and target is not None) or (loaded is not None and
                                                           disk.rstrip("\n") != loaded.rstrip("\n")):
                diff = "".join(difflib.unified_diff((loaded or "").splitlines(True), disk.splitlines(True),
                                                    "as loaded" if loaded is not None else "(new file)",
                                                    f"{path} now"))
                self.diff.value = ("<div class='ck-diff'><b>Not saved:</b> the file changed since it was loaded. "
                                   "Overwrite to replace it with the tuned config, or save as another path."
                                   f"<pre>{html.escape(diff)}</pre></div>")
                self.overwrite.layout.display = None
                self.say(f"not saved: {path} changed since it was loaded", error=True)
                return None
        try:
            written = self.runtime.save(target)
        except (CacheError, ValueError, OSError) as exc:
            self.say(f"not saved: {exc}", error=True)
            return None
        self.diff.value = ""
        self.overwrite.layout.display = "none"
        self.say(f"saved to {written}")
        return written


def _describe(result: Any) -> str:
    parts = [f"{html.escape(r)}: {len(keys):,} key(s) {html.escape(', '.join(keys[:20]))}"
             for r, keys in result.keys.items() if keys]
    parts += [f"{html.escape(r)}: generation of {html.escape(', '.join(g))} advanced"
              for r, g in result.generations.items() if g]
    return "<br>".join(parts)


_COLUMNS = ("region", "provider", "hits", "misses", "hit_ratio", "sets", "deletes", "errors", "evictions",
            "loads", "stale_hits", "l1_hits")


def stats_table(rows: Any) -> str:
    """The stats rows as a styled HTML table: percentages, thousands separators, "—" for no value."""
    head = "".join(f"<th>{c.replace('_', ' ')}</th>" for c in _COLUMNS)
    body = []
    for row in rows:
        cells = []
        for column in _COLUMNS:
            value = row.get(column)
            if column == "hit_ratio":
                text, cls = fmt_ratio(value), "num"
            elif column in ("region", "provider"):
                text, cls = html.escape(str(value)), "txt"
            else:
                text, cls = fmt_count(value), "num"
            cells.append(f"<td class='{cls}'>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table class='ck'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


_CSS = """<style>
table.ck { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
table.ck th { background: #263238; color: #fff; padding: 4px 10px; text-align: right; font-weight: 500; }
table.ck th:first-child, table.ck td.txt { text-align: left; }
table.ck td { padding: 3px 10px; border-bottom: 1px solid #e0e0e0; text-align: right;
              font-variant-numeric: tabular-nums; }
table.ck tbody tr:nth-child(even) { background: #f5f7f8; }
.ck-diff pre { background: #fff8e1; padding: 6px; max-height: 240px; overflow: auto; }
</style>"""
