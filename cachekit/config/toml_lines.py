"""Dotted config paths, and where they sit in a TOML text.

A path is a tuple of keys and list indices: ``("rules", 1, "events")``. It is shown as
``rules[1].events``; a key that is not a bare TOML key is quoted (``regions."a.b".ttl``).

:class:`LineMap` scans a TOML text (already known to parse) and records the 1-based line of every
table header (``[regions.x]``), every ``[[rules]]`` occurrence, every ``key = value`` (dotted keys
included), every key of an inline table and every element of an array. :meth:`LineMap.line_of`
returns the line of a path, or of its nearest enclosing path that the text spells out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

__all__ = ["LineMap", "PathKey", "format_path"]

PathKey = tuple[str | int, ...]

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def format_path(path: Sequence[str | int]) -> str:
    """``("rules", 1, "events")`` -> ``"rules[1].events"``; ``()`` -> ``""``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        key = part if _BARE_KEY.match(part) else json.dumps(part, ensure_ascii=False)
        out = f"{out}.{key}" if out else key
    return out


class LineMap:
    """Lines of the keys, tables and array elements of a TOML text."""

    def __init__(self, lines: dict[PathKey, int] | None = None) -> None:
        self._lines: dict[PathKey, int] = lines or {}

    @classmethod
    def from_text(cls, text: str) -> LineMap:
        """Scan ``text``; never raises (a text it cannot follow gives a partial map)."""
        scanner = _Scanner(text)
        try:
            scanner.run()
        except Exception:  # a partial map only makes lines less precise
            pass
        return cls(scanner.lines)

    def has(self, path: Sequence[str | int]) -> bool:
        """Whether the text spells out exactly ``path``."""
        return tuple(path) in self._lines

    def line_of(self, path: Sequence[str | int]) -> int | None:
        """The line of ``path``, else of its nearest enclosing path in the text, else ``None``."""
        key = tuple(path)
        for n in range(len(key), 0, -1):
            line = self._lines.get(key[:n])
            if line is not None:
                return line
        return None


