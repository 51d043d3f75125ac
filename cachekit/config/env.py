"""Environment overrides: which mapping is read, and which config paths it set.

:class:`~cachekit.config.models.CacheConfig` is a pydantic-settings model: ``CACHEKIT_...`` variables
win over the values passed in (the TOML file), which win over the defaults. Two things are added here:

* :func:`use_environ` makes the next ``CacheConfig(...)`` built in this context read an explicit
  mapping instead of :data:`os.environ` (thread- and task-safe: a :class:`~contextvars.ContextVar`,
  never a patched ``os.environ``);
* every build records what the environment contributed (:class:`EnvCapture`), so that errors can
  name the variable and :func:`~cachekit.config.save.save_config` never writes an env value to disk.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic.fields import FieldInfo
from pydantic_settings import EnvSettingsSource, PydanticBaseSettingsSource

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

__all__ = ["ENV_PREFIX", "EnvCapture", "current_capture", "env_sources", "use_environ"]

ENV_PREFIX = "CACHEKIT_"
_DELIMITER = "__"

PathKey = tuple[str, ...]


@dataclass
class EnvCapture:
    """What the environment contributed to one ``CacheConfig`` build.

    ``values`` is the nested data the env source produced; ``names`` maps each leaf path it set
    (``("regions", "user-profiles", "ttl")``) to the variable that set it
    (``CACHEKIT_REGIONS__USER-PROFILES__TTL``).
    """

    environ: Mapping[str, str] | None = None
    values: dict[str, Any] = field(default_factory=dict)
    names: dict[PathKey, str] = field(default_factory=dict)

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
        self, settings_cls: type[BaseSettings], inner: EnvSettingsSource, capture: EnvCapture
    ) -> None:
        super().__init__(settings_cls)
        self._inner = inner
        self._capture = capture

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._inner.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        data = self._inner()
        self._capture.values = data
        variables = {k.lower(): k for k in self._inner.env_vars}
        for leaf in _leaves(data):
            self._capture.names[leaf] = _variable_name(leaf, variables)
        return data


def env_sources(
    settings_cls: type[BaseSettings], default_env: PydanticBaseSettingsSource
) -> PydanticBaseSettingsSource:
    """The env source for one build: the requested mapping (or the default one), recorded."""
    environ = _REQUESTED.get()
    capture = EnvCapture(environ=environ)
    _LAST.set(capture)
    inner = _MappingEnvSource(settings_cls, environ) if environ is not None else default_env
    if not isinstance(inner, EnvSettingsSource):  # pragma: no cover - pydantic-settings always gives one
        return default_env
    return _RecordingSource(settings_cls, inner, capture)


def _leaves(data: Any, prefix: PathKey = ()) -> Iterator[PathKey]:
    if isinstance(data, dict) and data:
        for key, value in data.items():
            yield from _leaves(value, (*prefix, str(key)))
    elif prefix:
        yield prefix


def _variable_name(leaf: PathKey, variables: Mapping[str, str]) -> str:
    # The longest variable naming this leaf or a parent (a parent holds JSON, e.g. CACHEKIT_PROVIDERS).
    for n in range(len(leaf), 0, -1):
        candidate = (ENV_PREFIX + _DELIMITER.join(leaf[:n])).lower()
        if candidate in variables:
            return variables[candidate].upper()
    return (ENV_PREFIX + _DELIMITER.join(leaf)).upper()
