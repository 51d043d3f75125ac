"""Cache keys from function arguments, and tag names: what ``@cached`` and ``invalidate_cache`` use.

Keys are built from the arguments, never from ``hash()``, so every process and every Python run
computes the same key, and two different arguments never share an entry:

- an ``int`` is written as is and a string as its text (``user:1``, ``user:ada``), with ``%``,
  ``:``, ``=``, ``!``, whitespace and control characters %-escaped, so a ``:`` inside a value
  never shifts the parts; a string that would read as an int (``"1"``) has its first character
  escaped too (``%31``);
- other simple values carry their type after a ``!`` (which a string never produces): ``!None``,
  ``!True``, ``!False``, ``!float.1.5``, ``!Decimal.2``, ``!UUID.…``, ``!datetime.…``, ``!date.…``,
  ``!time.…``, enums as ``!Color.RED``;
- anything else (dicts, lists, tuples, sets, objects) and strings over 100 characters become
  ``!type#`` and 32 hex digits of a sha256 over a canonical form (JSON with sorted keys, types
  kept apart; sets sorted; objects by their ``repr``), so the key stays short;
- positional parts are joined with ``:``; keyword-only and ``**kwargs`` arguments follow, sorted,
  as ``k=v``; a key longer than 200 characters keeps its prefix and digests the rest (``prefix:!#…``).

A key *template* (``key="acl:{user}:{resource}"``) fills each field with the same form, except that
an int and its text give the same field (``user:{user_id}`` is ``user:1`` for ``1`` and ``"1"``):
a template names a key as text, so hand-written keys and rules can meet it.

>>> cache_key("user", 1), cache_key("user", "1"), cache_key("user", None), cache_key("user", "None")
('user:1', 'user:%31', 'user:!None', 'user:None')
>>> format_key("acl:{user}:{resource}", user="bob:admin", resource="x")
'acl:bob%3Aadmin:x'
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import re
import string
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from .errors import CacheError

__all__ = ["MAX_KEY_LENGTH", "MAX_PLAIN_STRING", "KeyBuilder", "KeyTemplate", "cache_key", "compiled_template",
           "format_key", "key_part", "tag_names"]

MAX_PLAIN_STRING = 100
"""Longer string arguments are digested instead of written out."""
MAX_KEY_LENGTH = 200
"""A longer key keeps its prefix and digests the rest (memcached accepts at most 250 bytes)."""
_DIGEST_HEX = 32
_TAGGED = (float, UUID, Decimal, datetime, date, time)
_ESCAPES = {ord("%"): "%25", ord(":"): "%3A", ord("="): "%3D", ord("!"): "%21"}
_ESCAPES.update({c: f"%{c:02X}" for c in range(33)})
_ESCAPES[127] = "%7F"
#: text that reads as an int: its first character is escaped so that ``"1"`` never meets ``1``
_INT_LIKE = re.compile(r"-?[0-9]+").fullmatch
#: a string written as is (no character to escape, not int-like), in one C-level match
_PLAIN_TEXT = re.compile(r"(?!-?[0-9]+\Z)[^\x00-\x20%:=!\x7f]*").fullmatch


def tag_names(tags: Iterable[str] | str) -> tuple[str, ...]:
    """Tags as a tuple of names: one string is one tag; each must be a non-empty string.

    >>> tag_names("users"), tag_names(["users", "team:1"])
    (('users',), ('users', 'team:1'))
    """
    names = (tags,) if isinstance(tags, str) else tuple(tags)
    for t in names:
        if not isinstance(t, str) or not t:
            raise CacheError(f"tags are non-empty strings, not {t!r}")
    return names


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST_HEX]


def _canonical(value: Any) -> Any:
    """A JSON-able form of ``value`` that does not depend on the process (no ids, no set order)
    and keeps types apart (``1.5`` and ``"1.5"``, ``1`` and ``True`` differ)."""
    if isinstance(value, Enum):
        return [type(value).__qualname__, value.name]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return ["float", repr(value)]  # keeps nan/inf and tells 1.0 from 1
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ["bytes", bytes(value).hex()]
    if isinstance(value, Mapping):
        items = [(_canonical(k), _canonical(v)) for k, v in value.items()]
        items.sort(key=lambda kv: json.dumps(kv[0], sort_keys=True))
        return [type(value).__qualname__, [list(kv) for kv in items]]
    if isinstance(value, (set, frozenset)):
        members = [_canonical(v) for v in value]
        members.sort(key=lambda m: json.dumps(m, sort_keys=True))
        return [type(value).__qualname__, members]
    if isinstance(value, (list, tuple)):
        return [type(value).__qualname__, [_canonical(v) for v in value]]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return [type(value).__qualname__, fields]
    dump = getattr(value, "model_dump", None)  # pydantic models
    if callable(dump) and not isinstance(value, type):
        try:
            return [type(value).__qualname__, _canonical(dump(mode="json"))]
        except Exception:
            pass
    if isinstance(value, _TAGGED):
        return [type(value).__qualname__, str(value)]
    return [f"{type(value).__module__}.{type(value).__qualname__}", repr(value)]


def _digest_of(value: Any) -> str:
    try:
        text = json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (RecursionError, TypeError, ValueError):
        text = f"{type(value).__module__}.{type(value).__qualname__}:{value!r}"
    return f"!{type(value).__name__.translate(_ESCAPES)}#{_digest(text)}"


def _text(value: str) -> str:
    text = value.translate(_ESCAPES)
    if _INT_LIKE(text):
        return f"%{ord(text[0]):02X}{text[1:]}"
    return text


def key_part(value: Any) -> str:
    """One argument as it appears in a key (see the module's docstring)."""
    kind = type(value)
    if kind is int:  # the common cases first, exactly as the branches below write them
        return str(value)
    if kind is str and len(value) <= MAX_PLAIN_STRING:
        return _text(value)
    if isinstance(value, Enum):
        return "!" + f"{type(value).__qualname__}.{value.name}".translate(_ESCAPES)
    if isinstance(value, str):
        if len(value) > MAX_PLAIN_STRING:
            return _digest_of(value)
        return _text(value)
    if value is None or isinstance(value, bool):
        return f"!{value}"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, _TAGGED):
        text = value.isoformat() if isinstance(value, (datetime, date, time)) else \
            repr(value) if isinstance(value, float) else str(value)
        return f"!{type(value).__name__}.{text.translate(_ESCAPES)}"
    return _digest_of(value)


