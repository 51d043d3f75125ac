"""Turn cached objects into bytes for shared stores (file, redis, memcached) and back.

Wire format
-----------
Every payload but one kind starts with a three-byte header::

    0xCA | format | flags [| 32-byte HMAC-SHA256 tag] | body

``format`` is ``p`` (pickle), ``J`` (json) or ``M`` (msgpack), so a reader knows what it reads whatever
it is configured to write (``j`` and ``m``, untagged json and msgpack written by older versions, are
still read). ``flags`` bit 0 means the body is zlib-compressed, bit 1 that a tag follows
the header. The tag covers the header and the body, and is checked before anything is decompressed or
decoded.

The exception is a plain ``int`` (exactly ``int``, not ``bool`` nor an ``IntEnum``): it is written as
decimal ASCII with no header (``b"42"``, ``b"-7"``), the form Redis ``INCRBY`` and memcached ``incr``
work on, and :meth:`Serializer.loads` reads any payload matching ``-?[0-9]+`` back as an ``int``
(trailing spaces are allowed: memcached may pad a number that a ``decr`` made shorter). ``0xCA`` is not
an ASCII digit nor ``-``, so a header can never be mistaken for a number.

Formats
-------
- ``pickle`` (highest protocol): any picklable object, exact round trip. Unpickling runs code: the
  default of network stores only when payloads are signed.
- ``json`` (the safe default of Redis and Memcached): JSON types plus the *tagged types*
  (:data:`TAGGED_TYPES`: tuple, set, frozenset, bytes, datetime, date, time, timedelta, Decimal, UUID)
  and dicts with keys of any of these types, nested at will, all returned exactly (a tagged value is a
  one-key object such as ``{"~t": [1, 2]}``; a dict that could be mistaken for one is written as
  ``{"~m": [[key, value], ...]}``). Anything else (a dataclass, an ``IntEnum``, a subclass of a
  builtin) raises :class:`UnsupportedValueError`. ``float('inf')`` and ``nan`` are written as
  ``Infinity``/``NaN``. Decoding builds only those types from plain data: it never runs code.
- ``msgpack`` (``pip install 'cachekit-config[msgpack]'``): the same types (bytes native); integers must
  fit in 64 bits.

Signing
-------
With a signing key every headed payload carries an HMAC-SHA256 tag. A payload whose tag does not match,
or that carries none, raises :class:`TamperedPayloadError` and is never decompressed nor unpickled.
Raw ints are accepted unsigned here: they are parsed with ``int()``, which cannot run code. The
runtime does not take them from a store that signs: there it writes every value as a signed entry and
rejects a raw int it finds at a key, reading raw ints only from its own generation keys (whose values
someone who can write to the store can still change, for example roll a generation back). A serializer
without a key reads signed payloads (skipping the check), so readers can be given the key after writers.

A serializer only unpickles when it is itself a ``pickle`` serializer: a ``json`` or ``msgpack`` one
reads json and msgpack payloads and refuses pickle ones, so choosing json keeps pickle out of the process
even when the store holds pickle payloads written by someone else.

Errors
------
Anything that goes wrong while decoding (garbage, truncated data, a bad zlib stream, a pickle naming a
missing class...) raises :class:`SerializationError` with the original exception as ``__cause__``;
a value that cannot be encoded (a lambda, an object in json) raises :class:`UnsupportedValueError`,
whose message says how to store such values.
"""

from __future__ import annotations

import hmac
import os
import pickle
import re
import zlib
from collections.abc import Callable, Iterable
from functools import partial
from hashlib import sha256
from operator import itemgetter
from typing import Any

from .errors import ProviderError
from .fastjson import ENTRY_START, json_batch_loads, json_codec
from .providers.types import NETWORK_STORES, PROVIDER_TYPES
from .tagged import (
    TAGGED_NAMES,
    TAGGED_TYPES,
    UnsupportedType,
    json_loads,
    msgpack_loads,
    msgpack_module,
    tagged_json_dumps,
    tagged_json_loads,
    tagged_msgpack_dumps,
    tagged_msgpack_loads,
)

