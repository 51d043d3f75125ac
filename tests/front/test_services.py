"""Seed 003 services: the Result-style async API, imported from cachekit."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fake_db import AsyncFakeDB

from cachekit import (
    Cache,
    CacheConfig,
    CacheProviderId,
    CacheStatsType,
    Result,
    Runtime,
    delete_cache_item,
    get_cache_configuration_service,
    get_cache_item,
    get_cache_monitoring_service,
    get_cache_provider_service,
    get_cache_region_service,
    get_caching_dependencies,
    get_invalidation_rule_service,
    load,
    set_cache_item,
)
from cachekit.services import CacheItem, CacheItemService, CacheRegionService

DOC = Path(__file__).resolve().parents[2] / "docs" / "services.md"


pytestmark = pytest.mark.usefixtures("fake")  # a fresh fake runtime bound to Cache (conftest)


# -- the seed, as written ------------------------------------------------------------------------


async def test_seed_basic_caching_operations() -> None:
    db = AsyncFakeDB()

    async def handler() -> dict[str, Any]:
        # Get an item from the cache
        result = await get_cache_item("user:123")
        if result.is_success() and result.value:
            user = result.value.value
        else:
            # Cache miss - fetch from database
            user = await db.get_user(123)
            # Store in cache with a TTL of 300 seconds
            await set_cache_item("user:123", user, ttl_seconds=300)
        return user

    assert await handler() == {"id": 123, "name": "Ada"}
    assert await handler() == {"id": 123, "name": "Ada"}
    assert db.calls == [("get_user", 123)]

    # Delete an item from the cache
    await delete_cache_item("user:123")
    assert (await get_cache_item("user:123")).value is None


async def test_seed_working_with_cache_regions(fake: Runtime) -> None:
    user_data = {"name": "Ada"}

    # Create a cache provider
    provider_service = await get_cache_provider_service()
    provider_result = await provider_service.register_provider(
        name="redis-provider",
        provider_type="redis",
        connection_details={"host": "localhost", "port": 6379}
    )

    # Create a cache region
    region_service = await get_cache_region_service()
    region_result = await region_service.create_region(
        name="user-profiles",
        provider_id=provider_result.value.id,
        ttl=600,  # 10 minutes
        max_size=10000
    )

    # Use the region for caching
    await set_cache_item("user:123", user_data, region_name="user-profiles")
    result = await get_cache_item("user:123", region_name="user-profiles")

    assert provider_result.is_success() and region_result.is_success()
    assert provider_result.value.id == CacheProviderId("redis-provider")
    assert region_result.value.provider_id == "redis-provider" and region_result.value.ttl == 600
    assert result.value.value == user_data and result.value.region == "user-profiles"
    assert result.value.ttl == pytest.approx(600)
    redis = fake.config.providers["redis-provider"]
    assert (redis.type, redis.host, redis.port) == ("redis", "localhost", 6379)
    assert fake.region("user-profiles").policy.ttl == 600
    assert fake.region("user-profiles").provider == "redis-provider"
    assert Cache.get("user:123") is None  # the default region is another namespace


async def test_seed_invalidation_rules(fake: Runtime) -> None:
    rule_service = await get_invalidation_rule_service()

    # Create a pattern-based invalidation rule
    await rule_service.create_rule(
        name="user-data-rule",
        strategy_type="pattern_based",
        pattern="user:*"
    )

    # Create an event-based invalidation rule
    await rule_service.create_rule(
        name="user-update-rule",
        strategy_type="event_based",
        events=["user_updated", "user_profile_changed"]
    )

    # Find rules that match a key
    result = await rule_service.find_matching_rules("user:123")
    matching_rules = result.value if result.is_success() else []

    assert [r.name for r in matching_rules] == ["user-data-rule"]
    assert [r.name for r in fake.config.rules] == ["user-data-rule", "user-update-rule"]
    # the pattern rule invalidates in O(1); the event rule (no target named) invalidates nothing
    Cache.put("user:1", "a")
    Cache.put("post:1", "p")
    fake.invalidate(pattern="user:*")
    assert not Cache.has("user:1") and Cache.has("post:1")
    Cache.put("user:1", "b")
    Cache.emit("user_updated", user_id=1)
    assert Cache.has("post:1") and Cache.has("user:1")


async def test_an_event_rule_without_a_target_warns_and_invalidates_nothing(fake: Runtime) -> None:
    rule_service = await get_invalidation_rule_service()
    created = await rule_service.create_rule(name="r", strategy_type="event_based", events=["e"])
    assert created.is_success() and created.value is not None
    assert len(created.warnings) == 1 and "invalidates nothing" in created.warnings[0]
    assert fake.config.rules[0].flush_regions is False
    Cache.put("k", 1)
    assert fake.emit("e").count == 0 and Cache.get("k") == 1
    # flushing regions is explicit
    updated = await rule_service.update_rule("r", {"flush_regions": True})
    assert updated.is_success() and updated.warnings == ()
    fake.emit("e")
    assert not Cache.has("k")


async def test_seed_cache_configuration(fake: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    config_service = await get_cache_configuration_service()

    # Enable multi-level caching
    await config_service.enable_multi_level()

    # Configure a region
    await config_service.add_region_config("api-responses", {
        "ttl": 120,  # 2 minutes
        "max_size": 5000,
        "invalidation_strategy": "time_based"
    })

    # Get the current configuration
    config_result = await config_service.get_active_configuration()
    if config_result.is_success():
        config = config_result.value
        print(f"Caching enabled: {config.enabled}")
        print(f"Multi-level caching: {config.use_multi_level}")

    assert capsys.readouterr().out == "Caching enabled: True\nMulti-level caching: True\n"
    assert fake.region("api-responses").policy.ttl == 120
    assert fake.config.regions["api-responses"].invalidation_strategy == "time_based"


async def test_seed_monitoring(fake: Runtime) -> None:
    monitoring_service = await get_cache_monitoring_service()

    # Record a cache hit
    await monitoring_service.record_statistic(
        provider_id=CacheProviderId("memory"),
        stat_type=CacheStatsType.HIT,
        value=1
    )

    # Get provider statistics
    stats_result = await monitoring_service.get_provider_statistics(
        provider_id=CacheProviderId("memory"),
        start_time=datetime.now() - timedelta(hours=1)
    )

    # Get a summary of provider statistics
    summary_result = await monitoring_service.get_provider_summary(
        provider_id=CacheProviderId("memory")
    )

    assert [(s.stat_type, s.value) for s in stats_result.value] == [(CacheStatsType.HIT, 1.0)]
    assert summary_result.value.hits == 1 and summary_result.value.recorded == {"hit": 1.0}


# -- Result -----------------------------------------------------------------------------------------


def test_result_ok_and_fail() -> None:
    ok = Result.ok(5)
    assert ok.is_success() and not ok.is_failure() and ok.unwrap() == 5 and ok.error is None
    bad = Result.fail(ValueError("nope"), code="invalid")
    assert bad.is_failure() and bad.error == "ValueError: nope" and bad.code == "invalid"
    assert bad.value_or(1) == 1
    with pytest.raises(Exception, match="nope"):
        bad.unwrap()


def test_provider_id_is_a_string() -> None:
    pid = CacheProviderId("memory")
    assert pid == "memory" and isinstance(pid, str) and repr(pid) == "CacheProviderId('memory')"


# -- items ------------------------------------------------------------------------------------------


async def test_cached_none_is_a_hit_with_a_value_of_none() -> None:
    await set_cache_item("nothing", None)
    result = await get_cache_item("nothing")
    assert isinstance(result.value, CacheItem) and result.value.value is None


async def test_item_expiry_follows_the_runtime_clock(fake: Runtime) -> None:
    stored = await set_cache_item("k", "v", ttl_seconds=10)
    assert stored.value.ttl == 10
    fake.clock.advance(4)
    item = (await get_cache_item("k")).value
    assert item.ttl == pytest.approx(6) and item.expires_at == stored.value.expires_at
    fake.clock.advance(7)
    assert (await get_cache_item("k")).value is None


async def test_forever_items_have_no_expiry() -> None:
    Cache.forever("k", 1)
    item = (await get_cache_item("k")).value
    assert item.expires_at is None and item.ttl is None


async def test_item_tags_clear_and_pattern_invalidation() -> None:
    service = CacheItemService()
    await service.set_item("user:1", "a", tags=["users"])
    await service.set_item("user:2", "b")
    await service.set_item("post:1", "p", region_name="posts")
    Cache.tags(["users"]).flush()
    assert (await service.get_item("user:1")).value is None
    invalidated = await service.invalidate_pattern("user:*")
    assert "user:2" in invalidated.value["keys"]["default"]
    assert (await service.get_item("user:2")).value is None
    cleared = await service.clear("posts")
    assert cleared.value["regions"] == ["posts"]
    assert (await service.has_item("post:1", "posts")).value is False
    assert (await service.delete_item("absent")).value is False


async def test_item_failures_are_results_not_exceptions(fake: Runtime) -> None:
    bad_ttl = await set_cache_item("k", 1, ttl_seconds=-5)
    assert bad_ttl.is_failure() and bad_ttl.code == "invalid" and "greater than 0" in bad_ttl.error
    bad_key = await set_cache_item("", 1)
    assert bad_key.is_failure() and "empty" in bad_key.error
    bad_region = await get_cache_item("k", region_name="a:b")
    assert bad_region.is_failure() and "invalid region name" in bad_region.error
    fake.config.cache.strict = True
    unknown = await get_cache_item("k", region_name="nope")
    assert unknown.is_failure() and unknown.code == "not_found"


async def test_disabled_caching_reads_miss_and_writes_fail_until_enabled() -> None:
    config = await get_cache_configuration_service()
    await set_cache_item("k", 1)
    assert (await config.disable()).value.enabled is False
    assert (await get_cache_item("k")).value is None
    refused = await set_cache_item("k", 2)
    assert refused.is_failure() and refused.code == "disabled"
    await config.enable()
    assert (await get_cache_item("k")).value.value == 1


# -- providers ---------------------------------------------------------------------------------------


async def test_connection_details_map_onto_provider_fields(fake: Runtime) -> None:
    service = await get_cache_provider_service()
    mc = await service.register_provider("mc", "memcached", {"host": "10.0.0.5", "port": 11311})
    assert mc.value.connection_details == {"servers": ["10.0.0.5:11311"]}
    url = await service.register_provider("r", "redis", {"url": "redis://cache:6379/2", "password": "pw"})
    assert fake.config.providers["r"].url.get_secret_value() == "redis://cache:6379/2"
    assert url.value.connection_details["password"] == "**********"
    assert url.value.settings["password"] == "**********"
    assert (await service.register_provider("disk", "file", {"directory": "/tmp/x"})).is_success()
    assert fake.config.providers["disk"].path == "/tmp/x"


async def test_provider_crud_and_its_failures(fake: Runtime) -> None:
    service = await get_cache_provider_service()
    created = await service.register_provider("local", "memory", max_size=100)
    assert created.value.settings["max_size"] == 100
    duplicate = await service.register_provider("local", "memory")
    assert duplicate.code == "conflict"
    bad = await service.register_provider("bad", "redis", {"port": 0, "hots": "x"})
    assert bad.code == "invalid"
    assert "providers.bad.port" in bad.error and "did you mean 'host'" in bad.error
    assert "bad" not in fake.config.providers

    updated = await service.update_provider("local", {"max_size": 5})
    assert updated.value.settings["max_size"] == 5
    assert (await service.get_provider("local")).value.provider_type == "memory"
    assert (await service.get_provider("nope")).code == "not_found"
    names = [p.id for p in (await service.list_providers()).value]
    assert names == ["local", "memory"]

    regions = await get_cache_region_service()
    await regions.create_region("r1", provider_id="local")
    in_use = await service.delete_provider("local")
    assert in_use.code == "conflict" and "r1" in in_use.error
    await regions.delete_region("r1")
    assert (await service.delete_provider("local")).value is True
    assert "local" not in fake.config.providers
    assert (await service.delete_provider("memory")).code == "not_found"


# -- regions -----------------------------------------------------------------------------------------


async def test_region_updates_apply_live(fake: Runtime) -> None:
    service = await get_cache_region_service()
    await service.create_region("sessions", ttl=60)
    Cache.region("sessions").put("s", 1)
    updated = await service.update_region("sessions", ttl=5)
    assert updated.value.ttl == 5 and fake.config.regions["sessions"].ttl == 5
    Cache.region("sessions").put("s2", 2)
    fake.clock.advance(6)
    assert Cache.region("sessions").get("s2") is None
    assert Cache.region("sessions").get("s") == 1  # written under the old TTL of 60


async def test_region_failures_leave_the_config_unchanged(fake: Runtime) -> None:
    service = CacheRegionService()
    before = fake.config.model_dump()
    assert (await service.create_region("x", provider_id="nope")).code == "invalid"
    assert (await service.create_region("bad:name")).code == "invalid"
    assert (await service.create_region("y", ttl=-1)).code == "invalid"
    await service.create_region("z")
    assert (await service.create_region("z")).code == "conflict"
    assert (await service.update_region("z", ttl=0)).code == "invalid"
    assert (await service.get_region("missing")).code == "not_found"
    assert (await service.delete_region("missing")).code == "not_found"
    await service.delete_region("z")
    assert fake.config.model_dump() == before


async def test_listing_regions_includes_regions_in_use_without_declaration(fake: Runtime) -> None:
    service = await get_cache_region_service()
    await service.create_region("declared")
    Cache.region("adhoc").put("k", 1)
    listed = {r.id: r for r in (await service.list_regions()).value}
    assert listed["declared"].declared and not listed["adhoc"].declared
    assert listed["adhoc"].stats["sets"] == 1
    assert listed["adhoc"].stats["hit_ratio"] is None  # no lookups yet: not NaN


# -- rules -------------------------------------------------------------------------------------------


async def test_rule_crud(fake: Runtime) -> None:
    service = await get_invalidation_rule_service()
    created = await service.create_rule("short-sessions", "time_based", pattern="session:*", ttl=30)
    assert created.value.ttl == 30 and created.value.strategy_type == "time_based"
    Cache.put("session:1", "x")
    fake.clock.advance(31)
    assert not Cache.has("session:1")  # the time_based rule applies live

    assert (await service.create_rule("short-sessions", "time_based", ttl=1)).code == "conflict"
    assert (await service.create_rule("r", "timed")).code == "invalid"
    assert "did you mean 'time_based'" in (await service.create_rule("r", "timed")).error
    assert (await service.create_rule("r", "time_based")).code == "invalid"  # no ttl
    assert (await service.update_rule("short-sessions", ttl=60)).value.ttl == 60
    assert (await service.get_rule("short-sessions")).value.pattern == "session:*"
    assert (await service.get_rule("nope")).code == "not_found"
    assert [r.name for r in (await service.list_rules("time")).value] == ["short-sessions"]
    await service.create_rule("on-login", "event_based", events="login", pattern="user:{user_id}")
    assert [r.name for r in (await service.get_rules_for_event("login")).value] == ["on-login"]
    matched = await service.find_matching_rules("user:42")
    assert [r.name for r in matched.value] == ["on-login"]
    assert (await service.delete_rule("on-login")).value is True
    assert [r.name for r in fake.config.rules] == ["short-sessions"]


# -- configuration -----------------------------------------------------------------------------------


async def test_update_configuration_is_all_or_nothing(fake: Runtime) -> None:
    service = await get_cache_configuration_service()
    before = fake.config.model_dump()
    failed = await service.update_configuration({"default_ttl": 60, "regions": {"api": {"ttl": -1}}})
    assert failed.code == "invalid" and "regions.api.ttl" in failed.error
    assert fake.config.model_dump() == before
    unknown = await service.update_configuration({"enabledd": True})
    assert unknown.code == "invalid" and "did you mean 'enabled'" in unknown.error
    prefix = await service.update_configuration({"prefix": "other"})
    assert prefix.is_failure() and "cannot change on a live runtime" in prefix.error

    ok = await service.update_configuration({
        "use_multi_level": False, "default_ttl": 60,
        "providers": {"local": {"type": "memory", "max_size": 10}},
        "regions": {"api": {"ttl": 10, "provider": "local"}},
        "rules": [{"name": "r", "strategy_type": "pattern_based", "pattern": "x:*"}],
        "http": {"token": "secret-token"},
    })
    assert ok.is_success(), ok.error
    assert ok.value.use_multi_level is False and ok.value.default_ttl == 60
    assert fake.region("api").provider == "local" and fake.region("api").policy.ttl == 10
    assert ok.value.config["http"]["token"] == "**********"
    assert fake.config.http.token.get_secret_value() == "secret-token"
    again = await service.update_configuration({"rules": [{"name": "r", "pattern": "y:*"}]})
    assert again.is_success() and fake.config.rules[0].pattern == "y:*"


async def test_configuration_save_writes_the_edited_config_back(tmp_path: Path) -> None:
    path = tmp_path / "cachekit.toml"
    path.write_text('# my cache\n[cache]\nprefix = "app"  # namespace\n\n[regions.users]\nttl = 60\n')
    runtime = Cache.configure(load(path))
    regions = await get_cache_region_service()
    await regions.update_region("users", ttl=120)
    await regions.create_region("sessions", ttl=30)
    saved = await (await get_cache_configuration_service()).save()
    assert saved.value == str(path)
    text = path.read_text()
    assert "# my cache" in text and "# namespace" in text
    reloaded = load(path)
    assert reloaded.config.regions["sessions"].ttl == 30 and reloaded.config.regions["users"].ttl == 120
    reloaded.close()
    assert runtime.config.regions["users"].ttl == 120
    assert "120" in text and "[regions.sessions]" in text
    runtime.close()


async def test_save_without_a_file_is_a_failure() -> None:
    result = await (await get_cache_configuration_service()).save()
    assert result.is_failure() and "no file" in result.error


# -- monitoring ----------------------------------------------------------------------------------------


async def test_statistics_filter_by_time_with_the_fake_clock(fake: Runtime) -> None:
    service = await get_cache_monitoring_service()
    await service.record_statistic("memory", CacheStatsType.MISS, 3)
    fake.clock.advance(7200)
    await service.record_statistic("memory", "hit")
    await service.record_statistic("memory", "LATENCY", 4.0)
    await service.record_statistic("memory", CacheStatsType.LATENCY, 2.0)
    start = datetime.fromtimestamp(fake.clock.now()) - timedelta(hours=1)  # naive local time
    recent = await service.get_provider_statistics("memory", start_time=start)
    assert [s.stat_type for s in recent.value] == ["hit", "latency", "latency"]
    everything = await service.get_provider_statistics("memory", stat_type="miss")
    assert [s.value for s in everything.value] == [3.0]
    summary = (await service.get_provider_summary("memory")).value
    assert summary.average_latency == 3.0 and summary.misses == 3 and summary.hits == 1


async def test_summary_adds_live_counters_of_the_providers_regions() -> None:
    Cache.put("a", 1)
    Cache.get("a")
    Cache.get("a")
    Cache.get("missing")
    service = await get_cache_monitoring_service()
    await service.record_statistic(CacheProviderId("memory"), CacheStatsType.HIT, 2)
    summary = (await service.get_provider_summary(CacheProviderId("memory"))).value
    assert summary.live["hits"] == 2 and summary.live["misses"] == 1
    assert summary.hits == 4 and summary.misses == 1 and summary.hit_ratio == pytest.approx(0.8)
    assert summary.regions == ["default"]
    assert summary.to_dict()["provider_id"] == "memory"


async def test_the_seeds_memory_provider_reads_live_traffic_under_the_embedded_default(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from cachekit import load

    monkeypatch.chdir(tmp_path)  # the embedded default's file store writes under ./.cache
    runtime = Cache.configure(load(None))
    try:
        Cache.put("user:1", "ada")
        assert Cache.get("user:1") == "ada" and Cache.get("user:1") == "ada"
        assert Cache.get("user:2") is None
        service = await get_cache_monitoring_service()
        stats = (await service.get_provider_statistics(provider_id=CacheProviderId("memory"),
                                                       start_time=datetime.now() - timedelta(hours=1))).value
        live = {s.stat_type: s.value for s in stats if s.live}
        assert live[CacheStatsType.HIT] == 2 and live[CacheStatsType.MISS] == 1 and live[CacheStatsType.SET] == 1
        assert runtime.stats.to_frame().loc["default", "hits"] == 2  # the same counters
        summary = (await service.get_provider_summary(CacheProviderId("memory"))).value
        assert summary.hits == 2 and summary.regions == ["default"]
        # a window that ends before now holds no live totals
        past = await service.get_provider_statistics("memory", end_time=datetime.now() - timedelta(hours=1))
        assert past.value == []
    finally:
        Cache.fake()
        runtime.close()


async def test_monitoring_failures_are_results() -> None:
    service = await get_cache_monitoring_service()
    assert (await service.record_statistic("nope", "hit")).code == "not_found"
    bad_type = await service.record_statistic("memory", "hits!")
    assert bad_type.code == "invalid" and "known: hit, miss" in bad_type.error
    assert (await service.record_statistic("memory", "hit", float("nan"))).code == "invalid"
    assert (await service.get_provider_summary("nope")).code == "not_found"


async def test_items_on_a_redis_region(redis_server: Any) -> None:
    config = CacheConfig(providers={"r": {"type": "redis", "url": redis_server.url}},
                         regions={"shared": {"provider": "r", "ttl": 60}})
    runtime = Cache.configure(config.compile())
    try:
        stored = await set_cache_item("user:1", {"a": 1}, ttl_seconds=30, region_name="shared")
        assert stored.is_success(), stored.error
        item = (await get_cache_item("user:1", region_name="shared")).value
        assert item.value == {"a": 1} and 0 < item.ttl <= 30 and item.expires_at is not None
        assert redis_server.client().exists(f"{config.cache.prefix}:shared:user:1") == 1
        service = CacheItemService()
        assert (await service.invalidate_pattern("user:*", "shared")).value["keys"] == {"shared": ["user:1"]}
        assert (await get_cache_item("user:1", region_name="shared")).value is None
        await set_cache_item("user:2", None, region_name="shared")
        assert (await get_cache_item("user:2", region_name="shared")).value.value is None
        assert (await delete_cache_item("user:2", region_name="shared")).value is True
    finally:
        runtime.close()


# -- dependencies --------------------------------------------------------------------------------------


async def test_caching_dependencies_are_zero_argument_callables(fake: Runtime) -> None:
    deps = get_caching_dependencies()
    assert {"get_cache_item_service", "get_cache_provider_service", "get_cache_region_service",
            "get_invalidation_rule_service", "get_cache_configuration_service",
            "get_cache_monitoring_service", "get_cache_runtime"} <= set(deps)
    cache_service = await deps["get_cache_item_service"]()
    await cache_service.set_item("user:1", {"id": 1}, ttl_seconds=300)
    result = await cache_service.get_item("user:1")
    assert result.is_success() and result.value.value == {"id": 1}
    assert await deps["get_cache_runtime"]() is fake


def test_services_do_not_import_fastapi() -> None:
    code = ("import sys, cachekit; cachekit.get_caching_dependencies(); "
            "import cachekit.services; print('fastapi' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"


async def test_services_bound_to_a_runtime_ignore_the_facade() -> None:
    other = Runtime.fake()
    service = CacheItemService(other)
    await service.set_item("k", "v")
    assert other.region().get("k") == "v"
    Cache.assert_missing("k")
