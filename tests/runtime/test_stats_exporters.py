"""Issue 13 item 2: the Prometheus collector and route, the OpenTelemetry bridge."""

from __future__ import annotations

from typing import Any

import pytest
from servers import need_module

from cachekit import CacheConfig, FakeClock, Runtime

prometheus_client = need_module("prometheus_client")


def workload() -> Runtime:
    rt = CacheConfig(providers={"local": {"type": "memory"}},
                     regions={"r": {"provider": "memory", "l1": {"provider": "local", "ttl": 30}}}
                     ).compile(clock=FakeClock(1000.0))
    r = rt.region("r")
    r.put("k", 1)
    r.get("k")                    # L1 hit
    r.l1.driver.flush()  # type: ignore[union-attr]
    r.get("k")                    # L2 hit
    r.get("absent")               # miss
    return rt


def test_prometheus_collector_exports_counters_per_tier_and_latency_histograms() -> None:
    from cachekit.exporters.prometheus import register

    rt = workload()
    try:
        registry = prometheus_client.CollectorRegistry()
        register(rt, registry)
        value = registry.get_sample_value
        assert value("cachekit_hits_total", {"region": "r", "tier": "l1"}) == 1
        assert value("cachekit_hits_total", {"region": "r", "tier": "l2"}) == 1
        assert value("cachekit_misses_total", {"region": "r", "tier": "l2"}) == 1
        assert value("cachekit_sets_total", {"region": "r", "tier": "l2"}) == 1
        assert value("cachekit_latency_seconds_count", {"region": "r", "op": "get"}) == 2
        assert value("cachekit_latency_seconds_bucket", {"region": "r", "op": "get", "le": "+Inf"}) == 2
        rt.region("r").get("absent")
        assert value("cachekit_misses_total", {"region": "r", "tier": "l2"}) == 2  # read at scrape time
        text = prometheus_client.generate_latest(registry).decode()
        assert 'cachekit_hits_total{region="r",tier="l1"} 1.0' in text
    finally:
        rt.close()


def test_metrics_route_serves_the_text_format_behind_the_data_token() -> None:
    import warnings

    need_module("fastapi")
    need_module("httpx")
    with warnings.catch_warnings():  # as tests/test_http.py: starlette asks for httpx2, httpx still works
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient

    from cachekit.http import create_app

    rt = workload()
    try:
        client = TestClient(create_app(rt, token="data-secret"))
        assert client.get("/api/cache/metrics").status_code == 401
        got = client.get("/api/cache/metrics", headers={"Authorization": "Bearer data-secret"})
        assert got.status_code == 200 and got.headers["content-type"].startswith("text/plain")
        assert 'cachekit_misses_total{region="r",tier="l2"} 1.0' in got.text
    finally:
        rt.close()


def test_otel_bridge_observes_the_same_counters() -> None:
    need_module("opentelemetry.sdk")
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from cachekit.exporters.otel import register

    rt = workload()
    try:
        reader = InMemoryMetricReader()
        provider = MeterProvider(metric_readers=[reader])
        register(rt, provider)
        points: dict[tuple[str, Any], float] = {}
        for rm in reader.get_metrics_data().resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    for p in metric.data.data_points:
                        points[(metric.name, tuple(sorted(p.attributes.items())))] = p.value
        assert points[("cachekit.hits", (("region", "r"), ("tier", "l1")))] == 1
        assert points[("cachekit.misses", (("region", "r"), ("tier", "l2")))] == 1
        assert points[("cachekit.latency", (("op", "get"), ("region", "r"), ("stat", "max")))] > 0
        provider.shutdown()
    finally:
        rt.close()


def test_snapshot_round_trips_through_json_unchanged() -> None:
    import json

    rt = workload()
    try:
        snap = rt.stats.snapshot()
        assert json.loads(json.dumps(snap)) == snap
    finally:
        rt.close()


@pytest.mark.parametrize("module", ["cachekit.exporters.prometheus", "cachekit.exporters.otel"])
def test_exporter_modules_import_without_their_extra(module: str) -> None:
    import importlib

    assert importlib.import_module(module).register
