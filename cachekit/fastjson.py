"""orjson as an optional accelerator of the tagged ``json`` format (``pip install 'cachekit-config[fast]'``).

The bytes are the same format either way (a reader with or without orjson, older versions included,
reads what the other wrote), and so are the results: orjson is used only where its answer is provably
the one the stdlib codecs of :mod:`cachekit.tagged` give, and anything else goes through them, whose
value or exception is then exactly today's.

Encoding: the value is tagged as :func:`~cachekit.tagged.tag` does (the same tree), except that a
non-finite float (which orjson would write as ``null``, the stdlib as ``Infinity``/``NaN``) stops it;
orjson then refuses what it writes differently (an int beyond 64 bits, a lone surrogate, deep nesting)
by raising. Any of these, or any other error, sends the value through the stdlib encoder.

Decoding: orjson has no ``object_hook``, so it reads only bodies whose tagged objects are known without
one. A tag key starts with ``~``; with no ``\\u007`` escape in the body (``~`` is ``\\u007e``) a body
without ``~`` holds no tagged object (orjson's value is the stdlib's), and a body with one ``~`` that
decodes to ``{"~t": [...]}`` is the tuple at its root and nothing below is tagged: the usual entry
``(value, expires, stamps)`` of a value made of json types. An entry with generation stamps (every
entry on memcached, which flushes a region by generation) is
``{"~t": [value, expires, {"~t": [{"~t": [gen_key, n]}, ...]}]}``: orjson reads it when it decodes to
exactly that shape with as many ``~`` in the body as the shape's tag keys (2 + one per stamp), so no
other ``~`` is anywhere (not in the value, not in a generation key, not in a key orjson's duplicate
handling dropped) and the hook would have turned exactly those dicts into tuples. Every other body (a
value holding tagged types, strings with ``~``) is read by the stdlib. orjson reads an integer beyond
64 bits as a float: a body with a run of 19 digits goes to the stdlib too; orjson refuses what only the stdlib accepts
(``NaN``/``Infinity``, a number that overflows a double, an escaped lone surrogate, nesting deeper than
1024) by raising, and the stdlib then reads the body (or raises today's error). Duplicate keys: both keep
the first position and the last value.

A batch (a multi-get's bodies, :func:`orjson_tagged_json_loads_many`) is read in one orjson call when
every body is such an entry: each starts with ``{"~t":[``, the bodies hold one ``~`` each and no
``\\u007`` escape nor run of 19 digits, and the array ``[body,body,...]`` decodes to as many one-key
objects: each object then holds exactly one ``~``, its key, which is the one at the start of a body, so
object *i* is body *i* (plus whitespace) and its value is the one orjson gives for body *i* alone.
Anything else answers ``None`` and the bodies are read one by one as above.

No header flag or format byte marks orjson's payloads: a reader without orjson (or an older version)
rejects unknown flags and format bytes, and none is needed since the bytes are the same format.

``orjson`` is imported on the first call of :func:`json_codec` (when a serializer is built), never by
``import cachekit``. Setting :data:`accelerate` to ``False`` makes serializers built afterwards use the
stdlib codecs only (tests force both paths with it).
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any

from .tagged import _UNTAG, tag, tagged_json_dumps, tagged_json_loads

__all__ = ["ENTRY_START", "accelerate", "available", "json_batch_loads", "json_codec", "orjson_tagged_json_dumps",
           "orjson_tagged_json_loads", "orjson_tagged_json_loads_many"]

#: ``False``: serializers built from now on use the stdlib json codecs even when orjson is installed.
accelerate = True

_orjson: Any = None  # the module once imported; False when it is not installed
_orjson_dumps: Any = None
_orjson_loads: Any = None
# every digit as 0, anything else as a space: a run of 19 zeros is an int orjson may read as a float
_DIGITS = bytes(48 if 48 <= i < 58 else 32 for i in range(256))
_RUN = b"0" * 19
_PLAIN = frozenset((str, int, bool, type(None)))  # leaves orjson writes as the stdlib does (float: checked)
#: how the body of the usual entry starts (a tuple at the root)
ENTRY_START = b'{"~t":['

_ITEMS = itemgetter("~t")


def available() -> bool:
    """``True`` when orjson is importable (imported on the first call)."""
    global _orjson, _orjson_dumps, _orjson_loads
    if _orjson is None:
        try:
            import orjson
        except ImportError:
            _orjson = False
        else:
            _orjson, _orjson_dumps, _orjson_loads = orjson, orjson.dumps, orjson.loads
    return _orjson is not False


def json_codec() -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    """``(dumps, loads)`` of the tagged json format: orjson's when :func:`available` and
    :data:`accelerate`, else the stdlib's (:func:`~cachekit.tagged.tagged_json_dumps` / ``_loads``)."""
    if accelerate and available():
        return orjson_tagged_json_dumps, orjson_tagged_json_loads
    return tagged_json_dumps, tagged_json_loads


