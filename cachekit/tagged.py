"""The tagged codecs behind the ``json`` and ``msgpack`` serializers: a value json or msgpack cannot
carry as is (a tuple, a set, bytes, a datetime, a Decimal...) is written as a one-key object naming its
type and read back exactly; decoding builds only those types, from plain data. Also the plain
(untagged) codecs older versions wrote, still read. :mod:`cachekit.serializers` frames, compresses and
signs what these produce.
"""

from __future__ import annotations

import base64
import json
import json.scanner
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from .errors import require

__all__ = ["TAGGED_NAMES", "TAGGED_TYPES", "UnsupportedType", "json_dumps", "json_loads", "msgpack_dumps",
           "msgpack_loads", "msgpack_module", "tag", "tagged_json_dumps", "tagged_json_loads", "tagged_msgpack_dumps",
           "tagged_msgpack_loads", "untag"]


class UnsupportedType(TypeError):
    """A value of a type the tagged formats do not carry; the message names the type.
    :class:`~cachekit.serializers.Serializer` turns it into ``UnsupportedValueError`` with a hint."""


#: The types the ``json`` and ``msgpack`` formats round-trip beyond their own (exactly: a tuple stays a
#: tuple, a naive datetime stays naive).
TAGGED_TYPES = (tuple, set, frozenset, bytes, datetime, date, time, timedelta, Decimal, UUID)


# -- tagged types -----------------------------------------------------------------------------------
# A value json (or msgpack) cannot carry as is becomes a one-key object whose key names its type:
# {"~t": [1, 2]} is the tuple (1, 2). A dict that could be mistaken for one (a single key that is a tag)
# or that has keys other than strings is written as {"~m": [[key, value], ...]}. Decoding builds only the
# types below, from plain data: no name in a payload is ever looked up or called.
def _zone(value: datetime | time) -> Any:
    tz = value.tzinfo
    key = getattr(tz, "key", None)  # a zoneinfo.ZoneInfo: keep the zone, not only the offset
    if tz is None or not isinstance(key, str) or type(tz).__module__ != "zoneinfo":
        return value.isoformat()
    return [value.replace(tzinfo=None).isoformat(), key, value.fold]


def _datetime_from(data: Any) -> datetime:
    if isinstance(data, str):
        return datetime.fromisoformat(data)
    from zoneinfo import ZoneInfo

    iso, key, fold = data
    return datetime.fromisoformat(iso).replace(tzinfo=ZoneInfo(key), fold=fold)


def _time_from(data: Any) -> time:
    if isinstance(data, str):
        return time.fromisoformat(data)
    from zoneinfo import ZoneInfo

    iso, key, fold = data
    return time.fromisoformat(iso).replace(tzinfo=ZoneInfo(key), fold=fold)


def _bytes_from(data: str) -> bytes:
    return base64.b64decode(data, validate=True)


def _mapping_from(pairs: list[Any]) -> dict[Any, Any]:
    return {key: value for key, value in pairs}


def _timedelta_from(data: list[int]) -> timedelta:
    days, seconds, microseconds = data
    return timedelta(days=days, seconds=seconds, microseconds=microseconds)


_UNTAG: dict[str, Callable[[Any], Any]] = {
    "~t": tuple,
    "~s": set,
    "~f": frozenset,
    "~b": _bytes_from,
    "~dt": _datetime_from,
    "~d": date.fromisoformat,
    "~tm": _time_from,
    "~td": _timedelta_from,
    "~dec": Decimal,
    "~u": UUID,
    "~m": _mapping_from,
}


def untag(obj: dict[str, Any]) -> Any:
    """``object_hook`` of the tagged formats (called bottom-up, so nested values are already decoded)."""
    if len(obj) == 1:
        for key, value in obj.items():
            decode = _UNTAG.get(key)
            if decode is not None:
                return decode(value)
    return obj


TAGGED_NAMES = ", ".join(t.__name__ for t in TAGGED_TYPES)
_SCALARS = frozenset((str, int, float, bool, type(None)))


def tag(obj: Any, binary: bool) -> Any:
    """``obj`` as plain json / msgpack data, tagged types tagged; ``binary``: bytes stay bytes."""
    t = type(obj)
    if t in _SCALARS:
        return obj
    scalars = _SCALARS  # leaves are answered inline: no call per string or number
    if t is list:
        return [v if type(v) in scalars else tag(v, binary) for v in obj]
    if t is dict:
        out = {}
        for k, v in obj.items():
            if type(k) is not str:
                break
            out[k] = v if type(v) in scalars else tag(v, binary)
        else:
            if len(out) != 1 or next(iter(out)) not in _UNTAG:
                return out
        return {"~m": [[tag(k, binary), tag(v, binary)] for k, v in obj.items()]}
    if t is tuple:
        return {"~t": [v if type(v) in scalars else tag(v, binary) for v in obj]}
    if t is bytes:
        return obj if binary else {"~b": base64.b64encode(obj).decode("ascii")}
    if t is set or t is frozenset:
        return {"~s" if t is set else "~f": [tag(v, binary) for v in obj]}
    if t is datetime:
        return {"~dt": _zone(obj)}
    if t is date:
        return {"~d": obj.isoformat()}
    if t is time:
        return {"~tm": _zone(obj)}
    if t is timedelta:
        return {"~td": [obj.days, obj.seconds, obj.microseconds]}
    if t is Decimal:
        return {"~dec": str(obj)}
    if t is UUID:
        return {"~u": str(obj)}
    raise UnsupportedType(f"a {t.__module__}.{t.__qualname__}" if t.__module__ != "builtins"
                          else f"a {t.__name__}")


# -- codecs -----------------------------------------------------------------------------------------
def json_dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_loads(body: bytes) -> Any:
    return json.loads(body)


# Built once: json.dumps / json.loads with options build a new encoder / decoder on every call.
_JSON_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_TAGGED_JSON_DECODER = json.JSONDecoder(object_hook=untag)
_TAGGED_JSON_DECODE = _TAGGED_JSON_DECODER.decode
# decode() is scan_once framed by two whitespace matches: a payload without surrounding whitespace
# (all that dumps writes) goes to the scanner directly, anything else through decode()
_TAGGED_JSON_SCAN = json.scanner.make_scanner(_TAGGED_JSON_DECODER)


def tagged_json_dumps(obj: Any) -> bytes:
    return _JSON_ENCODE(tag(obj, False)).encode("utf-8")


def tagged_json_loads(body: bytes) -> Any:
    text = body.decode("utf-8")
    try:
        obj, end = _TAGGED_JSON_SCAN(text, 0)
    except StopIteration:
        return _TAGGED_JSON_DECODE(text)  # raises the error decode() reports (or skips whitespace)
    return obj if end == len(text) else _TAGGED_JSON_DECODE(text)


_msgpack: Any = None


def msgpack_module() -> Any:
    global _msgpack
    if _msgpack is None:
        _msgpack = require("msgpack", "msgpack")
    return _msgpack


def msgpack_dumps(obj: Any) -> bytes:
    return msgpack_module().packb(obj, use_bin_type=True)  # type: ignore[no-any-return]


def msgpack_loads(body: bytes) -> Any:
    return msgpack_module().unpackb(body, raw=False, use_list=True, strict_map_key=False)


def tagged_msgpack_dumps(obj: Any) -> bytes:
    return msgpack_dumps(tag(obj, True))


def tagged_msgpack_loads(body: bytes) -> Any:
    return msgpack_module().unpackb(body, raw=False, use_list=True, object_hook=untag)
