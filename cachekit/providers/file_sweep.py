"""The file store's bounds and its clean-up of crash leftovers, mixed into
:class:`~cachekit.providers.file.FileDriver` (they use only the driver's own names).

Bounds
------
``max_size`` (entry files) and ``max_bytes`` (their total size) are optional. Each process keeps an
estimate of both (a count of the directory when first needed, then its own writes); when a write takes
the estimate over a bound, a sweep lists the directory, and if it really is over, removes the entries
accessed longest ago until it is at 90 % of each bound. Access time is the file's modification time:
a write sets it, and a read of a bounded store touches it (``os.utime``) when it is more than a second
old, so it does not depend on ``atime`` (often off: ``noatime``/``relatime`` mounts). Writes of other
processes are seen at the next sweep, so the directory may go over a bound by what they wrote since.
"""

from __future__ import annotations

import contextlib
import os
import time

from ..errors import ProviderError
from .file_format import ENTRY_NAME, TEMP_NAME, listdir

_SWEEP_TO = 0.9  # a sweep removes entries until the store is at 90 % of each bound


class FileBounds:
    """``max_size`` / ``max_bytes`` accounting and the oldest-access sweep; stale temporary files."""

    def reclaim_temp_files(self) -> int:
        """Remove the temporary files older than ``stale_temp_after`` seconds; return how many.

        A writer killed between writing its temporary file and moving it into place leaves the file
        behind. The age is by modification time against the wall clock: a writer still writing has
        touched its file within the last moment, so it keeps it. Errors are ignored (best effort).
        """
        cutoff = time.time() - self.stale_temp_after
        removed = 0
        try:
            fanouts = self._fanout_dirs()
        except ProviderError:
            return 0
        for fanout in fanouts:
            try:
                names = listdir(fanout)
            except ProviderError:
                continue
            for name in names:
                if not (name.startswith(".") and TEMP_NAME.fullmatch(name)):
                    continue
                path = os.path.join(fanout, name)
                try:
                    if os.lstat(path).st_mtime < cutoff:
                        os.unlink(path)
                        removed += 1
                except OSError:
                    pass
        return removed

    # -- bounds ---------------------------------------------------------------------------
    def _size_before(self, path: str) -> int | None:
        """The size of the file at ``path`` before a write replaces it (``-1``: none), when bounded."""
        if self.max_size is None and self.max_bytes is None:
            return None
        try:
            return os.stat(path).st_size
        except OSError:
            return -1

    def _bounded(self, before: int) -> int | None:
        """``before`` (a size :meth:`_wrote` accounts) when the store is bounded, else ``None``."""
        return None if self.max_size is None and self.max_bytes is None else before

    def _wrote(self, before: int | None, size: int) -> None:
        """Account a write of ``size`` bytes that replaced a file of ``before`` bytes; sweep when over."""
        if before is None:
            return
        usage = self._usage
        if usage is None:
            self.sweep()
            return
        if before < 0:
            usage[0] += 1
            usage[1] += size
        else:
            usage[1] += size - before
        if self._over(usage[0], usage[1], 1.0):
            self.sweep()

    def _over(self, count: int, size: int, fraction: float) -> bool:
        return (self.max_size is not None and count > self.max_size * fraction) or \
            (self.max_bytes is not None and size > self.max_bytes * fraction)

    def sweep(self) -> int:
        """List the directory and, when it is over ``max_size`` or ``max_bytes``, remove the entries
        accessed longest ago until it is at 90 % of each bound; return how many were removed.

        One sweep at a time per driver (a write that finds one running does not wait for it).
        """
        if not self._sweep_guard.acquire(blocking=False):
            return 0
        try:
            entries: list[tuple[float, int, str]] = []
            for fanout in self._fanout_dirs():
                try:
                    scanned = list(os.scandir(fanout))
                except OSError:
                    continue
                for item in scanned:
                    if not ENTRY_NAME.fullmatch(item.name):
                        continue
                    try:
                        st = item.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    entries.append((st.st_mtime, st.st_size, item.path))
            count = len(entries)
            total = sum(size for _mtime, size, _path in entries)
            removed = 0
            if self._over(count, total, 1.0):
                entries.sort()
                for _mtime, size, path in entries:
                    if not self._over(count, total, _SWEEP_TO):
                        break
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
                        removed += 1
                    count -= 1
                    total -= size
            self._usage = [count, total]
            return removed
        finally:
            self._sweep_guard.release()