def json_batch_loads() -> Callable[[list[bytes]], list[Any] | None] | None:
    """The batch reader of the tagged json format (:func:`orjson_tagged_json_loads_many`) when
    :func:`json_codec` gives orjson's codecs, else ``None``."""
    return orjson_tagged_json_loads_many if accelerate and available() else None


class _NotFinite(Exception):
    """A float orjson would write as ``null``."""


def _tag(obj: Any) -> Any:
    """:func:`~cachekit.tagged.tag` ``(obj, False)``, raising :class:`_NotFinite` on inf and nan."""
    t = type(obj)
    if t in _PLAIN:
        return obj
    if t is float:
        if obj - obj == 0.0:  # inf - inf and nan - nan are nan
            return obj
        raise _NotFinite
    plain = _PLAIN
    if t is list:
        return [v if type(v) in plain else _tag(v) for v in obj]
    if t is dict:
        # a key other than an exact str is left as it is: orjson refuses it, and the stdlib writes the dict
        out = {k: v if type(v) in plain else _tag(v) for k, v in obj.items()}
        if len(out) != 1 or next(iter(out)) not in _UNTAG:
            return out
        return {"~m": [[_tag(k), _tag(v)] for k, v in obj.items()]}
    if t is tuple:
        return {"~t": [v if type(v) in plain else _tag(v) for v in obj]}
    if t is set or t is frozenset:
        return {"~s" if t is set else "~f": [_tag(v) for v in obj]}
    return tag(obj, False)  # bytes, dates, Decimal, UUID: no float inside; or UnsupportedType


def _tag_entry(obj: tuple[Any, ...]) -> Any:
    """:func:`_tag` of an entry ``(value, expires, ((gen_key, n), ...))`` with a finite ``expires``, in
    fewer calls; ``None`` for any other tuple of three."""
    value, expires, stamps = obj
    if type(expires) is not float or expires - expires != 0.0 or type(stamps) is not tuple:
        return None
    pairs = []
    for stamp in stamps:
        if type(stamp) is not tuple or len(stamp) != 2 or type(stamp[0]) is not str or type(stamp[1]) is not int:
            return None
        pairs.append({"~t": [stamp[0], stamp[1]]})
    return {"~t": [value if type(value) in _PLAIN else _tag(value), expires, {"~t": pairs}]}


def orjson_tagged_json_dumps(obj: Any) -> bytes:
    """:func:`~cachekit.tagged.tagged_json_dumps` through orjson: other bytes, the same decoded value."""
    try:
        if type(obj) is tuple and len(obj) == 3:  # an entry
            if obj[2] is None and type(obj[1]) is float and obj[1] - obj[1] == 0.0:  # without stamps
                return _orjson_dumps({"~t": [_tag(obj[0]), obj[1], None]})  # type: ignore[no-any-return]
            tagged = _tag_entry(obj)  # with stamps (every entry on memcached)
            if tagged is not None:
                return _orjson_dumps(tagged)  # type: ignore[no-any-return]
        return _orjson_dumps(_tag(obj))  # type: ignore[no-any-return]
    except Exception:  # inf/nan, an int beyond 64 bits, a lone surrogate, an unsupported type...
        return tagged_json_dumps(obj)  # today's bytes, or today's error


