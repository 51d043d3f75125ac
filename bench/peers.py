"""Import the libraries cachekit is compared with, installing a missing one with pip once.

``make bench`` installs the ``bench`` extra; this is the fallback for a venv without it. Set
``CACHEKIT_BENCH_NO_INSTALL=1`` to never call pip. A peer that still cannot be imported is reported
as "n/a" by the scenarios; nothing here raises.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from types import ModuleType

__all__ = ["PEERS", "ensure_peers", "peer", "peer_versions"]

#: import name -> pip requirement
PEERS: dict[str, str] = {
    "cachetools": "cachetools",
    "dogpile.cache": "dogpile.cache",
    "cashews": "cashews",
    "aiocache": "aiocache",
    "theine": "theine",  # W-TinyLFU in Rust: the Zipf rows and the hit-ratio section (bench/hit_ratio.py)
    "cachebox": "cachebox",  # a Rust TTLCache: the Zipf memory rows
    "diskcache": "diskcache",  # SQLite + files: the Zipf file rows
    "numpy": "numpy",  # builds the Zipf sequences and the hit-ratio traces
}

_failures: dict[str, str] = {}


def _import(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except Exception as exc:
        _failures[name] = f"{type(exc).__name__}: {exc}"
        return None


def ensure_peers(log: bool = True) -> None:
    """Install (with this interpreter's pip) every peer that does not import; failures are remembered."""
    missing = [req for name, req in PEERS.items() if _import(name) is None]
    if not missing or os.environ.get("CACHEKIT_BENCH_NO_INSTALL"):
        return
    if log:
        print(f"installing missing peers: {' '.join(missing)}", flush=True)
    try:
        done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing],
                              capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        for req in missing:
            _failures[req] = f"pip install failed: {exc}"
        return
    if done.returncode != 0 and log:
        print(f"pip could not install all peers: {done.stderr.strip()[-300:]}", flush=True)
    importlib.invalidate_caches()
    for name in PEERS:
        if _import(name) is not None:
            _failures.pop(name, None)


def peer(name: str) -> tuple[ModuleType | None, str]:
    """``(module, "")`` or ``(None, why it is unavailable)``."""
    module = _import(name)
    if module is not None:
        return module, ""
    return None, f"not installed ({_failures.get(name, 'import failed')})"


def peer_versions() -> dict[str, str]:
    """Installed versions of the peers and client libraries (``"n/a"`` when missing)."""
    from importlib import metadata

    out = {}
    for dist in ["cachekit", *PEERS.values(), "redis", "hiredis", "pymemcache"]:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "n/a"
    return out
