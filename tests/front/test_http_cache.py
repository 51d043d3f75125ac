"""``@cache_response``: FastAPI response caching on memory and on a real Redis, over TestClient."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from servers import need_module

need_module("fastapi")
need_module("httpx")

from fastapi import Depends, FastAPI, Request, Response  # noqa: E402
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse  # noqa: E402

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from pydantic import BaseModel  # noqa: E402

from cachekit import CacheConfig, FakeClock, Runtime  # noqa: E402
from cachekit.http import cache_response  # noqa: E402


class Paging(BaseModel):
    """A module-level model: its name in a string annotation resolves in this module, not cachekit's."""

    page: int = 1
    size: int = 10


@pytest.fixture(params=["memory", "redis"])
def runtime(request: pytest.FixtureRequest) -> Iterator[Runtime]:
    if request.param == "memory":
        rt = Runtime.fake()
    else:
        server = request.getfixturevalue("redis_server")
        config = CacheConfig(providers={"r": {"type": "redis", "url": server.url}},
                             regions={"default": {"provider": "r", "ttl": 600}, "pages": {"provider": "r"}})
        rt = Runtime(config, clock=FakeClock())
    yield rt
    rt.close()


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        return self.calls


def build(runtime: Runtime) -> tuple[TestClient, Counter]:
    calls = Counter()
    app = FastAPI()

    @app.get("/items/{item_id}")
    @cache_response(ttl=60, runtime=runtime)
    async def item(item_id: int, q: str | None = None) -> dict[str, Any]:
        return {"id": item_id, "q": q, "call": calls()}

    @app.get("/sync/{name}")
    @cache_response(ttl=60, runtime=runtime)
    def sync_item(name: str) -> dict[str, Any]:
        return {"name": name, "call": calls()}

    @app.post("/items/{item_id}")
    @cache_response(ttl=60, runtime=runtime)
    async def post_item(item_id: int) -> dict[str, Any]:
        return {"id": item_id, "call": calls()}

    def current_user(x_user: str = "anonymous") -> str:
        return x_user

    @app.get("/me")
    @cache_response(ttl=60, runtime=runtime, key="me:{user}", region="pages")
    async def me(user: str = Depends(current_user)) -> dict[str, Any]:
        return {"user": user, "call": calls()}

    @app.get("/stream")
    @cache_response(ttl=60, runtime=runtime)
    async def stream() -> StreamingResponse:
        calls()
        return StreamingResponse(iter([b'{"a":', b"1}"]), media_type="application/json")

    @app.get("/text")
    @cache_response(ttl=60, runtime=runtime)
    async def text() -> PlainTextResponse:
        return PlainTextResponse(f"call {calls()}")

    @app.get("/json-response")
    @cache_response(ttl=60, runtime=runtime)
    async def json_response() -> JSONResponse:
        return JSONResponse({"call": calls()})

    @app.get("/nan")
    @cache_response(ttl=60, runtime=runtime)
    async def nan() -> Any:
        calls()
        return JSONResponse({"call": calls()}, status_code=404)

    return TestClient(app), calls


def test_second_get_is_a_hit_with_the_same_body(runtime: Runtime) -> None:
    client, calls = build(runtime)
    first = client.get("/items/1")
    assert first.status_code == 200 and first.headers["x-cache"] == "MISS"
    second = client.get("/items/1")
    assert second.headers["x-cache"] == "HIT"
    assert second.json() == first.json() == {"id": 1, "q": None, "call": 1}
    assert calls.calls == 1
    assert second.headers["etag"] == first.headers["etag"] and first.headers["etag"].startswith('"')
    assert second.headers["cache-control"] == "max-age=60"


def test_path_and_query_parameters_are_different_entries(runtime: Runtime) -> None:
    client, _ = build(runtime)
    assert client.get("/items/1").json()["call"] == 1
    assert client.get("/items/2").json()["call"] == 2
    assert client.get("/items/1?q=a").json()["call"] == 3
    assert client.get("/items/1?q=b").json()["call"] == 4
    assert client.get("/items/1?q=a").json() == {"id": 1, "q": "a", "call": 3}
    assert client.get("/items/2").json()["call"] == 2


