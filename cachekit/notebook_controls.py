"""The tuning panel's rows of controls: one :class:`RegionControls` per region (TTL, max size, L1 TTL,
``stale_ttl``, enabled, flush) and one :class:`RuleControls` per invalidation rule (enabled, TTL, pattern).
Each widget's handler changes the live runtime (``Runtime.update_region`` / ``Runtime.edit()``) and says
what happened on the panel's status line; ``refresh()`` shows the live values again without writing back.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .config.models import EventBasedRule, TimeBasedRule
from .errors import CacheError, require

if TYPE_CHECKING:
    from .notebook import TuningPanel

widgets: Any = require("ipywidgets", "notebook")

__all__ = ["MAX_TTL", "STYLE", "RegionControls", "RuleControls", "set_quietly"]

STYLE = {"description_width": "64px"}
MAX_TTL = 10 * 365 * 86400.0


def set_quietly(widget: Any, value: Any, handler: Callable[[Any], None] | None) -> None:
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
    """What both rows share: apply a change to the live runtime, or say why not and show the live value."""

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
        self.ttl = widgets.BoundedFloatText(value=policy.ttl or 0.0, min=0.0, max=MAX_TTL, step=1.0,
                                            description="TTL (s)", style=STYLE, layout=small)
        self.forever = widgets.Checkbox(value=policy.ttl is None, description="forever", indent=False,
                                        layout=widgets.Layout(width="75px"))
        self.max_size = widgets.BoundedIntText(value=1, min=1, max=2**62, description="max size", style=STYLE,
                                               layout=widgets.Layout(width="190px"))
        self.l1_ttl = widgets.BoundedFloatText(value=0.0, min=0.0, max=MAX_TTL, step=1.0, description="L1 TTL",
                                               style=STYLE, layout=small)
        self.stale_ttl = widgets.BoundedFloatText(value=0.0, min=0.0, max=MAX_TTL, step=1.0,
                                                  description="stale (s)", style=STYLE, layout=small)
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
        set_quietly(self.ttl, policy.ttl or 0.0, self._on_ttl)
        set_quietly(self.forever, policy.ttl is None, self._on_ttl)
        set_quietly(self.max_size, size if size is not None else 1, self._on_max_size)
        self.max_size.disabled = size is None
        self.max_size.tooltip = ("bounded by the store itself (not enforced by cachekit)" if size is None
                                 else "entries before eviction")
        set_quietly(self.l1_ttl, float(rc.l1.ttl or 0.0) if has_l1 and rc is not None and rc.l1 is not None
                  else 0.0, self._on_l1_ttl)
        self.l1_ttl.disabled = not has_l1
        set_quietly(self.stale_ttl, float(policy.stale_ttl or 0.0), self._on_stale_ttl)
        set_quietly(self.enabled, bool(rc.enabled if rc is not None else policy.enabled), self._on_enabled)
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
        self.ttl = widgets.BoundedFloatText(value=float(getattr(rule, "ttl", 0.0) or 0.0), min=0.0, max=MAX_TTL,
                                            step=1.0, description="TTL (s)", style=STYLE,
                                            disabled=not isinstance(rule, TimeBasedRule),
                                            layout=widgets.Layout(width="170px"))
        self.pattern = widgets.Text(value=rule.pattern or "", description="pattern", style=STYLE,
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
        set_quietly(self.enabled, rule.enabled, self._on_enabled)
        set_quietly(self.ttl, float(getattr(rule, "ttl", 0.0) or 0.0), self._on_ttl)
        set_quietly(self.pattern, rule.pattern or "", self._on_pattern)
        where = ", ".join(rule.regions) or "all regions"
        extra = f" · on {', '.join(rule.events)}" if isinstance(rule, EventBasedRule) else ""
        self.label.value = (f"<b>{html.escape(rule.name)}</b><br><small style='color:#666'>"
                            f"{html.escape(rule.strategy)} · {html.escape(where)}{html.escape(extra)}</small>")
