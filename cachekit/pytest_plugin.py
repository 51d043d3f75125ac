"""pytest plugin (entry point ``cachekit`` of group ``pytest11``): config files as test items.

``pytest --cachekit-configs configs/ deploy/prod.toml`` adds one test item per TOML file (directories are
searched for ``*.toml``); an item fails with the formatted validation errors, one per line::

    configs/app.toml:12: regions.users.ttl: must be greater than 0 seconds, got 0; ...

The files are validated on their own: ``CACHEKIT_...`` variables of the test process are not applied.
The same paths can be set in the ini file: ``cachekit_configs = configs``.

The ``cachekit_cache`` fixture binds ``Cache`` to a fresh fake runtime for one test (see ``docs/testing.md``);
``@pytest.mark.cachekit(config="path.toml")`` or the ini key ``cachekit_config`` makes it start from a file.

This module is imported by every pytest run where cachekit is installed: it imports nothing of cachekit
until a config item runs or the fixture is used, and it never shadows pytest's own fixtures (``cache``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["ConfigFile", "ConfigInvalid", "ConfigItem"]


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--cachekit-configs PATH...`` and the ini key ``cachekit_configs``."""
    group = parser.getgroup("cachekit", "cachekit config validation")
    group.addoption(
        "--cachekit-configs",
        dest="cachekit_configs",
        nargs="+",
        action="extend",
        default=[],
        metavar="PATH",
        help="validate these cachekit TOML files (directories: every *.toml below) as test items",
    )
    parser.addini(
        "cachekit_configs", "cachekit TOML files or directories to validate as test items", type="paths"
    )
    parser.addini(
        "cachekit_config", "the TOML file the cachekit_cache fixture starts from (default: all memory)",
        type="paths",
    )


def _config_paths(config: pytest.Config) -> list[Path]:
    given = [Path(p) for p in config.getoption("cachekit_configs") or []]
    given += [Path(p) for p in config.getini("cachekit_configs") or []]
    files: list[Path] = []
    for path in given:
        if path.is_dir():
            files += sorted(path.rglob("*.toml"))
        elif path.exists():
            files.append(path)
        else:
            raise pytest.UsageError(f"--cachekit-configs: no such file or directory: {path}")
    seen: set[Path] = set()
    return [f for f in files if not (f.resolve() in seen or seen.add(f.resolve()))]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Append one item per config file (before -k / -m deselection runs)."""
    for path in _config_paths(config):
        items.extend(ConfigFile.from_parent(session, path=path.resolve()).collect())


class ConfigInvalid(Exception):
    """Raised by a :class:`ConfigItem` whose file does not validate; carries the formatted errors."""


class ConfigFile(pytest.File):
    """A cachekit TOML file: one item, ``cachekit_config``."""

    def collect(self) -> Iterator[ConfigItem]:
        """The validation item of this file."""
        yield ConfigItem.from_parent(self, name="cachekit_config")


class ConfigItem(pytest.Item):
    """Validates one config file; fails with the errors, never with a traceback."""

    def runtest(self) -> None:
        """Load and validate the file, with an empty environment."""
        from cachekit.config.loader import load_config
        from cachekit.errors import ConfigError

        try:
            load_config(self.path, environ={})
        except ConfigError as exc:
            shown = self.config.invocation_params.dir
            lines = []
            for item in exc.errors:
                where = _relative(self.path, shown)
                if item.line is not None:
                    where += f":{item.line}"
                lines.append(f"{where}: {item.path or '<file>'}: {item.message}")
            raise ConfigInvalid("\n".join(lines)) from None

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        """The validation errors, one per line (other failures: pytest's usual report)."""
        if isinstance(excinfo.value, ConfigInvalid):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Where the item lives, for pytest's reports."""
        return self.path, None, f"cachekit config: {self.path.name}"


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


# ----------------------------------------------------------------------------------------------
# The `cachekit_cache` fixture: a fresh fake runtime (all memory, fake clock) bound to the Cache facade
# for one test. It is not called `cache`: that name is pytest's own fixture (cacheprovider), which every
# project where cachekit is installed must keep. Imports of cachekit stay inside the body: this module is
# loaded by every pytest run where cachekit is installed.
MARKER = "cachekit"
INI_CONFIG = "cachekit_config"


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``cachekit`` marker."""
    config.addinivalue_line(
        "markers",
        "cachekit(config=PATH): the cachekit_cache fixture starts from this TOML file (relative to the "
        "rootdir) instead of the all-memory default",
    )


@pytest.fixture
def cachekit_cache(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh fake cache bound to ``Cache`` for this test: ``cachekit_cache.put(...)``,
    ``cachekit_cache.advance(60)``, ``.runtime``, ``.stats``; unbound afterwards.

    It starts from ``@pytest.mark.cachekit(config="path.toml")`` if the test (or its class or module) has
    that marker, else from the ini key ``cachekit_config``, else from the all-memory default. A file keeps
    its regions, rules and TTLs; its providers become in-process stores and its clock a fake one.
    """
    from cachekit.testing import fake_cache

    with fake_cache(_fixture_config(request)) as fake:
        yield fake


def _fixture_config(request: pytest.FixtureRequest) -> Any:
    marker = request.node.get_closest_marker(MARKER)
    if marker is not None:
        if marker.args or set(marker.kwargs) - {"config"}:
            raise pytest.UsageError('use the marker as @pytest.mark.cachekit(config="path.toml")')
        config = marker.kwargs.get("config")
        if isinstance(config, str | os.PathLike):
            return _load(request.config.rootpath / config)  # an absolute path stays as it is
        return config  # None, a CacheConfig, or a dict of its sections
    paths = request.config.getini(INI_CONFIG) or []
    if len(paths) > 1:
        raise pytest.UsageError(f"{INI_CONFIG}: one file, got {len(paths)}")
    return _load(Path(paths[0])) if paths else None


def _load(path: Path) -> Any:
    """The file alone (no ``CACHEKIT_...`` variables of the test process), validated."""
    from cachekit.config.loader import load_config

    return load_config(path, environ={})
# ----------------------------------------------------------------------------------------------
