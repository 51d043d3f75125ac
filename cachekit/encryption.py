"""Encryption at rest for shared stores: AES-256-GCM around the serializer's payloads.

Opt-in per provider (``encryption_keys = [...]``, or ``CACHEKIT_ENCRYPTION_KEYS``, comma-separated),
with the ``crypto`` extra (``pip install 'cachekit-config[crypto]'``). Keys are 32 bytes, written in
base64 or hex. The first key encrypts; every key of the list decrypts, so a key is rotated by putting
the new one first and dropping the old one once its entries have expired.

Wire format
-----------
::

    0xCE | 0x01 | key id (4 bytes) | nonce (12 bytes) | ciphertext and 16-byte GCM tag

The plaintext is the whole payload of the inner serializer (encoded, compressed, signed when a
signing key is set too): ``serialize -> compress -> sign -> encrypt``. The key id is the first four
bytes of the SHA-256 of the key (it names the key without revealing it); the header (magic, version,
key id) is authenticated as associated data. A fresh random 96-bit nonce is drawn for every value.

GCM authenticates what it decrypts: a payload that does not decrypt (another key, a changed byte, a
plain payload planted in the store) raises :class:`~cachekit.serializers.TamperedPayloadError` before
anything is decoded, so an encrypted store is as safe for pickle as a signed one. Plain integers stay
decimal ASCII, as under signing (cachekit's own generation counters, which the server increments);
the runtime stores every value of an encrypted store, counters included, as an encrypted entry.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from hashlib import sha256
from typing import Any

from .errors import require
from .serializers import SerializationError, Serializer, TamperedPayloadError

__all__ = ["ENV_ENCRYPTION_KEYS", "EncryptedSerializer", "decode_key", "env_keys", "key_problem"]

#: Environment variable of the keys of every provider that sets none: comma-separated, first encrypts.
ENV_ENCRYPTION_KEYS = "CACHEKIT_ENCRYPTION_KEYS"

_MAGIC = 0xCE
_VERSION = 0x01
_HEADER = 6  # magic, version, key id
_NONCE = 12
_TAG = 16
_KEY_SIZE = 32
_INT_PAYLOAD = re.compile(rb"-?[0-9]+ *")
_HEX = re.compile(r"[0-9a-fA-F]{64}")


def decode_key(text: str) -> bytes:
    """The 32 bytes of a key written in hex (64 digits) or base64 (standard or URL-safe); ``ValueError``
    otherwise (the message never contains the key)."""
    text = text.strip()
    if _HEX.fullmatch(text):
        return bytes.fromhex(text)
    try:
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raw = None
    if raw is None:
        raise ValueError("an encryption key is 32 bytes written in base64 or as 64 hex digits; this one "
                         "is neither (generate one: python -c \"import os, base64; "
                         "print(base64.b64encode(os.urandom(32)).decode())\")")
    if len(raw) != _KEY_SIZE:
        raise ValueError(f"an encryption key is 32 bytes (AES-256); this one decodes to {len(raw)} bytes")
    return raw


def key_problem(text: str) -> str | None:
    """Why ``text`` is not a valid key, or ``None``."""
    try:
        decode_key(text)
    except ValueError as exc:
        return str(exc)
    return None


def env_keys(environ: Any = None) -> list[str]:
    """The keys of ``CACHEKIT_ENCRYPTION_KEYS`` (comma-separated; empty or unset: none)."""
    value = (os.environ if environ is None else environ).get(ENV_ENCRYPTION_KEYS) or ""
    return [k.strip() for k in value.split(",") if k.strip()]


def _key_id(key: bytes) -> bytes:
    return sha256(key).digest()[:4]


class EncryptedSerializer(Serializer):
    """``inner``'s payloads encrypted with AES-256-GCM (``keys``: 32-byte keys, the first encrypts).

    >>> import os
    >>> from cachekit.serializers import Serializer
    >>> old, new = os.urandom(32), os.urandom(32)
    >>> written = EncryptedSerializer(Serializer("json"), [old]).dumps({"card": "4242"})
    >>> b"4242" in written
    False
    >>> EncryptedSerializer(Serializer("json"), [new, old]).loads(written)   # rotation: old still reads
    {'card': '4242'}
    """

    __slots__ = ("_aead", "_kid", "_readers", "inner", "keys")

    def __init__(self, inner: Serializer, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("EncryptedSerializer needs at least one key")
        aesgcm: Any = require("cryptography.hazmat.primitives.ciphers.aead", "crypto")
        for key in keys:
            if len(key) != _KEY_SIZE:
                raise ValueError(f"an encryption key is 32 bytes (AES-256), not {len(key)}")
        self.inner = inner
        self.keys = list(keys)
        self.name = inner.name
        self.compress_threshold = inner.compress_threshold
        self._kid = _key_id(keys[0])
        self._aead = aesgcm.AESGCM(keys[0])
        #: key id -> the ciphers with that id (a collision of ids only costs a second try)
        self._readers: dict[bytes, list[Any]] = {}
        for key in keys:
            self._readers.setdefault(_key_id(key), []).append(aesgcm.AESGCM(key))

    @property
    def signed(self) -> bool:
        """``True``: every payload but a plain integer is authenticated (GCM), unauthenticated ones rejected."""
        return True

    def __reduce__(self) -> tuple[Any, ...]:
        return (EncryptedSerializer, (self.inner, self.keys))

    def __repr__(self) -> str:
        return f"EncryptedSerializer({self.inner!r}, keys={len(self.keys)})"

    def dumps(self, obj: object) -> bytes:
        data = self.inner.dumps(obj)
        if type(obj) is int and data[:1] != b"\xca":
            return data  # decimal ASCII, for the server's increments (as under signing)
        header = bytes((_MAGIC, _VERSION)) + self._kid
        nonce = os.urandom(_NONCE)
        return header + nonce + self._aead.encrypt(nonce, data, header)

    def loads(self, data: bytes) -> object:
        if type(data) is not bytes:
            if not isinstance(data, (bytearray, memoryview)):
                raise SerializationError(f"payload must be bytes, not {type(data).__name__}")
            data = bytes(data)
        if data[:1] != b"\xce":
            if _INT_PAYLOAD.fullmatch(data):
                return self.inner.loads(data)
            raise TamperedPayloadError("unencrypted payload rejected: this store encrypts its payloads")
        if len(data) < _HEADER + _NONCE + _TAG or data[1] != _VERSION:
            raise TamperedPayloadError("truncated or unknown encrypted payload")
        header = data[:_HEADER]
        nonce = data[_HEADER:_HEADER + _NONCE]
        for aead in self._readers.get(data[2:_HEADER], ()):
            try:
                plain = aead.decrypt(nonce, data[_HEADER + _NONCE:], header)
            except Exception:  # InvalidTag: another key with the same id, or a changed byte
                continue
            return self.inner.loads(plain)
        raise TamperedPayloadError("encrypted payload does not decrypt with any of the configured keys "
                                   "(another key, or changed in the store): rejected")
