"""The work behind ``cachekit get``, ``forget``, ``flush`` and ``stats``: a cache seen by an operator.

Each function loads the config (file, environment, defaults, as ``cachekit show`` does), acts on the
stores it declares, prints its answer and returns the exit status, so it can also be called from
Python or a test:

- ``0`` done (``get``: the key was found);
- ``1`` the config is invalid (the report of ``cachekit validate``, on stderr), a store failed, or
  ``get`` found nothing;
- ``2`` a usage error: an invalid region name, or ``flush`` of every region without ``--yes`` when
  nobody can be asked.

``output`` is ``text``, ``json`` or ``github`` like ``cachekit validate``: ``github`` prints the text
answer and each failure as an ``::error`` annotation.

A region whose store lives in process memory (a ``memory`` provider) is empty in the CLI's own process:
these commands say so on stderr. They are made for the stores that outlive a process: ``file``,
``redis``, ``memcached``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from .errors import CacheError, ConfigError
from .providers.base import MISSING

if TYPE_CHECKING:
    from .runtime.region import Region
    from .runtime.runtime import Runtime

__all__ = ["flush", "forget", "get", "stats"]

PathLike = str | os.PathLike[str]
OUTPUTS = ("text", "json", "github")


class _Failed(Exception):
    """A failure already described: its exit status."""

    def __init__(self, status: int) -> None:
        self.status = status


class _Session:
    """One command: the output streams, the format, the loaded runtime."""

    def __init__(self, path: PathLike, output: str, out: TextIO | None, err: TextIO | None) -> None:
        self.path = os.fspath(path)
        self.output = output if output in OUTPUTS else "text"
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.runtime: Runtime | None = None

    def fail(self, message: str, status: int = 1) -> _Failed:
        if self.output == "github":
            print(f"::error title=cachekit::{message}", file=self.out)
        print(f"cachekit: {message}", file=self.err)
        return _Failed(status)

    def note(self, message: str) -> None:
        print(f"cachekit: {message}", file=self.err)

    def load(self) -> Runtime:
        from .cli import format_errors
        from .facade import load

        try:
            self.runtime = load(self.path)
        except ConfigError as exc:
            print(format_errors([(self.path, exc.errors)], self.output), end="", file=self.err)
            raise _Failed(1) from None
        except Exception as exc:  # never a traceback
            raise self.fail(f"{self.path}: {type(exc).__name__}: {exc}") from None
        return self.runtime

    def region(self, name: str | None) -> Region:
        runtime = self.runtime
        assert runtime is not None
        try:
            region = runtime.region(name)
        except CacheError as exc:
            raise self.fail(str(exc), 2) from None
        declared = {*runtime.config.regions, runtime.config.cache.default_region}
        if region.name not in declared:
            self.note(f"region {region.name!r} is not declared in {self.path}: "
                      f"the default region's policy, under its own namespace")
        if _in_process(runtime, region):
            self.note(f"region {region.name!r} is kept in process memory ({region.provider}): "
                      f"this command sees an empty store")
        return region

    def guarded(self, region: Region, what: str, action: Callable[[], Any]) -> Any:
        """``action()``; a store failure (raised, or counted by the region) is a failure of the command."""
        errors = region.stats.errors
        try:
            result = action()
        except Exception as exc:
            raise self.fail(f"{what}: {type(exc).__name__}: {exc}") from None
        if region.stats.errors != errors:
            raise self.fail(f"{what}: the store of region {region.name!r} ({region.provider}) failed")
        return result

    def emit(self, text: str, data: Any) -> None:
        if self.output == "json":
            print(json.dumps(data, indent=2, ensure_ascii=False), file=self.out)
        elif text:
            print(text, file=self.out)


def _run(path: PathLike, output: str, out: TextIO | None, err: TextIO | None,
         body: Callable[[_Session], int]) -> int:
    session = _Session(path, output, out, err)
    try:
        return body(session)
    except _Failed as failed:
        return failed.status
    finally:
        if session.runtime is not None:
            session.runtime.close()


def _in_process(runtime: Runtime, region: Region) -> bool:
    try:
        return runtime.provider_config(region.provider).type == "memory"
    except CacheError:  # a custom store registered in code: not ours to judge
        return False


def _as_json(value: Any) -> tuple[Any, bool]:
    """``(value, False)`` when JSON can represent it, else ``(repr(value), True)``."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return repr(value), True
    return value, False


