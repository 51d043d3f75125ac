"""The cachekit command, run as a real process: exit codes 0/1/2 and every output format."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent.parent / "data" / "configs"
SCRIPT = Path(sys.executable).parent / "cachekit"


def run(*args: str, cwd: Path = DATA, env: dict[str, str] | None = None,
        module: bool = False) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "cachekit", *args] if module else [str(SCRIPT), *args]
    environ = {k: v for k, v in os.environ.items() if not k.upper().startswith("CACHEKIT_")}
    environ.update(env or {})
    return subprocess.run(command, cwd=cwd, env=environ, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("module", [False, True], ids=["script", "python -m"])
def test_validate_valid_files_exits_0(module: bool) -> None:
    result = run("validate", "valid/full.toml", "valid/minimal.toml", module=module)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "valid/full.toml: ok\nvalid/minimal.toml: ok\n"


def test_validate_invalid_file_exits_1_with_file_line_path_message() -> None:
    result = run("validate", "valid/minimal.toml", "invalid/typo_key.toml")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "valid/minimal.toml: ok"
    assert lines[1].startswith("invalid/typo_key.toml:3: regions.users.tll: unknown key 'tll'; did you mean 'ttl'?")
    assert "Traceback" not in result.stderr


def test_validate_directory_checks_every_toml_below_it() -> None:
    result = run("validate", "invalid", "--format", "json")
    assert result.returncode == 1
    files = {Path(row["file"]).name for row in json.loads(result.stdout)}
    assert files == {p.name for p in (DATA / "invalid").glob("*.toml")}


def test_json_format_is_a_list_of_file_line_path_message() -> None:
    result = run("validate", "invalid/negative_ttl.toml", "-f", "json")
    assert result.returncode == 1
    assert json.loads(result.stdout) == [{
        "file": "invalid/negative_ttl.toml",
        "line": 3,
        "path": "regions.sessions.ttl",
        "message": "must be greater than 0 seconds, got -5; omit it for the default or use forever",
    }]


def test_validate_warns_about_an_event_rule_that_invalidates_nothing_and_still_exits_0(tmp_path: Path) -> None:
    (tmp_path / "app.toml").write_text(
        '[[rules]]\nname = "user-update-rule"\nstrategy = "event_based"\n'
        'events = ["user_updated", "user_profile_changed"]\n')
    text = run("validate", "app.toml", cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines() == [
        "app.toml:4: warning: rules[0].events: rule 'user-update-rule' invalidates nothing when its events "
        "fire: set pattern, patterns, tags or flush_regions = true",
        "app.toml: ok",
    ]
    github = run("validate", "app.toml", "-f", "github", cwd=tmp_path)
    assert github.returncode == 0 and github.stdout.startswith("::warning file=app.toml,line=4,title=cachekit::")
    rows = json.loads(run("validate", "app.toml", "-f", "json", cwd=tmp_path).stdout)
    assert [(r["path"], r["severity"]) for r in rows] == [("rules[0].events", "warning")]


def test_json_format_of_valid_files_is_an_empty_list() -> None:
    result = run("validate", "valid", "--format", "json")
    assert (result.returncode, json.loads(result.stdout)) == (0, [])


def test_github_format_emits_error_annotations() -> None:
    result = run("validate", "invalid/duplicate_rule_names.toml", "--format", "github")
    assert result.returncode == 1
    assert result.stdout == (
        "::error file=invalid/duplicate_rule_names.toml,line=7,title=cachekit::"
        "rules[1].name: duplicate rule name 'flush-users' (first used by rules[0])\n"
    )


def test_missing_file_is_invalid_not_a_crash() -> None:
    result = run("validate", "nope.toml")
    assert result.returncode == 1
    assert result.stdout == "nope.toml: <file>: no such file: nope.toml\n"


@pytest.mark.parametrize(
    "args",
    [["validate", "--bogus", "valid/minimal.toml"], ["validate"], ["validate", "x.toml", "--format", "xml"],
     ["no-such-command"]],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_directory_without_toml_is_a_usage_error(tmp_path: Path) -> None:
    result = run("validate", str(tmp_path))
    assert result.returncode == 2
    assert "no *.toml file" in result.stderr


def test_validate_ignores_the_environment_unless_asked() -> None:
    env = {"CACHEKIT_REGIONS__USERS__TTL": "-1"}
    assert run("validate", "valid/minimal.toml", env=env).returncode == 0
    result = run("validate", "valid/minimal.toml", "--with-env", env=env)
    assert result.returncode == 1
    assert "set by environment variable CACHEKIT_REGIONS__USERS__TTL" in result.stdout


def test_schema_prints_the_json_schema() -> None:
    result = run("schema")
    assert result.returncode == 0
    assert json.loads(result.stdout)["title"] == "cachekit configuration"


def test_show_prints_resolved_toml_with_env_marked_and_secrets_masked(tmp_path: Path) -> None:
    (tmp_path / "app.toml").write_text(
        '[providers.r]\ntype = "redis"\npassword = "hunter2"\n\n[regions.users]\nprovider = "r"\nttl = 60\n'
    )
    result = run("show", "app.toml", cwd=tmp_path, env={"CACHEKIT_REGIONS__USERS__TTL": "42"})
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout
    assert 'password = "**********"' in result.stdout
    assert "ttl = 42.0 # from CACHEKIT_REGIONS__USERS__TTL" in result.stdout
    assert "[regions.users]" in result.stdout


def test_show_json_is_the_resolved_config(tmp_path: Path) -> None:
    (tmp_path / "app.toml").write_text('[http]\ntoken = "t0k3n"\n')
    result = run("show", "app.toml", "--format", "json", cwd=tmp_path)
    data = json.loads(result.stdout)
    assert data["http"]["token"] == "**********"
    assert data["cache"]["prefix"] == "cachekit"


def test_show_of_an_invalid_file_exits_1_with_the_errors() -> None:
    result = run("show", "invalid/zero_ttl.toml")
    assert result.returncode == 1
    assert result.stderr.startswith("invalid/zero_ttl.toml:2: cache.default_ttl: must be greater than 0 seconds")


def test_missing_cli_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cachekit import cli

    monkeypatch.setitem(sys.modules, "typer", None)  # import typer -> ImportError
    with pytest.raises(SystemExit) as info:
        cli.main(["validate", "x.toml"])
    assert info.value.code == 2
    assert capsys.readouterr().err == "the CLI needs: pip install 'cachekit-config[cli]'\n"


def test_serve_and_demo_commands_are_called_with_their_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    import cachekit.demo
    from cachekit import cli

    calls: list[tuple[object, ...]] = []
    monkeypatch.setattr(cli, "run_serve",
                        lambda path, host, port, no_auth: calls.append((path, host, port, no_auth)) or 0)
    monkeypatch.setattr(cachekit.demo, "demo", lambda **kwargs: calls.append(tuple(sorted(kwargs.items()))) or 3)
    with pytest.raises(SystemExit) as info:
        cli.main(["serve", "app.toml", "--port", "9001"])
    assert info.value.code == 0
    assert calls == [(Path("app.toml"), "127.0.0.1", 9001, False)]
    with pytest.raises(SystemExit) as info:
        cli.main(["demo", "--requests", "10", "--seed", "3"])
    assert info.value.code == 3
    assert calls[1] == (("plot", None), ("requests", 10), ("seed", 3))