__all__ = [
    "ENV_SIGNING_KEY",
    "NETWORK_STORES",
    "SERIALIZER_NAMES",
    "TAGGED_TYPES",
    "SerializationError",
    "Serializer",
    "TamperedPayloadError",
    "UnsafeSerializerError",
    "UnsupportedValueError",
    "default_serializer_name",
    "make_serializer",
    "provider_serializer",
]

#: Environment variable read by ``make_serializer(..., use_env_key=True)`` when no key is given.
ENV_SIGNING_KEY = "CACHEKIT_SIGNING_KEY"
#: The names :func:`make_serializer` accepts.
SERIALIZER_NAMES = ("pickle", "json", "msgpack")

_MAGIC = 0xCA
_MAGIC_BYTE = bytes((_MAGIC,))
# What each format writes: pickle, and json / msgpack with tagged types (upper case). The lower-case
# ``j`` and ``m`` are untagged json / msgpack written by older versions: still read, never written.
_FORMAT_BYTES = {"pickle": ord("p"), "json": ord("J"), "msgpack": ord("M")}
_FORMAT_NAMES = {**{code: name for name, code in _FORMAT_BYTES.items()},
                 ord("j"): "json (untagged)", ord("m"): "msgpack (untagged)"}
_FLAG_COMPRESSED = 0x01
_FLAG_SIGNED = 0x02
_KNOWN_FLAGS = _FLAG_COMPRESSED | _FLAG_SIGNED
_HEADER_SIZE = 3
_TAG_SIZE = sha256().digest_size
_INT_PAYLOAD = re.compile(rb"-?[0-9]+ *")
_HEAD = itemgetter(slice(0, _HEADER_SIZE))
_BODY, _ENTRY_HEAD = itemgetter(slice(_HEADER_SIZE, None)), itemgetter(slice(0, _HEADER_SIZE + len(ENTRY_START)))
_BYTES_ONLY = {bytes}


class SerializationError(ProviderError):
    """A payload could not be decoded (garbage, truncated, unknown format) or a value encoded.

    The runtime counts it and treats the read as a miss. ``__cause__`` holds the original error.
    """


class TamperedPayloadError(SerializationError):
    """A signing key is configured and the payload's HMAC tag is wrong, truncated or absent."""


class UnsupportedValueError(SerializationError):
    """A value the configured format cannot encode (an arbitrary object under ``json``...).

    The write fails: counted as an error and the write returns ``False`` (raised with
    ``on_error = "raise"``). The message says how to store such values.
    """


class UnsafeSerializerError(ProviderError):
    """Unsigned pickle on a network store without ``allow_unsigned_pickle = true``."""


_PICKLE_HINT = (
    "to cache other Python objects, give the provider a signing_key (signed pickle is then its "
    "default serializer) or set serializer = \"pickle\" with allow_unsigned_pickle = true "
    "(unsigned pickle runs code planted by whoever can write to the store)"
)


_ENCODERS: dict[str, Callable[[Any], bytes]] = {
    "pickle": partial(pickle.dumps, protocol=pickle.HIGHEST_PROTOCOL),
    "json": tagged_json_dumps,
    "msgpack": tagged_msgpack_dumps,
}
_DECODERS: dict[int, Callable[[bytes], Any]] = {
    _FORMAT_BYTES["pickle"]: pickle.loads,
    _FORMAT_BYTES["json"]: tagged_json_loads,
    _FORMAT_BYTES["msgpack"]: tagged_msgpack_loads,
    ord("j"): json_loads,
    ord("m"): msgpack_loads,
}


