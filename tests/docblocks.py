"""Reading the fenced code blocks of the Markdown docs, and running them (shared by the docs tests)."""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
NO_TEST = "<!-- no-test -->"
_FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass(frozen=True)
class CodeBlock:
    """A fenced code block of a Markdown file."""

    file: str
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    skip: bool

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}"


def extract_blocks(text: str, file: str = "<text>") -> list[CodeBlock]:
    """The fenced blocks of ``text``, with ``skip`` set when ``<!-- no-test -->`` precedes one."""
    blocks: list[CodeBlock] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        start, lang = i, match.group(1).lower()
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].rstrip() != "```":
            body.append(lines[i])
            i += 1
        before = next((lines[j].strip() for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        blocks.append(CodeBlock(file, start + 1, lang, "\n".join(body) + "\n", before == NO_TEST))
        i += 1
    return blocks


def page_blocks(pages: Iterable[str], lang: str | None = None) -> list[CodeBlock]:
    """The blocks of the pages (paths relative to the repository root), of one language if given."""
    return [b for name in pages for b in extract_blocks((ROOT / name).read_text(encoding="utf-8"), name)
            if lang is None or b.lang == lang]


def as_params(blocks: Iterable[CodeBlock]) -> list[Any]:
    """``pytest.param`` per block, id ``file:line``, skipped when marked ``<!-- no-test -->``."""
    return [pytest.param(b, id=b.id, marks=[pytest.mark.skip(reason=f"marked {NO_TEST}")] if b.skip else [])
            for b in blocks]


def run_block(code: str, filename: str, first_line: int = 1) -> None:
    """Execute ``code`` in a fresh namespace; a block with top-level ``await`` runs in an event loop.

    ``first_line`` is the line of ``filename`` where the code starts, so tracebacks point into the page.
    """
    code = "\n" * (first_line - 1) + code
    compiled = compile(code, filename, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    if compiled.co_flags & inspect.CO_COROUTINE:
        asyncio.run(eval(compiled, namespace))
    else:
        exec(compiled, namespace)
