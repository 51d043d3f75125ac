"""Prometheus: a custom collector over ``runtime.stats`` (``pip install 'cachekit-config[prometheus]'``).

``register(runtime)`` adds it to a registry (default: prometheus-client's global one); ``render(runtime)``
is the text format ``GET /api/cache/metrics`` serves. Counters ``cachekit_<counter>_total{region,tier}``
(one per column of ``stats.to_frame(by="tier")`` but ``hit_ratio``) and a histogram
``cachekit_latency_seconds{region,op}`` from the recorders' latency buckets.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import require
from ..stats import TIER_COLUMNS

if TYPE_CHECKING:
    from ..runtime.runtime import Runtime

__all__ = ["COUNTERS", "CacheCollector", "register", "render"]

#: the exported counters (``cachekit_<name>_total``)
COUNTERS = tuple(c for c in TIER_COLUMNS if c != "hit_ratio")

_HELP = {
    "hits": "lookups that found a fresh entry", "misses": "lookups that found nothing",
    "sets": "successful writes", "deletes": "keys removed by forget or a pattern",
    "errors": "store failures", "evictions": "entries evicted past max_size",
    "expirations": "entries found expired and dropped", "loads": "remember callbacks run",
    "load_failures": "remember callbacks that raised", "stale_hits": "stale values served",
    "invalidations": "invalidations by tag, pattern, rule, flush or event",
}


class CacheCollector:
    """Reads ``runtime.stats`` at every scrape (nothing is copied between scrapes)."""

    def __init__(self, runtime: Runtime) -> None:
        require("prometheus_client", "prometheus")
        self.runtime = runtime

    def describe(self) -> list[Any]:
        return []  # unchecked collector: the metric names are only known at scrape time

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

        recorders = self.runtime.stats.recorders()
        for name in COUNTERS:
            family = CounterMetricFamily(f"cachekit_{name}", _HELP[name], labels=["region", "tier"])
            for st in recorders:
                for row in st.tiers():
                    family.add_metric([row["region"], row["tier"]], row[name])
            yield family
        latency = HistogramMetricFamily("cachekit_latency_seconds", "latency of timed operations",
                                        labels=["region", "op"])
        for st in recorders:
            for op, h in sorted(st.latency.items()):
                buckets = [(repr(upper / 1e6), float(n)) for upper, n in h.cumulative()]
                buckets.append(("+Inf", float(h.count)))
                latency.add_metric([st.region, op], buckets, h.total / 1e6)
        yield latency


def register(runtime: Runtime, registry: Any = None) -> CacheCollector:
    """Add a :class:`CacheCollector` of ``runtime`` to ``registry`` (default: the global ``REGISTRY``)."""
    prometheus_client = require("prometheus_client", "prometheus")
    collector = CacheCollector(runtime)
    (registry if registry is not None else prometheus_client.REGISTRY).register(collector)
    return collector


def render(runtime: Runtime) -> tuple[bytes, str]:
    """``(body, content type)``: the Prometheus text format of ``runtime``'s stats alone."""
    prometheus_client = require("prometheus_client", "prometheus")
    registry = prometheus_client.CollectorRegistry(auto_describe=False)
    registry.register(CacheCollector(runtime))
    return prometheus_client.generate_latest(registry), prometheus_client.CONTENT_TYPE_LATEST
