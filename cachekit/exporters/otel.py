"""OpenTelemetry metrics: observable instruments over ``runtime.stats`` (``pip install 'cachekit-config[otel]'``).

``register(runtime, meter_provider=None)`` creates, on the meter ``cachekit``, one observable counter
``cachekit.<counter>`` per counter of ``stats.to_frame(by="tier")`` (attributes ``region``, ``tier``) and
an observable gauge ``cachekit.latency`` (µs; attributes ``region``, ``op``, ``stat`` in mean / p50 /
p90 / p99 / max). The SDK's reader calls them at each collection: nothing runs on the cache's path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..errors import require
from .prometheus import COUNTERS

if TYPE_CHECKING:
    from ..runtime.runtime import Runtime

__all__ = ["register"]


def register(runtime: Runtime, meter_provider: Any = None) -> list[Any]:
    """Create the instruments; returns them."""
    metrics = require("opentelemetry.metrics", "otel")
    provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
    meter = provider.get_meter("cachekit")

    def counter(name: str) -> Callable[[Any], Iterable[Any]]:
        def observe(options: Any) -> Iterable[Any]:
            return [metrics.Observation(row[name], {"region": row["region"], "tier": row["tier"]})
                    for st in runtime.stats.recorders() for row in st.tiers()]
        return observe

    def latency(options: Any) -> Iterable[Any]:
        out = []
        for st in runtime.stats.recorders():
            for op, h in st.latency.items():
                for stat, value in h.as_dict().items():
                    if stat != "count":
                        out.append(metrics.Observation(value, {"region": st.region, "op": op,
                                                               "stat": stat.removesuffix("_us")}))
        return out

    made = [meter.create_observable_counter(f"cachekit.{name}", callbacks=[counter(name)], unit="1")
            for name in COUNTERS]
    made.append(meter.create_observable_gauge("cachekit.latency", callbacks=[latency], unit="us"))
    return made
