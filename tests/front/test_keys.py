"""cachekit.keys: distinct arguments never share an entry; equal arguments always do."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cachekit import Cache, cache_key, cached, invalidate_cache
from cachekit.keys import format_key

pytestmark = pytest.mark.usefixtures("fake")  # a fresh fake runtime bound to Cache (conftest)


def ident(value: Any) -> Any:
    """What makes two arguments "the same" for a cache: their types and their written form."""
    if isinstance(value, tuple):
        return ("tuple", tuple(ident(v) for v in value))
    return (type(value).__name__, repr(value))


text = st.text(alphabet=st.sampled_from("ab1-:{}=%! \n.é#*"), max_size=8) | st.text(max_size=6)
scalars = (st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False)
           | st.decimals(allow_nan=False, places=2) | text
           | st.sampled_from(["None", "True", "False", "1.5", "2", "-3", "", "!None", "!True", "%31"]))
values = scalars | st.tuples(scalars, scalars)
arguments = st.lists(values, min_size=1, max_size=3).map(tuple)


@settings(max_examples=400, deadline=None)
@given(arguments, arguments)
def test_distinct_arguments_never_share_a_key_and_equal_ones_always_do(a: tuple[Any, ...],
                                                                       b: tuple[Any, ...]) -> None:
    assert cache_key("f", *a) == cache_key("f", *copy.deepcopy(a))
    if ident(a) != ident(b):
        assert cache_key("f", *a) != cache_key("f", *b)


@settings(max_examples=300, deadline=None)
@given(st.tuples(scalars, scalars), st.tuples(scalars, scalars))
def test_a_template_keeps_distinct_values_apart(a: tuple[Any, Any], b: tuple[Any, Any]) -> None:
    # a template names keys as text: an int and its text ("2", 2) are one field by design
    def texty(v: Any) -> Any:
        return str(v) if type(v) is int else v

    key_a = format_key("acl:{user}:{resource}", user=a[0], resource=a[1])
    assert key_a == format_key("acl:{user}:{resource}", user=a[0], resource=a[1])
    if ident(tuple(map(texty, a))) != ident(tuple(map(texty, b))):
        assert key_a != format_key("acl:{user}:{resource}", user=b[0], resource=b[1])


def test_the_issues_collisions_are_apart() -> None:
    calls: list[Any] = []

    @cached(key_prefix="v")
    def f(x: Any) -> Any:
        calls.append(x)
        return repr(x)

    args = [None, "None", True, "True", 1.5, "1.5", Decimal("2"), "2", 2]
    assert [f(x) for x in args] == [repr(x) for x in args]
    assert calls == args  # every call loaded: nine entries
    assert len({f.key(x) for x in args}) == len(args)
    assert f.key(2) == "v:2" and f.key("ada") == "v:ada"  # ints and plain text stay readable

    @cached(key="acl:{user}:{resource}")
    def acl(user: str, resource: str) -> str:
        return f"{user}|{resource}"

    assert acl("bob:admin", "x") == "bob:admin|x"
    assert acl("bob", "admin:x") == "bob|admin:x"
    assert acl.key("bob:admin", "x") == "acl:bob%3Aadmin:x"


def test_invalidate_cache_finds_the_entry_of_the_same_arguments() -> None:
    @cached(key="acl:{user}:{resource}")
    def acl(user: str, resource: Any) -> str:
        return f"{user}|{resource}"

    @invalidate_cache(patterns=["acl:{user}:{resource}"])
    def revoke(user: str, resource: Any) -> None:
        return None

    acl("bob:admin", None)
    acl("bob", "admin:None")
    revoke("bob:admin", None)
    Cache.assert_missing(acl.key("bob:admin", None))
    Cache.assert_has(acl.key("bob", "admin:None"))


def test_tag_templates_escape_their_values_like_keys() -> None:
    @cached(key_prefix="doc", tags=["owner:{owner}"])
    def doc(owner: str, n: int) -> str:
        return f"{owner}/{n}"

    @invalidate_cache(tags=["owner:{owner}"])
    def touch(owner: str) -> None:
        return None

    doc("a:b", 1)
    doc("a", 1)
    touch("a:b")
    Cache.assert_missing(doc.key("a:b", 1))
    Cache.assert_has(doc.key("a", 1))


def test_the_module_examples_hold() -> None:
    import doctest

    import cachekit.keys

    result = doctest.testmod(cachekit.keys, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 5 and result.failed == 0
