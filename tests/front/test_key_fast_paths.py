"""The fast paths of ``@cached`` keys build exactly the keys of the general builder.

``KeyBuilder`` answers the common shapes (one plain argument; positional and keyword arguments of a
signature without ``*args`` / ``**kwargs``) without ``inspect.Signature.bind``, and ``CachedFunction``
builds the key of ``f(one int)`` inline. Every key here is compared with a reference built the general
way (``Signature.bind`` + ``apply_defaults``, then :func:`cachekit.cache_key`), with ``bind`` switched
off while the fast path runs, so a call that silently fell back would fail too.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from cachekit import Cache, cache_key, cached
from cachekit.keys import KeyBuilder

pytestmark = pytest.mark.usefixtures("fake")  # a fresh fake runtime bound to Cache (conftest)


def reference_key(fn: Callable[..., Any], prefix: str, ignore: tuple[str, ...], args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> str:
    """The key as the general path builds it: bind, fill defaults, keyword-only and ``**`` sorted after."""
    signature = inspect.signature(fn)
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    params = list(signature.parameters.values())
    skip = set(ignore) | ({params[0].name} if params and params[0].name in ("self", "cls") else set())
    positional: list[Any] = []
    named: dict[str, Any] = {}
    for p in params:
        if p.name in skip:
            continue
        value = bound.arguments[p.name]
        if p.kind is p.VAR_POSITIONAL:
            positional.extend(value)
        elif p.kind is p.VAR_KEYWORD:
            named.update((k, v) for k, v in value.items() if k not in skip)
        elif p.kind is p.KEYWORD_ONLY:
            named[p.name] = value
        else:
            positional.append(value)
    return cache_key(prefix, *positional, **named)


@contextmanager
def no_bind(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``inspect.Signature.bind`` raises inside: the code under it must not use the general path."""
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("Signature.bind called on a fast path")

    with monkeypatch.context() as patch:
        patch.setattr(inspect.Signature, "bind", refuse)
        yield


def one(a): ...  # type: ignore[no-untyped-def]
def two_defaults(a, b=2, c="x"): ...  # type: ignore[no-untyped-def]
def keyword_only(a, *, k=1, j="j"): ...  # type: ignore[no-untyped-def]
def required_keyword_only(a, b=None, *, z, y=0.5): ...  # type: ignore[no-untyped-def]
def positional_only(a, /, b=1, *, c=None): ...  # type: ignore[no-untyped-def]
def nothing(): ...  # type: ignore[no-untyped-def]
def with_session(session, user_id, page=1): ...  # type: ignore[no-untyped-def]


class Repo:
    def find(self, user_id, *, active=True): ...  # type: ignore[no-untyped-def]

    @classmethod
    def build(cls, kind, size=3): ...  # type: ignore[no-untyped-def]


VALUES = [0, 7, -12, 10**250, True, None, "ada", "1", "a:b", "x" * 150, 1.5, (1, "a"), {"b": 1, "a": 2}]

# (function, ignore, calls): every call as (args, kwargs); the values above are substituted in turn
SHAPES: list[tuple[Callable[..., Any], tuple[str, ...], list[tuple[tuple[Any, ...], dict[str, Any]]]]] = [
    (one, (), [((1,), {}), ((), {"a": 1})]),
    (two_defaults, (), [((1,), {}), ((1, 2), {}), ((1,), {"b": 2}), ((1,), {"c": 3, "b": 2}),
                        ((1,), {"b": 2, "c": 3}), ((), {"c": 3, "a": 1}), ((1, 2, "x"), {})]),
    (keyword_only, (), [((1,), {}), ((1,), {"k": 2}), ((1,), {"j": 2, "k": 3}), ((), {"k": 2, "a": 1})]),
    (required_keyword_only, (), [((1,), {"z": 2}), ((1, 2), {"z": 3, "y": 4}), ((), {"y": 1, "z": 2, "a": 3})]),
    (positional_only, (), [((1,), {}), ((1, 2), {}), ((1,), {"b": 2}), ((1,), {"c": 2, "b": 3})]),
    (nothing, (), [((), {})]),
    (with_session, ("session",), [((1, 2), {}), ((1,), {"user_id": 2}), ((1, 2), {"page": 3}),
                                  ((), {"page": 3, "user_id": 2, "session": 1})]),
    (two_defaults, ("b",), [((1,), {}), ((1, 2), {"c": 3})]),
    (Repo.find, (), [((Repo(), 1), {}), ((Repo(),), {"user_id": 1, "active": False})]),
    (Repo.build.__func__, (), [((Repo, 1), {}), ((Repo,), {"size": 1, "kind": 2})]),  # type: ignore[attr-defined]
]


