"""The tuning panel's Invalidate tab: invalidate by pattern, tags or region (with a dry-run preview) and
fire an event (its ``event_based`` rules, previewed or for real). A mixin of
:class:`~cachekit.notebook.TuningPanel`: it builds ``panel.pattern``, ``panel.tags``, ``panel.target``,
``panel.preview``, ``panel.invalidate``, ``panel.event``, ``panel.event_params``, ``panel.event_preview``,
``panel.emit`` and ``panel.result``; each button calls ``Runtime.invalidate`` or ``Runtime.emit``."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from .config.models import EventBasedRule
from .errors import CacheError, require
from .notebook_format import describe_result
from .runtime.runtime import Runtime

widgets: Any = require("ipywidgets", "notebook")

__all__ = ["InvalidateSection"]


class InvalidateSection:
    """The Invalidate tab (a mixin: the panel provides ``runtime``, ``say`` and ``refresh_stats``)."""

    runtime: Runtime
    say: Callable[..., None]
    refresh_stats: Callable[[], None]

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
        self.result.value = f"<b>{verb}</b><br>" + (describe_result(result) or "nothing")
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
        self.result.value = f"<b>{html.escape(event)}: removed</b><br>" + (describe_result(result) or "nothing")
        self.say(f"{event}: removed {result.count:,} item(s)")
        self.refresh_stats()
