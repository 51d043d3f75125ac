"""The HTTP API is safe by default (issue 9): deny by default, two roles, admin routes that cannot
reach outside, no ad-hoc regions from ``?region=``, protected OpenAPI and docs, an open but minimal
``/health``."""

from __future__ import annotations

import doctest
import os
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import free_port, need_module

need_module("fastapi")
need_module("httpx")

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from cachekit import Cache, CacheError, Runtime  # noqa: E402
from cachekit.config import parse_config  # noqa: E402
from cachekit.http import AnonymousAccessWarning, create_app, create_router  # noqa: E402
from cachekit.services import CacheProviderService  # noqa: E402

API = "/api/cache"
DATA, ADMIN = "data-token", "admin-token"
AS_DATA = {"Authorization": f"Bearer {DATA}"}
AS_ADMIN = {"Authorization": f"Bearer {ADMIN}"}
LOOPBACK_CLIENT = ("127.0.0.1", 50000)
ADMIN_ROUTES = {
    ("POST", "/providers"), ("PUT", "/providers/{id}"), ("DELETE", "/providers/{id}"),
    ("POST", "/regions"), ("PUT", "/regions/{id}"), ("DELETE", "/regions/{id}"),
    ("POST", "/rules"), ("PUT", "/rules/{id}"), ("DELETE", "/rules/{id}"),
    ("PUT", "/configuration"), ("POST", "/configuration/enable"), ("POST", "/configuration/disable"),
}


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    rt = Cache.fake()
    yield rt
    Cache.reset()


@pytest.fixture
def app(runtime: Runtime) -> Any:
    return create_app(runtime, token=DATA, admin_token=ADMIN)


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def api_routes(app: Any) -> list[tuple[str, str]]:
    """``(method, path under /api/cache)`` of every route the app serves (all are in its OpenAPI document)."""
    return sorted((method.upper(), path.removeprefix(API)) for path, operations in app.openapi()["paths"].items()
                  for method in operations)


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", API + path)


def call(client: TestClient, method: str, path: str, **kwargs: Any) -> Any:
    body = {} if method in ("PUT", "POST") else None
    return client.request(method, concrete(path), json=body, **kwargs)


# -- deny by default -------------------------------------------------------------------------------


def test_without_a_token_the_app_refuses_to_start(runtime: Runtime) -> None:
    with pytest.raises(CacheError, match=r"needs a token.*\[http\] token / CACHEKIT_HTTP__TOKEN"):
        create_app(runtime)
    with pytest.raises(CacheError, match="needs a token"):
        create_router(runtime)
    with pytest.raises(CacheError, match="needs a token"):
        create_app(runtime, token="")  # an empty token is no token


def test_the_two_tokens_must_differ(runtime: Runtime) -> None:
    with pytest.raises(CacheError, match="same"):
        create_app(runtime, token="same", admin_token="same")


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Bearer {DATA}x", f"Basic {DATA}", "Bearer", DATA])
def test_every_route_but_health_denies_a_missing_or_wrong_token(app: Any, client: TestClient, runtime: Runtime,
                                                                header: str | None) -> None:
    Cache.put("k", "v")
    headers = {"Authorization": header} if header else {}
    routes = api_routes(app)
    assert len(routes) == 29  # GET /metrics (issue 13)
    for method, path in routes:
        if path == "/health":
            continue
        answer = call(client, method, path, headers=headers)
        assert answer.status_code == 401, (method, path)
        assert answer.headers["www-authenticate"] == "Bearer"
    for path in ("/openapi.json", "/docs"):
        assert client.get(path, headers=headers).status_code == 401
    assert Cache.get("k") == "v" and runtime.config.cache.enabled  # nothing was flushed or disabled


def test_the_data_token_reads_and_writes_data_but_gets_403_on_admin_routes(app: Any, client: TestClient,
                                                                          runtime: Runtime) -> None:
    for method, path in api_routes(app):
        answer = call(client, method, path, headers=AS_DATA)
        if (method, path) in ADMIN_ROUTES:
            assert answer.status_code == 403, (method, path)
            assert answer.json() == {"detail": "this route needs the admin token"}
        else:
            assert answer.status_code not in (401, 403), (method, path)
    assert {(m, p) for m, p in api_routes(app)} >= ADMIN_ROUTES
    assert client.put(f"{API}/items/k", json={"value": 1}, headers=AS_DATA).status_code == 200
    assert client.get(f"{API}/configuration", headers=AS_DATA).status_code == 200
    assert client.post(f"{API}/configuration/disable", headers=AS_DATA).status_code == 403
    assert runtime.config.cache.enabled