def _template_part(value: Any) -> str:
    """A template field: like :func:`key_part`, but an int-like string stays as written."""
    if type(value) is str and len(value) <= MAX_PLAIN_STRING:
        return value.translate(_ESCAPES)
    return key_part(value)


def _join(prefix: str, positional: Iterable[Any], named: Iterable[tuple[str, Any]]) -> str:
    parts = list(map(key_part, positional))
    if named:
        parts.extend(f"{k.translate(_ESCAPES)}={key_part(v)}" for k, v in sorted(named))
    if not parts:
        return prefix
    key = prefix + ":" + ":".join(parts)
    if len(key) > MAX_KEY_LENGTH:
        key = f"{prefix}:!#{_digest(key)}"
    return key


def cache_key(prefix: str, /, *args: Any, **kwargs: Any) -> str:
    """The key the decorators build for ``prefix`` and these arguments.

    >>> cache_key("user", 1)
    'user:1'
    >>> cache_key("search", "shoes", page=2, sort="price")
    'search:shoes:page=2:sort=price'
    >>> cache_key("report", {"b": 1, "a": 2})
    'report:!dict#...'
    """
    return _join(prefix, args, kwargs.items())


class _Formatter(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        if format_spec:
            return format(value, format_spec).translate(_ESCAPES)
        return _template_part(value)


_FORMATTER = _Formatter()


class KeyTemplate:
    """A format string whose fields are filled with escaped values (``acl:{user}:{resource}``)."""

    __slots__ = ("fields", "simple", "template")

    def __init__(self, template: str) -> None:
        self.template = template
        parsed = list(string.Formatter().parse(template))
        #: field names (roots) the template uses
        self.fields = [f.split(".", 1)[0].split("[", 1)[0] for _, f, _, _ in parsed if f is not None]
        #: (literal, name) pairs when every field is a plain name: filled without ``string.Formatter``
        simple: list[tuple[str, str | None]] | None = []
        for literal, field, spec, conversion in parsed:
            if field is not None and (spec or conversion or not field.isidentifier()):
                simple = None
                break
            simple.append((literal, field))  # type: ignore[union-attr]
        self.simple = simple

    def format(self, *args: Any, **kwargs: Any) -> str:
        if self.simple is not None:
            out = []
            for literal, field in self.simple:
                out.append(literal)
                if field is not None:
                    out.append(_template_part(kwargs[field]))
            return "".join(out)
        return _FORMATTER.vformat(self.template, args, kwargs)


@functools.lru_cache(maxsize=1024)
def compiled_template(template: str) -> KeyTemplate:
    """The :class:`KeyTemplate` of ``template`` (parsed once)."""
    return KeyTemplate(template)


def format_key(template: str, /, *args: Any, **kwargs: Any) -> str:
    """``template`` filled with escaped values: ``format_key("u:{a}:{b}", a="x:y", b=1)`` is ``u:x%3Ay:1``."""
    return compiled_template(template).format(*args, **kwargs)


_KeyOption = str | Callable[..., str] | None


def _single_key(prefix: str) -> Callable[[Any], str | None]:
    """``prefix:value`` for one int or short plain-text value (``None`` for anything else)."""
    head = prefix + ":"

    def single(value: Any) -> str | None:
        kind = type(value)
        if kind is int or (kind is str and len(value) <= MAX_PLAIN_STRING and _PLAIN_TEXT(value)):
            key = head + str(value) if kind is int else head + value
            if len(key) <= MAX_KEY_LENGTH:
                return key
        return None

    return single


_NO_VALUE = object()  # a parameter without a default (no caller can pass this object)


class _BindPlan:
    """``Signature.bind`` + ``apply_defaults`` for a signature without ``*args`` / ``**kwargs``, done
    with a list and a dict instead of ``inspect``: the parts of the key :class:`KeyBuilder` would build
    the general way, or ``None`` for any call it would refuse (missing, unknown or repeated
    arguments, too many positionals); the general path then raises its ``TypeError``."""

    __slots__ = ("as_bound", "defaults", "index", "keep_named", "keep_positional", "positional", "required",
                 "usable")

    def __init__(self, params: list[inspect.Parameter], ignore: set[str]) -> None:
        P = inspect.Parameter
        self.usable = all(p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY) for p in params)
        #: how many parameters a call may give by position
        self.positional = sum(p.kind is not P.KEYWORD_ONLY for p in params)
        #: every parameter's default (``_NO_VALUE``: none), in signature order
        self.defaults = [_NO_VALUE if p.default is P.empty else p.default for p in params]
        #: the parameters a call may name: their place in the signature
        self.index = {p.name: i for i, p in enumerate(params) if p.kind is not P.POSITIONAL_ONLY}
        self.required = tuple(i for i, p in enumerate(params) if p.default is P.empty)
        self.keep_positional = tuple(i for i, p in enumerate(params)
                                     if p.kind is not P.KEYWORD_ONLY and p.name not in ignore)
        self.keep_named = tuple(sorted((p.name, i) for i, p in enumerate(params)
                                       if p.kind is P.KEYWORD_ONLY and p.name not in ignore))
        #: every parameter is positional and keyed: the bound values are the key's parts as they are
        self.as_bound = self.keep_positional == tuple(range(len(params)))

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[list[Any], list[tuple[str, Any]]] | None:
        given = len(args)
        if given > self.positional:
            return None
        values = [*args, *self.defaults[given:]]
        if kwargs:
            index = self.index
            for name, value in kwargs.items():
                at = index.get(name, -1)
                if at < given:  # unknown, positional-only, or already given by position
                    return None
                values[at] = value
        for at in self.required:
            if values[at] is _NO_VALUE:
                return None
        if self.as_bound:
            return values, []
        return [values[at] for at in self.keep_positional], [(name, values[at]) for name, at in self.keep_named]


