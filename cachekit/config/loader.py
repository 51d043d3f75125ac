"""Read a TOML config: parse (tomlkit), apply the environment, validate, check cross-references.

Every failure — a missing or unreadable file, malformed TOML, a value of the wrong TOML type, a bad
value, a dangling reference, a bad ``CACHEKIT_...`` variable, a missing ``.env`` file — is raised as
one :class:`~cachekit.errors.ConfigError` listing every problem found, each with file, dotted path,
line and a message saying what would be valid.

>>> config = parse_config('[regions.users]\\nttl = 60\\n', environ={})
>>> config.regions["users"].ttl
60.0
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomlkit
from pydantic import ValidationError
from tomlkit.exceptions import ParseError

from ..errors import ConfigError, ConfigErrorItem
from .checks import _data_model, config_data, cross_check
from .diagnostics import Locator, explain, items_from_validation_error
from .env import EnvCapture, current_capture, deep_update, use_sources
from .models import CacheConfig, imply_provider_types
from .secrets import MASK, is_secret_name, mask_text
from .toml_lines import LineMap

__all__ = ["load_config", "parse_config"]


def load_config(
    path: str | os.PathLike[str],
    *,
    environ: Mapping[str, str] | None = None,
    env_file: str | os.PathLike[str] | None = None,
    secrets_dir: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> CacheConfig:
    """Load, validate and check the TOML file at ``path``.

    Precedence, highest first: ``overrides`` (nested data shaped like the file) > the environment >
    the ``.env`` file > the secrets directory > the file > the defaults.

    ``environ`` replaces :data:`os.environ` as the source of ``CACHEKIT_...`` overrides (pass ``{}``
    to ignore the environment). ``env_file`` names a ``.env`` file of ``CACHEKIT_...`` variables
    (default: the one ``$CACHEKIT_ENV_FILE`` names; none is read otherwise); ``secrets_dir`` a directory
    with one file per variable (default: ``$CACHEKIT_SECRETS_DIR``). The returned config keeps the
    parsed document for :func:`~cachekit.config.save.save_config`.
    """
    file = os.fspath(path)
    text = _read(Path(file), file)
    config = parse_config(
        text, file=file, environ=environ, env_file=env_file, secrets_dir=secrets_dir, overrides=overrides
    )
    config._path = Path(file).resolve()
    return config


def parse_config(
    text: str,
    *,
    file: str | None = None,
    environ: Mapping[str, str] | None = None,
    env_file: str | os.PathLike[str] | None = None,
    secrets_dir: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> CacheConfig:
    """Validate a TOML text; ``file`` names it in errors. See :func:`load_config`.

    Values of the file must have their TOML type (``multi_level = 0`` or ``default_ttl = "60"`` is an
    error); values from variables are strings by nature and are converted (``"60"`` is 60 seconds).
    """
    try:
        document = tomlkit.parse(text)
        data = document.unwrap()
    except ParseError as exc:
        raise _toml_error(exc, file, text) from None
    except Exception as exc:  # tomlkit raises more than ParseError on some inputs (a duplicate key...)
        raise _toml_error(exc, file, text) from None

    lines = LineMap.from_text(text)
    # Keys such as "_env_prefix" would be taken by BaseSettings as arguments: report them ourselves.
    private = {key for key in data if key.startswith("_")}
    sections = ", ".join(CacheConfig.model_fields)
    items = [
        Locator(file, lines).item((key,), f"unknown section '{key}'; valid keys: {sections}")
        for key in sorted(private)
    ]
    fields = {key: value for key, value in data.items() if key not in private}
    arguments = copy.deepcopy(dict(overrides or {}))

    config: CacheConfig | None = None
    failure: ValidationError | None = None
    sources = {"environ": environ, "env_file": env_file, "secrets_dir": secrets_dir}
    with use_sources(**sources, file_data=fields):
        try:
            config = CacheConfig(**arguments)
        except ValidationError as exc:
            failure = exc
        except ConfigError as exc:  # a requested .env file or secrets directory that does not exist
            items += [ConfigErrorItem(path=i.path, message=i.message, file=file) for i in exc.errors]
        except Exception as exc:  # pydantic-settings: an env value it cannot parse (bad JSON...)
            items.append(ConfigErrorItem(path="", message=_settings_message(exc), file=file))
        capture = current_capture()
    typed = _type_errors(fields, Locator(file, lines), _provider_types(capture, arguments))
    items += typed
    if failure is not None:
        locator = Locator(file, lines, capture)
        typed_paths = {i.path for i in typed}
        shape = [
            item for item in items_from_validation_error(failure, CacheConfig, locator, _merged(fields, arguments))
            if item.line is None or item.path not in typed_paths  # a file value: said once, strictly
        ]
        reported = {i.path for i in shape} | typed_paths
        items += shape + _salvaged_cross_check(fields, arguments, sources, failure, locator, reported)
    if config is not None:
        locator = Locator(file, lines, config._env)
        items += [locator.item(path, message) for path, message in cross_check(config)]
    if items or config is None:
        raise ConfigError(_sorted(items), file=file)
    config._document = document
    config._file = file
    config._baseline = config_data(config)
    return config


# The errors that only strict validation raises: a TOML value of the wrong TOML type.
_STRICT_TYPE_ERRORS = frozenset({"int_type", "float_type", "bool_type", "string_type"})


def _type_errors(fields: dict[str, Any], locator: Locator, types: dict[str, Any]) -> list[ConfigErrorItem]:
    """The values of the file that have the wrong TOML type (``strict = "yes"``, ``ttl = "60"``).

    TOML has real booleans and numbers, so the file's values are validated strictly (a duration
    string is still a duration); everything else is left to the full validation, where variables
    from the environment are converted from their strings. ``types`` are the provider types set
    elsewhere (environment, arguments): a file's provider is checked as the type it ends up with.
    """
    data = fields
    providers = fields.get("providers")
    if isinstance(providers, dict) and types:
        data = {**fields, "providers": {
            name: {**value, "type": types[name]} if name in types and isinstance(value, dict) else value
            for name, value in providers.items()
        }}
    data = imply_provider_types(data)
    try:
        _data_model().model_validate(data, strict=True)
    except ValidationError as exc:
        errors = [e for e in exc.errors(include_url=False) if e["type"] in _STRICT_TYPE_ERRORS]
        return [locator.item(*explain(error, CacheConfig, data)) for error in errors]
    return []


def _provider_types(capture: EnvCapture | None, arguments: dict[str, Any]) -> dict[str, Any]:
    """``{provider: type}`` for the providers whose ``type`` the environment or an argument sets."""
    types: dict[str, Any] = {}
    for layer in (capture.values if capture is not None else {}, arguments):
        providers = layer.get("providers") if isinstance(layer, dict) else None
        for name, value in (providers or {}).items() if isinstance(providers, dict) else ():
            kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
            if kind is not None:
                types[name] = kind
    return types


def _salvaged_cross_check(
    fields: dict[str, Any], arguments: dict[str, Any], sources: dict[str, Any], exc: ValidationError,
    locator: Locator, reported: set[str],
) -> list[ConfigErrorItem]:
    """Cross-reference problems too, when dropping the bad values leaves a config that validates.

    Dropped values fall back to defaults, which never name anything undeclared, so this adds no
    false alarm; when the shape stays invalid (a missing required key...), it adds nothing.
    """
    data = copy.deepcopy(fields)
    for error in exc.errors(include_url=False):
        path, _ = explain(error, CacheConfig)
        parent = data
        for part in path[:-1]:
            try:
                parent = parent[part]
            except (KeyError, IndexError, TypeError):
                break
        else:
            if isinstance(parent, dict) and path and path[-1] in parent:
                del parent[path[-1]]
    try:
        with use_sources(**sources, file_data=data):
            salvaged = CacheConfig(**copy.deepcopy(arguments))
    except Exception:
        return []
    problems = [locator.item(path, message) for path, message in cross_check(salvaged)]
    return [item for item in problems if item.path not in reported]


def _read(path: Path, file: str) -> str:
    def fail(message: str, line: int | None = None) -> ConfigError:
        return ConfigError([ConfigErrorItem(path="", message=message, line=line, file=file)], file=file)

    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise fail(f"no such file: {file}") from None
    except IsADirectoryError:
        raise fail(f"is a directory, not a TOML file: {file}") from None
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror or exc}") from None
    try:
        # newline="" semantics: keep \r\n as is, so saving rewrites nothing it did not change.
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        message = f"not UTF-8 text: invalid byte 0x{raw[exc.start]:02x} at offset {exc.start}"
        raise fail(message, line) from None


_AT_LINE = re.compile(r"\s+at line \d+ col \d+$")
_TOMLLIB_AT = re.compile(r"\(at line (\d+), column (\d+)\)")
_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')"""
_LINE_KEY = re.compile(rf"^\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*=")
_SHOWN_LINE_MAX = 80
_PREFIX_SCAN_MAX_LINES = 2000