def test_the_admin_token_may_do_what_the_data_token_may(client: TestClient, runtime: Runtime) -> None:
    assert client.put(f"{API}/items/k", json={"value": [1]}, headers=AS_ADMIN).status_code == 200
    assert client.get(f"{API}/items/k", headers=AS_ADMIN).json()["value"] == [1]
    assert client.get(f"{API}/stats", headers=AS_ADMIN).status_code == 200
    assert client.get("/openapi.json", headers=AS_ADMIN).status_code == 200
    assert client.post(f"{API}/configuration/disable", headers=AS_ADMIN).json()["enabled"] is False
    assert not runtime.config.cache.enabled


def test_without_an_admin_token_the_admin_routes_are_not_mounted(runtime: Runtime) -> None:
    app = create_app(runtime, token=DATA)
    routes = set(api_routes(app))
    assert not routes & ADMIN_ROUTES
    with TestClient(app, headers=AS_DATA) as c:
        assert c.post(f"{API}/providers", json={"name": "x", "type": "memory"}).status_code == 405
        assert c.put(f"{API}/configuration", json={"enabled": False}).status_code == 405
        assert c.post(f"{API}/configuration/disable").status_code == 404
        assert c.get(f"{API}/providers").status_code == 200  # reading stays allowed
        paths = c.get("/openapi.json").json()["paths"]
    assert "post" not in paths[f"{API}/providers"] and f"{API}/configuration/disable" not in paths
    assert runtime.config.cache.enabled and "x" not in runtime.config.providers


def test_an_admin_token_alone_guards_every_route(runtime: Runtime) -> None:
    with TestClient(create_app(runtime, admin_token=ADMIN)) as c:
        assert c.get(f"{API}/items/k").status_code == 401
        assert c.get(f"{API}/items/k", headers=AS_ADMIN).status_code == 404  # a miss: authorized


def test_tokens_come_from_the_environment(tmp_path: Path) -> None:
    config = parse_config("", environ={"CACHEKIT_HTTP__TOKEN": "env-data", "CACHEKIT_HTTP__ADMIN_TOKEN": "env-admin",
                                       "CACHEKIT_HTTP__ALLOWED_HOSTS": '["cache.internal"]'})
    assert config.env_overrides["http.token"] == "CACHEKIT_HTTP__TOKEN"
    rt = config.compile()
    try:
        with TestClient(create_app(rt)) as c:
            assert c.get(f"{API}/regions").status_code == 401
            assert c.get(f"{API}/regions", headers={"Authorization": "Bearer env-data"}).status_code == 200
            admin = {"Authorization": "Bearer env-admin"}
            assert c.post(f"{API}/configuration/disable", headers={"Authorization": "Bearer env-data"}
                          ).status_code == 403
            refused = c.post(f"{API}/providers", headers=admin, json={
                "name": "r", "type": "redis", "url": "redis://127.0.0.1:6379/0"})
            assert refused.status_code == 403 and "cache.internal" in refused.json()["detail"]
            text = c.get(f"{API}/configuration", headers=admin).text
        assert "env-data" not in text and "env-admin" not in text
    finally:
        rt.close()


# -- anonymous mode: loopback only, with a warning ---------------------------------------------------


