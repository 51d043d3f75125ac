"""Write a live config back to its TOML file, keeping comments and formatting.

The config keeps the tomlkit document it was parsed from and a snapshot of its values as loaded.
:func:`save_config` compares the live values with that snapshot and edits the document only where they
differ: a changed value replaces the old one (its trailing comment kept), a new provider, region or rule
is appended as a table, a removed one is deleted. Lines that were not changed come out byte for byte.

Values set by ``CACHEKIT_...`` variables and left unchanged are not written, and a secret that came
from the environment is never written. A config built without a file is written as a fresh document
of its non-default values. The document surgery itself (which key changes, where a new table goes,
which comments follow a deleted one) is :mod:`cachekit.config.toml_edit`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import tomlkit

from ..errors import ConfigError, ConfigErrorItem
from .checks import _data_model, config_data, validate_config
from .models import CacheConfig
from .toml_edit import DocumentWriter

__all__ = ["save_config"]



def save_config(config: CacheConfig, path: str | os.PathLike[str] | None = None) -> Path:
    """Write ``config`` to ``path`` (default: the file it was loaded from) and return the path.

    The config is validated first: an invalid config raises :class:`~cachekit.errors.ConfigError` and
    writes nothing. The write is atomic (a temporary file in the same directory, then
    :func:`os.replace`). Afterwards ``config.source_path`` is the written file.
    """
    target = Path(path) if path is not None else config.source_path
    if target is None:
        message = "this config has no file: pass a path to save it"
        raise ConfigError([ConfigErrorItem(path="", message=message)])
    problems = validate_config(config)
    if problems:
        raise ConfigError(problems, file=str(target))

    document = config.document
    if document is None:
        document = tomlkit.document()
        baseline = config_data(_data_model()())
    else:
        baseline = config._baseline if config._baseline is not None else config_data(config)
    original = document.as_string()
    writer = DocumentWriter(document, config._env)
    writer.sync_model(document, config, baseline, ())
    text = document.as_string()
    if text.endswith("\n\n") and not original.endswith("\n\n"):
        text = text.rstrip("\n") + "\n"
    _write_atomic(target, text)

    config._document = document
    config._baseline = config_data(config)
    config._path = target.resolve()
    config._file = str(target)
    return target


def _write_atomic(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = target.stat().st_mode & 0o7777 if target.exists() else None
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
