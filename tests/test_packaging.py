"""Packaging: the distribution's own name everywhere it is installed, and declared floors that are true.

PyPI's ``cachekit`` is another project: this one is distributed under the name in ``[project] name`` and
imported as ``cachekit``. ``constraints/minimums.txt`` pins the floors that ``make test-min`` installs.
"""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import pytest
import tomlkit

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomlkit.parse((ROOT / "pyproject.toml").read_text(encoding="utf-8")).unwrap()
NAME = PYPROJECT["project"]["name"]
_REQUIREMENT = re.compile(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$")


def _floors(requirements: list[str]) -> dict[str, str]:
    floors = {}
    for requirement in requirements:
        match = _REQUIREMENT.match(requirement)
        assert match, requirement
        name, spec = match.group(1), match.group(3)
        floor = re.search(r">=\s*([\w.]+)", spec)
        if floor:
            floors[_normalise(name)] = floor.group(1)
    return floors


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _release(text: str) -> tuple[int, ...]:
    parts = [int(p) for p in text.split(".")]
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def test_the_distribution_has_a_name_of_its_own_and_installs_the_cachekit_package() -> None:
    assert NAME == "cachekit-config" and NAME != "cachekit"  # "cachekit" on PyPI is another library
    assert version(NAME) == PYPROJECT["project"]["version"]
    assert PYPROJECT["project"]["scripts"]["cachekit"] == "cachekit.cli:main"
    assert PYPROJECT["project"]["entry-points"]["pytest11"] == {"cachekit": "cachekit.pytest_plugin"}
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert extras["all"] == [
        f"{NAME}[redis,memcached,msgpack,fast,pandas,notebook,http,cli,django,crypto,prometheus,otel]"]
    assert f"{NAME}[all]" in extras["dev"]


def _install_sources() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "Makefile", ROOT / "pyproject.toml"]
    files += sorted((ROOT / "docs").rglob("*.md")) + sorted((ROOT / ".ci").iterdir())
    files += sorted((ROOT / "configs").rglob("*.toml")) + sorted((ROOT / "cachekit").rglob("*.py"))
    files += sorted((ROOT / "notebooks").glob("*.ipynb"))
    return [f for f in files if f.is_file()]


def test_every_install_line_uses_the_distribution_name() -> None:
    wrong: list[str] = []
    install_lines = 0
    for path in _install_sources():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            where = f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
            if re.search(r"(?<![\w-])cachekit\[", line):  # an extra of PyPI's other cachekit
                wrong.append(where)
            for command in re.findall(r"pip install ([^`)#\"\n]*)", line):
                for token in command.split():
                    package = token.strip("'\"")
                    if package.split("[")[0].startswith("cachekit"):
                        install_lines += 1
                        if package.split("[")[0] != NAME:
                            wrong.append(where)
    assert not wrong, "\n".join(wrong)
    assert install_lines >= 8  # README, the docs pages, the CI example, the error messages


def test_readme_installs_the_distribution_and_says_why_the_names_differ() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"pip install '{NAME}[redis]'" in readme
    section = readme[readme.index("## Installing"):]
    assert "PyPI" in section and "another" in section and "from cachekit import" in section


def test_the_constraints_file_pins_exactly_the_declared_floors() -> None:
    pins = {}
    for line in (ROOT / "constraints" / "minimums.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, pinned = line.partition("==")
            pins[_normalise(name)] = pinned.strip()
    declared = _floors(PYPROJECT["project"]["dependencies"]) | _floors(PYPROJECT["build-system"]["requires"])
    assert set(declared) == {"pydantic", "pydantic-settings", "tomlkit", "setuptools"}
    assert set(pins) == set(declared)
    for name, floor in declared.items():
        assert _release(pins[name]) == _release(floor), f"{name}: pinned {pins[name]}, declared >={floor}"
    assert _release(declared["setuptools"]) >= (77,)  # the `license = "MIT"` form (PEP 639)


def test_config_env_uses_only_public_pydantic_settings_modules() -> None:
    source = (ROOT / "cachekit" / "config" / "env.py").read_text(encoding="utf-8")
    imported = re.findall(r"^\s*(?:from|import) (pydantic_settings[\w.]*)", source, re.M)
    assert imported and set(imported) == {"pydantic_settings"}


@pytest.mark.parametrize("requirement", PYPROJECT["project"]["dependencies"])
def test_installed_core_dependencies_satisfy_the_floors(requirement: str) -> None:
    match = _REQUIREMENT.match(requirement)
    assert match
    floor = re.search(r">=\s*([\w.]+)", match.group(3))
    assert floor, f"{requirement}: every core dependency declares a floor"
    installed = re.match(r"[\d.]+", version(match.group(1)))
    assert installed and _release(installed.group(0).rstrip(".")) >= _release(floor.group(1))