class Serializer:
    """Encode objects to bytes and back, with optional zlib compression and HMAC signing.

    Build one with :func:`make_serializer` (or directly, same arguments).

    >>> s = Serializer("json")
    >>> s.loads(s.dumps({"a": (1, 2), 3: {b"x"}}))    # tagged types come back exactly
    {'a': (1, 2), 3: {b'x'}}
    >>> s.dumps(42), s.loads(b"-7")           # raw ints are decimal ASCII
    (b'42', -7)
    >>> s.loads(s.dumps(True))                # a bool is not a raw int
    True
    """

    __slots__ = ("_batch", "_code", "_decoders", "_encode", "_key", "_mac", "_plain", "compress_threshold", "name")

    def __init__(
        self,
        name: str = "pickle",
        *,
        compress_threshold: int | None = None,
        signing_key: bytes | str | None = None,
    ) -> None:
        if name not in _FORMAT_BYTES:
            raise ValueError(f"unknown serializer {name!r}; expected one of {', '.join(SERIALIZER_NAMES)}")
        if compress_threshold is not None and compress_threshold < 0:
            raise ValueError("compress_threshold must be >= 0 or None")
        if name == "msgpack":
            msgpack_module()  # fail now, with the extra's name, not on the first write
        key = signing_key.encode("utf-8") if isinstance(signing_key, str) else signing_key
        if key is not None and not key:
            raise ValueError("signing_key must not be empty")
        #: ``pickle``, ``json`` or ``msgpack``: the format :meth:`dumps` writes.
        self.name = name
        #: Bodies at least this many bytes are zlib-compressed (kept only when smaller); ``None``: never.
        self.compress_threshold = compress_threshold
        self._code = _FORMAT_BYTES[name]
        json_dumps, json_loads = json_codec()  # orjson's when installed (imported now), else the stdlib's
        self._encode = json_dumps if name == "json" else _ENCODERS[name]
        self._key = key
        # Keyed once; each tag starts from a copy (saves the key schedule on every call).
        self._mac = hmac.new(key, digestmod=sha256) if key is not None else None
        # Only a pickle serializer unpickles; every serializer reads json and msgpack payloads.
        self._decoders = {code: json_loads if code == _FORMAT_BYTES["json"] else decode
                          for code, decode in _DECODERS.items() if name == "pickle" or code != ord("p")}
        # header -> decoder of what loads() reads without a check: unsigned, uncompressed, a format
        # this serializer reads (none when a key is set: then every payload needs its tag checked)
        self._plain = {} if key is not None else {
            bytes((_MAGIC, code, 0)): decode for code, decode in self._decoders.items()
        }
        batch = json_batch_loads() if self._plain else None  # the usual entries' start, and their reader
        self._batch = None if batch is None else ({bytes((_MAGIC, _FORMAT_BYTES["json"], 0)) + ENTRY_START}, batch)

    @property
    def signed(self) -> bool:
        """``True`` when payloads are signed and unsigned ones are rejected."""
        return self._key is not None

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.name, self.compress_threshold, self._key))

    def __repr__(self) -> str:
        return (
            f"Serializer(name={self.name!r}, compress_threshold={self.compress_threshold!r}, "
            f"signed={self.signed})"
        )

    # -- encode ---------------------------------------------------------------------------------
    def dumps(self, obj: object) -> bytes:
        """Encode ``obj``; a plain ``int`` becomes decimal ASCII, anything else a headed payload.

        >>> s = Serializer("pickle", signing_key=b"k")
        >>> s.dumps(10)
        b'10'
        >>> payload = s.dumps(("v", float("inf"), None))
        >>> payload[:1], len(payload) > 3 + 32
        (b'\\xca', True)

        Raises :class:`SerializationError` when the format cannot encode ``obj``.
        """
        if type(obj) is int:
            try:
                return b"%d" % obj
            except ValueError:  # more digits than int(str) accepts: keep it exact through the format
                pass
        try:
            body = self._encode(obj)
        except UnsupportedType as exc:
            raise UnsupportedValueError(
                f"{self.name} cannot encode {exc} (it carries its own types and {TAGGED_NAMES}); {_PICKLE_HINT}"
            ) from None
        except Exception as exc:
            hint = "" if self.name == "pickle" else f"; {_PICKLE_HINT}"
            raise UnsupportedValueError(f"cannot encode {type(obj).__name__} with {self.name}: {exc}{hint}") from exc
        flags = 0
        threshold = self.compress_threshold
        if threshold is not None and len(body) >= threshold:
            packed = zlib.compress(body)
            if len(packed) < len(body):
                body = packed
                flags = _FLAG_COMPRESSED
        if self._key is None:
            return bytes((_MAGIC, self._code, flags)) + body
        header = bytes((_MAGIC, self._code, flags | _FLAG_SIGNED))
        mac = self._mac.copy()  # type: ignore[union-attr]
        mac.update(header)
        mac.update(body)
        return header + mac.digest() + body

    # -- decode ---------------------------------------------------------------------------------
    def loads(self, data: bytes) -> object:
        """Decode a payload written by :meth:`dumps` (or a decimal integer written by a server).

        >>> s = Serializer("pickle")
        >>> s.loads(s.dumps({"k": b"v"}))
        {'k': b'v'}
        >>> s.loads(b"12 ")                       # memcached may pad a decremented number
        12
        >>> s.loads(b"garbage")
        Traceback (most recent call last):
        ...
        cachekit.serializers.SerializationError: not a cachekit payload (starts with b'garb')

        Raises :class:`TamperedPayloadError` when a key is configured and the tag is bad or missing,
        :class:`SerializationError` for anything else that cannot be decoded.
        """
        if type(data) is not bytes:
            data = _as_bytes(data)
        decode = self._plain.get(data[:_HEADER_SIZE])
        if decode is not None:  # the common payload: unsigned, uncompressed, a format this one reads
            try:
                return decode(data[_HEADER_SIZE:])
            except Exception:  # decoded again below, to raise the error it reports
                pass
        if data[:1] != _MAGIC_BYTE:
            # the usual integer (a generation) skips the regex: int() takes 640 digits whatever the limit
            if (data.isdigit() and len(data) <= 640) or _INT_PAYLOAD.fullmatch(data):
                try:
                    return int(data)
                except ValueError as exc:  # more digits than int(str) accepts
                    raise SerializationError(f"integer payload rejected: {exc}") from exc
            raise SerializationError(f"not a cachekit payload (starts with {data[:4]!r})")
        if len(data) < _HEADER_SIZE:
            raise SerializationError("truncated payload: incomplete header")
        code, flags = data[1], data[2]
        if flags & ~_KNOWN_FLAGS:
            raise SerializationError(f"unknown payload flags 0x{flags:02x}")
        key = self._key
        if flags & _FLAG_SIGNED:
            body_start = _HEADER_SIZE + _TAG_SIZE
            if len(data) < body_start:
                error = TamperedPayloadError if key is not None else SerializationError
                raise error("truncated payload: incomplete signature")
            body = data[body_start:]
            if key is not None:
                mac = self._mac.copy()  # type: ignore[union-attr]
                mac.update(data[:_HEADER_SIZE])
                mac.update(body)
                if not hmac.compare_digest(mac.digest(), data[_HEADER_SIZE:body_start]):
                    raise TamperedPayloadError("payload signature does not match: rejected without decoding")
        elif key is not None:
            raise TamperedPayloadError("unsigned payload rejected: this serializer requires a signature")
        else:
            body = data[_HEADER_SIZE:]
        decode = self._decoders.get(code)
        if decode is None:
            fmt = _FORMAT_NAMES.get(code)
            if fmt is None:
                raise SerializationError(f"unknown payload format byte {code!r}")
            raise SerializationError(
                f"{fmt} payload refused by a {self.name} serializer (only pickle unpickles)"
            )
        try:
            if flags & _FLAG_COMPRESSED:
                body = zlib.decompress(body)
            return decode(body)
        except Exception as exc:
            raise SerializationError(f"cannot decode {_FORMAT_NAMES[code]} payload: {exc!r}") from exc

    def loads_many(self, payloads: Iterable[Any], absent: Any = None) -> list[object]:
        """:meth:`loads` of each payload in order, ``None`` (a key the store did not have) answered as
        ``absent``: a multi-get's decoding in one call."""
        plain = self._plain
        if plain and type(payloads) is list and set(map(type, payloads)) == _BYTES_ONLY:
            # every key present, bytes: one shared header (the usual batch) is decoded in C loops
            batch = self._batch  # plain json entries in one call (None: not all the usual entry)
            if batch is not None and set(map(_ENTRY_HEAD, payloads)) == batch[0] and \
                    (values := batch[1](list(map(_BODY, payloads)))) is not None:
                return values  # type: ignore[no-any-return]
            heads = set(map(_HEAD, payloads))
            decode = plain.get(heads.pop()) if len(heads) == 1 else None
            if decode is not None:
                try:
                    return list(map(decode, map(_BODY, payloads)))
                except Exception:  # one bad payload: decoded one by one below, which raises its error
                    pass
        loads = self.loads
        return [absent if data is None else loads(data) for data in payloads]


