"""Secrets (URL passwords, password fields, signing keys, HTTP tokens) never leave through an output.

One config plants a distinct secret in every place a secret can sit; every way a config is shown
(``cachekit show`` in each format, ``repr``/``str``/``model_dump``, the services, the HTTP routes,
``str(ConfigError)``, a failed connection's logs and errors, ``cachekit ping``) is searched for them.
The real values still reach the drivers and the saved file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import free_port, need_module

from cachekit import Cache, ConfigError, ProviderError, load, load_config
from cachekit.config.loader import parse_config
from cachekit.config.models import CacheConfig
from cachekit.config.secrets import MASK, SecretUrl, mask_text, mask_url
from cachekit.services import get_cache_configuration_service, get_cache_provider_service

SCRIPT = Path(sys.executable).parent / "cachekit"


def _secret(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


URL_PW = _secret("urlpw")          # redis://app:URL_PW@...
QUERY_PW = _secret("querypw")      # ...?password=QUERY_PW
SENTINEL_PW = _secret("sentpw")    # sentinel = ["redis://:SENTINEL_PW@..."]
CLUSTER_PW = _secret("clusterpw")  # startup_nodes = ["redis://:CLUSTER_PW@..."]
CLUSTER_URL_PW = _secret("curlpw")  # cluster = true, url = "rediss://ops:CLUSTER_URL_PW@..."
FIELD_PW = _secret("fieldpw")      # password = "FIELD_PW"
SIGNING_KEY = _secret("signkey")   # signing_key = "SIGNING_KEY"
TOKEN = _secret("token")           # [http] token = "TOKEN"
EXTRA_PW = _secret("extrapw")      # a custom driver's dsn = "postgres://u:EXTRA_PW@..."
ENCRYPTION_KEY = uuid.uuid4().hex + uuid.uuid4().hex  # encryption_keys = ["ENCRYPTION_KEY"] (64 hex digits)
SECRETS = [URL_PW, QUERY_PW, SENTINEL_PW, CLUSTER_PW, CLUSTER_URL_PW, FIELD_PW, SIGNING_KEY, TOKEN, EXTRA_PW,
           ENCRYPTION_KEY]


def assert_no_secret(text: str, where: str) -> None:
    found = [s for s in SECRETS if s in text]
    assert not found, f"{where} shows {found}:\n{text}"


@pytest.fixture
def dead_port() -> int:
    return free_port()  # nothing listens there


@pytest.fixture
def planted(tmp_path: Path, dead_port: int) -> Path:
    """A valid config with every kind of secret; no server answers any of its providers."""
    path = tmp_path / "app.toml"
    path.write_text(f"""\
[cache]
default_provider = "local"

[providers.local]
type = "memory"

[providers.main]
type = "redis"
url = "redis://app:{URL_PW}@127.0.0.1:{dead_port}/3?password={QUERY_PW}&health_check_interval=7"
signing_key = "{SIGNING_KEY}"
encryption_keys = ["{ENCRYPTION_KEY}"]
connect_timeout = 0.2
socket_timeout = 0.2
retries = 0

[providers.ha]
type = "redis"
sentinel = ["redis://:{SENTINEL_PW}@127.0.0.1:{dead_port}"]
password = "{FIELD_PW}"
connect_timeout = 0.2
socket_timeout = 0.2
retries = 0

[providers.nodes]
type = "redis"
cluster = true
startup_nodes = ["redis://:{CLUSTER_PW}@127.0.0.1:{dead_port}"]
connect_timeout = 0.2
socket_timeout = 0.2
retries = 0

[providers.cluster]
type = "redis"
cluster = true
url = "rediss://ops:{CLUSTER_URL_PW}@127.0.0.1:{dead_port}/0"
connect_timeout = 0.2
socket_timeout = 0.2
retries = 0

[providers.pg]
type = "custom"
driver = "dict_driver:DictDriver"
dsn = "postgres://u:{EXTRA_PW}@db.internal:5432/cache"

