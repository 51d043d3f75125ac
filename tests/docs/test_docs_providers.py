"""docs/providers/*.md, docs/serialization.md and docs/faults.md: every example runs (against real servers
where it needs them), every config is valid and works, and every provider option is documented.

Conventions of these pages, on top of those of ``tests/docblocks.py``:

- A ```python block runs on its own in ``docs_sandbox``. When its code names one of
  :data:`SERVER_VARIABLES` (``CACHEKIT_PROVIDERS__REDIS__URL``...), that variable is first set to the
  address of a real test server, so the example's config — which reads the environment — points at it.
- A ```python block whose first line is ``# file: NAME.py`` is a module of the page: it is written to
  the sandbox (and importable) before any block of the page runs; its own test imports it.
- A ```toml block must be a valid config (``parse_config(code, file=..., environ={})``); it is then
  compiled with the server variables it names applied, and a value round-trips through every region it
  declares, on the store it declares.
- A ```toml block declaring ``[project.entry-points."cachekit.providers"]`` is a ``pyproject.toml``
  excerpt, not a cachekit config: it is installed into the sandbox as a distribution's entry points.
- Each provider page has an options table (``| option | default | meaning |``) listing exactly the
  fields of its config model, with the model's defaults.

Some pages state limits of this version ("not enforced", "known gaps"); the tests at the end check
that those statements are still true, so that fixing the code also means updating the page.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomlkit
from docblocks import CodeBlock, as_params, extract_blocks, run_block
from docblocks import page_blocks as _blocks_of_pages
from pydantic import BaseModel
from servers import ask

from cachekit import MISSING, CacheConfig, CacheDriver, Runtime
from cachekit.config.loader import parse_config
from cachekit.config.models import (
    CustomProviderConfig,
    FileProviderConfig,
    MemcachedProviderConfig,
    MemoryProviderConfig,
    RedisProviderConfig,
)
from cachekit.config.schema import _default
from cachekit.providers.registry import import_driver_class
from cachekit.runtime.tier import LocalTier

ROOT = Path(__file__).resolve().parents[2]
PROVIDER_PAGES: dict[str, type[BaseModel]] = {
    "docs/providers/memory.md": MemoryProviderConfig,
    "docs/providers/file.md": FileProviderConfig,
    "docs/providers/redis.md": RedisProviderConfig,
    "docs/providers/memcached.md": MemcachedProviderConfig,
    "docs/providers/custom.md": CustomProviderConfig,
}
PAGES = [*PROVIDER_PAGES, "docs/serialization.md", "docs/faults.md"]
SERVER_PAGES = ["docs/providers/redis.md", "docs/providers/memcached.md"]

@dataclass(frozen=True)
class ServerVariable:
    """A ``CACHEKIT_...`` variable that points a config at the server(s) of a test fixture."""

    fixture: str
    value: Callable[[Any], str]
    #: commands the server(s) processed so far, to prove that an example really talked to them
    traffic: Callable[[Any], int]


def _redis_traffic(*servers: Any) -> int:
    total = 0
    for server in servers:
        client = server.client()
        try:
            total += int(client.info("stats")["total_commands_processed"])
        finally:
            client.close()
    return total


def _memcached_traffic(*servers: Any) -> int:
    total = 0
    for server in servers:
        stats = dict(line.split()[1:3] for line in ask(server.port, b"stats\r\n", timeout=2).decode().splitlines()
                     if line.startswith("STAT "))
        total += int(stats["cmd_get"]) + int(stats["cmd_set"])
    return total


#: Variables an example may name; each is set to the address of a real server started by a fixture.
SERVER_VARIABLES: dict[str, ServerVariable] = {
    "CACHEKIT_PROVIDERS__REDIS__URL": ServerVariable(
        "redis_server", lambda server: str(server.url), _redis_traffic
    ),
    "CACHEKIT_PROVIDERS__REDIS__SENTINEL": ServerVariable(
        "redis_sentinel", lambda sentinel: json.dumps(sentinel.sentinels), lambda s: _redis_traffic(s.master)
    ),
    "CACHEKIT_PROVIDERS__CLUSTER__STARTUP_NODES": ServerVariable(
        "redis_cluster", lambda cluster: json.dumps(cluster.startup_nodes), lambda c: _redis_traffic(*c.servers)
    ),
    "CACHEKIT_PROVIDERS__MEMCACHED__SERVERS": ServerVariable(
        "memcached_pool", lambda pool: json.dumps(pool.servers), lambda p: _memcached_traffic(*p.members)
    ),
}
_MODULE_HEADER = re.compile(r"#\s*file:\s*([A-Za-z_]\w*)\.py\s*")
_OPTIONS_HEADER = "| option | default | meaning |"
_OPTION_ROW = re.compile(r"^\| `(\w+)` \| (.+?) \| (.+) \|$")


# -- reading the pages -----------------------------------------------------------------------------
def page_blocks(page: str) -> list[CodeBlock]:
    return _blocks_of_pages([page])


def module_name(block: CodeBlock) -> str | None:
    """``NAME`` when the block is the module ``NAME.py`` of its page (first line ``# file: NAME.py``)."""
    if block.lang != "python":
        return None
    match = _MODULE_HEADER.fullmatch(block.code.splitlines()[0].strip())
    return match.group(1) if match else None


def is_pyproject(block: CodeBlock) -> bool:
    return block.lang == "toml" and "[project.entry-points." in block.code


def blocks_of(lang: str, *, pyproject: bool = False) -> list[Any]:
    return as_params(b for b in _blocks_of_pages(PAGES, lang) if is_pyproject(b) == pyproject)


def options_table(page: str) -> dict[str, tuple[str, str]]:
    """``{option: (default cell, meaning cell)}`` of the first options table of ``page``."""
    lines = (ROOT / page).read_text(encoding="utf-8").splitlines()
    start = lines.index(_OPTIONS_HEADER) + 2  # skip the header and its | --- | line
    rows: dict[str, tuple[str, str]] = {}
    for line in lines[start:]:
        match = _OPTION_ROW.match(line.strip())
        if match is None:
            break
        name, default, meaning = match.groups()
        assert name not in rows, f"{page}: option {name!r} is listed twice"
        rows[name] = (default, meaning)
    return rows


def server_environ(code: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """The server variables ``code`` names, set to the addresses of running test servers."""
    return {
        name: variable.value(request.getfixturevalue(variable.fixture))
        for name, variable in SERVER_VARIABLES.items()
        if name in code
    }


@contextlib.contextmanager
def served(code: str, request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Start the servers ``code`` needs; yield their variables; check that ``code`` used every one."""
    environ = server_environ(code, request)
    servers = {name: request.getfixturevalue(SERVER_VARIABLES[name].fixture) for name in environ}
    before = {name: SERVER_VARIABLES[name].traffic(server) for name, server in servers.items()}
    yield environ
    for name, server in servers.items():
        used = SERVER_VARIABLES[name].traffic(server) - before[name]
        assert used >= 3, f"the example names {name} but sent {used} commands to the test server"


# -- the sandbox of a page -------------------------------------------------------------------------
@contextlib.contextmanager
def page_environment(page: str, sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make the page's modules importable and its entry points installed; restore ``os.environ`` and
    ``sys.modules`` afterwards (an example may set ``CACHEKIT_SIGNING_KEY``, import its modules...)."""
    saved_environ = dict(os.environ)
    monkeypatch.syspath_prepend(str(sandbox))
    modules: list[str] = []
    for block in page_blocks(page):
        name = module_name(block)
        if name is not None:
            (sandbox / f"{name}.py").write_text(block.code, encoding="utf-8")
            modules.append(name)
        elif is_pyproject(block):
            _install_entry_points(block, sandbox)
    importlib.invalidate_caches()
    try:
        yield
    finally:
        for name in modules:
            sys.modules.pop(name, None)
        os.environ.clear()
        os.environ.update(saved_environ)


def _install_entry_points(block: CodeBlock, sandbox: Path) -> None:
    """Write a ``*.dist-info`` whose ``entry_points.txt`` holds the excerpt's entry points."""
    groups = tomlkit.parse(block.code).unwrap()["project"]["entry-points"]
    stem = Path(block.file).stem
    dist = sandbox / f"cachekit_docs_{stem}-0.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: cachekit-docs-{stem}\nVersion: 0\n")
    text = "".join(
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in entries.items())
        for group, entries in groups.items()
    )
    (dist / "entry_points.txt").write_text(text)


# -- the pages exist and are linked ----------------------------------------------------------------
@pytest.mark.parametrize("page", PAGES)
def test_page_has_executed_python_and_toml_examples(page: str) -> None:
    blocks = page_blocks(page)
    python = [b for b in blocks if b.lang == "python" and not b.skip and module_name(b) is None]
    toml = [b for b in blocks if b.lang == "toml" and not is_pyproject(b)]
    assert len(python) >= 2, f"{page}: fewer than two runnable Python examples"
    assert toml, f"{page}: no TOML config example"


def test_index_links_every_page() -> None:
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    for page in PAGES:
        assert f"]({Path(page).relative_to('docs').as_posix()})" in index, f"docs/index.md does not link {page}"


@pytest.mark.parametrize("page", SERVER_PAGES)
def test_server_pages_run_examples_against_real_servers(page: str) -> None:
    served = [b for b in page_blocks(page) if b.lang == "python" and any(v in b.code for v in SERVER_VARIABLES)]
    assert len(served) >= 3, f"{page}: its examples should run against a real server"


_SERVER_TYPE = re.compile(r'type = "(redis|memcached)"')
_UNREACHABLE = "redis://127.0.0.1:1/"  # nothing listens on port 1: the faults page's examples of an outage


@pytest.mark.parametrize("page", PAGES)
def test_every_server_example_is_pointed_at_a_test_server(page: str) -> None:
    """An example on Redis or Memcached must name its server variable, else it would run against whatever
    listens on the default port of the machine (or fail), not against the test servers."""
    for block in page_blocks(page):
        if block.lang in ("python", "toml") and _SERVER_TYPE.search(block.code) and _UNREACHABLE not in block.code:
            assert any(name in block.code for name in SERVER_VARIABLES), f"{block.id}: names no server variable"


def test_extractor_conventions_of_these_pages() -> None:
    text = '```python\n# file: mymod.py\nx = 1\n```\n```toml\n[project.entry-points."cachekit.providers"]\n```\n'
    module, pyproject = extract_blocks(text, "t.md")
    assert module_name(module) == "mymod" and not is_pyproject(module)
    assert is_pyproject(pyproject) and module_name(pyproject) is None
    assert module_name(CodeBlock("t.md", 1, "python", "import os\n", False)) is None


# -- options tables ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("page", "model"), PROVIDER_PAGES.items(), ids=list(PROVIDER_PAGES))
def test_options_table_lists_every_field_of_the_model_with_its_default(page: str, model: type[BaseModel]) -> None:
    table = options_table(page)
    assert set(table) == set(model.model_fields), (
        f"{page}: missing {sorted(set(model.model_fields) - set(table))}, "
        f"unknown {sorted(set(table) - set(model.model_fields))}"
    )
    for name, field in model.model_fields.items():
        default, meaning = table[name]
        assert default == _default(field), f"{page}: {name} default is {_default(field)}, the page says {default}"
        assert len(meaning) > 10, f"{page}: {name} has no meaning"


def test_serialization_table_lists_the_serialization_options_of_every_provider() -> None:
    table = options_table("docs/serialization.md")
    assert set(table) == {"serializer", "compress_threshold", "signing_key", "max_value_size"}
    for model in PROVIDER_PAGES.values():
        for name, (default, _meaning) in table.items():
            assert name in model.model_fields
            assert _default(model.model_fields[name]) in default, f"{model.__name__}.{name}"


def test_options_table_parser_rejects_a_page_without_the_table() -> None:
    with pytest.raises(ValueError):
        options_table("README.md")


# -- the examples -------------------------------------------------------------------------------------
@pytest.mark.usefixtures("docs_sandbox")
@pytest.mark.parametrize("block", blocks_of("python"))
def test_python_example_runs(block: CodeBlock, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    with page_environment(block.file, Path.cwd(), monkeypatch):
        name = module_name(block)
        if name is not None:
            module = importlib.import_module(name)
            drivers = [v for v in vars(module).values()
                       if isinstance(v, type) and issubclass(v, CacheDriver) and v is not CacheDriver]
            assert drivers, f"{block.id}: module {name} defines no CacheDriver subclass"
            return
        with served(block.code, request) as environ:
            for variable, value in environ.items():
                monkeypatch.setenv(variable, value)
            run_block(block.code, str(ROOT / block.file), block.line + 1)


@pytest.mark.usefixtures("docs_sandbox")
@pytest.mark.parametrize("block", blocks_of("toml"))
def test_toml_example_is_a_valid_config_that_works(
    block: CodeBlock, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    with page_environment(block.file, Path.cwd(), monkeypatch):
        parse_config(block.code, file=block.id, environ={})  # as written, no environment
        with served(block.code, request) as environ:
            config = parse_config(block.code, file=block.id, environ=environ)
            assert set(config.env_overrides.values()) == set(environ)
            assert config.regions, f"{block.id}: declares no region to try"
            _try_every_region(block, config)


def _try_every_region(block: CodeBlock, config: CacheConfig) -> None:
    with config.compile() as runtime:
        for name in config.regions:
            region = runtime.region(name)
            kind = runtime.provider_config(region.provider).type
            assert isinstance(region.l2, LocalTier) == (kind == "memory"), f"{block.id}: region {name} is not on {kind}"
            value = {"probe": [1, 2], "region": name}
            assert region.put("docs:probe", value), f"{block.id}: cannot write to region {name}"
            assert region.get("docs:probe") == value
            assert region.forget("docs:probe")
            assert region.stats.errors == 0, f"{block.id}: region {name} counted errors"


@pytest.mark.usefixtures("docs_sandbox")
@pytest.mark.parametrize("block", blocks_of("toml", pyproject=True))
def test_pyproject_excerpt_declares_drivers_of_the_page(block: CodeBlock, monkeypatch: pytest.MonkeyPatch) -> None:
    groups = tomlkit.parse(block.code).unwrap()["project"]["entry-points"]
    assert set(groups) == {"cachekit.providers"}
    with page_environment(block.file, Path.cwd(), monkeypatch):
        for target in groups["cachekit.providers"].values():
            assert issubclass(import_driver_class(target), CacheDriver)


# -- the limits the pages state ----------------------------------------------------------------------
class FlakyStore(CacheDriver):
    """A dictionary that raises while ``up`` is False."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.up = True

    def check(self) -> None:
        if not self.up:
            raise ConnectionError("store unreachable")

    def get(self, key: str) -> Any:
        self.check()
        return self.data.get(key, MISSING)

    def put(self, key: str, value: Any, ttl: float | None = None) -> bool:
        self.check()
        self.data[key] = value
        return True

    def forget(self, key: str) -> bool:
        self.check()
        return self.data.pop(key, MISSING) is not MISSING

    def flush(self) -> bool:
        self.check()
        self.data.clear()
        return True


def _file_runtime(path: Path, provider: dict[str, Any], region: dict[str, Any] | None = None) -> Runtime:
    return CacheConfig(
        providers={"disk": {"type": "file", "path": str(path), **provider}},
        regions={"default": {"provider": "disk", **(region or {})}},
    ).compile()


def test_region_serializer_is_applied_as_serialization_page_says(tmp_path: Path) -> None:
    from cachekit.providers.file import FileDriver
    from cachekit.serializers import make_serializer

    with _file_runtime(tmp_path, {"serializer": "pickle"}, {"serializer": "json"}) as runtime:
        runtime.region().put("k", {"a": 1})
    json_reader = FileDriver(tmp_path, serializer=make_serializer("json"))
    assert json_reader.get("cachekit:default:k")[0] == {"a": 1}  # written as JSON: the region's format


def test_file_max_value_size_is_enforced_as_file_page_says(tmp_path: Path) -> None:
    with _file_runtime(tmp_path, {"max_value_size": 100}) as runtime:
        assert runtime.region().put("big", "small")
        assert runtime.region().put("big", "x" * 1000) is False
        assert runtime.region().get("big") == "small" and runtime.region().stats.errors == 1


def test_custom_max_size_is_not_passed_as_custom_page_says() -> None:
    received: list[dict[str, Any]] = []

    class Recorder(FlakyStore):
        def __init__(self, **options: Any) -> None:
            super().__init__()
            received.append(options)

    module = type(sys)("docs_recorder_driver")
    module.Recorder = Recorder  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    try:
        config = CacheConfig(
            providers={"rec": {"type": "custom", "driver": "docs_recorder_driver:Recorder", "max_size": 5,
                               "label": "x"}},
            regions={"default": {"provider": "rec"}},
        )
        with config.compile() as runtime:
            assert runtime.region().put("k", 1)
    finally:
        del sys.modules[module.__name__]
    assert received == [{"label": "x"}]  # extra keys only; fixed? update docs/providers/custom.md


def test_tag_flush_during_an_outage_is_replayed_as_faults_page_says() -> None:
    store = FlakyStore()
    runtime = Runtime.fake()
    runtime.register_store("flaky", store)
    tagged = runtime.store("flaky").tags(["t"])
    tagged.put("k", "v")
    store.up = False
    assert tagged.flush() is False  # could not be applied: said so...
    store.up = True
    assert tagged.get("k") is None  # ...and replayed once the store answers
    other = Runtime.fake()  # another runtime on the same store sees the invalidation too
    other.register_store("flaky", store)
    assert other.store("flaky").tags(["t"]).get("k") is None
    assert runtime.store("flaky").stats.errors >= 1


def test_flush_of_a_failing_redis_region_follows_the_error_policy_as_faults_page_says() -> None:
    config = CacheConfig(
        providers={"redis": {"type": "redis", "url": "redis://127.0.0.1:1/0", "retries": 0,
                             "connect_timeout": 0.2}},
        regions={"default": {"provider": "redis"}},
    )
    with config.compile() as runtime:
        assert runtime.region().put("k", 1) is False
        assert runtime.region().flush() is False
        assert runtime.invalidate(pattern="k*", region="default").count == 0
        assert runtime.region().stats.errors >= 3