def test_anonymous_mode_serves_loopback_clients_only_and_warns(runtime: Runtime) -> None:
    with pytest.warns(AnonymousAccessWarning, match="WITHOUT a token"):
        app = create_app(runtime, allow_anonymous=True)
    assert not set(api_routes(app)) & ADMIN_ROUTES  # no admin token: no admin routes
    with TestClient(app, client=LOOPBACK_CLIENT) as local:
        assert local.put(f"{API}/items/k", json={"value": 1}).status_code == 200
        assert local.get(f"{API}/items/k").json()["value"] == 1
        assert local.get("/openapi.json").status_code == 200
        assert local.get(f"{API}/items/k", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert local.get(f"{API}/items/k", headers={"Authorization": "Basic d3Jvbmc="}).status_code == 401
    for peer in ("203.0.113.9", "testclient", "10.0.0.1"):
        with TestClient(app, client=(peer, 1234)) as remote:
            assert remote.get(f"{API}/items/k").status_code == 401, peer
            assert remote.delete(f"{API}/items").status_code == 401
    assert Cache.get("k") == 1


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
def test_anonymous_mode_is_refused_on_a_non_loopback_address(runtime: Runtime, host: str) -> None:
    with pytest.raises(CacheError, match="loopback addresses only"):
        create_app(runtime, allow_anonymous=True, host=host)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.2"])
def test_anonymous_mode_is_allowed_on_loopback(runtime: Runtime, host: str) -> None:
    with pytest.warns(AnonymousAccessWarning):
        create_app(runtime, allow_anonymous=True, host=host)


def test_with_a_token_allow_anonymous_changes_nothing(runtime: Runtime) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        app = create_app(runtime, token=DATA, allow_anonymous=True)
    with TestClient(app, client=LOOPBACK_CLIENT) as c:
        assert c.get(f"{API}/regions").status_code == 401


# -- OpenAPI, docs, health ------------------------------------------------------------------------------


def test_openapi_and_docs_need_the_token_and_declare_the_bearer_scheme(client: TestClient) -> None:
    assert client.get("/openapi.json").status_code == 401
    assert client.get("/docs").status_code == 401
    assert client.get("/redoc").status_code == 404
    document = client.get("/openapi.json", headers=AS_DATA).json()
    assert document["components"]["securitySchemes"] == {
        "HTTPBearer": {"type": "http", "scheme": "bearer",
                       "description": "the data token (items, stats, reading) or the admin token (all)"}}
    assert document["paths"][f"{API}/items/{{key}}"]["get"]["security"] == [{"HTTPBearer": []}]
    assert document["paths"][f"{API}/providers"]["post"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in document["paths"][f"{API}/health"]["get"]
    assert "/openapi.json" not in document["paths"] and "/docs" not in document["paths"]
    page = client.get("/docs", headers=AS_DATA)
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    # the document is inlined: Swagger UI fetches nothing without the token
    assert '"spec": {"openapi"' in page.text and "url: ''" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert DATA not in page.text and ADMIN not in page.text


def test_health_is_open_and_says_only_which_providers_answer(redis_server: Any) -> None:
    dead = free_port()
    config = parse_config(f"""
[providers.cache]
type = "redis"
url = "{redis_server.url}"
password = "hunter2"
signing_key = "sign-me"

[providers.gone]
type = "redis"
url = "redis://:pw-in-url@127.0.0.1:{dead}/0"
connect_timeout = 0.2
retries = 0

[regions.r]
provider = "gone"
""", environ={})
    rt = config.compile()
    try:
        with TestClient(create_app(rt, token=DATA)) as c:
            answer = c.get(f"{API}/health")
            assert answer.status_code == 200
            assert answer.json() == {"status": "degraded",
                                     "providers": {"cache": "ok", "gone": "down", "memory": "ok"}}
            text = answer.text
    finally:
        rt.close()
    for secret in ("hunter2", "sign-me", "pw-in-url", str(dead), str(redis_server.port), "redis://"):
        assert secret not in text


def test_health_reports_a_provider_that_answers(redis_server: Any) -> None:
    config = parse_config(f'[providers.cache]\ntype = "redis"\nurl = "{redis_server.url}"\n', environ={})
    rt = config.compile()
    try:
        with TestClient(create_app(rt, token=DATA)) as c:
            assert c.get(f"{API}/health").json() == {"status": "ok", "providers": {"cache": "ok", "memory": "ok"}}
    finally:
        rt.close()


# -- admin routes cannot reach outside ----------------------------------------------------------------


def test_a_custom_driver_is_never_imported_over_http(client: TestClient, runtime: Runtime, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "evil_driver_module.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for body in ({"name": "evil", "type": "custom", "driver": "evil_driver_module:Driver"},
                 {"name": "evil", "type": "evil_driver_module:Driver"},
                 {"name": "evil", "provider_type": "some-entry-point"}):
        refused = client.post(f"{API}/providers", headers=AS_ADMIN, json=body)
        assert refused.status_code == 403, body
        assert refused.json()["error"] == "forbidden" and "custom drivers" in refused.json()["detail"]
    via_config = client.put(f"{API}/configuration", headers=AS_ADMIN, json={
        "providers": {"evil": {"type": "custom", "driver": "evil_driver_module:Driver"}}})
    assert via_config.status_code == 403
    assert "evil" not in runtime.config.providers
    assert not marker.exists() and "evil_driver_module" not in sys.modules


@pytest.mark.parametrize("details", [
    {"url": "redis://evil.example:6379/0"},
    {"url": "rediss://user:pw@203.0.113.7:6380/1"},
    {"host": "10.0.0.1", "port": 6379},
    {"url": "redis://?host=evil.example"},  # redis-py takes host= from the query string
    {"url": "redis://127.0.0.1:6379/0?host=evil.example"},
    {"url": "redis://127.0.0.1:6379/0?path=/var/run/docker.sock"},
    {"url": "unix:///var/run/docker.sock"},
    {"url": "redis://127.0.0.1.evil.example/0"},
    {"url": "redis://evil%2Eexample/0"},
    {"url": "redis://127.0.0.1@evil.example/0"},
    {"url": "redis://0.0.0.0:6379/0"},
    {"url": "redis://[::ffff:10.0.0.1]:6379/0"},
    {"sentinel": ["127.0.0.1:26379", "evil.example:26379"]},
    {"cluster": True, "startup_nodes": ["[2001:db8::1]:7000"]},
    {"cluster": True, "url": "redis://evil.example:7000"},
])
def test_a_redis_provider_may_not_reach_a_host_off_the_allow_list(client: TestClient, runtime: Runtime,
                                                                  details: dict[str, Any]) -> None:
    refused = client.post(f"{API}/providers", headers=AS_ADMIN,
                          json={"name": "r", "type": "redis", "serializer": "json", "connection_details": details})
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"] == "forbidden"
    assert "r" not in runtime.config.providers


@pytest.mark.parametrize("servers", [["evil.example:11211"], ["127.0.0.1:11211", "10.1.1.1:11211"],
                                     ["unix:/tmp/memcached.sock"], ["/tmp/memcached.sock"], ["[fe80::1]:11211"]])
def test_a_memcached_provider_may_not_reach_a_host_off_the_allow_list(client: TestClient, runtime: Runtime,
                                                                      servers: list[str]) -> None:
    refused = client.post(f"{API}/providers", headers=AS_ADMIN,
                          json={"name": "m", "type": "memcached", "connection_details": {"servers": servers}})
    assert refused.status_code == 403, refused.text
    assert "m" not in runtime.config.providers


@pytest.mark.parametrize("details", [
    {"url": "redis://localhost:6390/2"}, {"url": "redis://127.0.0.1:6390"}, {"url": "redis://[::1]:6390"},
    {"host": "127.0.0.1", "port": 6390}, {"sentinel": ["127.0.0.1:26379", "[::1]:26380"]},
    {"cluster": True, "startup_nodes": ["localhost:7000"]}, {"url": "redis://127.0.0.1:6390/0?db=3"},
])
def test_loopback_redis_providers_are_allowed_by_default(client: TestClient, runtime: Runtime,
                                                         details: dict[str, Any]) -> None:
    created = client.post(f"{API}/providers", headers=AS_ADMIN,
                          json={"name": "r", "type": "redis", "serializer": "json", "connection_details": details})
    assert created.status_code == 201, created.text
    assert runtime.config.providers["r"].type == "redis"


def test_allowed_hosts_takes_names_addresses_and_networks(runtime: Runtime) -> None:
    runtime.config.http.allowed_hosts = ["cache.internal", "10.0.0.0/8"]
    with TestClient(create_app(runtime, token=DATA, admin_token=ADMIN), headers=AS_ADMIN) as c:
        for name, url in (("a", "redis://cache.internal:6379/0"), ("b", "redis://10.1.2.3:6379/0")):
            assert c.post(f"{API}/providers", json={"name": name, "type": "redis", "url": url}).status_code == 201
        refused = c.post(f"{API}/providers", json={"name": "c", "type": "redis", "url": "redis://127.0.0.1/0"})
        assert refused.status_code == 403
        assert refused.json()["detail"] == (
            "providers.c: host '127.0.0.1' is not in [http] allowed_hosts (cache.internal, 10.0.0.0/8); add it "
            "there (config file or CACHEKIT_HTTP__ALLOWED_HOSTS) to allow it")
        mc = c.post(f"{API}/providers", json={"name": "m", "type": "memcached", "servers": ["10.9.9.9:11211"]})
        assert mc.status_code == 201


def test_changing_a_provider_over_http_is_checked_too(client: TestClient, runtime: Runtime) -> None:
    created = client.post(f"{API}/providers", headers=AS_ADMIN,
                          json={"name": "r", "type": "redis", "url": "redis://127.0.0.1:6390/0"})
    assert created.status_code == 201
    moved = client.put(f"{API}/providers/r", headers=AS_ADMIN,
                       json={"connection_details": {"url": "redis://evil.example:6379/0"}})
    assert moved.status_code == 403
    via_config = client.put(f"{API}/configuration", headers=AS_ADMIN,
                            json={"providers": {"r": {"url": "redis://evil.example:6379/0"}}})
    assert via_config.status_code == 403
    builtin = client.put(f"{API}/providers/redis", headers=AS_ADMIN, json={"url": "redis://evil.example/0"})
    assert builtin.status_code == 403
    assert runtime.config.providers["r"].url.get_secret_value() == "redis://127.0.0.1:6390/0"
    assert "redis" not in runtime.config.providers


def test_providers_the_file_declares_stay_editable_in_other_ways(runtime: Runtime) -> None:
    runtime.config.providers["far"] = parse_config(
        '[providers.far]\ntype = "redis"\nurl = "redis://cache.far:6379/0"\n', environ={}).providers["far"]
    with TestClient(create_app(runtime, token=DATA, admin_token=ADMIN), headers=AS_ADMIN) as c:
        # an edit that leaves "far" as it is passes; one that changes it is checked
        assert c.post(f"{API}/regions", json={"name": "users", "ttl": 60}).status_code == 201
        assert c.put(f"{API}/providers/far", json={"serializer": "json"}).status_code == 403


def test_a_file_provider_needs_file_root_and_stays_under_it(runtime: Runtime, tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside)
    with TestClient(create_app(runtime, token=DATA, admin_token=ADMIN), headers=AS_ADMIN) as c:
        no_root = c.post(f"{API}/providers", json={"name": "f", "type": "file", "path": str(root / "a")})
        assert no_root.status_code == 403 and "file_root" in no_root.json()["detail"]
        runtime.config.http.file_root = str(root)
        for path in (str(outside), str(root / ".." / "outside"), str(root / "link" / "x"), "/etc/cachekit",
                     "~/.cache/x", "relative/dir"):
            refused = c.post(f"{API}/providers", json={"name": "f", "type": "file", "path": path})
            assert refused.status_code == 403, path
            assert "outside [http] file_root" in refused.json()["detail"]
        assert not (outside / "x").exists()
        created = c.post(f"{API}/providers", json={"name": "f", "type": "file",
                                                   "connection_details": {"path": str(root / "a" / ".." / "b")}})
        assert created.status_code == 201
        moved = c.put(f"{API}/providers/f", json={"path": str(outside)})
        assert moved.status_code == 403
    assert runtime.config.providers["f"].path == str(root / "a" / ".." / "b")


def test_allow_unsigned_pickle_is_never_set_over_http() -> None:
    from cachekit.config.models import HttpConfig, RedisProviderConfig
    from cachekit.errors import AccessDenied
    from cachekit.http_policy import check_provider

    model = RedisProviderConfig(url="redis://127.0.0.1:6379/0", serializer="json")
    check_provider("r", model, HttpConfig())  # allowed
    object.__setattr__(model, "allow_unsigned_pickle", True)  # the field of the safe-serializer defaults
    with pytest.raises(AccessDenied, match="allow_unsigned_pickle"):
        check_provider("r", model, HttpConfig())


def test_python_callers_of_the_services_are_not_restricted(runtime: Runtime) -> None:
    import asyncio

    result = asyncio.run(CacheProviderService(runtime).register_provider(
        "far", "redis", {"url": "redis://cache.far:6379/0"}))
    assert result.is_success() and runtime.config.providers["far"].url.get_secret_value() == "redis://cache.far:6379/0"


# -- tokens are never settable or readable over HTTP ---------------------------------------------------


def test_the_http_section_cannot_be_changed_over_http(client: TestClient, runtime: Runtime) -> None:
    for body in ({"http": {"token": "mine"}}, {"http": {"admin_token": "mine"}},
                 {"http": {"allowed_hosts": ["evil.example"]}}, {"http": {"file_root": "/"}},
                 {"enabled": False, "http": {"adhoc_regions": True}}):
        refused = client.put(f"{API}/configuration", headers=AS_ADMIN, json=body)
        assert refused.status_code == 403, body
        assert refused.json()["error"] == "forbidden"
    assert client.get(f"{API}/regions", headers=AS_DATA).status_code == 200  # the owner is not locked out
    assert client.get(f"{API}/regions", headers={"Authorization": "Bearer mine"}).status_code == 401
    assert runtime.config.http.token is None and runtime.config.cache.enabled
    assert runtime.config.http.allowed_hosts == ["127.0.0.1", "::1", "localhost"]


def test_the_edit_guard_refuses_http_changes_from_any_admin_edit(runtime: Runtime) -> None:
    from cachekit.errors import AccessDenied
    from cachekit.http_policy import admin_guard

    before = {"http": runtime.config.http.model_copy(), "providers": {}}
    runtime.config.http.adhoc_regions = True
    with pytest.raises(AccessDenied, match=r"\[http\] section"):
        admin_guard(before, runtime.config)


def test_the_configuration_never_shows_the_tokens(client: TestClient) -> None:
    for headers in (AS_DATA, AS_ADMIN):
        text = client.get(f"{API}/configuration", headers=headers).text
        assert DATA not in text and ADMIN not in text


def test_the_policy_doctest_runs() -> None:
    from cachekit import http_policy

    assert doctest.testmod(http_policy, optionflags=doctest.ELLIPSIS).failed == 0


# -- ?region= names a declared region --------------------------------------------------------------------


def test_an_unknown_region_is_a_404_and_builds_nothing(client: TestClient, runtime: Runtime) -> None:
    before = set(runtime.regions())
    for i in range(50):
        name = f"probe-{i}"
        for method, path in (("GET", "/items/k"), ("PUT", "/items/k"), ("DELETE", "/items/k"),
                             ("DELETE", "/items"), ("DELETE", "/items/pattern/k*")):
            body = {"value": 1} if method == "PUT" else None
            answer = client.request(method, API + path, params={"region": name}, json=body, headers=AS_DATA)
            assert answer.status_code == 404, (method, path)
            assert answer.json()["error"] == "not_found" and "adhoc_regions" in answer.json()["detail"]
    assert set(runtime.regions()) == before


def test_declared_and_default_regions_work(client: TestClient, runtime: Runtime) -> None:
    assert client.post(f"{API}/regions", headers=AS_ADMIN, json={"name": "users"}).status_code == 201
    assert client.put(f"{API}/items/k", params={"region": "users"}, json={"value": 1},
                      headers=AS_DATA).status_code == 200
    assert client.get(f"{API}/items/k", params={"region": "default"}, headers=AS_DATA).status_code == 404  # a miss
    assert runtime.region("users").get("k") == 1


def test_adhoc_regions_can_be_allowed(runtime: Runtime) -> None:
    runtime.config.http.adhoc_regions = True
    with TestClient(create_app(runtime, token=DATA), headers=AS_DATA) as c:
        assert c.put(f"{API}/items/k", params={"region": "scratch"}, json={"value": 2}).status_code == 200
        assert c.get(f"{API}/items/k", params={"region": "scratch"}).json()["value"] == 2


def test_item_values_are_json_both_ways(client: TestClient) -> None:
    stored = client.put(f"{API}/items/k", headers={**AS_DATA, "Content-Type": "application/json"},
                        content=b'{"value": 1e400}')
    assert stored.status_code == 422 and "finite" in stored.json()["detail"]
    assert not Cache.has("k")
    value = {"a": [1, 2.5, None, True, "x"], "b": {"c": "d"}}
    assert client.put(f"{API}/items/k", headers=AS_DATA, json={"value": value}).status_code == 200
    assert client.get(f"{API}/items/k", headers=AS_DATA).json()["value"] == value


# -- the remote code execution chain of the issue ----------------------------------------------------------


def test_the_remote_code_execution_chain_of_the_issue_fails(client: TestClient, runtime: Runtime) -> None:
    # 1. without any token: nothing answers
    assert client.post(f"{API}/providers", json={"name": "evil", "type": "redis"}).status_code == 401
    # 2. with the admin token: the attacker's Redis is not on the allow-list
    provider = client.post(f"{API}/providers", headers=AS_ADMIN, json={
        "name": "evil", "provider_type": "redis", "connection_details": {"url": "redis://203.0.113.66:6379/0"}})
    assert provider.status_code == 403
    # 3. so no region can be built on it, and 4. ?region= cannot name one that is not declared
    region = client.post(f"{API}/regions", headers=AS_ADMIN, json={"name": "pwn", "provider": "evil"})
    assert region.status_code == 422 and "unknown provider 'evil'" in region.json()["detail"]
    item = client.get(f"{API}/items/k", params={"region": "pwn"}, headers=AS_DATA)
    assert item.status_code == 404
    assert "evil" not in runtime.config.providers and "pwn" not in runtime.regions()


# -- cachekit serve -----------------------------------------------------------------------------------------


def _serve(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Any:
    import subprocess

    environ = {k: v for k, v in os.environ.items() if not k.upper().startswith("CACHEKIT_")}
    environ.update(env or {})
    return subprocess.Popen([sys.executable, "-m", "cachekit", "serve", *args], env=environ, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "cachekit.toml"
    path.write_text('[cache]\ndefault_provider = "memory"\n')
    return path


def test_serve_refuses_no_auth_on_a_public_address(config_file: Path) -> None:
    proc = _serve(str(config_file), "--no-auth", "--host", "0.0.0.0")
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "--no-auth is for loopback addresses only" in err


def test_serve_refuses_to_start_without_a_token(config_file: Path) -> None:
    proc = _serve(str(config_file), "--port", str(free_port()))
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "needs a token" in err and "CACHEKIT_HTTP__TOKEN" in err


def _wait_until_served(port: int, proc: Any) -> Any:
    import time

    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.communicate()[1])
        try:
            return httpx.get(f"http://127.0.0.1:{port}{API}/health", timeout=1)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("cachekit serve did not answer")


def _stop(proc: Any) -> str:
    proc.terminate()
    try:
        return str(proc.communicate(timeout=20)[1])
    except Exception:
        proc.kill()
        return str(proc.communicate()[1])


def test_serve_no_auth_answers_loopback_clients_and_prints_a_warning(config_file: Path) -> None:
    import httpx

    port = free_port()
    proc = _serve(str(config_file), "--no-auth", "--port", str(port))
    try:
        assert _wait_until_served(port, proc).json() == {"status": "ok", "providers": {"memory": "ok"}}
        assert httpx.get(f"http://127.0.0.1:{port}{API}/stats", timeout=5).status_code == 200
        assert httpx.post(f"http://127.0.0.1:{port}{API}/configuration/disable", timeout=5).status_code == 404
    finally:
        err = _stop(proc)
    assert "WARNING: the cachekit HTTP API serves loopback clients WITHOUT a token" in err


def test_serve_takes_its_tokens_from_the_environment(config_file: Path) -> None:
    import httpx

    port = free_port()
    proc = _serve(str(config_file), "--port", str(port),
                  env={"CACHEKIT_HTTP__TOKEN": "env-data", "CACHEKIT_HTTP__ADMIN_TOKEN": "env-admin"})
    try:
        _wait_until_served(port, proc)
        base = f"http://127.0.0.1:{port}{API}"
        assert httpx.get(f"{base}/stats", timeout=5).status_code == 401
        assert httpx.get(f"{base}/stats", headers={"Authorization": "Bearer env-data"}, timeout=5).status_code == 200
        disabled = httpx.post(f"{base}/configuration/disable", headers={"Authorization": "Bearer env-admin"},
                              timeout=5)
        assert disabled.status_code == 200 and disabled.json()["enabled"] is False
    finally:
        err = _stop(proc)
    assert "WITHOUT a token" not in err
