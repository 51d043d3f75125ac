"""``cachekit demo`` / ``ping`` / ``serve``: the demo job (cachekit.demo) and the commands in cachekit.cli."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from cachekit import load
from cachekit.cli import run_ping as ping
from cachekit.cli import run_serve as serve
from cachekit.demo import demo, run_demo_workload

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo's file store writes under .cache/cachekit in the working directory: use a temp one."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CACHEKIT_CONFIG", raising=False)
    return tmp_path


def _frame_rows(text: str) -> dict[str, list[str]]:
    """``{region: cells}`` of the printed DataFrame (rows start with a region name)."""
    rows = {}
    for line in text.splitlines():
        cells = line.split()
        if len(cells) == 13 and cells[0] in {"default", "users", "reports"}:
            rows[cells[0]] = cells[1:]
    return rows


def test_demo_prints_the_stats_frame_a_hit_ratio_and_writes_a_png(workdir: Path) -> None:
    out = io.StringIO()
    plot = workdir / "plots" / "demo.png"

    assert demo(plot=str(plot), requests=2000, out=out) == 0

    text = out.getvalue()
    header = text.splitlines()[0].split()
    assert header[:5] == ["provider", "hits", "misses", "hit_ratio", "sets"]
    rows = _frame_rows(text)
    assert set(rows) == {"default", "users", "reports"}
    assert rows["reports"][0] == "disk" and rows["users"][0] == "memory"
    assert all(int(cells[1]) > 0 and int(cells[2]) > 0 for cells in rows.values())  # hits and misses
    ratio = float(re.search(r"hit ratio (\d+\.\d+)", text).group(1))  # type: ignore[union-attr]
    assert 0 < ratio < 1
    assert plot.is_file() and plot.stat().st_size > 1000
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any((workdir / ".cache" / "cachekit").rglob("*.ck"))  # the reports region is on the file store


def test_python_m_cachekit_demo_runs_the_demo_from_the_command_line(workdir: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "cachekit", "demo", "--requests", "400", "--plot", "out.png"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert set(_frame_rows(done.stdout)) == {"default", "users", "reports"}
    assert "400 requests, hit ratio 0." in done.stdout
    assert (workdir / "out.png").stat().st_size > 0


def test_demo_without_plot_writes_no_image(workdir: Path) -> None:
    out = io.StringIO()
    assert demo(requests=300, out=out) == 0
    assert "plot written" not in out.getvalue()
    assert not list(workdir.rglob("*.png"))


def test_demo_workload_is_repeatable_even_with_the_file_store_left_from_a_previous_run(workdir: Path) -> None:
    def counters() -> list[dict[str, Any]]:
        runtime = load()
        try:
            report = run_demo_workload(runtime, requests=1500, seed=3)
            rows = runtime.stats.rows()
            assert report.loader_calls == sum(r["loads"] for r in rows)
            return [{k: v for k, v in r.items() if k != "load_time_s"} for r in rows]
        finally:
            runtime.close()

    first, second = counters(), counters()
    assert first == second
    assert {r["region"] for r in first} == {"default", "users", "reports"}


def test_demo_workload_depends_on_the_seed(workdir: Path) -> None:
    runs = []
    for seed in (1, 2):
        runtime = load()
        try:
            run_demo_workload(runtime, requests=1000, seed=seed)
            runs.append(runtime.stats.totals())
        finally:
            runtime.close()
    assert runs[0] != runs[1]


def test_demo_samples_the_stats_twenty_times_for_the_time_series(workdir: Path) -> None:
    runtime = load()
    try:
        report = run_demo_workload(runtime, requests=3000)
        assert report.samples == list(range(150, 3001, 150))
        series = runtime.stats.timeseries()
        assert len(series) == 20 * 3
        users = series.xs("users", level="region")
        assert users["hits"].is_monotonic_increasing and users["hits"].iloc[-1] > users["hits"].iloc[0]
    finally:
        runtime.close()


# -- ping -----------------------------------------------------------------------------------------
def test_ping_reports_every_declared_provider_of_the_default_config(workdir: Path) -> None:
    out = io.StringIO()
    assert ping(ROOT / "configs" / "default.toml", out=out) == 0
    lines = out.getvalue().splitlines()
    assert [line.split()[:3] for line in lines] == [["memory", "memory", "ok"], ["disk", "file", "ok"]]
    assert all(line.endswith(" ms") for line in lines)


def test_ping_prints_the_error_of_an_unreachable_provider_without_traceback_and_fails(workdir: Path) -> None:
    config = workdir / "cachekit.toml"
    config.write_text(
        '[providers.local]\ntype = "memory"\n\n'
        '[providers.down]\ntype = "redis"\nurl = "redis://127.0.0.1:1/0"\nconnect_timeout = 0.2\nretries = 0\n'
    )
    out = io.StringIO()
    assert ping(config, out=out) == 1
    text = out.getvalue()
    lines = text.splitlines()
    assert len(lines) == 2 and lines[0].split()[:3] == ["local", "memory", "ok"]
    assert lines[1].split()[:3] == ["down", "redis", "error:"] and "127.0.0.1:1" in lines[1]
    assert "Traceback" not in text


def test_ping_answers_for_a_real_redis(workdir: Path, redis_server: Any) -> None:
    config = workdir / "cachekit.toml"
    config.write_text(f'[providers.cache]\ntype = "redis"\nurl = "{redis_server.url}"\n')
    out = io.StringIO()
    assert ping(config, out=out) == 0
    assert out.getvalue().split()[:3] == ["cache", "redis", "ok"]


def test_ping_of_an_invalid_config_prints_the_problem_and_fails(workdir: Path) -> None:
    config = workdir / "cachekit.toml"
    config.write_text('[regions.users]\nprovider = "redsi"\n')
    out = io.StringIO()
    assert ping(config, out=out) == 1
    assert "regions.users.provider" in out.getvalue() and "redsi" in out.getvalue()


# -- serve ----------------------------------------------------------------------------------------
def test_serve_runs_the_http_app_of_the_config_with_uvicorn(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def run(app: Any, host: str, port: int) -> None:
        seen.update(app=app, host=host, port=port)
        assert any(path.startswith("/api/cache/") for path in app.openapi()["paths"])

    monkeypatch.setitem(sys.modules, "uvicorn", types.SimpleNamespace(run=run))
    monkeypatch.delenv("CACHEKIT_HTTP__TOKEN", raising=False)
    assert serve(ROOT / "configs" / "default.toml", host="127.0.0.2", port=8765) == 1  # deny by default
    assert seen == {}
    monkeypatch.setenv("CACHEKIT_HTTP__TOKEN", "serve-token")
    assert serve(ROOT / "configs" / "default.toml", host="127.0.0.2", port=8765) == 0
    assert seen["host"] == "127.0.0.2" and seen["port"] == 8765


@pytest.mark.parametrize("module", ["cachekit.demo", "cachekit.cli"])
def test_importing_the_demo_and_the_cli_imports_no_optional_library(module: str) -> None:
    code = (f"import sys, {module}; "
            "print(sorted(m for m in ('pandas', 'matplotlib', 'uvicorn', 'redis', 'typer') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