class _Scanner:
    """A structural TOML reader: it follows keys, tables and values and records their lines.

    It does not convert values; tomlkit has already parsed (and validated) the same text.
    """

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.line = 1
        self.lines: dict[PathKey, int] = {}
        self.table: PathKey = ()
        self.aot_counts: dict[PathKey, int] = {}

    # -- low level ---------------------------------------------------------------------------
    def peek(self, n: int = 1) -> str:
        return self.s[self.i : self.i + n]

    def advance(self, n: int = 1) -> None:
        chunk = self.s[self.i : self.i + n]
        self.line += chunk.count("\n")
        self.i += n

    def skip_blank(self, newlines: bool) -> None:
        """Skip spaces, tabs, comments, and (if ``newlines``) line breaks."""
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in " \t" or (newlines and c in "\r\n"):
                self.advance()
            elif c == "#":
                end = self.s.find("\n", self.i)
                self.i = len(self.s) if end < 0 else end
            else:
                return

    def record(self, path: PathKey, line: int, *, exact: bool = True) -> None:
        if exact:
            self.lines[path] = line
        for n in range(1, len(path) + (0 if exact else 1)):
            self.lines.setdefault(path[:n], line)

    # -- statements --------------------------------------------------------------------------
    def run(self) -> None:
        while True:
            self.skip_blank(newlines=True)
            if self.i >= len(self.s):
                return
            start = self.i
            line = self.line
            if self.peek(2) == "[[":
                self.advance(2)
                keys = self.read_key()
                self.skip_blank(newlines=False)
                self.advance(2)
                path = self.resolve(keys)
                index = self.aot_counts.get(path, 0)
                self.aot_counts[path] = index + 1
                self.table = (*path, index)
                self.lines.setdefault(path, line)
                self.record(self.table, line)
            elif self.peek() == "[":
                self.advance()
                keys = self.read_key()
                self.skip_blank(newlines=False)
                self.advance()
                self.table = self.resolve(keys)
                self.record(self.table, line)
            else:
                keys = self.read_key()
                path = (*self.table, *keys)
                self.record(path, line)
                self.skip_blank(newlines=False)
                if self.peek() == "=":
                    self.advance()
                self.skip_blank(newlines=False)
                self.read_value(path)
            if self.i == start:  # never loop without progress
                self.advance()

    def resolve(self, keys: tuple[str, ...]) -> PathKey:
        """A header's keys with the current index of every array of tables they pass through."""
        path: PathKey = ()
        for key in keys:
            path = (*path, key)
            if path in self.aot_counts and len(path) < len(keys):
                path = (*path, self.aot_counts[path] - 1)
        return path

    # -- keys --------------------------------------------------------------------------------
    def read_key(self) -> tuple[str, ...]:
        parts: list[str] = []
        while True:
            self.skip_blank(newlines=False)
            c = self.peek()
            if c == '"':
                parts.append(self.read_basic_string())
            elif c == "'":
                parts.append(self.read_literal_string())
            else:
                start = self.i
                while self.i < len(self.s) and (self.s[self.i].isalnum() or self.s[self.i] in "_-"):
                    self.i += 1
                parts.append(self.s[start : self.i])
            self.skip_blank(newlines=False)
            if self.peek() != ".":
                return tuple(parts)
            self.advance()

    # -- values ------------------------------------------------------------------------------
    def read_value(self, path: PathKey) -> None:
        c = self.peek()
        if self.peek(3) in ('"""', "'''"):
            self.read_multiline_string(self.peek(3))
        elif c == '"':
            self.read_basic_string()
        elif c == "'":
            self.read_literal_string()
        elif c == "[":
            self.read_array(path)
        elif c == "{":
            self.read_inline_table(path)
        else:
            while self.i < len(self.s) and self.s[self.i] not in ",]}\r\n#":
                self.i += 1

    def read_array(self, path: PathKey) -> None:
        self.advance()
        index = 0
        while self.i < len(self.s):
            self.skip_blank(newlines=True)
            if self.peek() == "]":
                self.advance()
                return
            self.record((*path, index), self.line)
            before = self.i
            self.read_value((*path, index))
            index += 1
            self.skip_blank(newlines=True)
            if self.peek() == "," or self.i == before:
                self.advance()

    def read_inline_table(self, path: PathKey) -> None:
        self.advance()
        while self.i < len(self.s):
            self.skip_blank(newlines=True)
            if self.peek() == "}":
                self.advance()
                return
            line = self.line
            before = self.i
            keys = self.read_key()
            self.record((*path, *keys), line)
            self.skip_blank(newlines=False)
            if self.peek() == "=":
                self.advance()
            self.skip_blank(newlines=False)
            self.read_value((*path, *keys))
            self.skip_blank(newlines=True)
            if self.peek() == "," or self.i == before:
                self.advance()

    def read_basic_string(self) -> str:
        start = self.i
        self.advance()
        while self.i < len(self.s) and self.s[self.i] not in '"\n':
            self.i += 2 if self.s[self.i] == "\\" else 1
        self.advance()
        raw = self.s[start : self.i]
        try:
            return str(json.loads(raw))
        except ValueError:
            return raw[1:-1]

    def read_literal_string(self) -> str:
        start = self.i + 1
        end = self.s.find("'", start)
        end = len(self.s) if end < 0 else end
        self.i = end + 1
        return self.s[start:end]

    def read_multiline_string(self, quote: str) -> None:
        self.advance(3)
        while self.i < len(self.s):
            if quote == '"""' and self.s[self.i] == "\\":
                self.advance(2)
            elif self.peek(3) == quote:
                self.advance(3)
                # up to two more quotes may close the string (""""" is legal)
                while self.peek() == quote[0]:
                    self.advance()
                return
            else:
                self.advance()
