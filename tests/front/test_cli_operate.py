"""``cachekit get / forget / flush / stats``: exit codes and formats, on a file store and a real Redis."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cachekit import load, operate

SCRIPT = Path(sys.executable).parent / "cachekit"


def run(*args: str, cwd: Path, stdin: str | None = "") -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.upper().startswith("CACHEKIT_")}
    return subprocess.run([str(SCRIPT), *args], cwd=cwd, env=environ, capture_output=True, text=True,
                          timeout=60, input=stdin)


def call(fn: Any, *args: Any, **kwargs: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = fn(*args, out=out, err=err, **kwargs)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(params=["file", "redis"])
def config(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A config with two regions, ``default`` and ``users``, on a file store or a Redis."""
    if request.param == "file":
        provider = f'[providers.store]\ntype = "file"\npath = "{(tmp_path / "store").as_posix()}"\n'
    else:
        server = request.getfixturevalue("redis_server")
        provider = f'[providers.store]\ntype = "redis"\nurl = "{server.url}"\n'
    path = tmp_path / "cachekit.toml"
    path.write_text(provider + '[regions.default]\nprovider = "store"\nttl = 600\n'
                    '[regions.users]\nprovider = "store"\nttl = 60\n')
    yield path


def seed(path: Path, region: str | None, **values: Any) -> None:
    runtime = load(path)
    try:
        for key, value in values.items():
            runtime.region(region).put(key, value)
    finally:
        runtime.close()


def cached(path: Path, region: str | None, key: str) -> Any:
    runtime = load(path)
    try:
        return runtime.region(region).peek(key, "<missing>")
    finally:
        runtime.close()


# -- get --------------------------------------------------------------------------------------------
def test_get_prints_the_value_as_json(config: Path) -> None:
    seed(config, "users", **{"user:1": {"name": "Ada", "tags": ["x"]}})
    status, out, _ = call(operate.get, config, "user:1", "users")
    assert status == 0 and json.loads(out) == {"name": "Ada", "tags": ["x"]}
    status, out, _ = call(operate.get, config, "user:1", "users", "json")
    assert status == 0
    assert json.loads(out) == {"key": "user:1", "region": "users", "found": True,
                               "value": {"name": "Ada", "tags": ["x"]}, "repr": False}


def test_get_of_a_missing_key_exits_1_with_nothing_on_stdout(config: Path) -> None:
    status, out, err = call(operate.get, config, "nope")
    assert (status, out) == (1, "") and "(missing) 'nope' in region 'default'" in err
    status, out, _ = call(operate.get, config, "nope", None, "json")
    assert status == 1 and json.loads(out) == {"key": "nope", "region": "default", "found": False,
                                               "value": None, "repr": False}


def test_get_of_a_value_json_cannot_represent_shows_its_repr(config: Path) -> None:
    seed(config, None, tags={"a"})
    status, out, err = call(operate.get, config, "tags", None, "json")
    assert status == 0 and json.loads(out)["value"] == "{'a'}" and json.loads(out)["repr"] is True
    assert "shown as repr" in err


def test_get_does_not_look_into_other_regions(config: Path) -> None:
    seed(config, "users", k=1)
    assert call(operate.get, config, "k")[0] == 1
    assert call(operate.get, config, "k", "users")[0] == 0


# -- forget -----------------------------------------------------------------------------------------
def test_forget_removes_the_key_and_says_whether_it_was_there(config: Path) -> None:
    seed(config, "users", a=1, b=2)
    status, out, _ = call(operate.forget, config, "a", "users")
    assert status == 0 and out == "forgot 'a' in region 'users'\n"
    assert cached(config, "users", "a") == "<missing>" and cached(config, "users", "b") == 2
    status, out, _ = call(operate.forget, config, "a", "users", "json")
    assert status == 0 and json.loads(out) == {"key": "a", "region": "users", "forgotten": False}


# -- flush ------------------------------------------------------------------------------------------
def test_flush_one_region_leaves_the_others(config: Path) -> None:
    seed(config, "users", a=1)
    seed(config, None, b=2)
    status, out, _ = call(operate.flush, config, "users")
    assert status == 0 and out == "flushed region 'users'\n"
    assert cached(config, "users", "a") == "<missing>" and cached(config, None, "b") == 2


def test_flush_every_region_needs_yes_or_a_confirmation(config: Path) -> None:
    seed(config, "users", a=1)
    seed(config, None, b=2)
    status, _, err = call(operate.flush, config)
    assert status == 2 and "needs --yes" in err
    assert cached(config, "users", "a") == 1
    status, _, _ = call(operate.flush, config, confirm=lambda question: False)
    assert status == 1 and cached(config, "users", "a") == 1
    asked: list[str] = []
    status, out, _ = call(operate.flush, config, None, "json", confirm=lambda q: asked.append(q) or True)
    assert status == 0 and json.loads(out) == {"flushed": ["default", "users"]} and "users" in asked[0]
    assert cached(config, "users", "a") == "<missing>" and cached(config, None, "b") == "<missing>"


def test_flush_on_redis_keeps_foreign_keys(redis_server: Any, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f'[providers.r]\ntype = "redis"\nurl = "{redis_server.url}"\n'
                    '[regions.default]\nprovider = "r"\n')
    client = redis_server.client()
    client.set("foreign", "1")
    seed(path, None, a=1)
    assert call(operate.flush, path, yes=True)[0] == 0
    assert client.get("foreign") == b"1" and cached(path, None, "a") == "<missing>"


