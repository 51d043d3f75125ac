"""The ``cachekit`` command: ``validate``, ``schema``, ``show``, ``ping``, ``serve``, ``demo``.

The CLI needs the ``cli`` extra (typer and rich); without it, ``cachekit`` says what to install and exits
with status 2. ``validate`` is made for CI::

    cachekit validate configs/ --format github   # annotations on the pull request
    cachekit validate app.toml --format json     # [{"file", "line", "path", "message"}, ...]

Exit status: 0 every file is valid, 1 some file is invalid (or could not be read), 2 usage error.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import typer

__all__ = [
    "ShowFormat", "ValidateFormat", "build_app", "format_errors", "main", "plain_text", "run_ping", "run_serve",
    "run_show", "run_validate", "version_line",
]

DISTRIBUTION = "cachekit-config"  # the name on PyPI; the import package and the command are `cachekit`
INSTALL_HINT = f"the CLI needs: pip install '{DISTRIBUTION}[cli]'"
MASK = "**********"


class ValidateFormat(str, Enum):
    """Output of ``cachekit validate``."""

    text = "text"
    json = "json"
    github = "github"


class ShowFormat(str, Enum):
    """Output of ``cachekit show``."""

    toml = "toml"
    json = "json"


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``cachekit`` script and of ``python -m cachekit``."""
    try:
        app = build_app()
    except ImportError:
        print(INSTALL_HINT, file=sys.stderr)
        raise SystemExit(2) from None
    app(args=list(argv) if argv is not None else None, prog_name="cachekit")


def build_app() -> typer.Typer:
    """The typer application (raises ImportError when the ``cli`` extra is missing)."""
    import typer

    app = typer.Typer(
        name="cachekit",
        help="cachekit: cache configuration as code.",
        add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, powershell)
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )

    def print_version(value: bool) -> None:
        if value:
            typer.echo(version_line())
            raise typer.Exit(0)

    @app.callback()
    def _root(
        version: bool = typer.Option(
            False, "--version", is_eager=True, callback=print_version, expose_value=True,
            help="print the version and the distribution, then exit",
        ),
    ) -> None:
        """cachekit: cache configuration as code."""

    @app.command()
    def validate(
        paths: list[Path] = typer.Argument(..., help="TOML files, or directories searched for *.toml"),
        output: ValidateFormat = typer.Option(ValidateFormat.text, "--format", "-f", help="output format"),
        with_env: bool = typer.Option(
            False, "--with-env", help="apply CACHEKIT_... environment variables (default: the files alone)"
        ),
    ) -> None:
        """Validate config files: exit 0 if all are valid, 1 otherwise."""
        raise typer.Exit(run_validate(paths, output, with_env=with_env))

    @app.command()
    def schema(
        markdown: bool = typer.Option(False, "--markdown", help="the field reference as Markdown instead"),
    ) -> None:
        """Print the JSON Schema of a config file."""
        if markdown:
            from .config.schema import reference_markdown

            typer.echo(reference_markdown())
            return
        from .config.schema import json_schema

        typer.echo(json.dumps(json_schema(), indent=2))

    @app.command()
    def show(
        path: Path = typer.Argument(..., help="a TOML config file"),
        output: ShowFormat = typer.Option(ShowFormat.toml, "--format", "-f", help="output format"),
    ) -> None:
        """Print the resolved config (file + environment + defaults); secrets are masked."""
        raise typer.Exit(run_show(path, output))

    @app.command()
    def ping(
        path: Path | None = typer.Argument(None, help="a TOML config file (default: the default config)"),
    ) -> None:
        """Check that every provider of a config answers."""
        raise typer.Exit(run_ping(path))

    @app.command()
    def serve(
        path: Path | None = typer.Argument(None, help="a TOML config file (default: the default config)"),
        host: str = typer.Option("127.0.0.1", help="interface to listen on"),
        port: int = typer.Option(8000, help="TCP port"),
        no_auth: bool = typer.Option(
            False, "--no-auth", help="serve loopback clients without a token (development; refused on other hosts)"
        ),
    ) -> None:
        """Serve the HTTP API of a config (needs the ``http`` extra and [http] token, or --no-auth)."""
        raise typer.Exit(run_serve(path, host, port, no_auth=no_auth))

    @app.command()
    def demo(
        plot: str | None = typer.Option(None, help="write a plot of the hit ratio to this file"),
        requests: int = typer.Option(5000, help="number of requests of the workload"),
        seed: int = typer.Option(7, help="random seed"),
    ) -> None:
        """Run a workload on the embedded default config and print its statistics."""
        from .demo import demo as run_demo

        raise typer.Exit(run_demo(plot=plot, requests=requests, seed=seed))

    _add_operator_commands(app)
    for info in app.registered_commands:  # docstrings are reST (``code``): --help shows plain text
        if info.help is None and info.callback is not None:
            info.help = plain_text(inspect.getdoc(info.callback) or "")
    return app