def _stamped_entry(obj: Any, tildes: int) -> Any:
    """``obj`` decoded from ``{"~t": [value, expires, {"~t": [{"~t": [gen_key, n]}, ...]}]}`` (a body with
    ``tildes`` ``~``) as the tagged hook would untag it, or ``None`` when it is not exactly that shape or
    the body holds a ``~`` the shape does not account for."""
    if type(obj) is not dict or len(obj) != 1:
        return None
    items = obj.get("~t")
    if type(items) is not list or len(items) != 3:
        return None
    stamps = items[2]
    if type(stamps) is not dict or len(stamps) != 1:
        return None
    pairs = stamps.get("~t")
    if type(pairs) is not list or len(pairs) != tildes - 2:  # the root's ~, the stamps', one per stamp
        return None
    out = []
    for pair in pairs:
        if type(pair) is not dict or len(pair) != 1:
            return None
        stamp = pair.get("~t")
        if type(stamp) is not list:
            return None
        out.append(tuple(stamp))
    return (items[0], items[1], tuple(out))


def orjson_tagged_json_loads(body: bytes) -> Any:
    """:func:`~cachekit.tagged.tagged_json_loads` through orjson: the same value, or the same error."""
    # bytes.find and count, not ``in``: the method calls are the cheaper on short bodies
    tildes = body.count(b"~")
    # a backslash is rare (an escaped quote or control character): the u007 escape is looked for only then
    plain = (body.find(b"\\") < 0 or body.find(b"\\u007") < 0) and body.translate(_DIGITS).find(_RUN) < 0
    if tildes > 1:  # a stamped entry (_stamped_entry), or anything else: the stdlib's
        if plain and body.startswith(b'{"~t":['):
            try:
                entry = _stamped_entry(_orjson_loads(body), tildes)
            except Exception:  # orjson refused the body: the stdlib reads it, or raises today's error
                entry = None
            if entry is not None:
                return entry
        return tagged_json_loads(body)
    if plain:
        try:
            obj = _orjson_loads(body)
        except Exception:  # orjson refused the body: the stdlib reads it, or raises today's error
            return tagged_json_loads(body)
        if not tildes:  # no tagged object anywhere: the hook would have returned every dict as is
            return obj
        # the one ~ is the key of the root {"~t": [...]} (the usual entry): nothing below is tagged
        if type(obj) is dict and len(obj) == 1:
            items = obj.get("~t")
            if type(items) is list:
                return tuple(items)
    return tagged_json_loads(body)


def orjson_tagged_json_loads_many(bodies: list[bytes]) -> list[Any] | None:
    """:func:`orjson_tagged_json_loads` of each of ``bodies``, in one orjson call when every body is the
    usual entry (``{"~t":[...]}`` with nothing tagged below, see the module's notes); else ``None`` (the
    caller reads them one by one). The caller checked that each body is ``bytes`` starting with
    :data:`ENTRY_START` (and its one ``~``)."""
    n = len(bodies)
    joined = b"[" + b",".join(bodies) + b"]"
    # each body has a ~ at its start, so n of them in all is one in each; a backslash is rare (see above)
    if not n or joined.count(b"~") != n or (joined.find(b"\\") >= 0 and joined.find(b"\\u007") >= 0) or \
            joined.translate(_DIGITS).find(_RUN) >= 0:
        return None
    try:
        objs = _orjson_loads(joined)
        if len(objs) != n or max(map(len, objs)) != 1:
            return None
        return list(map(tuple, map(_ITEMS, objs)))
    except Exception:  # not n one-key objects with the key "~t" (or orjson refused the array)
        return None
