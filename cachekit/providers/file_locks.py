"""The file store's per-key locks, mixed into :class:`~cachekit.providers.file.FileDriver`: 64 stripes,
each a thread lock (the threads of one process) and ``fcntl.flock`` on ``<dir>/.locks/<nn>.lock`` (the
processes of one machine), chosen by the key's digest. The kernel releases a dead process's locks; the
lock files are reopened after ``fork`` (a lock on an inherited descriptor would be shared with the
parent). Without ``fcntl`` (Windows) only the thread locks are taken.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Iterator

from ..errors import ProviderError
from .file_format import FILE_MODE, close_fds, mkdir

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_STRIPES", "StripeLocks"]

LOCK_STRIPES = 64


class StripeLocks:
    """The stripe locks of one driver directory (``_init_locks(root)`` sets them up)."""

    def _init_locks(self, root: str) -> None:
        self._lock_dir = os.path.join(root, ".locks")
        self._lock_fds: dict[int, int] = {}
        self._thread_locks = [threading.Lock() for _ in range(LOCK_STRIPES)]
        self._fds_guard = threading.Lock()
        self._pid = os.getpid()
        self._finalizer = weakref.finalize(self, close_fds, self._lock_fds)

    def close(self) -> None:
        """Close the lock files; the driver reopens them if used again. Safe to call twice."""
        with self._fds_guard:
            close_fds(self._lock_fds)

    @contextlib.contextmanager
    def _locked(self, stripe: int) -> Iterator[None]:
        """Hold the key's stripe lock: a thread lock, then ``flock`` on the stripe's lock file."""
        fd = self._acquire(stripe)
        try:
            yield
        finally:
            self._release(stripe, fd)

    def _acquire(self, stripe: int) -> int | None:
        """Take the stripe lock (:meth:`_locked` without the context manager, for ``put``); return
        the lock file's descriptor for :meth:`_release` (``None`` without ``fcntl``)."""
        if self._pid != os.getpid():
            self._after_fork()
        lock = self._thread_locks[stripe]
        lock.acquire()
        if fcntl is None:  # pragma: no cover - Windows
            return None
        try:
            fd = self._lock_fd(stripe)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            lock.release()
            raise
        return fd

    def _release(self, stripe: int, fd: int | None) -> None:
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._thread_locks[stripe].release()

    def _lock_fd(self, stripe: int) -> int:
        fd = self._lock_fds.get(stripe)
        if fd is not None:
            return fd
        with self._fds_guard:
            fd = self._lock_fds.get(stripe)
            if fd is None:
                path = os.path.join(self._lock_dir, f"{stripe:02d}.lock")
                try:
                    try:
                        fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
                    except FileNotFoundError:
                        mkdir(self._lock_dir)
                        fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
                except OSError as exc:
                    raise ProviderError(f"file cache: cannot open lock file {path!r}: {exc}") from exc
                self._lock_fds[stripe] = fd
            return fd

    def _after_fork(self) -> None:
        # Inherited descriptors share the parent's open file description, hence its flock: drop them.
        # Closing them in the child does not release the parent's locks.
        self._fds_guard = threading.Lock()
        self._thread_locks = [threading.Lock() for _ in range(LOCK_STRIPES)]
        close_fds(self._lock_fds)
        self._pid = os.getpid()