# -- stats ------------------------------------------------------------------------------------------
def test_stats_lists_each_region_with_its_store_and_keys(config: Path) -> None:
    seed(config, "users", a=1, b=2)
    status, out, _ = call(operate.stats, config, output="json")
    assert status == 0
    rows = {row["region"]: row for row in json.loads(out)}
    assert set(rows) == {"default", "users"}
    assert rows["users"]["keys"] == 2 and rows["default"]["keys"] == 0
    assert rows["users"]["status"] == "ok" and rows["users"]["ttl"] == 60 and rows["users"]["provider"] == "store"
    status, out, _ = call(operate.stats, config)
    lines = out.splitlines()
    assert lines[0].split() == ["region", "provider", "type", "ttl", "status", "keys"]
    assert lines[2].split()[:4] == ["users", "store", rows["users"]["type"], "60s"] and lines[2].endswith(" 2")


def test_stats_on_memcached_cannot_count_keys(memcached_server: Any, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f'[providers.mc]\ntype = "memcached"\nservers = ["{memcached_server.address}"]\n'
                    '[regions.default]\nprovider = "mc"\n')
    status, out, _ = call(operate.stats, path, output="json")
    assert status == 0 and json.loads(out)[0]["keys"] is None


def test_a_store_that_does_not_answer_fails_the_commands(tmp_path: Path) -> None:
    from servers import free_port

    path = tmp_path / "down.toml"
    path.write_text(f'[providers.r]\ntype = "redis"\nurl = "redis://127.0.0.1:{free_port()}/0"\n'
                    'socket_timeout = 0.2\nconnect_timeout = 0.2\n[regions.default]\nprovider = "r"\n')
    status, out, err = call(operate.stats, path, output="github")
    assert status == 1 and out.splitlines()[-1].startswith("::error title=cachekit::region default: ")
    status, _, err = call(operate.get, path, "k")
    assert status == 1 and "failed" in err and "(missing)" not in err
    assert call(operate.forget, path, "k")[0] == 1


# -- the command --------------------------------------------------------------------------------------
def test_invalid_config_exits_1_with_the_validate_report(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[regions.users]\ntll = 60\n")
    for command in (["get", str(path), "k"], ["forget", str(path), "k"], ["flush", str(path), "users"],
                    ["stats", str(path)]):
        result = run(*command, cwd=tmp_path)
        assert result.returncode == 1, command
        assert f"{path}:2: regions.users.tll: unknown key 'tll'; did you mean 'ttl'?" in result.stderr
        assert "Traceback" not in result.stderr
    github = run("get", str(path), "k", "--format", "github", cwd=tmp_path)
    assert github.returncode == 1 and github.stderr.startswith(f"::error file={path}")


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f'[providers.f]\ntype = "file"\npath = "{(tmp_path / "s").as_posix()}"\n'
                    '[regions.default]\nprovider = "f"\n')
    assert run("get", str(path), cwd=tmp_path).returncode == 2                      # no KEY
    assert run("get", str(path), "k", "--format", "xml", cwd=tmp_path).returncode == 2
    bad_region = run("get", str(path), "k", "--region", "a:b", cwd=tmp_path)
    assert bad_region.returncode == 2 and "invalid region name" in bad_region.stderr
    refused = run("flush", str(path), cwd=tmp_path)                                   # stdin is not a terminal
    assert refused.returncode == 2 and "--yes" in refused.stderr


def test_the_commands_end_to_end(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f'[providers.f]\ntype = "file"\npath = "{(tmp_path / "s").as_posix()}"\n'
                    '[regions.default]\nprovider = "f"\n[regions.users]\nprovider = "f"\n')
    seed(path, "users", **{"user:1": "Ada"})
    got = run("get", str(path), "user:1", "--region", "users", cwd=tmp_path)
    assert (got.returncode, got.stdout) == (0, '"Ada"\n')
    assert run("get", str(path), "user:2", "-r", "users", cwd=tmp_path).returncode == 1
    stats = run("stats", str(path), "--format", "json", cwd=tmp_path)
    assert stats.returncode == 0 and [r["keys"] for r in json.loads(stats.stdout)] == [0, 1]
    forgot = run("forget", str(path), "user:1", "--region", "users", "-f", "json", cwd=tmp_path)
    assert forgot.returncode == 0 and json.loads(forgot.stdout)["forgotten"] is True
    seed(path, "users", **{"user:1": "Ada"})
    flushed = run("flush", str(path), "--yes", cwd=tmp_path)
    assert flushed.returncode == 0 and flushed.stdout == "flushed region 'default'\nflushed region 'users'\n"
    assert cached(path, "users", "user:1") == "<missing>"


def test_a_memory_region_is_reported_as_empty_in_this_process(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text("[regions.users]\nttl = 60\n")
    status, _, err = call(operate.get, path, "k", "users")
    assert status == 1 and "kept in process memory" in err


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
@pytest.mark.parametrize(("answer", "status"), [("n", 1), ("y", 0)])
def test_flush_on_a_terminal_asks_first(tmp_path: Path, answer: str, status: int) -> None:
    import pty

    path = tmp_path / "c.toml"
    path.write_text(f'[providers.f]\ntype = "file"\npath = "{(tmp_path / "s").as_posix()}"\n'
                    '[regions.default]\nprovider = "f"\n')
    seed(path, None, a=1)
    leader, follower = pty.openpty()
    environ = {k: v for k, v in os.environ.items() if not k.upper().startswith("CACHEKIT_")}
    try:
        process = subprocess.Popen([str(SCRIPT), "flush", str(path)], stdin=follower, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, cwd=tmp_path, env=environ, text=True)
        os.write(leader, f"{answer}\n".encode())
        _, err = process.communicate(timeout=60)
    finally:
        os.close(leader)
        os.close(follower)
    assert process.returncode == status, err
    assert "flush every region of" in err and "[y/N]" in err
    assert cached(path, None, "a") == ("<missing>" if answer == "y" else 1)
