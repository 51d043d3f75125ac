"""Environment overrides: which sources are read, in which order, and which config paths they set.

:class:`~cachekit.config.models.CacheConfig` is a pydantic-settings model. Its sources, highest
precedence first:

1. arguments: keyword arguments of ``CacheConfig(...)`` (``load_config(overrides=...)``);
2. the environment: ``CACHEKIT_...`` variables (``CACHEKIT_REGIONS__USERS__TTL=60``);
3. a ``.env`` file, only when asked for (``env_file=``, else ``$CACHEKIT_ENV_FILE``): the same variables;
4. a secrets directory, only when asked for (``secrets_dir=``, else ``$CACHEKIT_SECRETS_DIR``): one file
   per variable, named like it (``/run/secrets/CACHEKIT_PROVIDERS__REDIS__PASSWORD``), holding its value;
5. the TOML file (the data :mod:`cachekit.config.loader` parsed);
6. the defaults of the models.

Two things are added to pydantic-settings here:

* :func:`use_sources` (and :func:`use_environ`) make the next ``CacheConfig(...)`` built in this context
  read an explicit mapping instead of :data:`os.environ`, a ``.env`` file, a secrets directory and the
  TOML data (thread- and task-safe: :class:`~contextvars.ContextVar` s, never a patched ``os.environ``);
* every build records what the environment, the ``.env`` file and the secrets directory contributed
  (:class:`EnvCapture`), so that errors can name the variable and
  :func:`~cachekit.config.save.save_config` never writes such a value to disk.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic.fields import FieldInfo
from pydantic_settings import EnvSettingsSource, PydanticBaseSettingsSource

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

from ..errors import ConfigError, ConfigErrorItem

__all__ = [
    "ENV_FILE_VARIABLE",
    "ENV_PREFIX",
    "SECRETS_DIR_VARIABLE",
    "EnvCapture",
    "current_capture",
    "settings_sources",
    "use_environ",
    "use_sources",
]

ENV_PREFIX = "CACHEKIT_"
#: Names the ``.env`` file to read when no ``env_file=`` is given (no ``.env`` is read by default).
ENV_FILE_VARIABLE = "CACHEKIT_ENV_FILE"
#: Names the secrets directory to read when no ``secrets_dir=`` is given.
SECRETS_DIR_VARIABLE = "CACHEKIT_SECRETS_DIR"
_DELIMITER = "__"

PathKey = tuple[str, ...]


@dataclass
class EnvCapture:
    """What the environment (variables, ``.env`` file, secrets directory) contributed to one build.

    ``values`` is the nested data those sources produced, merged by precedence; ``names`` maps each
    leaf path they set (``("regions", "user-profiles", "ttl")``) to the variable that set it
    (``CACHEKIT_REGIONS__USER-PROFILES__TTL``), and ``origins`` to where that variable was found
    (``"environment variable CACHEKIT_..."``, ``"CACHEKIT_... in .env"``, ``"secrets file ..."``).
    A leaf that an argument (or a higher source) replaced is not listed.
    """

    environ: Mapping[str, str] | None = None
    values: dict[str, Any] = field(default_factory=dict)
    names: dict[PathKey, str] = field(default_factory=dict)
    origins: dict[PathKey, str] = field(default_factory=dict)
    # (rank, data, {leaf: name}, {leaf: origin}) of each source; rank 0 = arguments, the highest
    _layers: list[tuple[int, Any, dict[PathKey, str], dict[PathKey, str]]] = field(
        default_factory=list, repr=False
    )

    def add_layer(self, rank: int, data: Any, names: dict[PathKey, str], origins: dict[PathKey, str]) -> None:
        """Record what one source returned, and recompute ``values``, ``names`` and ``origins``."""
        self._layers.append((rank, data, names, origins))
        self._layers.sort(key=lambda layer: layer[0])
        self.values, self.names, self.origins = {}, {}, {}
        taken: list[PathKey] = []
        for rank, layer_data, layer_names, layer_origins in self._layers:
            if rank > 0:
                for leaf, name in layer_names.items():
                    if not any(_overlaps(leaf, other) for other in taken):
                        self.names[leaf] = name
                        self.origins[leaf] = layer_origins.get(leaf, name)
            else:
                self.origins.update(layer_origins)
            # an empty table replaces nothing (tables are merged), any other value does
            taken += [leaf for leaf in layer_names if _lookup(layer_data, leaf) != {}]
        for rank, layer_data, _, _ in reversed(self._layers):
            if rank > 0 and isinstance(layer_data, dict):
                deep_update(self.values, layer_data)

    def origin_for(self, path: tuple[str | int, ...]) -> str | None:
        """Where the value at ``path`` (or a parent) came from, if not from the file or a default."""
        for n in range(len(path), 0, -1):
            origin = self.origins.get(tuple(str(p) for p in path[:n]))
            if origin is not None:
                return origin
        return None

    def origin_below(self, path: tuple[str | int, ...]) -> str | None:
        """Where something under ``path`` (``path`` itself excluded) came from, if not from the file."""
        key = tuple(str(p) for p in path)
        for leaf, origin in self.origins.items():
            if len(leaf) > len(key) and leaf[: len(key)] == key:
                return origin
        return None

    def variable_for(self, path: tuple[str | int, ...]) -> str | None:
        """The variable that set ``path`` or one of its parents, or ``None`` if the env did not."""
        for n in range(len(path), 0, -1):
            name = self.names.get(tuple(str(p) for p in path[:n]))
            if name is not None:
                return name
        return None

    def below(self, path: tuple[str | int, ...]) -> str | None:
        """A variable that set something under ``path`` (``path`` itself excluded)."""
        key = tuple(str(p) for p in path)
        for leaf, name in self.names.items():
            if len(leaf) > len(key) and leaf[: len(key)] == key:
                return name
        return None


_REQUESTED: ContextVar[Mapping[str, str] | None] = ContextVar("cachekit_requested_environ", default=None)
_LAST: ContextVar[EnvCapture | None] = ContextVar("cachekit_last_env_capture", default=None)


@contextmanager
def use_environ(environ: Mapping[str, str] | None) -> Iterator[None]:
    """Within the block, ``CacheConfig(...)`` reads ``environ`` (``None``: :data:`os.environ`)."""
    token = _REQUESTED.set(environ)
    try:
        yield
    finally:
        _REQUESTED.reset(token)


def current_capture() -> EnvCapture | None:
    """The capture of the most recent ``CacheConfig`` build in this context (even a failed one)."""
    return _LAST.get()


class _MappingEnvSource(EnvSettingsSource):
    """The standard env source, reading a given mapping instead of :data:`os.environ`."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        # Public API only (no pydantic-settings internals): refill ``env_vars`` from the mapping the
        # way the source fills it from os.environ (names folded, empty and "none" values applied).
        self.env_vars = {
            (k if self.case_sensitive else k.lower()): (None if v == self.env_parse_none_str else v)
            for k, v in environ.items()
            if not (self.env_ignore_empty and v == "")
        }