def substituted(call: tuple[tuple[Any, ...], dict[str, Any]], value: Any,
                other: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``call`` with its ints replaced: the first by ``value``, the rest by ``other``."""
    args, kwargs = call
    seen = itertools.count()

    def swap(v: Any) -> Any:
        if type(v) is not int:
            return v
        return value if next(seen) == 0 else other

    return tuple(swap(a) for a in args), {k: swap(v) for k, v in kwargs.items()}


def cases() -> Iterator[Any]:
    for fn, ignore, calls in SHAPES:
        for i, call in enumerate(calls):
            yield pytest.param(fn, ignore, call, id=f"{fn.__qualname__}-ignore{len(ignore)}-{i}")


@pytest.mark.parametrize(("fn", "ignore", "call"), list(cases()))
def test_the_fast_binding_builds_the_general_key(fn: Callable[..., Any], ignore: tuple[str, ...],
                                                  call: tuple[tuple[Any, ...], dict[str, Any]],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    builder = KeyBuilder(fn, "p", None, ignore)
    for value, other in itertools.product(VALUES, VALUES[:5]):
        args, kwargs = substituted(call, value, other)
        expected = reference_key(fn, "p", ignore, args, kwargs)
        with no_bind(monkeypatch):
            assert builder(args, kwargs) == expected, (args, kwargs)


@pytest.mark.parametrize(("fn", "args", "kwargs"), [
    (one, (), {}),  # missing
    (one, (1, 2), {}),  # too many
    (one, (1,), {"a": 2}),  # twice
    (one, (1,), {"b": 2}),  # unknown
    (two_defaults, (), {"b": 2}),
    (keyword_only, (1, 2), {}),
    (required_keyword_only, (1,), {}),  # keyword-only without a default
    (positional_only, (), {"a": 1}),  # positional-only by keyword
])
def test_a_call_the_fast_binding_refuses_raises_the_general_error(fn: Callable[..., Any], args: tuple[Any, ...],
                                                                   kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError) as general:
        inspect.signature(fn).bind(*args, **kwargs)
    with pytest.raises(TypeError, match="^" + fn.__qualname__) as raised:
        KeyBuilder(fn, "p", None, ())(args, kwargs)
    assert str(raised.value) == f"{fn.__qualname__}(): {general.value}"


def test_signatures_with_star_arguments_keep_the_general_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def star(a, *rest, **options): ...  # type: ignore[no-untyped-def]

    builder = KeyBuilder(star, "p", None, ())
    assert builder((1, 2, 3), {"z": 1, "a_": 2}) == reference_key(star, "p", (), (1, 2, 3), {"z": 1, "a_": 2})
    with no_bind(monkeypatch), pytest.raises(AssertionError, match=r"Signature\.bind"):
        builder((1,), {"z": 1})  # the check above can see a call that binds


@pytest.mark.parametrize("value", [0, 1, -1, 42, 10**180, 10**200, -(10**195), True, False, None, "42", "ada",
                                   "a b", "x" * 101, 2.0])
def test_a_cached_call_stores_under_the_key_the_general_path_gives(value: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """``CachedFunction.__call__`` keys ``f(one int)`` inline: the entry lands where ``.key()`` and the
    reference say, for ints short and long (a key past 200 characters is digested)."""
    calls = []

    @cached(ttl=60, key_prefix="user")
    def load(user_id):  # type: ignore[no-untyped-def]
        calls.append(user_id)
        return [user_id]

    expected = reference_key(load.__wrapped__, "user", (), (value,), {})
    assert load.key(value) == expected
    assert load(value) == [value] and load(value) == [value] and calls == [value]
    assert Cache.has(expected)
    with no_bind(monkeypatch):
        assert load(value) == [value]


def test_a_cached_method_keys_without_the_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    class Users:
        @cached(ttl=60, key_prefix="users")
        def find(self, user_id, *, active=True):  # type: ignore[no-untyped-def]
            return (user_id, active)

    repo = Users()
    with no_bind(monkeypatch):
        assert repo.find(3) == (3, True) and repo.find(3, active=False) == (3, False)
    assert Cache.has("users:3:active=!True") and Cache.has("users:3:active=!False")
    assert repo.find.key(3) == reference_key(Users.find.__wrapped__, "users", (), (repo, 3), {})


def test_a_cached_function_keeps_the_function_attributes_and_follows_a_changed_route() -> None:
    """The attributes ``update_wrapper`` copied stay; ``region_name`` / ``tags`` / ``runtime`` set after
    decoration take effect on the next call (the inline default-region path is left)."""
    def load(user_id):  # type: ignore[no-untyped-def]
        return user_id

    load.owner = "team-a"  # type: ignore[attr-defined]
    load.tags = "from-the-function"  # type: ignore[attr-defined]  # a decorator's own option wins
    wrapped = cached(ttl=60, key_prefix="u")(load)
    assert wrapped.owner == "team-a" and wrapped.tags == () and wrapped.__wrapped__ is load
    assert wrapped(1) == 1 and Cache.region().has("u:1")
    wrapped.region_name = "other"
    assert wrapped(2) == 2 and Cache.region("other").has("u:2") and not Cache.region().has("u:2")
    wrapped.tags = "team"
    assert wrapped(3) == 3 and Cache.region("other").has("u:3")
    Cache.region("other").flush_tags(("team",))
    assert not Cache.region("other").has("u:3") and Cache.region("other").has("u:2")
