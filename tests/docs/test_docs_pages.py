"""The docs as a reader meets them: every page reachable from the index, the on_error option described
in full, and the facade and services pages runnable top to bottom as written, outside the test harness."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from docblocks import ROOT

from cachekit.config.models import FileProviderConfig, MemoryProviderConfig

DOCS = ROOT / "docs"


def test_the_index_links_every_page() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    linked = {(DOCS / target).resolve() for target in re.findall(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)", index)}
    pages = [p for p in [*DOCS.glob("*.md"), *(DOCS / "providers").glob("*.md")] if p.name != "index.md"]
    assert len(pages) >= 15
    missing = sorted(str(p.relative_to(DOCS)) for p in pages if p.resolve() not in linked)
    assert not missing, f"docs/index.md does not link: {missing}"
    broken = sorted(str(p) for p in linked if not p.exists())
    assert not broken


def test_on_error_is_described_for_both_values_and_every_kind_of_call() -> None:
    for model in (MemoryProviderConfig, FileProviderConfig):
        description = model.model_fields["on_error"].description or ""
        assert not description.rstrip().endswith("'raise'")  # the old description stopped there
        for word in ("'ignore'", "'raise'", "reads", "writes", "deletes", "invalidations", "counted", "miss"):
            assert word in description, (word, description)
    faults = (DOCS / "faults.md").read_text(encoding="utf-8")
    header = next(line for line in faults.splitlines() if line.startswith("| `on_error` |"))
    for column in ("reads", "writes", "deletes", "invalidations"):
        assert column in header
    rows = [line for line in faults.splitlines() if line.startswith(('| `"ignore"`', '| `"raise"`'))]
    assert len(rows) == 2 and all(row.count("|") == header.count("|") for row in rows)


# The blocks of a page, run in order in one fresh interpreter, in an empty folder (with a copy of
# configs/, which the pages name), with no CACHEKIT_ variable, no Cache.fake() between blocks, and no
# network: a page must run as a reader runs it, without a server.
RUNNER = textwrap.dedent(
    """
    import ast, asyncio, inspect, socket, sys

    def no_network(self, address, *args):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise ConnectionRefusedError(f"a docs example connected to {address}: pages must run without a server")
        return real_connect(self, address, *args)

    real_connect = socket.socket.connect
    socket.socket.connect = no_network
    socket.socket.connect_ex = no_network

    sys.path.insert(0, sys.argv[1])
    from docblocks import page_blocks

    for block in page_blocks([sys.argv[2]], "python"):
        if block.skip:
            continue
        code = compile("\\n" * block.line + block.code, block.file, "exec",
                       flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
        namespace = {"__name__": "__main__"}
        print("block", block.id, flush=True)
        if code.co_flags & inspect.CO_COROUTINE:
            asyncio.run(eval(code, namespace))
        else:
            exec(code, namespace)
    print("all blocks ran")
    """
)


@pytest.mark.parametrize("page", ["docs/facade.md", "docs/services.md"])
def test_page_runs_top_to_bottom_as_written_and_leaves_nothing_behind(page: str, tmp_path: Path) -> None:
    work = tmp_path / "reader"
    work.mkdir()
    shutil.copytree(ROOT / "configs", work / "configs")
    (tmp_path / "runner.py").write_text(RUNNER, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CACHEKIT_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    result = subprocess.run(
        [sys.executable, str(tmp_path / "runner.py"), str(ROOT / "tests"), str(ROOT / page)],
        cwd=work, env=env, capture_output=True, text=True, timeout=180, check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "all blocks ran" in result.stdout
    assert sorted(p.name for p in work.iterdir()) == ["configs"]  # no cachekit.toml, no .cache/ left
