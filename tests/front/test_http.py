"""Seed 003 HTTP API (``/api/cache``) and the FastAPI integration example, over TestClient."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import need_module

need_module("fastapi")
need_module("httpx")

from fastapi import Depends, FastAPI  # noqa: E402

with warnings.catch_warnings():
    # starlette asks for httpx2; the dev extra installs httpx, which still works.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient


from cachekit import Cache, CacheConfig, FakeClock, MissingExtraError, Runtime, get_caching_dependencies  # noqa: E402
from cachekit.config.models import RegionConfig  # noqa: E402
from cachekit.http import create_app, create_router  # noqa: E402

DOC = Path(__file__).resolve().parents[2] / "docs" / "http.md"
API = "/api/cache"
DATA_TOKEN, ADMIN_TOKEN = "data-token", "admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def declare(runtime: Runtime, *names: str) -> None:
    """Declare regions (``?region=`` names a declared region, or is a 404)."""
    for name in names:
        runtime.config.regions[name] = RegionConfig()
    runtime.apply()


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    rt = Cache.fake()
    yield rt
    Cache.reset()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    # the admin token may do everything the data token may
    with TestClient(create_app(runtime, token=DATA_TOKEN, admin_token=ADMIN_TOKEN), headers=ADMIN) as c:
        yield c


# -- providers, regions, rules ------------------------------------------------------------------


def test_provider_routes(client: TestClient, runtime: Runtime) -> None:
    created = client.post(f"{API}/providers", json={
        "name": "redis-provider", "provider_type": "redis",
        "connection_details": {"host": "localhost", "port": 6379}, "serializer": "json"})
    assert created.status_code == 201
    assert created.json()["id"] == "redis-provider"
    assert runtime.config.providers["redis-provider"].serializer == "json"
    assert [p["id"] for p in client.get(f"{API}/providers").json()] == ["redis-provider", "memory"]
    assert client.get(f"{API}/providers/redis-provider").json()["connection_details"]["port"] == 6379
    updated = client.put(f"{API}/providers/redis-provider", json={"connection_details": {"port": 6380}})
    assert updated.status_code == 200 and updated.json()["settings"]["port"] == 6380
    assert client.delete(f"{API}/providers/redis-provider").json() is True
    assert "redis-provider" not in runtime.config.providers


def test_region_routes(client: TestClient, runtime: Runtime) -> None:
    created = client.post(f"{API}/regions", json={"name": "users", "provider": "memory", "ttl": 600,
                                                  "max_size": 100, "stale_ttl": 5})
    assert created.status_code == 201 and created.json()["ttl"] == 600
    assert runtime.config.regions["users"].stale_ttl == 5
    assert "users" in [r["id"] for r in client.get(f"{API}/regions").json()]
    assert client.put(f"{API}/regions/users", json={"ttl": 60}).json()["ttl"] == 60
    assert runtime.region("users").policy.ttl == 60
    assert client.get(f"{API}/regions/users").json()["stats"]["hit_ratio"] is None
    assert client.delete(f"{API}/regions/users").status_code == 200
    assert "users" not in runtime.config.regions
    assert client.get(f"{API}/regions/users").json()["declared"] is False  # in use, default policy
    assert client.get(f"{API}/regions/never-used").status_code == 404


def test_rule_routes(client: TestClient, runtime: Runtime) -> None:
    created = client.post(f"{API}/rules", json={"name": "user-data-rule", "strategy_type": "pattern_based",
                                                "pattern": "user:*"})
    assert created.status_code == 201
    client.post(f"{API}/rules", json={"name": "on-update", "strategy": "event_based",
                                      "events": ["user_updated"], "pattern": "user:{user_id}"})
    assert [r["id"] for r in client.get(f"{API}/rules").json()] == ["user-data-rule", "on-update"]
    assert [r["id"] for r in client.get(f"{API}/rules", params={"key": "user:1"}).json()] == [
        "user-data-rule", "on-update"]
    assert client.get(f"{API}/rules/on-update").json()["events"] == ["user_updated"]
    assert client.put(f"{API}/rules/user-data-rule", json={"pattern": "u:*"}).json()["pattern"] == "u:*"
    assert client.delete(f"{API}/rules/on-update").status_code == 200
    assert [r.name for r in runtime.config.rules] == ["user-data-rule"]


# -- items ---------------------------------------------------------------------------------------


def test_item_routes(client: TestClient, runtime: Runtime) -> None:
    declare(runtime, "users")
    put = client.put(f"{API}/items/user:1", json={"value": {"name": "Ada"}, "ttl_seconds": 30})
    assert put.status_code == 200 and put.json()["ttl"] == 30
    got = client.get(f"{API}/items/user:1").json()
    assert got["value"] == {"name": "Ada"} and got["region"] == "default" and "value_repr" not in got
    assert Cache.get("user:1") == {"name": "Ada"}
    runtime.clock.advance(31)
    assert client.get(f"{API}/items/user:1").status_code == 404

    client.put(f"{API}/items/user:2", params={"region": "users"}, json={"value": [1, 2]})
    assert runtime.region("users").get("user:2") == [1, 2]
    assert client.get(f"{API}/items/user:2").status_code == 404
    assert client.get(f"{API}/items/user:2", params={"region": "users"}).json()["value"] == [1, 2]
    deleted = client.delete(f"{API}/items/user:2", params={"region": "users"})
    assert deleted.json() == {"key": "user:2", "deleted": True}
    assert client.delete(f"{API}/items/user:2", params={"region": "users"}).json()["deleted"] is False


def test_keys_with_slashes_and_a_cached_null(client: TestClient) -> None:
    client.put(f"{API}/items/page:/docs/intro", json={"value": None})
    got = client.get(f"{API}/items/page:/docs/intro")
    assert got.status_code == 200 and got.json()["value"] is None  # a cached null is a hit


def test_values_json_cannot_represent_are_a_406_never_a_repr(client: TestClient) -> None:
    Cache.put("obj", {1, 2, 3})
    Cache.put("nan", float("nan"))
    body = client.get(f"{API}/items/obj")
    assert body.status_code == 406
    assert body.json() == {"detail": "the cached value of 'obj' (a set) cannot be represented in JSON; read it "
                           "from Python", "error": "not_json"}
    nan = client.get(f"{API}/items/nan")
    assert nan.status_code == 406 and nan.json()["error"] == "not_json" and "value" not in nan.json()


def test_clear_and_pattern_routes(client: TestClient, runtime: Runtime) -> None:
    declare(runtime, "other")
    for key in ("user:1", "user:2", "post:1"):
        Cache.put(key, key)
    runtime.region("other").put("user:9", "x")
    removed = client.delete(f"{API}/items/pattern/user:*", params={"region": "default"}).json()
    assert sorted(removed["keys"]["default"]) == ["user:1", "user:2"]
    assert Cache.has("post:1") and runtime.region("other").has("user:9")
    assert client.delete(f"{API}/items", params={"region": "other"}).json()["regions"] == ["other"]
    assert not runtime.region("other").has("user:9") and Cache.has("post:1")
    assert client.delete(f"{API}/items").status_code == 200
    assert not Cache.has("post:1")


def test_a_key_named_pattern_can_still_be_read(client: TestClient) -> None:
    Cache.put("pattern/x", 1)
    assert client.get(f"{API}/items/pattern/x").json()["value"] == 1


# -- configuration --------------------------------------------------------------------------------


def test_configuration_routes(client: TestClient, runtime: Runtime) -> None:
    got = client.get(f"{API}/configuration").json()
    assert got["enabled"] is True and got["use_multi_level"] is True and "config" in got
    assert client.post(f"{API}/configuration/disable").json()["enabled"] is False
    assert not runtime.config.cache.enabled
    client.put(f"{API}/items/k", json={"value": 1})
    assert not Cache.has("k")
    assert client.post(f"{API}/configuration/enable").json()["enabled"] is True
    updated = client.put(f"{API}/configuration", json={"use_multi_level": False, "default_ttl": 42})
    assert updated.status_code == 200 and updated.json()["default_ttl"] == 42
    assert runtime.config.cache.multi_level is False


def test_stats_route(client: TestClient) -> None:
    Cache.put("a", 1)
    Cache.get("a")
    rows = client.get(f"{API}/stats").json()
    assert rows[0]["region"] == "default" and rows[0]["hits"] == 1


# -- errors and secrets -------------------------------------------------------------------------


def test_errors_are_json_with_a_message_and_a_4xx_status(client: TestClient) -> None:
    missing = client.get(f"{API}/providers/nope")
    assert missing.status_code == 404 and "unknown provider 'nope'" in missing.json()["detail"]
    assert missing.json()["error"] == "not_found"
    client.post(f"{API}/regions", json={"name": "r"})
    assert client.post(f"{API}/regions", json={"name": "r"}).status_code == 409
    invalid = client.post(f"{API}/regions", json={"name": "s", "ttl": -1})
    assert invalid.status_code == 422 and "regions.s.ttl" in invalid.json()["detail"]
    assert client.post(f"{API}/rules", json={"name": "x", "strategy_type": "nope"}).status_code == 422
    assert client.put(f"{API}/items/k", json={"ttl_seconds": 5}).status_code == 422  # no value
    assert client.put(f"{API}/configuration", json={"prefix": "x"}).status_code == 422


def test_secrets_are_masked_in_every_answer(runtime: Runtime) -> None:
    runtime.config.http.token = "the-token"  # type: ignore[assignment]
    runtime.config.http.admin_token = "the-admin-token"  # type: ignore[assignment]
    with TestClient(create_app(runtime)) as c:
        headers = {"Authorization": "Bearer the-token"}
        created = c.post(f"{API}/providers", headers={"Authorization": "Bearer the-admin-token"}, json={
            "name": "r", "type": "redis", "connection_details": {"password": "hunter2"},
            "signing_key": "sign-me"})
        assert created.status_code == 201
        texts = [created.text, c.get(f"{API}/providers/r", headers=headers).text,
                 c.get(f"{API}/providers", headers=headers).text,
                 c.get(f"{API}/configuration", headers=headers).text]
    for text in texts:
        assert "hunter2" not in text and "sign-me" not in text and "the-token" not in text
        assert "the-admin-token" not in text
        assert "**********" in text
    assert runtime.config.providers["r"].password.get_secret_value() == "hunter2"


# -- authentication ---------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic s3cret", "Bearer", "s3cret"])
def test_a_token_is_required_when_set(runtime: Runtime, header: str | None) -> None:
    with TestClient(create_app(runtime, token="s3cret")) as c:
        headers = {"Authorization": header} if header else {}
        refused = c.get(f"{API}/providers", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert c.delete(f"{API}/items", headers=headers).status_code == 401
        assert c.get(f"{API}/providers", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_token_from_the_config(runtime: Runtime) -> None:
    config = CacheConfig(http={"token": "from-config"})
    rt = config.compile(clock=FakeClock())
    with TestClient(create_app(rt)) as c:
        assert c.get(f"{API}/regions").status_code == 401
        assert c.get(f"{API}/regions", headers={"Authorization": "Bearer from-config"}).status_code == 200
    rt.close()


def test_router_mounts_in_an_app_and_follows_the_facade(runtime: Runtime) -> None:
    app = FastAPI()
    app.include_router(create_router(token=DATA_TOKEN))
    with TestClient(app, headers={"Authorization": f"Bearer {DATA_TOKEN}"}) as c:
        c.put(f"{API}/items/k", json={"value": "v"})
        assert Cache.get("k") == "v"
        other = Cache.fake()  # the router uses the facade's runtime at request time
        assert c.get(f"{API}/items/k").status_code == 404
        assert other.region().get("k") is None


def test_missing_fastapi_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fastapi", None)
    with pytest.raises(MissingExtraError, match=r"cachekit-config\[http\]"):
        create_router()


# -- the seed's FastAPI integration example -------------------------------------------------------


def test_seed_fastapi_integration_runs_as_written(runtime: Runtime) -> None:
    class DB:
        calls = 0

        async def get_user(self, user_id: int) -> dict[str, Any]:
            DB.calls += 1
            return {"id": user_id}

    db = DB()

    app = FastAPI()

    # Register caching dependencies
    caching_deps = get_caching_dependencies()

    @app.get("/users/{user_id}")
    async def get_user(
        user_id: int,
        cache_service = Depends(caching_deps["get_cache_item_service"])
    ):  # type: ignore[no-untyped-def]
        # First check cache
        result = await cache_service.get_item(f"user:{user_id}")
        if result.is_success() and result.value:
            return result.value.value

        # Cache miss - fetch from database
        user = await db.get_user(user_id)

        # Store in cache
        await cache_service.set_item(f"user:{user_id}", user, ttl_seconds=300)

        return user

    with TestClient(app) as c:
        assert c.get("/users/5").json() == {"id": 5}
        assert c.get("/users/5").json() == {"id": 5}
    assert DB.calls == 1
    Cache.assert_has("user:5", {"id": 5})
