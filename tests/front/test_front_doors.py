"""Front doors (facade, decorators, services, HTTP, notebook, CLI, demo, testing) reach the runtime and
each other through public names only: no ``obj._name``, no ``from module import _name``, no
``getattr(obj, "_name")`` on anything but ``self`` / ``cls``. An AST walk keeps it that way. They share
one tag validator (``cachekit.keys.tag_names``), one way off the event loop (``cachekit.offload``) and
one way to the facade's runtime (``cachekit.current_runtime``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "cachekit"
FRONT_DOORS = sorted(
    [*(PACKAGE / name for name in ("facade.py", "decorators.py", "cached_function.py", "keys.py", "offload.py",
                                   "http.py", "http_access.py", "http_policy.py", "notebook.py", "cli.py",
                                   "demo.py", "testing.py", "pytest_plugin.py")),
     *PACKAGE.glob("notebook_*.py"),
     *(PACKAGE / "services").glob("*.py")]
)
OWN = ("self", "cls")
# asyncio.iscoroutinefunction on Python 3.11 knows a coroutine-like object only by this marker (3.12 adds
# inspect.markcoroutinefunction, used first): the standard library's protocol, not a cachekit private.
ALLOWED = {"getattr(asyncio.coroutines, '_is_coroutine', None)", "obj._is_coroutine"}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _owner(node: ast.expr) -> bool:
    """``self`` / ``cls`` / ``super()``: the class's own members."""
    if isinstance(node, ast.Name):
        return node.id in OWN
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"


def foreign_private_access(source: str, filename: str = "<source>") -> list[str]:
    """Each place where ``source`` touches another object's or module's ``_private`` name."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Attribute) and _private(node.attr) and not _owner(node.value):
            found.append(f"{filename}:{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            found += [f"{filename}:{node.lineno}: from {'.' * node.level}{node.module or ''} import {a.name}"
                      for a in node.names if _private(a.name)]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "setattr", "hasattr", "delattr") and len(node.args) >= 2
              and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
              and _private(node.args[1].value) and not _owner(node.args[0])):
            found.append(f"{filename}:{node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize("module", FRONT_DOORS, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_front_door_touches_no_foreign_private_name(module: Path) -> None:
    assert module.exists()
    found = foreign_private_access(module.read_text(encoding="utf-8"), str(module.relative_to(PACKAGE)))
    assert [f for f in found if f.partition(": ")[2] not in ALLOWED] == []


@pytest.mark.parametrize("snippet", [
    "from . import facade\nrt = facade._runtime",
    "from .services._plumbing import _edit",
    "def f(runtime):\n    return runtime._lock",
    "value = getattr(region, '_fetch')",
    "class A:\n    def f(self):\n        return self._x._y",
])
def test_the_check_sees_each_kind_of_foreign_private_access(snippet: str) -> None:
    assert len(foreign_private_access(snippet)) == 1


@pytest.mark.parametrize("snippet", [
    "class A:\n    def f(self):\n        return self._x",
    "class A:\n    @classmethod\n    def f(cls):\n        return cls._registry",
    "_CACHE = {}\ndef f():\n    return _CACHE",
    "class A(B):\n    def f(self):\n        return super()._g()",
    "x = obj.__dict__",
])
def test_own_private_names_are_allowed(snippet: str) -> None:
    assert foreign_private_access(snippet) == []


def _calls(module: Path) -> set[str]:
    """The dotted names a module calls (``asyncio.to_thread``, ``tag_names``...)."""
    return {ast.unparse(node.func) for node in ast.walk(ast.parse(module.read_text(encoding="utf-8")))
            if isinstance(node, ast.Call)}


@pytest.mark.parametrize("module", FRONT_DOORS, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_front_doors_leave_the_event_loop_only_through_offload(module: Path) -> None:
    calls = _calls(module)
    if module.name == "offload.py":
        assert "asyncio.to_thread" in calls
        return
    assert not calls & {"asyncio.to_thread", "to_thread", "loop.run_in_executor", "run_in_executor"}


@pytest.mark.parametrize("module", FRONT_DOORS, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_front_doors_validate_tags_only_through_keys_tag_names(module: Path) -> None:
    text = module.read_text(encoding="utf-8")
    assert ("tags are non-empty strings" in text) == (module.name == "keys.py")


@pytest.mark.parametrize("tags", [[""], ["ok", 3], ""])
def test_every_front_door_refuses_a_bad_tag_with_one_message(tags: object, fake: object) -> None:
    import asyncio

    from cachekit import CacheError, cache_aside, cached, invalidate_cache, set_cache_item

    message = "tags are non-empty strings"
    with pytest.raises(CacheError, match=message):
        cached(tags=tags)(lambda x: x)
    with pytest.raises(CacheError, match=message):
        invalidate_cache(tags=tags)
    with pytest.raises(CacheError, match=message):
        asyncio.run(cache_aside("k", lambda: 1, tags=tags))
    result = asyncio.run(set_cache_item("k", 1, tags=tags))
    assert result.is_failure() and result.code == "invalid" and message in (result.error or "")


def test_decorators_follow_the_facade_through_current_runtime() -> None:
    from cachekit import Cache, CacheConfig, cached, current_runtime

    first = CacheConfig().compile()
    second = CacheConfig().compile()
    try:
        calls: list[int] = []

        @cached(ttl=60)
        def square(x: int) -> int:
            calls.append(x)
            return x * x

        Cache.configure(first)
        assert current_runtime() is first is Cache.runtime()
        assert square(3) == 9 and square(3) == 9 and calls == [3]
        Cache.configure(second)  # a rebind is seen at the next call, not at decoration
        assert current_runtime() is second
        assert square(3) == 9 and calls == [3, 3]
        assert square.region() is second.region()
    finally:
        Cache.reset()
        first.close()
        second.close()


def test_invalidate_cache_binds_arguments_with_the_key_builder() -> None:
    """``invalidate_cache`` fills its templates from ``keys.KeyBuilder.call_arguments``, not a second
    copy of the signature binding."""
    calls = _calls(PACKAGE / "decorators.py")
    assert "inspect.signature" not in calls
    assert "KeyBuilder" in calls


def test_invalidate_cache_leaves_self_out_of_event_parameters(fake: object) -> None:
    from cachekit import Cache, invalidate_cache
    from cachekit.config.models import EventBasedRule

    with Cache.runtime().edit() as config:
        config.rules.append(EventBasedRule(name="saved", events=["user_saved"], pattern="flag:{flag}:{note}"))

    class Repo:
        @invalidate_cache(patterns="user:{user_id}", events="user_saved")
        def save(self, user_id: int, *, note: str = "n", **extra: object) -> int:
            return user_id

    Cache.put("user:7", "old")
    Cache.put("flag:True:n", "old")
    Cache.put("flag:False:n", "kept")
    assert Repo().save(7, flag=True) == 7  # emit(event, self=...) would fail: self is not a parameter
    assert Cache.get("user:7") is None
    assert Cache.get("flag:True:n") is None  # defaults and **extra reach the event's parameters
    assert Cache.get("flag:False:n") == "kept"
