"""The table of built-in provider types, and the registry that reads provider configs for the drivers."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from cachekit.clock import SystemClock
from cachekit.config.models import PROVIDER_MODELS, FileProviderConfig, RedisProviderConfig
from cachekit.providers.registry import build_driver, driver_options, serializer_for
from cachekit.providers.types import BUILTIN_PROVIDER_TYPES, NETWORK_STORES, PROVIDER_TYPES
from cachekit.serializers import default_serializer_name


def test_every_type_of_the_table_has_a_config_model_and_driver_options() -> None:
    assert list(PROVIDER_MODELS) == list(PROVIDER_TYPES) == list(BUILTIN_PROVIDER_TYPES)
    for name, model in PROVIDER_MODELS.items():
        assert model().type == name
        options = driver_options(model(), namespace="app:", clock=SystemClock())
        assert isinstance(options, dict) and options, name


@pytest.mark.parametrize("name", list(PROVIDER_TYPES))
def test_the_driver_class_agrees_with_the_table_on_key_enumeration(name: str) -> None:
    pytest.importorskip({"redis": "redis", "memcached": "pymemcache"}.get(name, "cachekit"))
    from cachekit.providers.registry import import_driver_class

    kind = PROVIDER_TYPES[name]
    assert import_driver_class(kind.driver).can_scan is kind.can_scan


#: parsed at collection: CPython 3.11 can fail ``ast.parse`` late in a long run ("AST constructor
#: recursion depth mismatch" after deep recursion elsewhere), as tests/test_architecture.py notes
_TABLE_TREE = ast.parse(Path(__file__).resolve().parents[2].joinpath("cachekit/providers/types.py").read_text())


def test_the_table_imports_no_config_model_nor_client_library() -> None:
    tree = _TABLE_TREE
    imported = {alias.name if isinstance(node, ast.Import) else node.module
                for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)
                for alias in node.names}
    assert imported <= {"__future__", "dataclasses"}, imported


def test_serializer_defaults_come_from_the_table() -> None:
    for name, kind in PROVIDER_TYPES.items():
        expected = kind.default_serializer or "pickle"
        assert default_serializer_name(name, signed=False) == expected
        assert default_serializer_name(name, signed=True) == "pickle"
    assert NETWORK_STORES == ("redis", "memcached")
    assert default_serializer_name("dynamo", signed=False) == "pickle"  # a custom type


@pytest.mark.parametrize("with_env_key", [False, True])
def test_a_file_driver_built_without_a_serializer_signs_with_the_environment_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_env_key: bool
) -> None:
    from cachekit.providers.file import FileDriver

    monkeypatch.delenv("CACHEKIT_SIGNING_KEY", raising=False)
    if with_env_key:
        monkeypatch.setenv("CACHEKIT_SIGNING_KEY", "s3cret")
    direct = FileDriver(tmp_path / "direct")
    built = build_driver(FileProviderConfig(path=str(tmp_path / "built")), namespace="", clock=SystemClock())
    # one serializer policy: a driver made by hand and one made from a config agree
    assert direct.signed is built.signed is with_env_key
    assert direct.serializer.name == built.serializer.name == "pickle"  # type: ignore[attr-defined]


def test_redis_options_are_plain_strings_and_the_password_stays_masked() -> None:
    pytest.importorskip("redis")
    cfg = RedisProviderConfig(url="redis://:hunter22@10.0.0.1:6379/2", password="pw-4567",
                              startup_nodes=["redis://:n0de-pw@10.0.0.2:7000"])
    options: dict[str, Any] = driver_options(cfg, namespace="app:", clock=SystemClock())
    assert options["url"] == "redis://:hunter22@10.0.0.1:6379/2"
    assert options["password"] == "pw-4567" and options["startup_nodes"] == ["redis://:n0de-pw@10.0.0.2:7000"]
    driver = build_driver(cfg, namespace="app:", clock=SystemClock())
    assert "hunter22" not in repr(driver) and "10.0.0.1:6379/2" in repr(driver)
    scrubbed = driver.scrub("AUTH pw-4567 failed at redis://:hunter22@10.0.0.1 (node n0de-pw)")  # type: ignore[attr-defined]
    assert "pw-4567" not in scrubbed and "hunter22" not in scrubbed and "n0de-pw" not in scrubbed


def test_serializer_for_keeps_the_config_serializer_and_key() -> None:
    cfg = RedisProviderConfig(serializer="json", signing_key="k3y-value")
    serializer = serializer_for(cfg)
    assert serializer.name == "json" and serializer.signed


@pytest.mark.parametrize("module", ["types", "registry", "redis"])
def test_the_module_docstring_examples_run(module: str) -> None:
    import doctest
    import importlib

    if module == "redis":
        pytest.importorskip("redis")
    result = doctest.testmod(importlib.import_module(f"cachekit.providers.{module}"))
    assert result.attempted > 0 and result.failed == 0


def test_the_registry_is_the_only_provider_module_that_reads_config_models() -> None:
    import cachekit.providers as providers

    readers = sorted(
        path.name for path in Path(providers.__file__).parent.glob("*.py")
        if "ProviderConfig" in path.read_text() or "config.models" in path.read_text()
    )
    assert readers == ["registry.py"]
