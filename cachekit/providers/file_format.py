"""The file store's entries on disk: the format of an entry file and the file operations the driver
is built from (write a temporary file, list, create directories), none of which take a lock.

Layout
------
The driver owns one directory. A key is stored in ``<dir>/<h[:2]>/<h>.ck`` where ``h`` is the
SHA-256 hex digest of the UTF-8 key, so any key (``/``, ``..``, unicode, kilobytes long) maps to a
safe, fixed-length name, spread over at most 256 sub-directories. Each file holds::

    b"CKF\\x01" | crc32 (4) | expires_at (float64) | key length (4) | payload length (8) | key | payload

all integers big-endian. The key is stored so :meth:`FileDriver.scan` can enumerate real keys and a
(theoretical) digest collision reads as a miss; ``expires_at`` is an absolute timestamp from the
driver's clock (``inf``: no expiry); the CRC-32 covers everything after it, so a corrupt or truncated
file is detected even when its payload would still unpickle. The payload is what the
:class:`~cachekit.serializers.Serializer` produced.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import secrets
import stat
import struct
import time
import zlib

from ..errors import ProviderError
from ..serializers import SerializationError

MAGIC = b"CKF\x01"
HEADER = struct.Struct(">4sIdIQ")  # magic, crc32 of what follows it, expires_at, key len, payload len
CRC_FROM = 8  # the CRC covers bytes [8:]: expires_at, lengths, key and payload
SUFFIX = ".ck"
ENTRY_NAME = re.compile(r"[0-9a-f]{64}\.ck")
TEMP_NAME = re.compile(r"\.[0-9a-f]{64}\.ck\.\d+\.[0-9a-f]+\.tmp")
FANOUT_NAME = re.compile(r"[0-9a-f]{2}")
FILE_MODE = 0o600
DIR_MODE = 0o700
TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
# an existing entry is rewritten through this (never a symlink: O_NOFOLLOW; a planted hard link is refused
# by the link count, see overwrite()). O_NONBLOCK (no effect on a regular file): opening a planted FIFO
# would otherwise block until a process opens its other end
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
OVERWRITE_FLAGS = (os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
                   | _NONBLOCK)
READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0) | _NONBLOCK
READ_CHUNK = 65536
_TEMP_TAG = secrets.token_hex(4)
_TEMP_SEQ = itertools.count()
TOUCH_AFTER = 1.0  # a read touches an entry's mtime when it is older than this (bounded stores only)


def pack(kb: bytes, expires_at: float, payload: bytes) -> bytes:
    body = struct.pack(">dIQ", expires_at, len(kb), len(payload)) + kb + payload
    return MAGIC + struct.pack(">I", zlib.crc32(body)) + body


def unpack(data: bytes) -> tuple[bytes, float, bytes]:
    """Return ``(key bytes, expires_at, payload)``; raise SerializationError for a bad file."""
    size = HEADER.size
    if len(data) < size:
        raise SerializationError(f"file cache: truncated entry ({len(data)} bytes)")
    magic, crc, expires_at, key_len, payload_len = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise SerializationError(f"file cache: not an entry file (magic {magic!r})")
    if len(data) != size + key_len + payload_len:
        raise SerializationError(
            f"file cache: entry is {len(data)} bytes, header says {size + key_len + payload_len}"
        )
    if zlib.crc32(memoryview(data)[CRC_FROM:]) != crc:
        raise SerializationError("file cache: entry checksum mismatch (corrupt file)")
    return data[size : size + key_len], expires_at, data[size + key_len :]


def read_key(path: str, now: float) -> str | None:
    """The key of a live entry file from its header only; ``None`` if gone, expired or unreadable."""
    size = HEADER.size
    try:
        with open(path, "rb") as f:
            header = f.read(size)
            if len(header) < size:
                return None
            magic, _crc, expires_at, key_len, _payload_len = HEADER.unpack(header)
            if magic != MAGIC or expires_at <= now:
                return None
            raw = f.read(key_len)
    except OSError:
        return None
    if len(raw) != key_len:
        return None
    try:
        return raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return None


def touch(path: str) -> None:
    """Mark an entry as just accessed (its mtime), at most once a second; best effort."""
    try:
        if os.stat(path).st_mtime < time.time() - TOUCH_AFTER:
            os.utime(path)
    except OSError:
        pass


def listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise ProviderError(f"file cache: cannot list {path!r}: {exc}") from exc


def mkdir(path: str) -> None:
    try:
        os.makedirs(path, mode=DIR_MODE, exist_ok=True)
    except OSError as exc:
        raise ProviderError(f"file cache: cannot create directory {path!r}: {exc}") from exc


def close_fds(fds: dict[int, int]) -> None:
    while fds:
        _stripe, fd = fds.popitem()
        with contextlib.suppress(OSError):
            os.close(fd)


def read_file(path: str) -> bytes:
    """The whole content of the file at ``path`` (``os.read`` on a descriptor: no buffered file object).

    A file shorter than ``READ_CHUNK`` is read in one call; a longer one to its end. A corrupt file
    (longer or shorter than its header says) reads as it is, and :func:`unpack` rejects it."""
    fd = os.open(path, READ_FLAGS)
    try:
        data = os.read(fd, READ_CHUNK)
        if len(data) < READ_CHUNK:
            return data  # all of it: a regular file's read is short only at its end
        chunks = [data]
        while data:
            data = os.read(fd, READ_CHUNK)
            chunks.append(data)
        return b"".join(chunks)
    finally:
        os.close(fd)


def overwrite(path: str, blob: bytes) -> int | None:
    """Rewrite the entry file at ``path`` in place with ``blob``; return its size before, or ``None`` when
    there is no plain file to rewrite (absent, a symlink, a special file, or a file with another name
    too), for the caller to write a new one with :func:`write_temp` and ``os.replace``.

    The caller holds the key's lock, so writers never overlap. A reader takes no lock and may read while
    the bytes change: it then sees a length or a CRC-32 that does not match (see :func:`unpack`) and
    reads again under the key's lock. Rewriting in place costs no directory operation: creating and
    renaming a file per write cost 10 to 50 times more on ext4. A write that fails midway (a full disk)
    removes the file, so no half-written entry is left behind.
    """
    try:
        fd = os.open(path, OVERWRITE_FLAGS)
    except OSError:  # absent, a symlink (ELOOP), unreadable: the caller writes a new file
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            return None
        try:
            view = memoryview(blob)
            done = 0
            while done < len(view):
                done += os.pwrite(fd, view[done:], done)
            if info.st_size > done:
                os.ftruncate(fd, done)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise ProviderError(f"file cache: cannot write {path!r}: {exc}") from exc
        return info.st_size
    finally:
        os.close(fd)


def write_temp(path: str, blob: bytes) -> str:
    """Write ``blob`` to a new temporary file next to ``path``; return its name."""
    directory, _sep, name = path.rpartition(os.sep)
    for _attempt in range(3):
        # A random part drawn once per process and a counter: pids alone can collide between
        # containers sharing the directory (and O_EXCL refuses a name in use: the next is tried).
        temp = f"{directory}{os.sep}.{name}.{os.getpid()}.{_TEMP_TAG}{next(_TEMP_SEQ):x}.tmp"
        try:
            fd = os.open(temp, TEMP_FLAGS, FILE_MODE)
        except FileNotFoundError:
            mkdir(directory)
            continue
        except FileExistsError:
            continue
        except OSError as exc:
            raise ProviderError(f"file cache: cannot create {temp!r}: {exc}") from exc
        try:
            try:
                view = memoryview(blob)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            if isinstance(exc, OSError):
                raise ProviderError(f"file cache: cannot write {temp!r}: {exc}") from exc
            raise
        return temp
    raise ProviderError(f"file cache: cannot create a temporary file in {directory!r}")