def _toml_error(exc: Exception, file: str | None, text: str) -> ConfigError:
    """A ConfigError for a text tomlkit could not parse: the reason, the line and column, the line itself.

    tomlkit gives the place of most errors but not of all (a key defined twice in one table, a table
    declared twice); the place comes from ``tomllib`` (Python 3.11+, or ``tomli``) when it stops no
    later than tomlkit, else from tomlkit, else from the shortest prefix of the text that fails the
    same way.
    """
    reason = _AT_LINE.sub("", str(exc)).strip() or type(exc).__name__
    reason = reason.replace("Unexpected character: '\\x00'", "unexpected end of file")
    reason = reason.replace("Unexpected character: '\\n'", "unexpected end of line")
    reason = reason.removesuffix(".")
    line = getattr(exc, "line", None)
    col = getattr(exc, "col", None)
    place = _strict_toml_place(text)
    if isinstance(line, int) and isinstance(col, int) and (place is None or place[0] > line):
        place = (line, col + 1)  # tomlkit's, unless the stricter parser stopped earlier (a table declared twice)
    if place is None:
        place = _first_failing_prefix(text, reason)
    if place is None:
        item = ConfigErrorItem(path="", message=f"invalid TOML: {reason}", file=file)
        return ConfigError([item], file=file)
    line, column = place
    shown = _shown_line(text, line)
    message = f"invalid TOML: {reason} (line {line}, column {column})" + (f": {shown}" if shown else "")
    return ConfigError([ConfigErrorItem(path="", message=message, line=line, file=file)], file=file)