def _rebuild(name: str, compress_threshold: int | None, key: bytes | None) -> Serializer:
    return Serializer(name, compress_threshold=compress_threshold, signing_key=key)


def _as_bytes(data: object) -> bytes:
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise SerializationError(f"payload must be bytes, not {type(data).__name__}")


def make_serializer(
    name: str = "pickle",
    *,
    compress_threshold: int | None = None,
    signing_key: bytes | str | None = None,
    use_env_key: bool = False,
) -> Serializer:
    """Build a :class:`Serializer`.

    ``name``: ``pickle`` | ``json`` | ``msgpack`` (msgpack needs ``pip install 'cachekit-config[msgpack]'``).
    ``compress_threshold``: zlib-compress bodies of at least this many bytes (``None``: never).
    ``signing_key``: HMAC-SHA256 key (a ``str`` is UTF-8 encoded); with ``use_env_key=True`` and no key
    given, the environment variable ``CACHEKIT_SIGNING_KEY`` is used when set and not empty.

    >>> s = make_serializer("pickle", compress_threshold=64, signing_key="s3cret")
    >>> s.loads(s.dumps(["x"] * 1000)) == ["x"] * 1000
    True
    >>> len(s.dumps(["x"] * 1000)) < 200            # compressed
    True
    >>> make_serializer("pickle").loads(s.dumps("hi"))   # a reader without the key skips the check
    'hi'
    >>> s.loads(make_serializer("pickle").dumps("hi"))
    Traceback (most recent call last):
    ...
    cachekit.serializers.TamperedPayloadError: unsigned payload rejected: this serializer requires a signature
    """
    if signing_key is None and use_env_key:
        signing_key = os.environ.get(ENV_SIGNING_KEY) or None
    return Serializer(name, compress_threshold=compress_threshold, signing_key=signing_key)


