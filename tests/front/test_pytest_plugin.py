"""The pytest plugin: --cachekit-configs turns config files into test items."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

GOOD = '[regions.users]\nprovider = "memory"\nttl = 60\n'
BAD = '[regions.users]\nprovider = "memory"\nttl = 0\ntll = 5\n'
INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".toml", good=GOOD)
    (pytester.path / "configs").mkdir()
    (pytester.path / "configs" / "bad.toml").write_text(BAD)
    (pytester.path / "configs" / "notes.txt").write_text("not a config")
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    pytester.makeini(INI)
    return pytester


def test_good_config_passes(project: pytest.Pytester) -> None:
    result = project.runpytest("--cachekit-configs", "good.toml")
    result.assert_outcomes(passed=2)


def test_bad_config_fails_with_the_formatted_errors_and_no_traceback(project: pytest.Pytester) -> None:
    result = project.runpytest("--cachekit-configs", "configs")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*_ cachekit config: bad.toml _*",
        "configs/bad.toml:3: regions.users.ttl: must be greater than 0 seconds, got 0*",
        "configs/bad.toml:4: regions.users.tll: unknown key 'tll'; did you mean 'ttl'?*",
        "FAILED configs/bad.toml::cachekit_config*",
    ])
    assert "Traceback" not in result.stdout.str()
    assert "load_config" not in result.stdout.str()


def test_several_paths_and_the_ini_key_are_collected_once_each(project: pytest.Pytester) -> None:
    project.makeini(INI + "cachekit_configs = configs\n")
    result = project.runpytest("--cachekit-configs", "good.toml", "configs/bad.toml", "-v")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*good.toml::cachekit_config PASSED*", "*configs/bad.toml::cachekit_config FAILED*"])


def test_keyword_selection_applies_to_config_items(project: pytest.Pytester) -> None:
    result = project.runpytest("--cachekit-configs", "good.toml", "configs", "-k", "good")
    result.assert_outcomes(passed=1, deselected=2)


def test_config_items_ignore_the_environment(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHEKIT_REGIONS__USERS__TTL", "-1")
    project.runpytest("--cachekit-configs", "good.toml").assert_outcomes(passed=2)


def test_missing_path_is_a_usage_error(project: pytest.Pytester) -> None:
    result = project.runpytest("--cachekit-configs", "nope.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--cachekit-configs: no such file or directory: nope.toml*"])


def test_without_the_option_nothing_is_added(project: pytest.Pytester) -> None:
    project.runpytest().assert_outcomes(passed=1)