def version_line() -> str:
    """``cachekit 0.1.0 (distribution cachekit-config)``: what ``cachekit --version`` prints."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version(DISTRIBUTION)
    except PackageNotFoundError:  # imported from a source tree that pip never installed
        from . import __version__

        return f"cachekit {__version__} (distribution {DISTRIBUTION} not installed)"
    return f"cachekit {installed} (distribution {DISTRIBUTION})"


_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~?([^`<]*?)(?:\s*<[^>]*>)?`")


def plain_text(text: str) -> str:
    """reST inline markup as plain text: ``code`` -> code, :class:`~a.B` -> B, :func:`f` -> f."""
    text = _ROLE.sub(lambda m: m.group(1).rsplit(".", 1)[-1] if m.group(0).count("~") else m.group(1), text)
    return text.replace("``", "")


# -- validate -------------------------------------------------------------------------------------


def run_validate(paths: Sequence[Path], output: ValidateFormat, *, with_env: bool = False) -> int:
    """Validate ``paths``, print the report in ``output`` format, return the exit status."""
    from .errors import ConfigErrorItem

    files = list(_toml_files(paths))
    if not files:
        print(f"no *.toml file under: {', '.join(map(str, paths))}", file=sys.stderr)
        return 2
    results: list[tuple[str, list[ConfigErrorItem]]] = []
    warnings: dict[str, list[ConfigErrorItem]] = {}
    for file in files:
        errors, warnings[str(file)] = _problems(file, with_env=with_env)
        results.append((str(file), errors))
    print(format_errors(results, output.value, warnings), end="")
    return 1 if any(problems for _, problems in results) else 0


def format_errors(results: Sequence[tuple[str, Sequence[Any]]], output: str,
                  warnings: Mapping[str, Sequence[Any]] | None = None) -> str:
    """The report of ``[(file, [ConfigErrorItem...])...]``: ``text``, ``json`` or ``github``;
    ``warnings`` (by file) never make a file invalid (json rows of warnings have ``"severity"``)."""
    warnings = warnings or {}
    if output == "json":
        rows: list[dict[str, Any]] = []
        for file, problems in results:
            rows += [{"file": item.file or file, "line": item.line, "path": item.path, "message": item.message}
                     for item in problems]
            rows += [{"file": item.file or file, "line": item.line, "path": item.path, "message": item.message,
                      "severity": "warning"} for item in warnings.get(file, ())]
        return json.dumps(rows, indent=2) + "\n"
    lines = []
    for file, problems in results:
        warned = warnings.get(file, ())
        if output == "github":
            for level, items in (("error", problems), ("warning", warned)):
                for item in items:
                    props = f"file={_gh_property(item.file or file)}"
                    if item.line is not None:
                        props += f",line={item.line}"
                    lines.append(f"::{level} {props},title=cachekit::{_gh_data(f'{item.path}: {item.message}')}")
        else:
            lines += [_text_line(file, item) for item in problems]
            lines += [_text_line(file, item, "warning: ") for item in warned]
            if not problems:
                lines.append(f"{file}: ok")
    return "".join(line + "\n" for line in lines)


def _text_line(file: str, item: Any, level: str = "") -> str:
    where = item.file or file
    if item.line is not None:
        where += f":{item.line}"
    return f"{where}: {level}{item.path or '<file>'}: {item.message}"


def _gh_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(value: str) -> str:
    return _gh_data(value).replace(":", "%3A").replace(",", "%2C")


def _toml_files(paths: Sequence[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(path.rglob("*.toml"))
        else:
            yield path  # a missing file is reported by the loader, as an invalid file


def _problems(file: Path, *, with_env: bool) -> tuple[list[Any], list[Any]]:
    """The errors and the warnings of one file."""
    from .config.checks import config_warnings
    from .config.loader import load_config
    from .errors import ConfigError, ConfigErrorItem

    try:
        config = load_config(file, environ=None if with_env else {})
    except ConfigError as exc:
        return exc.errors, []
    except Exception as exc:  # never a traceback: an unexpected failure is reported like an error
        message = f"internal error: {type(exc).__name__}: {exc}"
        return [ConfigErrorItem(path="", message=message, file=str(file))], []
    return [], config_warnings(config)


# -- show -----------------------------------------------------------------------------------------


def run_show(path: Path, output: ShowFormat) -> int:
    """Print the resolved config at ``path``; return the exit status."""
    from .config.loader import load_config
    from .errors import ConfigError

    try:
        config = load_config(path)
    except ConfigError as exc:
        print(format_errors([(str(path), exc.errors)], "text"), end="", file=sys.stderr)
        return 1
    except Exception as exc:  # never a traceback
        print(f"{path}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    data = config.model_dump(mode="json")  # SecretStr dumps as "**********"
    if output is ShowFormat.json:
        print(json.dumps(data, indent=2))
        return 0
    print(_as_toml(data, config.env_overrides), end="")
    return 0


def _as_toml(data: dict[str, Any], overrides: dict[str, str]) -> str:
    """The resolved config as TOML; a value set by the environment says so in a comment."""
    import tomlkit

    from .config.toml_lines import format_path

    def is_tables(value: Any) -> bool:
        return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)

    def fill(container: Any, values: dict[str, Any], path: tuple[str | int, ...]) -> None:
        leading = [k for k in ("name", "type", "strategy") if k in values]
        keys = [*leading, *(k for k in values if k not in leading)]
        for key in keys:  # plain values first: after a [table] header they would belong to it
            value = values[key]
            if value is None or isinstance(value, dict) or is_tables(value):
                continue
            container[key] = value
            variable = overrides.get(format_path((*path, key)))
            if variable is not None:
                container[key].comment(f"from {variable}")
        for key in keys:
            value = values[key]
            if isinstance(value, dict):
                table = tomlkit.table(is_super_table=all(isinstance(v, dict) for v in value.values()))
                fill(table, value, (*path, key))
                container[key] = table
            elif is_tables(value):
                array = tomlkit.aot()
                for index, element in enumerate(value):
                    table = tomlkit.table()
                    fill(table, element, (*path, key, index))
                    array.append(table)
                container[key] = array

    document = tomlkit.document()
    fill(document, data, ())
    return document.as_string()


# -- ping and serve -------------------------------------------------------------------------------
def run_ping(path: str | os.PathLike[str] | None = None, *, out: TextIO | None = None) -> int:
    """Connect to every provider the config declares and time a round trip.

    One line per provider: name, type, latency in ms or the error (no traceback). Returns 0 when
    every provider answered, 1 otherwise (or when the config is invalid).
    """
    from .errors import ConfigError
    from .facade import load

    out = out or sys.stdout
    try:
        runtime = load(path)
    except ConfigError as exc:
        print(exc, file=out)
        return 1
    failures = 0
    try:
        names = list(runtime.config.providers)
        width = max((len(n) for n in names), default=4)
        for name in names:
            kind = runtime.config.providers[name].type
            try:
                seconds = runtime.store(name).l2.driver.ping()
            except Exception as exc:  # a report, not a crash: show what failed and go on
                failures += 1
                print(f"{name:<{width}}  {kind:<10} error: {type(exc).__name__}: {exc}", file=out)
            else:
                print(f"{name:<{width}}  {kind:<10} ok {seconds * 1000:.2f} ms", file=out)
    finally:
        runtime.close()
    return 1 if failures else 0


def run_serve(path: str | os.PathLike[str] | None = None, host: str = "127.0.0.1", port: int = 8000, *,
              no_auth: bool = False) -> int:
    """Serve the HTTP API (``/api/cache/...``) of the config at ``path`` with uvicorn.

    Deny by default: ``[http] token`` (or ``CACHEKIT_HTTP__TOKEN``) is required; ``no_auth`` serves
    loopback clients without one, on a loopback ``host`` only, and says so on stderr. Returns 2 for
    ``no_auth`` on another host, 1 when no token is configured.
    """
    import warnings

    from .errors import CacheError, require
    from .facade import load
    from .http_policy import is_loopback

    if no_auth and not is_loopback(host):
        print(f"cachekit serve: --no-auth is for loopback addresses only (127.0.0.1, ::1, localhost), not "
              f"{host!r}; set [http] token (CACHEKIT_HTTP__TOKEN) instead", file=sys.stderr)
        return 2
    uvicorn: Any = require("uvicorn", "http")
    from .http import AnonymousAccessWarning, create_app

    runtime = load(path)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AnonymousAccessWarning)
            try:
                app = create_app(runtime, allow_anonymous=no_auth, host=host)
            except CacheError as exc:
                print(f"cachekit serve: {exc}", file=sys.stderr)
                return 1
        for warning in caught:
            print(f"cachekit serve: WARNING: {warning.message}", file=sys.stderr)
        uvicorn.run(app, host=host, port=port)
    finally:
        runtime.close()
    return 0


# -- operator commands: get, forget, flush, stats (the work is in cachekit.operate) ----------------


def _add_operator_commands(app: typer.Typer) -> None:
    import typer

    from . import operate

    config_arg = typer.Argument(..., metavar="CONFIG", help="a TOML config file")
    format_opt = typer.Option(ValidateFormat.text, "--format", "-f", help="output format")
    region_opt = typer.Option(None, "--region", "-r", help="a region (default: the default region)")

    @app.command()
    def get(path: Path = config_arg, key: str = typer.Argument(..., metavar="KEY", help="the cache key"),
            region: str | None = region_opt, output: ValidateFormat = format_opt) -> None:
        """Print the value cached under KEY: exit 0 found, 1 missing (or the store failed)."""
        raise typer.Exit(operate.get(path, key, region, output.value))

    @app.command()
    def forget(path: Path = config_arg, key: str = typer.Argument(..., metavar="KEY", help="the cache key"),
               region: str | None = region_opt, output: ValidateFormat = format_opt) -> None:
        """Remove KEY from a region: exit 0 (cached or not), 1 if the store failed."""
        raise typer.Exit(operate.forget(path, key, region, output.value))

    @app.command()
    def flush(path: Path = config_arg,
              region: str | None = typer.Argument(None, metavar="REGION",
                                                  help="one region (default: every declared region)"),
              yes: bool = typer.Option(False, "--yes", "-y", help="flush every region without asking"),
              output: ValidateFormat = format_opt) -> None:
        """Flush one region, or every declared region (asks first; --yes when stdin is not a terminal)."""
        ask = (lambda question: typer.confirm(question, err=True)) if sys.stdin.isatty() else None
        raise typer.Exit(operate.flush(path, region, output.value, yes=yes, confirm=ask))

    @app.command()
    def stats(path: Path = config_arg, output: ValidateFormat = format_opt) -> None:
        """Per region: provider, TTL, whether the store answers, and how many keys it holds."""
        raise typer.Exit(operate.stats(path, output.value))
