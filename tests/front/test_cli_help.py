"""The CLI as a new user meets it: --version, shell completion, and help text without reST markup."""

from __future__ import annotations

import re
from importlib.metadata import version

import pytest
from servers import need_module

from cachekit.cli import DISTRIBUTION, build_app, plain_text

runner = need_module("typer.testing").CliRunner()
MARKUP = re.compile(r"``|:(?:class|func|meth|mod|attr|data|exc|obj|ref):|`[^`]+`_")


def test_version_names_the_version_and_the_distribution() -> None:
    result = runner.invoke(build_app(), ["--version"], prog_name="cachekit")
    assert result.exit_code == 0, result.output
    assert result.output == f"cachekit {version(DISTRIBUTION)} (distribution {DISTRIBUTION})\n"
    assert DISTRIBUTION == "cachekit-config"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_script_is_available(shell: str) -> None:
    result = runner.invoke(build_app(), ["--show-completion", shell], prog_name="cachekit")
    assert result.exit_code == 0, result.output
    assert "_CACHEKIT_COMPLETE" in result.output
    assert "--install-completion" in runner.invoke(build_app(), ["--help"], prog_name="cachekit").output


def _commands() -> list[str]:
    return [info.name or info.callback.__name__ for info in build_app().registered_commands if info.callback]


@pytest.mark.parametrize("args", [[], *([name] for name in _commands())], ids=lambda a: " ".join(a) or "cachekit")
def test_help_shows_no_rest_markup(args: list[str]) -> None:
    result = runner.invoke(build_app(), [*args, "--help"], prog_name="cachekit", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
    leaks = MARKUP.findall(result.output)
    assert not leaks, result.output


def test_serve_help_says_which_extra_it_needs_in_plain_words() -> None:
    result = runner.invoke(build_app(), ["serve", "--help"], prog_name="cachekit", env={"COLUMNS": "200"})
    assert "http extra" in result.output


def test_plain_text_strips_inline_markup() -> None:
    assert plain_text("needs the ``http`` extra") == "needs the http extra"
    assert plain_text("see :class:`~cachekit.Runtime` and :func:`cachekit.load`") == (
        "see Runtime and cachekit.load"
    )
    assert plain_text(":meth:`Cache.get <cachekit.Cache.get>` reads") == "Cache.get reads"
