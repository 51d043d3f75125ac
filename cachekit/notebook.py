"""Tune a live cache from a Jupyter notebook: TTLs, sizes, switches, invalidation, stats, save.

>>> from cachekit import load                      # doctest: +SKIP
>>> from cachekit.notebook import TuningPanel      # doctest: +SKIP
>>> runtime = load("configs/default.toml")         # doctest: +SKIP
>>> TuningPanel(runtime)                            # doctest: +SKIP

Every control edits the live config in one ``Runtime.edit()`` transaction (``Runtime.update_region``): a change
takes effect at once; **Save** writes the tuned config back to its TOML file with comments kept.
Requires the ``notebook`` extra (ipywidgets; matplotlib for the plot).
"""

from __future__ import annotations

import html
from typing import Any

from .errors import CacheError, require
from .runtime.runtime import Runtime

widgets: Any = require("ipywidgets", "notebook")

__all__ = ["RegionControls", "TuningPanel"]


class RegionControls:
    """The widgets of one region: ``ttl``, ``max_size``, ``enabled``, ``flush`` and a stats label."""

    def __init__(self, panel: TuningPanel, name: str) -> None:
        self.panel = panel
        self.name = name
        region = panel.runtime.region(name)
        policy = region.policy
        style = {"description_width": "70px"}
        self.ttl = widgets.BoundedFloatText(value=policy.ttl or 0.0, min=0.0, max=10 * 365 * 86400.0, step=1.0,
                                            description="TTL (s)", style=style,
                                            layout=widgets.Layout(width="190px"))
        self.forever = widgets.Checkbox(value=policy.ttl is None, description="forever", indent=False,
                                        layout=widgets.Layout(width="80px"))
        self.max_size = widgets.IntText(value=policy.max_size or 0, description="max size", style=style,
                                        layout=widgets.Layout(width="190px"))
        self.enabled = widgets.Checkbox(value=policy.enabled, description="enabled", indent=False,
                                        layout=widgets.Layout(width="80px"))
        self.flush = widgets.Button(description="flush", layout=widgets.Layout(width="70px"))
        self.stats = widgets.HTML()
        self.label = widgets.HTML(f"<b>{html.escape(name)}</b> <small>({html.escape(region.provider)})</small>",
                                  layout=widgets.Layout(width="200px"))
        self.row = widgets.HBox([self.label, self.ttl, self.forever, self.max_size, self.enabled, self.flush,
                                 self.stats])
        self.ttl.observe(self._on_ttl, names="value")
        self.forever.observe(self._on_ttl, names="value")
        self.max_size.observe(self._on_max_size, names="value")
        self.enabled.observe(self._on_enabled, names="value")
        self.flush.on_click(lambda _: self._apply(lambda: panel.runtime.region(name).flush(), f"flushed {name}"))

    def _apply(self, change: Any, done: str) -> bool:
        try:
            change()
        except (CacheError, ValueError) as exc:
            self.panel.say(f"{self.name}: {exc}", error=True)
            self.refresh()
            return False
        self.panel.say(done)
        self.panel.refresh_stats()
        return True

    def _on_ttl(self, _: Any) -> None:
        if self.forever.value:
            ttl = None
        elif self.ttl.value <= 0:
            self.panel.say(f"{self.name}: ttl must be greater than 0 seconds (or tick forever)", error=True)
            self.refresh()
            return
        else:
            ttl = float(self.ttl.value)
        self._apply(lambda: self.panel.runtime.update_region(self.name, ttl=ttl, forever=ttl is None),
                    f"{self.name}: ttl = {'forever' if ttl is None else ttl}")

    def _on_max_size(self, _: Any) -> None:
        size = int(self.max_size.value) or None
        self._apply(lambda: self.panel.runtime.update_region(self.name, max_size=size),
                    f"{self.name}: max_size = {size}")

    def _on_enabled(self, _: Any) -> None:
        self._apply(lambda: self.panel.runtime.update_region(self.name, enabled=bool(self.enabled.value)),
                    f"{self.name}: {'enabled' if self.enabled.value else 'disabled'}")

    def refresh(self) -> None:
        """Show the live policy again (after a rejected edit or a change made elsewhere)."""
        policy = self.panel.runtime.region(self.name).policy
        for widget, value in ((self.ttl, policy.ttl or 0.0), (self.forever, policy.ttl is None),
                              (self.max_size, policy.max_size or 0), (self.enabled, policy.enabled)):
            with widget.hold_trait_notifications():
                widget.unobserve_all("value")
                widget.value = value
        self.ttl.observe(self._on_ttl, names="value")
        self.forever.observe(self._on_ttl, names="value")
        self.max_size.observe(self._on_max_size, names="value")
        self.enabled.observe(self._on_enabled, names="value")