def test_query_order_does_not_matter(runtime: Runtime) -> None:
    app = FastAPI()

    @app.get("/search")
    @cache_response(ttl=60, runtime=runtime)
    def search(a: str, b: str) -> dict[str, str]:
        return {"a": a, "b": b}

    client = TestClient(app)
    assert client.get("/search?a=1&b=2").headers["x-cache"] == "MISS"
    assert client.get("/search?b=2&a=1").headers["x-cache"] == "HIT"


def test_ttl_expiry_on_the_runtime_clock(runtime: Runtime) -> None:
    client, _ = build(runtime)
    client.get("/items/1")
    runtime.clock.advance(45)  # type: ignore[attr-defined]
    aged = client.get("/items/1")
    assert aged.headers["x-cache"] == "HIT" and aged.headers["cache-control"] == "max-age=15"
    runtime.clock.advance(16)  # type: ignore[attr-defined]
    fresh = client.get("/items/1")
    assert fresh.headers["x-cache"] == "MISS" and fresh.json()["call"] == 2


def test_no_store_neither_reads_nor_writes(runtime: Runtime) -> None:
    client, _ = build(runtime)
    bypass = client.get("/items/1", headers={"Cache-Control": "no-store"})
    assert bypass.headers["x-cache"] == "BYPASS" and bypass.json()["call"] == 1
    assert client.get("/items/1").headers["x-cache"] == "MISS"     # nothing was written
    again = client.get("/items/1", headers={"Cache-Control": "no-store"})
    assert again.headers["x-cache"] == "BYPASS" and again.json()["call"] == 3   # nothing was read


def test_no_cache_skips_the_read_and_refreshes_the_entry(runtime: Runtime) -> None:
    client, _ = build(runtime)
    client.get("/items/1")
    refreshed = client.get("/items/1", headers={"Cache-Control": "no-cache"})
    assert refreshed.headers["x-cache"] == "MISS" and refreshed.json()["call"] == 2
    after = client.get("/items/1")
    assert after.headers["x-cache"] == "HIT" and after.json()["call"] == 2
    assert client.get("/items/1", headers={"Cache-Control": "max-age=0"}).json()["call"] == 3


