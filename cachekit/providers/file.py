"""A directory of files, shareable by the processes of one machine. The layout and format of the entry
files: :mod:`cachekit.providers.file_format`; the ``max_size`` / ``max_bytes`` bounds and their sweep:
:mod:`cachekit.providers.file_sweep`.

Concurrency
-----------
- Readers never use half a write, and take no lock. A new entry is written under a temporary name in the
  same directory, then moved into place with :func:`os.replace`. An existing entry is rewritten in place
  under the key's lock (:func:`~cachekit.providers.file_format.overwrite`: no directory operation, 10 to
  50 times cheaper than a new file): a reader that reads it meanwhile sees a length or CRC-32 that does
  not match, and reads it again under the lock. (No fsync: a cache may lose its last writes in a power
  cut.)
- Every change to a key's file (put, forget, add, increment, removing an expired or corrupt file) happens
  under an exclusive lock on one of 64 lock files in ``<dir>/.locks/`` (``fcntl.flock``, chosen by the
  key's digest), plus a thread lock for the threads of one process. So ``increment`` and ``add`` are
  atomic across processes, and a reader that finds an expired file removes it only if it is still the
  file it read. Locks are released by the kernel when a process dies. The lock files are reopened after
  ``fork`` (a lock on an inherited descriptor would be shared with the parent).
- A corrupt or truncated file is removed, and the operation that found it raises
  :class:`~cachekit.serializers.SerializationError` (the runtime counts it as an error and a miss).
- Leftover temporary files of a crashed writer (``.<name>.<pid>.<random>.tmp``) are removed when the
  driver opens its directory and by :meth:`FileDriver.flush`, once they are older than
  ``stale_temp_after`` seconds (default 60; by modification time): a writer still writing keeps its file.
- ``flock`` needs a local filesystem (not NFS). Without ``fcntl`` (Windows) the locks only cover the
  threads of one process.

A shared, writable directory lets anyone who can write to it plant a pickle payload: configure a
``signing_key`` (or use ``json``) when the directory is not private. The driver creates its directory mode
``0700`` (a directory that already exists keeps its mode) and files mode ``0600``.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import threading
from collections.abc import Iterable, Iterator
from hashlib import sha256
from pathlib import Path
from typing import Any

from ..clock import Clock, SystemClock
from ..errors import ProviderError, ValueTooLargeError
from ..serializers import SerializationError, Serializer, provider_serializer
from .base import MISSING, CacheDriver
from .file_format import (
    DIR_MODE,
    ENTRY_NAME,
    FANOUT_NAME,
    HEADER,
    SUFFIX,
    listdir,
    overwrite,
    pack,
    read_file,
    read_key,
    touch,
    unpack,
    write_temp,
)
from .file_locks import LOCK_STRIPES, StripeLocks
from .file_sweep import FileBounds

__all__ = ["STALE_TEMP_AFTER", "FileDriver"]

_SEP = os.sep
#: seconds after which a temporary file is a crashed writer's leftover (a live writer's is younger)
STALE_TEMP_AFTER = 60.0
_SLOT_CACHE = 4096  # keys whose stripe, path and UTF-8 bytes are remembered (a digest per call saved)
_INF = float("inf")

# (lock stripe index, path of the entry file, UTF-8 key)
_Slot = tuple[int, str, bytes]


class FileDriver(FileBounds, StripeLocks, CacheDriver):
    """Store serialized entries as files under ``path``, safe to share between processes.

    >>> import tempfile
    >>> from cachekit.clock import FakeClock
    >>> clock = FakeClock(1000.0)
    >>> d = FileDriver(tempfile.mkdtemp(), clock=clock)
    >>> d.put("app:user:1", {"name": "Ada"}, ttl=60)
    True
    >>> d.get("app:user:1")
    {'name': 'Ada'}
    >>> d.increment("app:hits", 5), d.increment("app:hits")
    (5, 6)
    >>> sorted(d.scan("app:*"))
    ['app:hits', 'app:user:1']
    >>> clock.advance(61)
    >>> d.get("app:user:1")
    MISSING
    >>> d.close()

    ``serializer`` defaults to pickle (signed with ``CACHEKIT_SIGNING_KEY`` when set); ``clock``
    (default :class:`~cachekit.clock.SystemClock`) gives the absolute expiry written in each file, so
    processes sharing a directory should all use wall time.
    ``max_size`` (entries) and ``max_bytes`` bound the directory: past either, the entries accessed
    longest ago are removed (see the module's docstring). Temporary files older than
    ``stale_temp_after`` seconds (a killed writer's) are removed on open and by :meth:`flush`.
    """

    can_scan = True

    def __init__(
        self, path: str | Path, serializer: Serializer | None = None, clock: Clock | None = None,
        max_value_size: int | None = None, max_size: int | None = None, max_bytes: int | None = None,
        stale_temp_after: float = STALE_TEMP_AFTER,
    ) -> None:
        #: the largest encoded value written, in bytes (``None``: no limit); larger ones raise
        #: :class:`ValueTooLargeError` and leave the previous value in place
        self.max_value_size = max_value_size
        #: The directory this driver owns.
        self.path = Path(path).expanduser()
        self.serializer: Serializer = serializer if serializer is not None else provider_serializer("file")
        self.clock: Clock = clock if clock is not None else SystemClock()
        try:
            if not self.path.is_dir():
                # only its owner may read, plant or list entries (pickle runs code); an existing
                # directory keeps its mode
                self.path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
                os.chmod(self.path, DIR_MODE)  # exactly 0700, whatever the umask
        except OSError as exc:
            raise ProviderError(f"file cache: cannot create directory {str(self.path)!r}: {exc}") from exc
        self._root = str(self.path)
        self._slots: dict[str, _Slot] = {}
        self._init_locks(self._root)
        #: the most entry files kept (``None``: no bound)
        self.max_size = max_size
        #: the most bytes of entry files kept (``None``: no bound)
        self.max_bytes = max_bytes
        #: age, in seconds, from which a temporary file counts as a dead writer's leftover
        self.stale_temp_after = stale_temp_after
        self._usage: list[int] | None = None  # [entries, bytes] as this process estimates them
        self._sweep_guard = threading.Lock()
        self.reclaim_temp_files()

    @property
    def signed(self) -> bool:
        """``True`` when the serializer signs payloads and rejects unsigned ones."""
        return self.serializer.signed

    def __repr__(self) -> str:
        return f"FileDriver({self._root!r}, serializer={self.serializer!r})"

    # -- required -------------------------------------------------------------------------
    def get(self, key: str) -> Any:
        """Return the object stored under ``key``, or :data:`MISSING` (absent or expired).

        A corrupt, truncated or undecodable file raises
        :class:`~cachekit.serializers.SerializationError` and is removed.
        """
        slot = self._slot(key)
        found = self._read_live(key, slot)
        if found is None:
            return MISSING
        data, payload = found
        try:
            value = self.serializer.loads(payload)
        except SerializationError:
            self._discard(slot, data)
            raise
        if self.max_size is not None or self.max_bytes is not None:
            touch(slot[1])
        return value

    def put(self, key: str, value: Any, ttl: float | None = None) -> bool:
        """Write ``value`` under ``key`` atomically; ``ttl`` seconds from the clock (``None``: forever).

        A ``ttl`` of zero or less removes the key, as storing an already expired entry would.
        """
        slot = self._slot(key)
        if ttl is not None and ttl <= 0:
            self._unlink(slot)
            return True
        payload = self._encode(value)
        expires_at = _INF if ttl is None else self.clock.now() + ttl
        blob = pack(slot[2], expires_at, payload)
        fd = self._acquire(slot[0])
        try:  # an existing entry is rewritten in place (file_format.overwrite), a new one below
            before = overwrite(slot[1], blob)
        finally:
            self._release(slot[0], fd)
        if before is not None:
            self._wrote(self._bounded(before), len(blob))
            return True
        temp = write_temp(slot[1], blob)
        try:
            fd = self._acquire(slot[0])
            try:
                before = self._size_before(slot[1])
                os.replace(temp, slot[1])
            finally:
                self._release(slot[0], fd)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            if isinstance(exc, OSError):
                raise ProviderError(f"file cache: cannot write {key!r}: {exc}") from exc
            raise
        self._wrote(before, len(blob))
        return True

    def _encode(self, value: Any) -> bytes:
        payload = self.serializer.dumps(value)
        limit = self.max_value_size
        if limit is not None and len(payload) > limit:
            raise ValueTooLargeError(f"file cache: encoded value is {len(payload)} bytes; max_value_size is {limit}; "
                                     "nothing was stored (the previous value, if any, is kept)")
        return payload

    def forget(self, key: str) -> bool:
        """Remove ``key``; ``True`` if a file was there (even an expired one)."""
        return self._unlink(self._slot(key))

    def flush(self) -> bool:
        """Remove every entry file of this driver, and the temporary files of dead writers.

        Only files named like entries (``<2 hex>/<64 hex>.ck``) and temporary files older than
        ``stale_temp_after`` are removed; anything else in the directory, the sub-directories
        themselves and the lock files are left alone (removing a sub-directory would race with a
        writer about to create a file in it).
        """
        for fanout in self._fanout_dirs():
            for name in listdir(fanout):
                if ENTRY_NAME.fullmatch(name):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(fanout, name))
        self.reclaim_temp_files()
        self._usage = None
        return True

    # -- optional -------------------------------------------------------------------------
    def has(self, key: str) -> bool:
        """``True`` when a live entry exists (the payload is checked by CRC, not decoded)."""
        return self._read_live(key, self._slot(key)) is not None

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """``{key: object or MISSING}``; one undecodable file raises for the whole call."""
        get = self.get
        return {key: get(key) for key in keys}

    def delete_many(self, keys: Iterable[str]) -> int:
        """Remove ``keys``; return how many files were there."""
        forget = self.forget
        return sum(1 for key in keys if forget(key))

    def add(self, key: str, value: Any, ttl: float | None = None) -> bool:
        """Store only if no live entry exists; atomic across processes (under the key's lock)."""
        slot = self._slot(key)
        payload = self._encode(value)
        with self._locked(slot[0]):
            if self._read_live(key, slot, locked=True) is not None:
                return False
            if ttl is not None and ttl <= 0:
                return True
            expires_at = _INF if ttl is None else self.clock() + ttl
            self._replace(slot[1], pack(slot[2], expires_at, payload))
        return True

    def release_lock(self, key: str, owner: str) -> bool:
        """Compare-and-delete under the key's cross-process lock (``acquire_lock`` is ``add``)."""
        slot = self._slot(key)
        with self._locked(slot[0]):
            live = self._read_live(key, slot, locked=True)
            value = None if live is None else self.serializer.loads(live[1])
            if not (type(value) is tuple and value[0] == owner):  # (owner, deadline): see CacheDriver
                return False
            return self._unlink_locked(slot[1])

    def increment(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        """Add ``amount`` to the integer under ``key`` (absent: 0); atomic across processes.

        With ``ttl`` the counter expires ``ttl`` seconds from now; with ``None`` it keeps the expiry
        it had. Raises :class:`~cachekit.errors.ProviderError` when the key holds something other
        than an integer.
        """
        slot = self._slot(key)
        with self._locked(slot[0]):
            found = self._read_live(key, slot, locked=True)
            expires_at = _INF
            current = 0
            if found is not None:
                data, payload = found
                try:
                    value = self.serializer.loads(payload)
                except SerializationError:
                    self._unlink_locked(slot[1])
                    raise
                if type(value) is not int:
                    raise ProviderError(f"file cache: {key!r} holds {type(value).__name__}, not an integer")
                current = value
                expires_at = HEADER.unpack_from(data)[2]
            new = current + amount
            if ttl is not None:
                expires_at = self.clock() + ttl
            self._replace(slot[1], pack(slot[2], expires_at, self.serializer.dumps(new)))
        return new

    def extend_ttl(self, keys: Iterable[str], ttl: float | None) -> bool:
        """Push each live key's expiry to at least ``ttl`` seconds from now (``None``: never), under
        the key's lock; the payload is kept as it is."""
        for key in keys:
            slot = self._slot(key)
            with self._locked(slot[0]):
                found = self._read_live(key, slot, locked=True)
                if found is None:
                    continue
                data, payload = found
                expires_at = HEADER.unpack_from(data)[2]
                wanted = _INF if ttl is None else self.clock() + ttl
                if expires_at < wanted:
                    self._replace(slot[1], pack(slot[2], wanted, payload))
        return True

    def scan(self, pattern: str) -> Iterator[str]:
        """Yield the live keys matching the glob ``pattern`` (``fnmatch``, case-sensitive).

        Reads only the header of each file; unreadable or corrupt files are skipped.
        """
        now = self.clock()
        for fanout in self._fanout_dirs():
            for name in listdir(fanout):
                if not ENTRY_NAME.fullmatch(name):
                    continue
                key = read_key(os.path.join(fanout, name), now)
                if key is not None and fnmatch.fnmatchcase(key, pattern):
                    yield key

    # -- paths and files ------------------------------------------------------------------
    def _slot(self, key: str) -> _Slot:
        slot = self._slots.get(key)
        if slot is not None:
            return slot
        raw = key.encode("utf-8", "surrogatepass")
        digest = sha256(raw).hexdigest()
        stripe = int(digest[:2], 16) % LOCK_STRIPES
        slot = stripe, f"{self._root}{_SEP}{digest[:2]}{_SEP}{digest}{SUFFIX}", raw
        slots = self._slots
        if len(slots) >= _SLOT_CACHE:  # a bounded memo of the digests of recent keys
            slots.clear()
        slots[key] = slot
        return slot

    def _read_live(self, key: str, slot: _Slot, *, locked: bool = False) -> tuple[bytes, bytes] | None:
        """Return ``(file bytes, payload)`` of the live entry for ``key``, or ``None``.

        Removes an expired file; removes a corrupt one and raises SerializationError. Without the lock,
        a file that fails its checks is read again under it (a writer may have been rewriting it).
        """
        path = slot[1]
        try:
            data = read_file(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ProviderError(f"file cache: cannot read {key!r}: {exc}") from exc
        try:
            stored_key, expires_at, payload = unpack(data)
        except SerializationError:
            if not locked:  # maybe read while a writer rewrote it in place: read it again under the lock
                with self._locked(slot[0]):
                    return self._read_live(key, slot, locked=True)
            self._unlink_locked(path)
            raise
        if expires_at <= self.clock.now():
            if locked:
                self._unlink_locked(path)
            else:
                self._discard(slot, data)
            return None
        if stored_key != slot[2]:
            return None  # another key with the same digest: a miss, overwritten by the next put
        return data, payload

    def _discard(self, slot: _Slot, seen: bytes) -> None:
        """Remove the file at ``slot`` if it still holds ``seen`` (best effort)."""
        try:
            with self._locked(slot[0]):
                with open(slot[1], "rb") as f:
                    if f.read() != seen:
                        return  # replaced since we read it: not ours to remove
                os.unlink(slot[1])
        except OSError:
            pass

    def _unlink(self, slot: _Slot) -> bool:
        with self._locked(slot[0]):
            return self._unlink_locked(slot[1])

    @staticmethod
    def _unlink_locked(path: str) -> bool:
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise ProviderError(f"file cache: cannot remove {path!r}: {exc}") from exc
        return True

    def _replace(self, path: str, blob: bytes) -> None:
        """Write ``blob`` to ``path`` (in place when it exists, see :func:`overwrite`); the caller holds
        the key's lock."""
        before = overwrite(path, blob)
        if before is not None:
            self._wrote(self._bounded(before), len(blob))
            return
        temp = write_temp(path, blob)
        try:
            before = self._size_before(path)
            os.replace(temp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise ProviderError(f"file cache: cannot write {path!r}: {exc}") from exc
        self._wrote(before, len(blob))

    def _fanout_dirs(self) -> list[str]:
        return [
            os.path.join(self._root, name) for name in listdir(self._root) if FANOUT_NAME.fullmatch(name)
        ]
