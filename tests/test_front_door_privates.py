"""Front doors (facade, decorators, services, HTTP, notebook, CLI, demo, testing) reach the runtime and
each other through public names only: no ``obj._name``, no ``from module import _name``, no
``getattr(obj, "_name")`` on anything but ``self`` / ``cls``. An AST walk keeps it that way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "cachekit"
FRONT_DOORS = sorted(
    [*(PACKAGE / name for name in ("facade.py", "decorators.py", "keys.py", "offload.py", "http.py",
                                   "http_policy.py", "notebook.py", "cli.py", "demo.py", "testing.py",
                                   "pytest_plugin.py")),
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