[http]
token = "{TOKEN}"
""")
    return path


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.upper().startswith("CACHEKIT_")}
    environ["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent.parent), environ.get("PYTHONPATH", "")])
    return subprocess.run([str(SCRIPT), *args], cwd=cwd, env=environ, capture_output=True, text=True,
                          timeout=120)


# -- the planted config, every output ----------------------------------------------------------


@pytest.mark.parametrize("output", ["toml", "json"])
def test_cachekit_show_masks_every_secret_and_keeps_host_port_db(planted: Path, dead_port: int,
                                                                output: str) -> None:
    result = run_cli("show", planted.name, "--format", output, cwd=planted.parent)
    assert result.returncode == 0, result.stderr
    assert_no_secret(result.stdout + result.stderr, f"cachekit show --format {output}")
    assert f"redis://app:{MASK}@127.0.0.1:{dead_port}/3?password={MASK}&health_check_interval=7" in result.stdout
    assert f"redis://:{MASK}@127.0.0.1:{dead_port}" in result.stdout  # sentinel, cluster node
    assert f"rediss://ops:{MASK}@127.0.0.1:{dead_port}/0" in result.stdout
    assert f"postgres://u:{MASK}@db.internal:5432/cache" in result.stdout


def test_repr_str_and_dumps_of_the_config_mask_every_secret(planted: Path, dead_port: int) -> None:
    config = load_config(planted)
    shown = {
        "repr(config)": repr(config),
        "str(config)": str(config),
        "model_dump()": str(config.model_dump()),
        "model_dump(mode='json')": json.dumps(config.model_dump(mode="json")),
        "model_dump_json()": config.model_dump_json(),
        "repr(provider)": repr(config.providers["main"]),
        "str(url)": str(config.providers["main"].url),  # type: ignore[union-attr]
        "f-string of url": f"{config.providers['main'].url}",  # type: ignore[union-attr]
    }
    for where, text in shown.items():
        assert_no_secret(text, where)
    assert f"127.0.0.1:{dead_port}/3" in shown["repr(config)"]
    # the real values are one explicit call away
    assert URL_PW in config.providers["main"].url.get_secret_value()  # type: ignore[union-attr]
    dsn = config.model_dump()["providers"]["pg"]["dsn"]
    assert dsn.get_secret_value().endswith(f"{EXTRA_PW}@db.internal:5432/cache")


def test_services_mask_every_secret(planted: Path) -> None:
    runtime = load(planted)
    try:
        async def views() -> list[Any]:
            providers = await get_cache_provider_service(runtime)
            configuration = await get_cache_configuration_service(runtime)
            listed = (await providers.list_providers()).unwrap()
            one = [(await providers.get_provider(p.name)).unwrap() for p in listed]
            active = (await configuration.get_active_configuration()).unwrap()
            return [*listed, *one, active]

        views = asyncio.run(views())
        for view in views:
            assert_no_secret(json.dumps(view.to_dict()), f"services: {type(view).__name__}")
            assert_no_secret(repr(view), f"services: repr of {type(view).__name__}")
        main = next(v for v in views if getattr(v, "name", None) == "main")
        assert main.connection_details["url"].startswith(f"redis://app:{MASK}@127.0.0.1:")  # type: ignore[attr-defined]
    finally:
        runtime.close()


def test_http_routes_mask_every_secret(planted: Path, dead_port: int) -> None:
    need_module("fastapi")
    need_module("httpx")
    from cachekit.http import create_app

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient

    runtime = load(planted)
    try:
        with TestClient(create_app(runtime, token=TOKEN)) as client:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            answers = {path: client.get(f"/api/cache{path}", headers=headers)
                       for path in ["/providers", "/providers/main", "/providers/ha", "/providers/nodes",
                                    "/providers/cluster", "/providers/pg", "/configuration"]}
        for path, answer in answers.items():
            assert answer.status_code == 200, (path, answer.text)
            assert_no_secret(answer.text, f"GET {path}")
        assert f"127.0.0.1:{dead_port}/3" in answers["/providers/main"].text
    finally:
        runtime.close()


def test_failed_connection_logs_errors_and_ping_mask_the_password(
    planted: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = load(planted)
    try:
        with caplog.at_level(logging.DEBUG):
            for name in ("main", "ha", "nodes", "cluster"):
                assert runtime.store(name).get("k", "fallback") == "fallback"  # logged, counted
        raised = []
        for name in ("main", "ha", "nodes", "cluster"):
            with pytest.raises(ProviderError) as info:
                runtime.store(name).l2.driver.ping()  # type: ignore[attr-defined]
            raised.append(f"{info.value!s} {info.value!r}")
    finally:
        runtime.close()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "failed" in logged  # the failures were logged...
    assert_no_secret(logged, "logs")  # ...without the passwords
    for text in raised:
        assert_no_secret(text, "ProviderError")
    result = run_cli("ping", planted.name, cwd=planted.parent)
    assert result.returncode == 1 and "error" in result.stdout
    assert_no_secret(result.stdout + result.stderr, "cachekit ping")


# -- ConfigError ---------------------------------------------------------------------------------


@pytest.mark.parametrize("where, value", [
    ("providers.r.signing_key", "98765432123456789"),
    ("providers.r.signing_key", f'["{SIGNING_KEY}"]'),
    ("providers.r.signing_key", f'{{ key = "{SIGNING_KEY}" }}'),
    ("providers.r.password", "4242424242424242"),
    ("providers.r.url", "31415926535897"),
    ("providers.r.sentinel", f'["127.0.0.1:26379", {{ password = "{SENTINEL_PW}" }}]'),
    ("http.token", "27182818284590"),
])
def test_config_error_never_echoes_a_secret_of_the_wrong_type(where: str, value: str) -> None:
    section, _, key = where.rpartition(".")
    head = '[providers.r]\ntype = "redis"\n' if section == "providers.r" else "[http]\n"
    with pytest.raises(ConfigError) as info:
        parse_config(f"{head}{key} = {value}\n")
    planted_value = value.strip('[]"{} ').removeprefix("key = ").strip('"')
    planted_value = SENTINEL_PW if SENTINEL_PW in value else planted_value
    for text in [str(info.value), repr(info.value), *(str(e) for e in info.value.errors),
                 *(e.message for e in info.value.errors)]:
        assert planted_value not in text
    assert [e.path.split("[")[0] for e in info.value.errors] == [where]
    assert "its value is not shown" in info.value.errors[0].message


@pytest.mark.parametrize("output", ["text", "json", "github"])
def test_cachekit_validate_and_show_never_echo_a_wrong_typed_secret(tmp_path: Path, output: str) -> None:
    (tmp_path / "bad.toml").write_text(f'[providers.r]\ntype = "redis"\nsigning_key = ["{SIGNING_KEY}"]\n'
                                       f'password = 4242424242424242\n\n[providers]\nx = "redis://:{URL_PW}@h:1/0"\n')
    validated = run_cli("validate", "bad.toml", "--format", output, cwd=tmp_path)
    shown = run_cli("show", "bad.toml", cwd=tmp_path)
    assert validated.returncode == 1 and shown.returncode == 1
    assert "providers.r.signing_key" in validated.stdout and "providers.r.signing_key" in shown.stderr
    for result in (validated, shown):
        assert_no_secret(result.stdout + result.stderr, f"cachekit validate --format {output} / show")
        assert "4242424242424242" not in result.stdout + result.stderr


@pytest.mark.parametrize("toml", [
    f'[providers]\nr = "redis://:{URL_PW}@10.0.0.5:6379/0"\n',  # a table expected
    f'[providers.r]\nserializer = "redis://:{URL_PW}@10.0.0.5:6379/0"\n',  # one of a few values expected
])
def test_config_error_about_a_url_in_the_wrong_place_masks_its_password(toml: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(toml)
    assert URL_PW not in str(info.value)
    assert f"redis://:{MASK}@10.0.0.5" in str(info.value)


def test_a_model_built_in_code_does_not_echo_a_wrong_typed_signing_key() -> None:
    from pydantic import ValidationError

    from cachekit.config.models import RedisProviderConfig

    with pytest.raises(ValidationError) as info:
        RedisProviderConfig(signing_key=98765432123456789)  # type: ignore[arg-type]
    assert "98765432123456789" not in str(info.value)


# -- the real values still reach the stores and the file ------------------------------------------


@pytest.fixture
def acl_user(redis_server: Any) -> Iterator[tuple[str, str]]:
    """A Redis ACL user with a password (the default user stays open for the other tests)."""
    user, password = f"u{uuid.uuid4().hex[:8]}", _secret("aclpw")
    client = redis_server.client()
    client.acl_setuser(user, enabled=True, passwords=[f"+{password}"], keys=["*"], channels=["*"],
                       commands=["+@all"])
    try:
        yield user, password
    finally:
        client.acl_deluser(user)
        client.close()


def test_a_url_password_reaches_the_server_and_survives_save(
    redis_server: Any, acl_user: tuple[str, str], tmp_path: Path
) -> None:
    user, password = acl_user
    path = tmp_path / "app.toml"
    path.write_text(f'# the cache\n[providers.r]\ntype = "redis"  # shared\n'
                    f'url = "redis://{user}:{password}@127.0.0.1:{redis_server.port}/0"\non_error = "raise"\n\n'
                    '[regions.users]\nprovider = "r"\nttl = 60\n')
    runtime = load(path)
    try:
        runtime.region("users").put("u:1", "Ada")
        assert runtime.region("users").get("u:1") == "Ada"  # authenticated with the real password
        runtime.config.regions["users"].ttl = 120
        runtime.save()
    finally:
        runtime.close()
    text = path.read_text()
    assert f'url = "redis://{user}:{password}@127.0.0.1:{redis_server.port}/0"' in text
    assert MASK not in text and "ttl = 120" in text and '"redis"  # shared' in text
    reloaded = load(path)
    try:
        assert reloaded.region("users").get("u:1") == "Ada"
    finally:
        reloaded.close()


def test_a_provider_added_over_the_services_is_saved_with_its_real_password(
    redis_server: Any, acl_user: tuple[str, str], tmp_path: Path
) -> None:
    user, password = acl_user
    path = tmp_path / "app.toml"
    path.write_text("[cache]\nprefix = \"app\"\n")
    runtime = load(path)
    url = f"redis://{user}:{password}@127.0.0.1:{redis_server.port}/0"

    async def work() -> Any:
        service = await get_cache_provider_service(runtime)
        created = (await service.register_provider("r", "redis", {"url": url}, on_error="raise")).unwrap()
        # a client that GETs the provider, edits one field and PUTs everything back
        settings = dict(created.settings)
        settings["socket_timeout"] = 2.0
        return (await service.update_provider("r", settings)).unwrap()

    try:
        updated = asyncio.run(work())
        assert password not in json.dumps(updated.to_dict())
        assert runtime.config.providers["r"].url.get_secret_value() == url  # type: ignore[union-attr]
        assert runtime.config.providers["r"].socket_timeout == 2.0
        runtime.store("r").put("k", 1)
        assert runtime.store("r").get("k") == 1
        runtime.save()
    finally:
        runtime.close()
    assert f'url = "{url}"' in path.read_text()


def test_a_masked_password_is_refused_as_a_new_url() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(f'[providers.r]\ntype = "redis"\nurl = "redis://:{MASK}@10.0.0.5:6379/0"\n')
    assert "give the real password" in str(info.value)


def test_sentinel_urls_carry_the_sentinels_credentials(redis_sentinel: Any) -> None:
    user, password = f"s{uuid.uuid4().hex[:8]}", _secret("sentinelpw")
    import redis

    admin = redis.Redis(host="127.0.0.1", port=redis_sentinel.sentinel.port)
    admin.execute_command("ACL", "SETUSER", user, "on", f">{password}", "+@all", "~*", "&*")
    try:
        host, port = redis_sentinel.sentinels[0].rsplit(":", 1)
        good = CacheConfig(providers={"s": {"type": "redis", "on_error": "raise",
                                            "sentinel": [f"redis://{user}:{password}@{host}:{port}"]}},
                           regions={"r": {"provider": "s"}}).compile()
        bad = CacheConfig(providers={"s": {"type": "redis", "on_error": "raise", "retries": 0,
                                           "sentinel": [f"redis://{user}:wrong-{password}@{host}:{port}"]}},
                          regions={"r": {"provider": "s"}}).compile()
        try:
            good.region("r").put("k", "v")
            assert good.region("r").get("k") == "v"
            with pytest.raises(ProviderError) as info:
                bad.region("r").put("k", "v")
            assert password not in str(info.value)
        finally:
            good.close()
            bad.close()
    finally:
        admin.execute_command("ACL", "DELUSER", user)
        admin.close()


def test_cluster_node_urls_carry_the_nodes_credentials(redis_cluster: Any) -> None:
    import redis

    user, password = f"c{uuid.uuid4().hex[:8]}", _secret("nodepw")
    admins = [redis.Redis(host=host, port=port) for host, port in redis_cluster.nodes]
    for admin in admins:
        admin.acl_setuser(user, enabled=True, passwords=[f"+{password}"], keys=["*"], channels=["*"],
                          commands=["+@all"])
    host, port = redis_cluster.nodes[0]

    def runtime(secret: str) -> Any:
        return CacheConfig(providers={"c": {"type": "redis", "cluster": True, "on_error": "raise", "retries": 0,
                                            "startup_nodes": [f"redis://{user}:{secret}@{host}:{port}"]}},
                           regions={"r": {"provider": "c"}}).compile()

    good, bad = runtime(password), runtime(f"wrong-{password}")
    try:
        good.region("r").put("k", "v")
        assert good.region("r").get("k") == "v"
        with pytest.raises(ProviderError) as info:
            bad.region("r").get("k")
        assert password not in str(info.value)
    finally:
        good.close()
        bad.close()
        for admin in admins:
            admin.acl_deluser(user)
            admin.close()


def test_fake_and_environment_overrides_keep_working_with_secret_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHEKIT_PROVIDERS__R__URL", f"redis://:{URL_PW}@10.9.8.7:6379/4")
    config = parse_config('[providers.r]\ntype = "redis"\nurl = "redis://localhost:6379/0"\n')
    assert config.providers["r"].url.get_secret_value() == f"redis://:{URL_PW}@10.9.8.7:6379/4"  # type: ignore[union-attr]
    assert_no_secret(repr(config), "repr of an env override")
    monkeypatch.setenv("CACHEKIT_PROVIDERS__R__TYPE", "redis")
    runtime = Cache.fake()  # the environment's provider, served from memory
    try:
        assert_no_secret(repr(runtime.config), "repr of a fake's config")
        runtime.store("r").put("k", 1)
        assert runtime.store("r").get("k") == 1
    finally:
        Cache.reset()


def test_a_raw_validation_error_does_not_echo_an_environment_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("CACHEKIT_PROVIDERS__R__URL", f"redis://:{URL_PW}@10.9.8.7:6379/4")  # no type: memory
    with pytest.raises(ValidationError) as info:
        CacheConfig()
    assert_no_secret(str(info.value), "str(ValidationError)")


# -- the masking functions ----------------------------------------------------------------------


@pytest.mark.parametrize("url, shown", [
    ("redis://:pw@host:6379/0", f"redis://:{MASK}@host:6379/0"),
    ("rediss://user:pw@host", f"rediss://user:{MASK}@host"),
    ("redis://user@host:1/2", "redis://user@host:1/2"),
    ("redis://host:6379/0?password=pw&db=1", f"redis://host:6379/0?password={MASK}&db=1"),
    ("unix://:pw@/tmp/redis.sock?db=2", f"unix://:{MASK}@/tmp/redis.sock?db=2"),
    ("redis://:p@ss/word@host:6379/0", f"redis://:{MASK}@host:6379/0"),
    ("user:pw@10.0.0.1:26379", f"user:{MASK}@10.0.0.1:26379"),
    ("10.0.0.1:26379", "10.0.0.1:26379"),
])
def test_mask_url_hides_the_password_and_keeps_the_rest(url: str, shown: str) -> None:
    assert mask_url(url) == shown
    assert str(SecretUrl(url)) == shown and SecretUrl(url).get_secret_value() == url


def test_mask_text_finds_urls_inside_messages() -> None:
    assert mask_text("Error connecting to 'redis://u:pw@h:1/0' and rediss://:x@y") == (
        f"Error connecting to 'redis://u:{MASK}@h:1/0' and rediss://:{MASK}@y")


# -- the security page ----------------------------------------------------------------------------


def test_security_page_examples_run_and_the_page_is_linked_from_readme_and_index() -> None:
    from docblocks import ROOT, page_blocks, run_block

    blocks = [b for b in page_blocks(["docs/security.md"], "python") if not b.skip]
    assert blocks
    for block in blocks:
        run_block(block.code, block.file, block.line + 1)
    assert "](docs/security.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert "](security.md)" in (ROOT / "docs" / "index.md").read_text(encoding="utf-8")


def test_the_secrets_module_examples_run() -> None:
    import doctest

    import cachekit.config.secrets as module

    result = doctest.testmod(module)
    assert result.attempted >= 4 and result.failed == 0