class _RecordingSource(PydanticBaseSettingsSource):
    """Wraps an env source and records, in an :class:`EnvCapture`, what it returned."""

    def __init__(
        self, settings_cls: type[BaseSettings], inner: EnvSettingsSource, capture: EnvCapture,
        rank: int = 1, origin: Callable[[str], str] = lambda name: f"environment variable {name}",
    ) -> None:
        super().__init__(settings_cls)
        self._inner = inner
        self._capture = capture
        self._rank = rank
        self._origin = origin

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._inner.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        data = self._inner()
        variables = {k.lower(): k for k in self._inner.env_vars}
        names = {leaf: _variable_name(leaf, variables) for leaf in _leaves(data)}
        self._capture.add_layer(self._rank, data, names, {leaf: self._origin(n) for leaf, n in names.items()})
        return data


class _ArgumentsSource(PydanticBaseSettingsSource):
    """Wraps the init-arguments source and records which paths the arguments set (they win)."""

    def __init__(
        self, settings_cls: type[BaseSettings], inner: PydanticBaseSettingsSource, capture: EnvCapture
    ) -> None:
        super().__init__(settings_cls)
        self._inner = inner
        self._capture = capture

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._inner.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        data = self._inner()
        leaves = list(_leaves(data))
        self._capture.add_layer(0, data, dict.fromkeys(leaves, ""), dict.fromkeys(leaves, "an argument"))
        return data


