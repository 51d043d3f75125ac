"""Secrets in a config: URLs that carry a password, and masking wherever a config is shown.

A Redis URL may hold a password (``redis://:pw@host:6379/0``, ``rediss://user:pw@host``, a cluster or
sentinel node ``redis://:pw@10.0.0.1:26379``). Such fields are :class:`SecretUrl`: ``str()``,
``repr()``, ``model_dump()`` and ``model_dump(mode="json")`` show the URL with its password (and any
``password=`` / ``token=`` query value) replaced by ``**********`` while user, host, port, database and
the other query values stay readable. Code that connects reads the real URL explicitly with
``.get_secret_value()``, as for :class:`~pydantic.SecretStr` (which :class:`SecretUrl` extends, so every
place that treats a ``SecretStr`` as a secret treats a URL the same way: ``save()`` writes the real value,
diagnostics never echo it).

>>> url = SecretUrl("redis://app:s3cret@cache.internal:6379/2?password=x&socket_timeout=1")
>>> str(url)
'redis://app:**********@cache.internal:6379/2?password=**********&socket_timeout=1'
>>> url.get_secret_value()
'redis://app:s3cret@cache.internal:6379/2?password=x&socket_timeout=1'
>>> mask_text("cannot connect to redis://:hunter22@10.0.0.5:6379/0")
'cannot connect to redis://:**********@10.0.0.5:6379/0'
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, SecretStr
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

__all__ = ["MASK", "SecretUrl", "is_secret_name", "mask_text", "mask_url", "scrub"]

#: What a secret is shown as (the same as pydantic's ``SecretStr``).
MASK = "**********"

# query keys whose values are credentials: ?password=..., ?sentinel_password=..., ?token=...
_SECRET_NAME = re.compile(r"pass|pwd|secret|token|credential|auth|(^|_)key$", re.IGNORECASE)
# scheme://user:password@ anywhere in a text (a message, an exception, a repr)
_URL_CREDENTIALS = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/@:'\"]*:)[^\s'\"]*@")


def is_secret_name(name: str) -> bool:
    """Whether a key or query parameter named ``name`` holds a credential (``password``, ``token``...)."""
    return bool(_SECRET_NAME.search(name))


def mask_url(url: str) -> str:
    """``url`` with the password of its user info and credential query values masked.

    User name, host, port, path (the database) and other query values are kept. Text without
    ``://`` (``host:port``) may still carry ``user:password@`` and is masked the same way.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    head, query_sep, query = rest.partition("?")
    # the user info ends at the last '@' before the query: an unencoded '@' or '/' in a password
    # then masks too much rather than too little
    userinfo, at, hostpart = head.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        head = f"{user}:{MASK}@{hostpart}" if colon else f"{userinfo}@{hostpart}"
    if query_sep:
        query, hash_sep, fragment = query.partition("#")
        pairs = []
        for pair in query.split("&"):
            name, eq, _ = pair.partition("=")
            pairs.append(f"{name}={MASK}" if eq and is_secret_name(name) else pair)
        query = "&".join(pairs) + hash_sep + fragment
    return f"{scheme}{sep}{head}{query_sep}{query}"


def mask_text(text: str) -> str:
    """Every ``scheme://user:password@`` in ``text`` with the password masked."""
    if "://" not in text:
        return text
    return _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}{MASK}@", text)


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with URL passwords masked and each of ``secrets`` (4 characters or more) replaced.

    For messages built from a client library's exceptions, which may quote a URL or a password.
    """
    text = mask_text(text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
    return text


class SecretUrl(SecretStr):
    """A URL that may carry a password: shown masked, read with ``.get_secret_value()``.

    Validated from a string (or a ``SecretUrl``). A URL whose password is the mask itself
    (``redis://:**********@host``, as shown by ``cachekit show`` or ``GET /providers``) is refused:
    sent back as an edit, it would replace the real password with ten asterisks.
    """

    def _display(self) -> str:
        return mask_url(self.get_secret_value())

    def url_secrets(self) -> list[str]:
        """The credentials inside the URL (password, credential query values), for :func:`scrub`."""
        from urllib.parse import parse_qsl, unquote, urlsplit

        raw = self.get_secret_value()
        try:
            parts = urlsplit(raw if "://" in raw else f"redis://{raw}")
            password = parts.password
            query = parse_qsl(parts.query)
        except ValueError:
            return [raw]
        found = [password, unquote(password)] if password else []
        found += [value for name, value in query if is_secret_name(name)]
        return found

    @classmethod
    def _validate(cls, url: SecretUrl) -> SecretUrl:
        if MASK in url.get_secret_value() and url._display() == url.get_secret_value():
            raise ValueError(f"the password in this URL is the mask {MASK!r} that cachekit shows instead of "
                             "a secret; give the real password (or leave the URL unchanged)")
        return url

    @classmethod
    def __get_pydantic_core_schema__(cls, source: type[Any], handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        from_str = core_schema.no_info_after_validator_function(cls, core_schema.str_schema())

        def serialize(value: SecretUrl, info: core_schema.SerializationInfo) -> str | SecretUrl:
            # python mode keeps the object (masked when printed, lossless when validated again)
            return value._display() if info.mode == "json" else value

        return core_schema.json_or_python_schema(
            python_schema=core_schema.no_info_after_validator_function(cls._validate, core_schema.union_schema(
                [core_schema.is_instance_schema(cls), from_str], custom_error_type="string_type"
            )),
            json_schema=core_schema.no_info_after_validator_function(cls._validate, from_str),
            serialization=core_schema.plain_serializer_function_ser_schema(
                serialize, info_arg=True, when_used="always"
            ),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string"}
