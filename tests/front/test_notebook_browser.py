"""A real browser: Voilà serves notebooks/02-tuning.ipynb, headless Chromium (Playwright) changes a TTL and saves.

Needs the system Chromium (``scripts/ensure-browser.sh``, run by ``make test``), the ``playwright`` and
``voila`` packages (the ``dev`` extra). Without ``CI=true`` a missing piece skips the test; with it, fails.
The screenshot goes to the test's temporary folder, and to ``docs/img/panel.png`` (shown in
``docs/notebook.md``) when ``CACHEKIT_UPDATE_SCREENSHOT=1``, so a test run leaves the checkout as it was.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _missing() -> str | None:
    for module in ("playwright", "voila", "ipywidgets", "tomlkit"):
        if importlib.util.find_spec(module) is None:
            return f"the {module} package is not installed"
    if CHROMIUM is None:
        return "no chromium on PATH (bash scripts/ensure-browser.sh)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.timeout(90)
def test_change_a_ttl_in_the_browser_and_save_it(tmp_path: Path) -> None:
    missing = _missing()
    if missing is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and the browser test cannot run: {missing}")
        pytest.skip(missing)
    import tomlkit
    from playwright.sync_api import sync_playwright

    started = time.monotonic()
    shutil.copy(ROOT / "notebooks" / "02-tuning.ipynb", tmp_path / "02-tuning.ipynb")
    config = tmp_path / "tuning.toml"
    shutil.copy(ROOT / "notebooks" / "02-tuning.toml", config)
    shutil.copy(ROOT / "notebooks" / "02-tuning.toml", tmp_path / "02-tuning.toml")
    port = _free_port()
    env = {**os.environ, "CACHEKIT_TUNING_CONFIG": str(config), "MPLBACKEND": "Agg"}
    voila = subprocess.Popen(
        [sys.executable, "-m", "voila", "02-tuning.ipynb", "--no-browser", f"--port={port}",
         "--Voila.ip=127.0.0.1", "--VoilaConfiguration.show_tracebacks=True"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if voila.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("voila did not start: " + (voila.stdout.read().decode() if voila.stdout else ""))
                time.sleep(0.2)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            try:
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                page.goto(f"http://127.0.0.1:{port}/", timeout=45_000)
                ttl = page.locator(".cachekit-region-sessions .cachekit-region-ttl input")
                ttl.wait_for(state="visible", timeout=45_000)
                assert tomlkit.parse(config.read_text())["regions"]["sessions"]["ttl"] == 900
                ttl.fill("1234")
                ttl.press("Enter")
                page.locator(".cachekit-save").click()
                deadline = time.monotonic() + 10
                saved = None
                while time.monotonic() < deadline:
                    saved = tomlkit.parse(config.read_text())["regions"]["sessions"]["ttl"]
                    if saved == 1234:
                        break
                    time.sleep(0.2)
                assert saved == 1234
                page.wait_for_timeout(300)
                shot = page.locator(".cachekit-panel").first.screenshot(path=str(tmp_path / "panel.png"))
                assert shot[:8] == b"\x89PNG\r\n\x1a\n"  # the panel was on the page and was drawn
                if os.environ.get("CACHEKIT_UPDATE_SCREENSHOT") == "1":
                    (ROOT / "docs" / "img").mkdir(exist_ok=True)
                    (ROOT / "docs" / "img" / "panel.png").write_bytes(shot)
            finally:
                browser.close()
    finally:
        voila.terminate()
        try:
            voila.wait(timeout=10)
        except subprocess.TimeoutExpired:
            voila.kill()
    text = config.read_text()
    assert "# Sessions: short-lived." in text and "ttl = 1234" in text
    assert time.monotonic() - started < 60