def _strict_toml_place(text: str) -> tuple[int, int] | None:
    """``(line, column)`` (both 1-based) of the first error ``tomllib`` (or ``tomli``) finds, or ``None``."""
    try:
        import tomllib as strict_toml  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # pragma: no cover - Python 3.10
        try:
            import tomli as strict_toml  # type: ignore[import-not-found,no-redef,unused-ignore]
        except ImportError:
            strict_toml = None
    if strict_toml is not None:
        try:
            strict_toml.loads(text)
        except Exception as exc:  # TOMLDecodeError; anything else only means "no place from here"
            found = _TOMLLIB_AT.search(str(exc))
            if found:
                return int(found[1]), int(found[2])
    return None


def _first_failing_prefix(text: str, reason: str) -> tuple[int, int] | None:
    """The line of the shortest prefix of ``text`` that tomlkit rejects with ``reason`` (column 1).

    Also the place of what tomlkit alone rejects (a TOML-valid document whose tables tomlkit cannot
    merge when unwrapping it: ``Key "events" already exists``).
    """
    lines = text.splitlines(keepends=True)
    if len(lines) > _PREFIX_SCAN_MAX_LINES:
        return None
    for n in range(1, len(lines) + 1):
        try:
            tomlkit.parse("".join(lines[:n])).unwrap()  # unwrap: some duplicates show only there
        except Exception as exc:
            if _AT_LINE.sub("", str(exc)).strip().removesuffix(".") == reason:
                return n, 1
    return None


def _shown_line(text: str, line: int) -> str:
    """Line ``line`` of ``text``, stripped, shortened, with secret values masked."""
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return ""
    shown = lines[line - 1].strip()
    key = _LINE_KEY.match(shown)
    if key:
        last = re.split(r"\s*\.\s*", key[1])[-1].strip("\"'")
        if is_secret_name(last):
            shown = f"{key[1]} = {MASK}"
    shown = mask_text(shown)
    if len(shown) > _SHOWN_LINE_MAX:
        shown = shown[: _SHOWN_LINE_MAX - 3] + "..."
    return shown


def _settings_message(exc: Exception) -> str:
    cause = exc.__cause__
    detail = f": {cause}" if cause is not None else ""
    return f"invalid environment override ({exc}{detail})"


def _merged(fields: dict[str, Any], arguments: dict[str, Any]) -> dict[str, Any]:
    """The file data with the env values and the arguments laid over it: what pydantic saw."""
    capture: EnvCapture | None = current_capture()
    merged: dict[str, Any] = dict(fields)
    if capture is not None:
        deep_update(merged, capture.values)
    deep_update(merged, arguments)
    return merged


def _sorted(items: list[ConfigErrorItem]) -> list[ConfigErrorItem]:
    # File order; problems without a line (environment, whole file) last.
    return sorted(items, key=lambda item: (item.line is None, item.line or 0))
