"""The tuning panel's What-if tab: with a captured trace, moving a size or TTL control shows the
simulator's predicted hit ratio beside the current one *before* anything is applied; **apply** then
changes the live region. Also :func:`capture_trace`, the way a notebook records the trace. A mixin of
:class:`~cachekit.notebook.TuningPanel` (``panel.whatif_region``, ``panel.whatif_max_size``,
``panel.whatif_ttl``, ``panel.whatif_result``, ``panel.whatif_apply``, ``panel.predict()``)."""

from __future__ import annotations

import html
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .errors import require
from .notebook_controls import MAX_TTL, STYLE, RegionControls
from .notebook_format import fmt_count, fmt_ratio
from .runtime.runtime import Runtime

widgets: Any = require("ipywidgets", "notebook")

__all__ = ["WhatIfSection", "capture_trace"]


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


class WhatIfSection:
    """The What-if tab (a mixin: the panel provides ``runtime`` and ``region_controls``)."""

    runtime: Runtime
    region_controls: dict[str, RegionControls]

    def _build_whatif(self, trace: Any) -> None:
        self.trace = trace
        self.whatif_region = widgets.Dropdown(options=[], description="region")
        self.whatif_max_size = widgets.BoundedIntText(value=1, min=1, max=2**62, description="max size",
                                                      style=STYLE)
        self.whatif_ttl = widgets.BoundedFloatText(value=60.0, min=0.001, max=MAX_TTL, description="TTL (s)",
                                                   style=STYLE)
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
        self.whatif_ttl.value = policy.ttl or MAX_TTL
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