class TuningPanel(widgets.VBox):  # type: ignore[misc]
    """An ipywidgets panel over a live :class:`~cachekit.Runtime`.

    ``panel.region_controls[name].ttl`` is that region's TTL widget: changing its value changes
    the live region. The invalidation box previews (dry run) and runs ``runtime.invalidate``;
    **Save** writes the tuned config back to its TOML file, comments intact.
    """

    def __init__(self, runtime: Runtime | None = None) -> None:
        if runtime is None:
            from .facade import Cache

            runtime = Cache.runtime()
        self.runtime = runtime
        self.status = widgets.HTML()
        self.region_controls: dict[str, RegionControls] = {
            name: RegionControls(self, name) for name in sorted(runtime.regions())
        }
        self.pattern = widgets.Text(placeholder="user:*", description="pattern")
        self.tags = widgets.Text(placeholder="users, active", description="tags")
        self.target = widgets.Dropdown(options=["(all regions)", *sorted(self.region_controls)],
                                       description="region")
        self.preview = widgets.Button(description="preview (dry run)")
        self.invalidate = widgets.Button(description="invalidate", button_style="warning")
        self.result = widgets.HTML()
        self.preview.on_click(lambda _: self._invalidate(dry_run=True))
        self.invalidate.on_click(lambda _: self._invalidate(dry_run=False))
        self.save = widgets.Button(description="save to TOML", button_style="primary")
        self.save.on_click(lambda _: self._save())
        self.refresh = widgets.Button(description="refresh stats")
        self.refresh.on_click(lambda _: self.refresh_stats())
        self.table = widgets.HTML()
        super().__init__([
            widgets.HTML("<h4>Regions</h4>"),
            *(c.row for c in self.region_controls.values()),
            widgets.HTML("<h4>Invalidate</h4>"),
            widgets.HBox([self.pattern, self.tags, self.target]),
            widgets.HBox([self.preview, self.invalidate]),
            self.result,
            widgets.HTML("<h4>Statistics</h4>"),
            widgets.HBox([self.refresh, self.save]),
            self.table,
            self.status,
        ])
        self.refresh_stats()

    def say(self, message: str, *, error: bool = False) -> None:
        color = "#b00020" if error else "#1b5e20"
        self.status.value = f'<span style="color:{color}">{html.escape(message)}</span>'

    def refresh_stats(self) -> None:
        """Redraw the stats table and each region's hit ratio label."""
        rows = {row["region"]: row for row in self.runtime.stats.rows()}
        for name, controls in self.region_controls.items():
            row = rows.get(name)
            if row is not None:
                ratio = row["hit_ratio"]
                shown = "-" if ratio != ratio else f"{ratio:.0%}"
                controls.stats.value = f"<small>hits {row['hits']} · misses {row['misses']} · ratio {shown}</small>"
        cells = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(row[c]))}</td>" for c in _COLUMNS) + "</tr>"
            for row in rows.values()
        )
        head = "".join(f"<th>{c}</th>" for c in _COLUMNS)
        self.table.value = f"<table><tr>{head}</tr>{cells}</table>"

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
        parts = [f"{html.escape(r)}: {len(keys)} key(s) {html.escape(', '.join(keys[:20]))}"
                 for r, keys in result.keys.items() if keys]
        parts += [f"{html.escape(r)}: generation of {html.escape(', '.join(g))} advanced"
                  for r, g in result.generations.items() if g]
        self.result.value = f"<b>{verb}</b><br>" + ("<br>".join(parts) or "nothing")
        self.say(f"{verb} {result.count} item(s)")
        if not dry_run:
            self.refresh_stats()

    def _save(self) -> None:
        try:
            path = self.runtime.save()
        except (CacheError, ValueError, OSError) as exc:
            self.say(f"not saved: {exc}", error=True)
            return
        self.say(f"saved to {path}")


_COLUMNS = ("region", "provider", "hits", "misses", "hit_ratio", "sets", "deletes", "errors", "evictions")
