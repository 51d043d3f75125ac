"""Turn pydantic validation errors into :class:`~cachekit.errors.ConfigErrorItem` s a person can act on.

Each item gets the dotted path without pydantic's union tags (``providers.r.url``, not
``providers.r.redis.url``), the line of that path in the file, and a message that says what would be
valid: the allowed values of a literal, the known keys (and the closest one) for an unknown key,
"must be greater than 0 seconds" for a TTL. A value set by a ``CACHEKIT_...`` variable is reported
against that variable instead of a line of the file.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr, Tag, ValidationError
from pydantic_core import ErrorDetails

from ..errors import ConfigErrorItem
from .durations import DURATION_FORMS
from .env import EnvCapture
from .secrets import mask_text, mask_url
from .toml_lines import LineMap, PathKey, format_path

__all__ = ["Locator", "did_you_mean", "items_from_validation_error", "one_of"]


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """``"; did you mean 'redis'?"`` when a choice is close to ``word``, else ``""``."""
    if not isinstance(word, str):
        return ""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not match:
        match = [c for c in choices if c.lower() == word.lower()]
    return f"; did you mean '{match[0]}'?" if match else ""


def one_of(choices: Iterable[object]) -> str:
    """``"a, b, c"``."""
    return ", ".join(str(c) for c in choices)


@dataclass
class Locator:
    """Places a config path: in the file (line), or on the variable (environment, ``.env``, secrets
    file) or argument that set it."""

    file: str | None = None
    lines: LineMap | None = None
    env: EnvCapture | None = None

    def item(self, path: PathKey, message: str) -> ConfigErrorItem:
        """An error item for ``path``, with its line or the name of the variable behind it."""
        lines = self.lines or LineMap()
        origin = self.env.origin_for(path) if self.env else None
        if origin is None and self.env is not None and not lines.has(path):
            origin = self.env.origin_below(path)
        if origin is not None:
            return ConfigErrorItem(
                path=format_path(path), message=f"{message} (set by {origin})", line=None, file=self.file,
            )
        return ConfigErrorItem(
            path=format_path(path), message=message, line=lines.line_of(path), file=self.file
        )


def items_from_validation_error(
    exc: ValidationError, root: type[BaseModel], locator: Locator, data: Any = None
) -> list[ConfigErrorItem]:
    """One item per pydantic error of validating ``data`` as ``root``."""
    items = []
    for error in exc.errors(include_url=False):
        path, message = explain(error, root, data)
        items.append(locator.item(path, message))
    return items


def explain(error: ErrorDetails, root: type[BaseModel], data: Any = None) -> tuple[PathKey, str]:
    """The clean path of one pydantic error and a message saying what would be valid."""
    path, steps = _walk(root, error["loc"])
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    here = steps[-1] if steps else None
    name = path[-1] if path and isinstance(path[-1], str) else None
    if _is_secret(here):
        value = _Hidden(value)  # a secret of the wrong type or shape: say what it is, never its value

    if kind == "extra_forbidden":
        owner = _model(steps[-2]) if len(steps) >= 2 else None
        return path, _unknown_key(str(name), owner, path, data)
    if kind == "missing":
        return path, f"required key '{name}' is missing"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        field = str(ctx.get("discriminator", "type")).strip("'")
        tags = _tags(here)
        path = (*path, field)
        if kind == "union_tag_not_found":
            return path, f"missing '{field}'; expected one of: {one_of(tags)}"
        tag = ctx.get("tag")
        return path, f"unknown {field} '{tag}'; expected one of: {one_of(tags)}{did_you_mean(tag, tags)}"
    if kind == "literal_error":
        allowed = _literal_values(here)
        shown = one_of(allowed) if allowed else str(ctx.get("expected", ""))
        return path, f"invalid value {_show(value)}; expected one of: {shown}{did_you_mean(value, allowed)}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return path, _bound(kind, ctx, value, seconds=_is_seconds(here), name=name)
    if kind in ("too_short", "string_too_short"):
        if kind == "string_too_short" or isinstance(value, str):
            return path, "must not be empty"
        return path, f"needs at least {ctx.get('min_length', 1)} item(s)"
    if kind in ("too_long", "string_too_long"):
        return path, f"is too long: at most {ctx.get('max_length')} allowed"
    if kind in ("value_error", "assertion_error"):
        message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        return path, message
    expected = _EXPECTED.get(kind)
    if expected is not None:
        if expected == "a number" and _is_seconds(here):
            expected = DURATION_FORMS
        return path, f"expected {expected}, got {_describe(value)}{_unquote_hint(kind, value)}"
    return path, f"{error['msg']} (got {_describe(value)})" if "input" in error else error["msg"]


_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "an array",
    "tuple_type": "an array",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "is_instance_of": "a table",
}


def _unquote_hint(kind: str, value: object) -> str:
    """For a quoted TOML number or boolean (``ttl = "60"``): say to write it without quotes."""
    if not isinstance(value, str):
        return ""
    text = value.strip()
    if kind in ("bool_type", "bool_parsing") and text in ("true", "false"):
        return f" (a string: write {text} without quotes)"
    if kind in ("int_type", "float_type"):
        try:
            float(text)
        except ValueError:
            return ""
        return f" (a string: write {text} without quotes)"
    return ""


def _unknown_key(key: str, owner: type[BaseModel] | None, path: PathKey, data: Any) -> str:
    from .models import CustomProviderConfig

    if owner is None:
        return f"unknown key '{key}'"
    valid = list(owner.model_fields)
    what = "section" if len(path) == 1 else "key"
    message = f"unknown {what} '{key}'"
    kind = owner.model_fields.get("type")
    if kind is not None and owner is not CustomProviderConfig:
        provider_type = kind.default
        message += f" for a {provider_type} provider"
        raw = _lookup(data, path[:-1])
        if isinstance(raw, dict) and "type" not in raw:
            implied = f"the name '{path[-2]}' implies" if path[-2] == provider_type else "so"
            message += f' (no type is set, {implied} type = "{provider_type}")'
    suggestion = did_you_mean(key, valid)
    if suggestion:
        return f"{message}{suggestion} valid keys: {one_of(valid)}"
    return f"{message}; valid keys: {one_of(valid)}"


def _bound(kind: str, ctx: dict[str, Any], value: object, *, seconds: bool, name: str | None) -> str:
    limit = _describe(next(iter(ctx.values()), None))
    words = {
        "greater_than": "greater than",
        "greater_than_equal": "at least",
        "less_than": "less than",
        "less_than_equal": "at most",
    }[kind]
    unit = " seconds" if seconds else ""
    message = f"must be {words} {limit}{unit}, got {_describe(value)}"
    if seconds and kind == "greater_than" and name in ("ttl", "default_ttl"):
        message += "; omit it for the default or use forever"
    return message


def _show(value: object) -> str:
    return repr(_unmasked(value)) if isinstance(value, str) else _describe(value)


class _Hidden:
    """The input of a secret field, described by its kind only."""

    def __init__(self, value: object) -> None:
        self.value = value


def _is_secret(tp: Any) -> bool:
    base = _unwrap(tp)
    return isinstance(base, type) and issubclass(base, SecretStr)  # SecretStr, SecretUrl


def _unmasked(text: str) -> str:
    """``text`` with the password of any URL in it masked."""
    return mask_text(mask_url(text) if "@" in text else text)


def _describe(value: object) -> str:
    if isinstance(value, SecretStr):
        return "a secret"
    if isinstance(value, _Hidden):
        inner = value.value
        kind = ("true or false" if isinstance(inner, bool) else "an integer" if isinstance(inner, int)
                else "a number" if isinstance(inner, float) else "a string" if isinstance(inner, str)
                else _describe(inner) if isinstance(inner, dict | list | tuple) or inner is None
                else type(inner).__name__)
        return f"{kind} (a secret: its value is not shown)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        value = _unmasked(value)  # a URL's password is never shown
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string {shown!r}"
    if isinstance(value, int | float):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list | tuple):
        return "an array"
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {str(value)[:40]}"


def _lookup(data: Any, path: PathKey) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


# -- walking the model types along a pydantic location -------------------------------------------


def _walk(root: type[BaseModel], loc: Sequence[str | int]) -> tuple[PathKey, list[Any]]:
    """The location without union tags, and the type reached after each kept element."""
    path: list[str | int] = []
    steps: list[Any] = [root]
    current: Any = root
    for part in loc:
        members = _union_members(current)
        if members is not None and isinstance(part, str):
            chosen = next((m for m in members if _tag_of(m) == part), None)
            if chosen is not None:
                current = chosen
                steps[-1] = chosen
                continue
        current = _step(current, part)
        path.append(part)
        steps.append(current)
    return tuple(path), steps


def _unwrap(tp: Any) -> Any:
    """Strip ``Annotated`` and ``Optional``."""
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
            continue
        if get_origin(tp) in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) == 1:
                tp = args[0]
                continue
        return tp


def _union_members(tp: Any) -> list[Any] | None:
    tp = _unwrap(tp)
    if get_origin(tp) in (Union, types.UnionType):
        return [a for a in get_args(tp) if a is not type(None)]
    return None


def _tag_of(member: Any) -> str | None:
    if get_origin(member) is Annotated:
        for meta in get_args(member)[1:]:
            if isinstance(meta, Tag):
                return meta.tag
    model = _model(member)
    if model is not None:
        for field_name in ("strategy", "type"):
            field = model.model_fields.get(field_name)
            if field is not None and isinstance(field.default, str):
                return field.default
    return None


def _tags(tp: Any) -> list[str]:
    return [t for t in (_tag_of(m) for m in _union_members(tp) or []) if t]


def _model(tp: Any) -> type[BaseModel] | None:
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _step(tp: Any, part: str | int) -> Any:
    model = _model(tp)
    if model is not None:
        field = model.model_fields.get(str(part))
        return field.annotation if field is not None else None
    tp = _unwrap(tp)
    origin = get_origin(tp)
    if origin is dict:
        return get_args(tp)[1]
    if origin in (list, tuple, set):
        args = get_args(tp)
        return args[0] if args else None
    return None


def _literal_values(tp: Any) -> list[Any]:
    tp = _unwrap(tp)
    return list(get_args(tp)) if get_origin(tp) is Literal else []


def _is_seconds(tp: Any) -> bool:
    return _unwrap(tp) is float