class _DataSource(PydanticBaseSettingsSource):
    """Plain nested data: the parsed TOML file, below every other source but the defaults."""

    def __init__(self, settings_cls: type[BaseSettings], data: Mapping[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return copy.deepcopy(dict(self._data))


@dataclass(frozen=True)
class _Request:
    env_file: str | os.PathLike[str] | None = None
    secrets_dir: str | os.PathLike[str] | None = None
    file_data: Mapping[str, Any] | None = None


_SOURCES: ContextVar[_Request | None] = ContextVar("cachekit_requested_sources", default=None)


@contextmanager
def use_sources(
    *,
    environ: Mapping[str, str] | None = None,
    env_file: str | os.PathLike[str] | None = None,
    secrets_dir: str | os.PathLike[str] | None = None,
    file_data: Mapping[str, Any] | None = None,
) -> Iterator[None]:
    """Within the block, ``CacheConfig(...)`` reads these sources (see the module docstring).

    ``environ=None`` reads :data:`os.environ`; ``env_file`` / ``secrets_dir`` default to the paths
    named by ``CACHEKIT_ENV_FILE`` / ``CACHEKIT_SECRETS_DIR`` in that environment (none: not read);
    ``file_data`` is the TOML data, below them all.
    """
    token = _SOURCES.set(_Request(env_file, secrets_dir, file_data))
    try:
        with use_environ(environ):
            yield
    finally:
        _SOURCES.reset(token)


def settings_sources(
    settings_cls: type[BaseSettings],
    init_settings: PydanticBaseSettingsSource,
    env_settings: PydanticBaseSettingsSource,
    dotenv_settings: PydanticBaseSettingsSource,
    secrets_settings: PydanticBaseSettingsSource,
) -> tuple[PydanticBaseSettingsSource, ...]:
    """The sources of one build, highest precedence first, each recorded in a fresh capture.

    ``CacheConfig(_env_file=..., _secrets_dir=...)`` (pydantic-settings' own arguments) work too.
    Raises :class:`~cachekit.errors.ConfigError` when a requested ``.env`` file or secrets
    directory does not exist.
    """
    environ = _REQUESTED.get()
    request = _SOURCES.get() or _Request()
    capture = EnvCapture(environ=environ)
    _LAST.set(capture)
    env = _MappingEnvSource(settings_cls, environ) if environ is not None else env_settings
    sources: list[PydanticBaseSettingsSource] = [_ArgumentsSource(settings_cls, init_settings, capture)]
    if isinstance(env, EnvSettingsSource):
        sources.append(_RecordingSource(settings_cls, env, capture))
    else:  # pragma: no cover - pydantic-settings always gives one
        sources.append(env)
    variables = environ if environ is not None else os.environ
    env_file = first_given(request.env_file, getattr(dotenv_settings, "env_file", None))
    env_file_path = requested_path(env_file, variables, ENV_FILE_VARIABLE, "env_file", directory=False)
    if env_file_path is not None:
        shown = os.fspath(env_file if isinstance(env_file, str | os.PathLike) else env_file_path)
        dotenv = _MappingEnvSource(settings_cls, read_env_file(settings_cls, env_file_path))
        sources.append(_RecordingSource(settings_cls, dotenv, capture, 2, lambda name: f"{name} in {shown}"))
    secrets_dir = first_given(request.secrets_dir, getattr(secrets_settings, "secrets_dir", None))
    secrets_path = requested_path(secrets_dir, variables, SECRETS_DIR_VARIABLE, "secrets_dir", directory=True)
    if secrets_path is not None:
        files = read_secrets_dir(secrets_path)
        by_name = {name.upper(): secrets_path / name for name in files}
        secrets = _MappingEnvSource(settings_cls, files)
        sources.append(_RecordingSource(
            settings_cls, secrets, capture, 3, lambda name: f"secrets file {by_name.get(name.upper(), name)}"
        ))
    if request.file_data is not None:
        sources.append(_DataSource(settings_cls, request.file_data))
    return tuple(sources)


def first_given(*values: Any) -> Any:
    """The first value that is not ``None`` (a list of paths counts as its last element)."""
    for value in values:
        if isinstance(value, list | tuple):
            value = value[-1] if value else None
        if value is not None:
            return value
    return None


def requested_path(
    given: str | os.PathLike[str] | None, environ: Mapping[str, str], variable: str, argument: str,
    *, directory: bool,
) -> Path | None:
    """The ``.env`` file / secrets directory to read: ``given``, else the one ``variable`` names.

    Raises :class:`~cachekit.errors.ConfigError` when it does not exist (it was asked for).
    """
    source = f"{argument}="
    if given is None:
        given = next((v for k, v in environ.items() if k.upper() == variable and v), None)
        source = f"environment variable {variable}"
    if given is None:
        return None
    path = Path(given).expanduser()
    if not (path.is_dir() if directory else path.is_file()):
        problem = "no such" if not path.exists() else "not a"
        kind, what = ("directory", "the secrets directory") if directory else ("file", "the .env file")
        message = f"{problem} {kind}: {os.fspath(given)} ({what} named by {source})"
        raise ConfigError([ConfigErrorItem(path="", message=message)])
    return path


def read_env_file(settings_cls: type[BaseSettings], path: Path) -> dict[str, str]:
    """The ``CACHEKIT_...`` variables of a ``.env`` file (pydantic-settings' parser; other names ignored)."""
    from pydantic_settings import DotEnvSettingsSource

    source = DotEnvSettingsSource(settings_cls, env_file=path)
    prefix = ENV_PREFIX.lower()
    return {
        name: value for name, value in source.env_vars.items()
        if value is not None and name.lower().startswith(prefix)
    }


def read_secrets_dir(path: Path) -> dict[str, str]:
    """``{file name: content}`` of the ``CACHEKIT_...`` files of a secrets directory (content stripped)."""
    prefix = ENV_PREFIX.lower()
    return {
        entry.name: entry.read_text(encoding="utf-8").strip()
        for entry in sorted(path.iterdir())
        if entry.name.lower().startswith(prefix) and entry.is_file()
    }


def _leaves(data: Any, prefix: PathKey = ()) -> Iterator[PathKey]:
    if isinstance(data, dict) and data:
        for key, value in data.items():
            yield from _leaves(value, (*prefix, str(key)))
    elif prefix:
        yield prefix


def _lookup(data: Any, path: PathKey) -> Any:
    for part in path:
        if not isinstance(data, Mapping) or part not in data:
            return None
        data = data[part]
    return data


def _overlaps(a: PathKey, b: PathKey) -> bool:
    """One path is the other or lies under it: the value of one replaces the other's."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def deep_update(target: dict[str, Any], update: Mapping[str, Any]) -> None:
    """Lay ``update`` over ``target`` in place, tables merged key by key; no dict of ``update`` is shared."""
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            target[key] = dict(target[key])
            deep_update(target[key], value)
        else:
            target[key] = copy.copy(value) if isinstance(value, dict) else value


def _variable_name(leaf: PathKey, variables: Mapping[str, str]) -> str:
    # The longest variable naming this leaf or a parent (a parent holds JSON, e.g. CACHEKIT_PROVIDERS).
    for n in range(len(leaf), 0, -1):
        candidate = (ENV_PREFIX + _DELIMITER.join(leaf[:n])).lower()
        if candidate in variables:
            return variables[candidate].upper()
    return (ENV_PREFIX + _DELIMITER.join(leaf)).upper()