# -- get -------------------------------------------------------------------------------------------
def get(path: PathLike, key: str, region: str | None = None, output: str = "text", *,
        out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Print the value cached under ``key``; exit 1 (and print nothing on stdout in text) when missing.

    text: the value as JSON (a string in quotes), or its ``repr`` when JSON cannot represent it;
    json: ``{"key", "region", "found", "value", "repr"}`` (``repr`` is true when ``value`` is a repr).
    Reads without counting a hit and without filling an L1.
    """

    def body(session: _Session) -> int:
        session.load()
        repo = session.region(region)
        value = session.guarded(repo, f"get {key!r}", lambda: repo.peek(key, MISSING))
        found = value is not MISSING
        shown, is_repr = _as_json(value) if found else (None, False)
        if is_repr:
            session.note(f"{key!r} holds a {type(value).__name__}, which JSON cannot represent: shown as repr")
        text = "" if not found else (shown if is_repr else json.dumps(shown, indent=2, ensure_ascii=False))
        session.emit(text, {"key": key, "region": repo.name, "found": found, "value": shown, "repr": is_repr})
        if not found:
            if session.output != "json":
                session.note(f"(missing) {key!r} in region {repo.name!r}")
            return 1
        return 0

    return _run(path, output, out, err, body)


# -- forget ----------------------------------------------------------------------------------------
def forget(path: PathLike, key: str, region: str | None = None, output: str = "text", *,
           out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Remove ``key``; exit 0 whether or not it was cached (the answer says which), 1 if the store failed.

    json: ``{"key", "region", "forgotten"}``.
    """

    def body(session: _Session) -> int:
        session.load()
        repo = session.region(region)
        removed = bool(session.guarded(repo, f"forget {key!r}", lambda: repo.forget(key)))
        text = (f"forgot {key!r} in region {repo.name!r}" if removed
                else f"{key!r} was not cached in region {repo.name!r}")
        session.emit(text, {"key": key, "region": repo.name, "forgotten": removed})
        return 0

    return _run(path, output, out, err, body)


# -- flush -----------------------------------------------------------------------------------------
def flush(path: PathLike, region: str | None = None, output: str = "text", *, yes: bool = False,
          confirm: Callable[[str], bool] | None = None, out: TextIO | None = None,
          err: TextIO | None = None) -> int:
    """Flush one region, or every declared region (and the default region) when ``region`` is ``None``.

    Flushing every region asks ``confirm(question)`` unless ``yes``; without a way to ask (``confirm``
    is ``None``: stdin is not a terminal) it refuses with status 2. Only cachekit's own keys go: each
    region flushes its ``prefix:region:`` namespace. json: ``{"flushed": [regions]}``.
    """

    def body(session: _Session) -> int:
        runtime = session.load()
        if region is not None:
            names = [region]
        else:
            names = list(dict.fromkeys([runtime.config.cache.default_region, *runtime.config.regions]))
            if not yes:
                question = f"flush every region of {session.path} ({', '.join(names)})?"
                if confirm is None:
                    raise session.fail(f"{question} needs --yes when nobody can be asked", 2)
                if not confirm(question):
                    session.note("nothing flushed")
                    return 1
        flushed = []
        for name in names:
            repo = session.region(name)
            if not session.guarded(repo, f"flush {repo.name!r}", repo.flush):
                raise session.fail(f"flush {repo.name!r}: the store of region {repo.name!r} did not flush")
            flushed.append(repo.name)
        session.emit("\n".join(f"flushed region {name!r}" for name in flushed), {"flushed": flushed})
        return 0

    return _run(path, output, out, err, body)


# -- stats -----------------------------------------------------------------------------------------
def stats(path: PathLike, output: str = "text", *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """What an operator can learn from outside the application's processes, per declared region:
    provider and its type, TTL, whether the store answers (and its latency), and how many keys the
    region holds where the store can list them (memory, file, redis; ``None`` on memcached).

    Hit and miss counters live in each application process (``runtime.stats``, ``GET
    /api/cache/stats``): a new process has none, so they are not shown. Exit 1 when a store fails.
    json: ``[{"region", "provider", "type", "ttl", "status", "latency_ms", "keys", "error"}]``.
    """

    def body(session: _Session) -> int:
        runtime = session.load()
        names = list(dict.fromkeys([runtime.config.cache.default_region, *runtime.config.regions]))
        rows = []
        for name in names:
            repo = session.region(name)
            rows.append(_region_row(runtime, repo))
        if session.output == "json":
            session.emit("", rows)
        else:
            header = ("region", "provider", "type", "ttl", "status", "keys")
            table = [header] + [(r["region"], r["provider"], r["type"], _ttl_text(r["ttl"]),
                                 _status_text(r), "n/a" if r["keys"] is None else str(r["keys"]))
                                for r in rows]
            widths = [max(len(row[i]) for row in table) for i in range(len(header))]
            session.emit("\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                                   for row in table), None)
        failed = [r for r in rows if r["status"] != "ok"]
        for row in failed:
            if session.output == "github":
                print(f"::error title=cachekit::region {row['region']}: {row['error']}", file=session.out)
        return 1 if failed else 0

    return _run(path, output, out, err, body)


def _region_row(runtime: Runtime, region: Region) -> dict[str, Any]:
    from .errors import UnsupportedOperation

    try:
        kind = runtime.provider_config(region.provider).type
    except CacheError:
        kind = "custom"
    row: dict[str, Any] = {"region": region.name, "provider": region.provider, "type": kind,
                           "ttl": region.default_ttl, "status": "ok", "latency_ms": None, "keys": None,
                           "error": None}
    try:
        row["latency_ms"] = round(region.l2.driver.ping() * 1000, 3)
    except Exception as exc:  # a report, not a crash
        row.update(status="error", error=f"{type(exc).__name__}: {exc}")
        return row
    try:
        row["keys"] = len(region.keys())
    except UnsupportedOperation:
        pass  # memcached cannot list its keys
    return row


def _ttl_text(ttl: float | None) -> str:
    if ttl is None:
        return "-"
    return f"{ttl:g}s"


def _status_text(row: dict[str, Any]) -> str:
    if row["status"] == "ok":
        return f"ok {row['latency_ms']:.2f} ms"
    return f"error: {row['error']}"