def default_serializer_name(kind: str, signed: bool) -> str:
    """The serializer a provider of type ``kind`` uses when its config names none.

    A network store (Redis, Memcached) uses ``json`` (tagged types, never runs code) unless payloads are
    signed, then signed ``pickle``; the file store keeps ``pickle`` (same machine, same user).

    >>> default_serializer_name("redis", signed=False), default_serializer_name("redis", signed=True)
    ('json', 'pickle')
    >>> default_serializer_name("file", signed=False)
    'pickle'
    """
    known = PROVIDER_TYPES.get(kind)
    return "pickle" if signed or known is None else known.default_serializer or "pickle"


def provider_serializer(
    kind: str,
    name: str | None = None,
    *,
    compress_threshold: int | None = None,
    signing_key: bytes | str | None = None,
    allow_unsigned_pickle: bool = False,
) -> Serializer:
    """The serializer of a provider of type ``kind``: ``name`` (``None``: the default for ``kind``), signed
    with ``signing_key`` or else ``CACHEKIT_SIGNING_KEY`` when set.

    Raises :class:`UnsafeSerializerError` for unsigned pickle on a network store without
    ``allow_unsigned_pickle`` (the config check reports it first, with the file and line).

    >>> provider_serializer("redis").name, provider_serializer("redis", signing_key="k").name
    ('json', 'pickle')
    >>> provider_serializer("memcached", "pickle")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cachekit.serializers.UnsafeSerializerError: serializer = "pickle" on a memcached provider without a signing_key: ...
    """
    if signing_key is None:
        signing_key = os.environ.get(ENV_SIGNING_KEY) or None
    chosen = name or default_serializer_name(kind, signing_key is not None)
    if chosen == "pickle" and signing_key is None and kind in NETWORK_STORES and not allow_unsigned_pickle:
        raise UnsafeSerializerError(unsigned_pickle_message(kind))
    return Serializer(chosen, compress_threshold=compress_threshold, signing_key=signing_key)


def unsigned_pickle_message(kind: str) -> str:
    """Why unsigned pickle on a network store is refused, and the ways out."""
    return (
        f'serializer = "pickle" on a {kind} provider without a signing_key: whoever can write to the '
        "store could run code in this process; set signing_key (for example through "
        "CACHEKIT_PROVIDERS__<NAME>__SIGNING_KEY) for signed pickle, or allow_unsigned_pickle = true "
        'to accept the risk (or remove serializer: the default, json, is safe)'
    )