class KeyBuilder:
    """Turns a call's arguments into a key for one decorated function."""

    def __init__(self, fn: Callable[..., Any], key_prefix: str | None, key: _KeyOption,
                 ignore: Iterable[str]) -> None:
        if key is not None and key_prefix is not None:
            raise CacheError("give key_prefix or key, not both (key is the whole key)")
        self.fn = fn
        self.signature = inspect.signature(fn)
        params = list(self.signature.parameters.values())
        self.ignore = set(ignore)
        unknown = self.ignore - {p.name for p in params}
        if unknown:
            raise CacheError(f"ignore names {sorted(unknown)}, which are not parameters of "
                             f"{fn.__qualname__}{self.signature}")
        if params and params[0].name in ("self", "cls"):
            self.ignore.add(params[0].name)
        self.params = params
        self.prefix = key_prefix if key_prefix is not None else f"{fn.__module__}.{fn.__qualname__}"
        self.template: KeyTemplate | None = None
        self.key_fn: Callable[..., str] | None = None
        if isinstance(key, str):
            self.template = self._check_template(key)
        elif key is not None:
            if not callable(key):
                raise CacheError(f"key must be a format string or a callable, not {type(key).__name__}")
            self.key_fn = key
        # Fast path: every parameter positional, no defaults to fill in, nothing to skip but self.
        simple = all(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
        self.fast_arity = len(params) if simple else -1
        self.fast_skip = 1 if (params and params[0].name in ("self", "cls")) else 0
        if any(p.name in self.ignore for p in params[self.fast_skip:]):
            self.fast_arity = -1
        self.fast_single = self.fast_arity - self.fast_skip == 1
        #: for ``f(one_plain_argument)``: the key of a plain int or short text value, else ``None``
        self.single: Callable[[Any], str | None] | None = None
        #: ``prefix:`` when ``single`` applies (callers inline its int case), else ``None``
        self.head: str | None = None
        if self.fast_single and key is None:
            self.single = _single_key(self.prefix)
            self.head = self.prefix + ":"
        plan = _BindPlan(params, self.ignore) if key is None else None
        #: the key's parts without ``inspect`` for signatures with no ``*args`` / ``**kwargs``
        self._plan = plan if plan is not None and plan.usable else None

    def _check_template(self, template: str) -> KeyTemplate:
        names = {p.name for p in self.params}
        compiled = KeyTemplate(template)
        for root in compiled.fields:
            if root and not root.isdigit() and root not in names:
                raise CacheError(f"key {template!r} names {root!r}, which is not a parameter of "
                                 f"{self.fn.__qualname__}{self.signature}")
        return compiled

    def arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments by parameter name, defaults filled in, ``**kwargs`` flattened."""
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.fn.__qualname__}(): {exc}") from None
        bound.apply_defaults()
        out: dict[str, Any] = {}
        for p in self.params:
            value = bound.arguments.get(p.name)
            if p.kind is p.VAR_KEYWORD:
                out.update(value or {})
            else:
                out[p.name] = value
        return out

    def call_arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """:meth:`arguments` without a leading ``self`` / ``cls``: the parameters of an event, or of a
        pattern or tag template, made by a call."""
        out = self.arguments(args, kwargs)
        if self.fast_skip:
            del out[self.params[0].name]
        return out

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        if self.key_fn is not None:
            return self.key_fn(*args, **kwargs)
        if self.template is not None:
            positional = args[self.fast_skip:]
            return self.template.format(*positional, **self.arguments(args, kwargs))
        if not kwargs and len(args) == self.fast_arity:
            if self.single is not None:  # one plain argument: the common f(user_id) case, without a join
                key = self.single(args[-1])
                if key is not None:
                    return key
            return _join(self.prefix, args[self.fast_skip:], ())
        plan = self._plan
        if plan is not None:
            parts = plan.bind(args, kwargs)
            if parts is not None:
                return _join(self.prefix, parts[0], parts[1])
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.fn.__qualname__}(): {exc}") from None
        bound.apply_defaults()
        positional: list[Any] = []
        named: list[tuple[str, Any]] = []
        for p in self.params:
            if p.name in self.ignore:
                continue
            value = bound.arguments[p.name]
            if p.kind is p.VAR_POSITIONAL:
                positional.extend(value)
            elif p.kind is p.VAR_KEYWORD:
                named.extend((k, v) for k, v in value.items() if k not in self.ignore)
            elif p.kind is p.KEYWORD_ONLY:
                named.append((p.name, value))
            else:
                positional.append(value)
        return _join(self.prefix, positional, named)