def test_if_none_match_gets_304_without_body(runtime: Runtime) -> None:
    client, calls = build(runtime)
    etag = client.get("/items/1").headers["etag"]
    not_modified = client.get("/items/1", headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified.headers["etag"] == etag and not_modified.headers["x-cache"] == "HIT"
    assert client.get("/items/1", headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304
    assert client.get("/items/1", headers={"If-None-Match": '"other"'}).status_code == 200
    assert calls.calls == 1
    runtime.clock.advance(61)  # type: ignore[attr-defined]
    recomputed = client.get("/items/1", headers={"If-None-Match": etag})   # a new body: a new ETag
    assert recomputed.status_code == 200 and recomputed.headers["etag"] != etag


def test_etag_changes_with_the_body(runtime: Runtime) -> None:
    client, _ = build(runtime)
    etag = client.get("/items/1").headers["etag"]
    changed = client.get("/items/1", headers={"Cache-Control": "no-cache", "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag


def test_post_is_not_cached(runtime: Runtime) -> None:
    client, _ = build(runtime)
    assert client.post("/items/1").json()["call"] == 1
    answer = client.post("/items/1")
    assert answer.json()["call"] == 2 and "x-cache" not in answer.headers and "etag" not in answer.headers


def test_sync_endpoint(runtime: Runtime) -> None:
    client, _ = build(runtime)
    assert client.get("/sync/ada").json() == {"name": "ada", "call": 1}
    hit = client.get("/sync/ada")
    assert hit.headers["x-cache"] == "HIT" and hit.json() == {"name": "ada", "call": 1}


def test_dependencies_still_run_and_fill_the_key_template(runtime: Runtime) -> None:
    client, _ = build(runtime)
    assert client.get("/me?x_user=ada").json() == {"user": "ada", "call": 1}
    assert client.get("/me?x_user=bob").json() == {"user": "bob", "call": 2}
    assert client.get("/me?x_user=ada").json() == {"user": "ada", "call": 1}
    stored = runtime.region("pages").peek("me:ada")
    assert stored["value"] == {"user": "ada", "call": 1}


def test_non_json_responses_pass_through_uncached(runtime: Runtime) -> None:
    client, calls = build(runtime)
    assert client.get("/stream").json() == {"a": 1}
    streamed = client.get("/stream")
    assert calls.calls == 2 and "x-cache" not in streamed.headers
    assert client.get("/text").text == "call 3"
    assert client.get("/text").text == "call 4"
    assert client.get("/nan").status_code == 404          # not a 200: not cached
    assert client.get("/nan").json()["call"] == 8


def test_a_json_response_body_is_cached(runtime: Runtime) -> None:
    client, _ = build(runtime)
    first = client.get("/json-response")
    assert first.headers["x-cache"] == "MISS" and first.json() == {"call": 1}
    second = client.get("/json-response")
    assert second.headers["x-cache"] == "HIT" and second.json() == {"call": 1}
    assert second.headers["content-type"] == "application/json" and second.headers["etag"] == first.headers["etag"]


def test_values_json_cannot_represent_are_not_cached() -> None:
    runtime = Runtime.fake()
    app = FastAPI()
    calls = Counter()

    @app.get("/bytes")
    @cache_response(ttl=60, runtime=runtime)
    def raw() -> Response:
        calls()
        return Response(b"\x00\x01", media_type="application/octet-stream")

    @app.get("/file")
    @cache_response(ttl=60, runtime=runtime)
    def file() -> FileResponse:
        calls()
        return FileResponse(__file__)

    client = TestClient(app)
    for _ in range(2):
        assert client.get("/bytes").content == b"\x00\x01"
        assert client.get("/file").status_code == 200
    assert calls.calls == 4 and runtime.region().keys() == []


def test_each_credential_gets_its_own_entry_by_default(runtime: Runtime) -> None:
    client, _ = build(runtime)
    ada = client.get("/items/1", headers={"Authorization": "Bearer ada"})
    bob = client.get("/items/1", headers={"Authorization": "Bearer bob"})
    anonymous = client.get("/items/1")
    assert [ada.json()["call"], bob.json()["call"], anonymous.json()["call"]] == [1, 2, 3]
    assert client.get("/items/1", headers={"Authorization": "Bearer ada"}).json()["call"] == 1
    assert client.get("/items/1", headers={"Cookie": "session=x"}).json()["call"] == 4
    assert ada.headers["cache-control"] == "private, max-age=60" and ada.headers["vary"] == "Authorization, Cookie"
    stored = runtime.region().keys()
    assert len(stored) == 4 and not any("Bearer" in key or "ada" in key for key in stored)


def test_vary_can_be_turned_off_for_public_endpoints(runtime: Runtime) -> None:
    app = FastAPI()
    calls = Counter()

    @app.get("/public")
    @cache_response(ttl=60, vary=(), runtime=runtime)
    def public() -> dict[str, int]:
        return {"call": calls()}

    client = TestClient(app)
    assert client.get("/public", headers={"Authorization": "Bearer ada"}).json() == {"call": 1}
    shared = client.get("/public", headers={"Authorization": "Bearer bob"})
    assert shared.json() == {"call": 1} and "vary" not in shared.headers
    # still an answer to a request with credentials: not for shared proxies
    assert shared.headers["cache-control"] == "private, max-age=60"
    assert client.get("/public").headers["cache-control"] == "max-age=60"


def test_a_key_template_answer_to_a_credentialed_request_is_private(runtime: Runtime) -> None:
    client, _ = build(runtime)
    answer = client.get("/me?x_user=ada", headers={"Cookie": "session=1"})
    assert answer.headers["cache-control"] == "private, max-age=60" and "vary" not in answer.headers
    assert client.get("/me?x_user=ada").headers["cache-control"] == "max-age=60"


def test_endpoint_with_its_own_request_and_response(runtime: Runtime) -> None:
    app = FastAPI()

    @app.get("/own/{x}")
    @cache_response(ttl=60, runtime=runtime)
    async def own(x: int, request: Request, response: Response) -> dict[str, Any]:
        response.headers["X-Own"] = "yes"
        return {"x": x, "path": request.url.path}

    client = TestClient(app)
    first = client.get("/own/3")
    assert first.json() == {"x": 3, "path": "/own/3"} and first.headers["x-own"] == "yes"
    assert client.get("/own/3").headers["x-cache"] == "HIT"


def test_signature_and_openapi_keep_the_endpoint_parameters(runtime: Runtime) -> None:
    client, _ = build(runtime)
    spec = client.get("/openapi.json").json()
    names = [p["name"] for p in spec["paths"]["/items/{item_id}"]["get"]["parameters"]]
    assert names == ["item_id", "q"]


def test_a_response_that_sets_a_cookie_is_not_cached(runtime: Runtime) -> None:
    app = FastAPI()
    calls = Counter()

    @app.get("/login")
    @cache_response(ttl=60, runtime=runtime)
    def login(response: Response) -> dict[str, int]:
        response.set_cookie("session", f"s{calls.calls}")
        return {"call": calls()}

    client = TestClient(app)
    assert client.get("/login").json() == {"call": 1}
    assert client.get("/login").json() == {"call": 2}


def test_response_model_filters_hits_too(runtime: Runtime) -> None:
    from pydantic import BaseModel

    class Public(BaseModel):
        name: str

    app = FastAPI()

    @app.get("/user", response_model=Public)
    @cache_response(ttl=60, runtime=runtime)
    def user() -> dict[str, str]:
        return {"name": "ada", "password": "secret"}

    client = TestClient(app)
    assert client.get("/user").json() == {"name": "ada"}
    hit = client.get("/user")
    assert hit.headers["x-cache"] == "HIT" and hit.json() == {"name": "ada"}


def test_default_runtime_is_the_facade() -> None:
    from cachekit import Cache

    runtime = Cache.fake()
    try:
        app = FastAPI()

        @app.get("/facade")
        @cache_response(ttl="1m")
        def facade() -> dict[str, int]:
            return {"one": 1}

        client = TestClient(app)
        assert client.get("/facade").headers["cache-control"] == "max-age=60"
        assert runtime.region().keys() == ["response:/facade"]
    finally:
        Cache.reset()


def test_head_and_get_share_one_entry(runtime: Runtime) -> None:
    app = FastAPI()
    calls = Counter()

    @app.api_route("/both", methods=["GET", "HEAD"])
    @cache_response(ttl=60, runtime=runtime)
    def both() -> dict[str, int]:
        return {"call": calls()}

    client = TestClient(app)
    head = client.head("/both")
    assert head.headers["x-cache"] == "MISS" and head.content == b""
    get = client.get("/both")
    assert get.headers["x-cache"] == "HIT" and get.json() == {"call": 1}
    assert get.headers["etag"] == head.headers["etag"]


def test_ttl_as_a_duration_string_and_a_bad_one() -> None:
    from cachekit import CacheError

    runtime = Runtime.fake()
    app = FastAPI()

    @app.get("/d")
    @cache_response(ttl="1h30m", runtime=runtime)
    def d() -> dict[str, int]:
        return {"one": 1}

    assert TestClient(app).get("/d").headers["cache-control"] == "max-age=5400"
    with pytest.raises(CacheError, match="not a number of seconds or a duration"):
        cache_response(ttl="soon")


def test_a_key_template_must_name_endpoint_parameters() -> None:
    from cachekit import CacheError

    with pytest.raises(CacheError, match="names 'user'"):
        @cache_response(key="u:{user}")
        def endpoint(user_id: int) -> dict[str, int]:
            return {}


def test_string_annotations_resolve_in_the_endpoint_module(runtime: Runtime) -> None:
    app = FastAPI()
    calls = Counter()

    @app.get("/list")
    @cache_response(ttl=60, runtime=runtime)
    async def listing(paging: Paging = Depends()) -> dict[str, int]:   # "Paging": a string annotation here
        return {"page": paging.page, "size": paging.size, "call": calls()}

    client = TestClient(app)
    assert client.get("/list?page=2").json() == {"page": 2, "size": 10, "call": 1}
    assert client.get("/list?page=2").headers["x-cache"] == "HIT"
    assert client.get("/list?page=3").json()["call"] == 2


def test_a_callable_key_gets_the_endpoint_arguments_by_name(runtime: Runtime) -> None:
    app = FastAPI()
    calls = Counter()

    @app.get("/things/{thing_id}")
    @cache_response(ttl=60, runtime=runtime, key=lambda thing_id, **_: f"thing:{thing_id % 2}")
    def thing(thing_id: int, verbose: bool = False) -> dict[str, int]:
        return {"call": calls()}

    client = TestClient(app)
    assert client.get("/things/1").json() == {"call": 1}
    assert client.get("/things/3?verbose=true").json() == {"call": 1}   # the same key: thing:1
    assert client.get("/things/2").json() == {"call": 2}
    assert sorted(runtime.region().keys()) == ["thing:0", "thing:1"]
