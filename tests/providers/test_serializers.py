"""cachekit.serializers: formats, raw ints, compression, signing, and refusing hostile payloads."""

from __future__ import annotations

import datetime
import doctest
import enum
import math
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from servers import need_module

from cachekit import fastjson, serializers, tagged
from cachekit.errors import MissingExtraError, ProviderError
from cachekit.serializers import (
    ENV_SIGNING_KEY,
    SerializationError,
    Serializer,
    TamperedPayloadError,
    make_serializer,
)

FORMATS = ["pickle", "json", "msgpack"]
INT_PAYLOAD = re.compile(rb"-?[0-9]+ *")
KEY = b"test-signing-key"

ENTRY = ("value", 1700000000.25, (("cachekit:default:__gen__:tag:users", 3),))
ENTRY_FOREVER = ({"id": 1, "tags": ["a", "b"]}, math.inf, None)


@pytest.fixture(autouse=True, params=["accelerated", "stdlib"])
def json_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test twice: with the tagged json codecs through orjson (skipped when orjson is not
    installed) and forced onto the stdlib ones, so CI exercises both paths in one run."""
    if request.param == "accelerated":
        need_module("orjson")  # skipped without it locally, a failure when CI=true
    monkeypatch.setattr(fastjson, "accelerate", request.param == "accelerated")
    return str(request.param)


def plain(obj: Any) -> Any:
    """What untagged json and msgpack (written by older versions) give back: tuples become lists."""
    if isinstance(obj, (list, tuple)):
        return [plain(item) for item in obj]
    if isinstance(obj, dict):
        return {key: plain(value) for key, value in obj.items()}
    return obj


def expected(name: str, obj: Any) -> Any:
    return obj  # every format round-trips exactly (json and msgpack tag tuples, bytes...)


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes((data[index] ^ 0x01,)) + data[index + 1 :]


# -- round trips ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize(
    "obj",
    [
        None,
        ENTRY,
        ENTRY_FOREVER,
        {"nested": {"list": [1, 2.5, None, "é", {"deep": [True, False]}]}, "n": -3},
        [],
        "",
        "ünïcødé ✓",
        0.1,
        -math.inf,
    ],
    ids=repr,
)
def test_round_trip_returns_an_equal_object(name: str, obj: Any) -> None:
    s = make_serializer(name)
    assert s.loads(s.dumps(obj)) == expected(name, obj)


@pytest.mark.parametrize("name", ["pickle", "msgpack"])
def test_bytes_round_trip_in_binary_formats(name: str) -> None:
    s = make_serializer(name)
    value = {"blob": b"\x00\xff\xca-12", "entry": (b"raw", math.inf, None)}
    assert s.loads(s.dumps(value)) == expected(name, value)


def test_pickle_keeps_tuples_sets_and_custom_types_exact() -> None:
    s = make_serializer("pickle")
    value = (frozenset({1, 2}), {3}, Path("/x"), (1, (2,)))
    back = s.loads(s.dumps(value))
    assert back == value
    assert type(back) is tuple and type(back[3][1]) is tuple


@pytest.mark.parametrize("name", ["json", "msgpack"])
def test_json_and_msgpack_return_entry_tuples_as_tuples(name: str) -> None:
    s = make_serializer(name)
    back = s.loads(s.dumps(ENTRY))
    assert back == ENTRY and type(back) is tuple and type(back[2][0]) is tuple


@pytest.mark.parametrize("name", ["json", "msgpack"])
def test_untagged_payloads_of_older_versions_are_still_read(name: str) -> None:
    import json as json_module

    import msgpack

    body = json_module.dumps(["v", 1.5, None]).encode() if name == "json" else msgpack.packb(["v", 1.5, None])
    legacy = b"\xca" + name[0].encode() + b"\x00" + body
    assert make_serializer(name).loads(legacy) == ["v", 1.5, None]


# -- raw ints ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("value", [0, 1, 42, -7, 2**63 - 1, -(2**63), 10**40])
def test_int_is_decimal_ascii_and_comes_back_as_int(name: str, value: int) -> None:
    s = make_serializer(name, signing_key=KEY, compress_threshold=0)
    payload = s.dumps(value)
    assert payload == str(value).encode()
    back = s.loads(payload)
    assert back == value and type(back) is int


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("value", [True, False])
def test_bool_does_not_turn_into_int(name: str, value: bool) -> None:
    s = make_serializer(name)
    payload = s.dumps(value)
    assert not INT_PAYLOAD.fullmatch(payload)
    back = s.loads(payload)
    assert back is value


class Color(enum.IntEnum):
    RED = 1


def test_int_subclass_is_not_a_raw_int() -> None:
    s = make_serializer("pickle")
    payload = s.dumps(Color.RED)
    assert payload != b"1"
    assert s.loads(payload) is Color.RED


@pytest.mark.parametrize("payload, value", [(b"0012", 12), (b"-0", 0), (b"7   ", 7), (bytearray(b"5"), 5)])
def test_server_written_numbers_are_read_as_int(payload: bytes, value: int) -> None:
    # memcached may pad a decremented number with spaces; Redis returns plain decimal
    assert make_serializer("json", signing_key=KEY).loads(payload) == value


def test_int_too_long_for_decimal_conversion_round_trips_through_pickle() -> None:
    s = make_serializer("pickle")
    huge = 10 ** (sys.get_int_max_str_digits() + 10) if hasattr(sys, "get_int_max_str_digits") else 10**5000
    payload = s.dumps(huge)
    assert payload[:1] == b"\xca"
    assert s.loads(payload) == huge


@pytest.mark.parametrize("text", [b"1 2", b"+1", b"1_000", b" 1", b"1\n", b"0x10", b"-"])
def test_almost_numbers_are_garbage_not_ints(text: bytes) -> None:
    with pytest.raises(SerializationError):
        make_serializer().loads(text)


# -- compression ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", FORMATS)
def test_big_compressible_payload_shrinks_and_round_trips(name: str) -> None:
    value = {"rows": [{"name": "same text", "n": i % 3} for i in range(2000)]}
    plain_size = len(make_serializer(name).dumps(value))
    s = make_serializer(name, compress_threshold=1024)
    payload = s.dumps(value)
    assert len(payload) * 10 < plain_size
    assert payload[2] & 0x01  # compressed flag
    assert s.loads(payload) == value


def test_payload_below_threshold_is_not_compressed() -> None:
    s = make_serializer("pickle", compress_threshold=1024)
    payload = s.dumps("x" * 100)
    assert payload[2] & 0x01 == 0
    assert s.loads(payload) == "x" * 100


def test_incompressible_payload_is_stored_uncompressed() -> None:
    import os

    blob = os.urandom(4096)
    s = make_serializer("pickle", compress_threshold=0)
    payload = s.dumps(blob)
    assert payload[2] & 0x01 == 0
    assert s.loads(payload) == blob


def test_reader_without_threshold_reads_compressed_payloads() -> None:
    writer = make_serializer("json", compress_threshold=0)
    assert make_serializer("json").loads(writer.dumps(["a"] * 500)) == ["a"] * 500


# -- garbage ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xca",
        b"\xcap",
        b"\xcap\x00",  # empty pickle body
        b"\xcaj\x00{not json",
        b"\xcap\x01not zlib",
        b"\xcaz\x00body",  # unknown format
        b"\xcap\x80body",  # unknown flag
        b"\x80\x05\x95\x00",  # a bare pickle, no header
        b"hello",
        bytes(range(256)),
    ],
    ids=repr,
)
def test_garbage_raises_serialization_error(payload: bytes) -> None:
    with pytest.raises(SerializationError):
        make_serializer("pickle").loads(payload)


@pytest.mark.parametrize("name", FORMATS)
def test_every_truncation_of_a_payload_raises_serialization_error(name: str) -> None:
    s = make_serializer(name, signing_key=KEY)
    payload = s.dumps(ENTRY_FOREVER)
    for cut in range(len(payload)):
        with pytest.raises(SerializationError):
            s.loads(payload[:cut])


def test_every_truncation_of_an_unsigned_pickle_raises_serialization_error() -> None:
    s = make_serializer("pickle")
    payload = s.dumps({"k": [1, 2, 3], "s": "text"})
    for cut in range(len(payload)):
        with pytest.raises(SerializationError):
            s.loads(payload[:cut])


def test_decoding_error_is_a_provider_error_carrying_its_cause() -> None:
    with pytest.raises(SerializationError) as info:
        make_serializer("pickle").loads(b"\xcap\x00\x80\x05garbage")
    assert isinstance(info.value, ProviderError)
    assert info.value.__cause__ is not None


def test_pickle_naming_a_missing_class_raises_serialization_error() -> None:
    body = b"cno_such_module_for_cachekit\nCls\n."  # GLOBAL opcode, protocol 0
    with pytest.raises(SerializationError) as info:
        make_serializer("pickle").loads(b"\xcap\x00" + body)
    assert isinstance(info.value.__cause__, ImportError)


def test_text_payload_is_refused() -> None:
    with pytest.raises(SerializationError):
        make_serializer().loads("42")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name, value",
    [
        ("pickle", lambda: 1),
        ("msgpack", [2**70]),
        ("json", "lone surrogate \ud800"),
    ],
)
def test_value_the_format_cannot_encode_raises_serialization_error(name: str, value: Any) -> None:
    with pytest.raises(SerializationError) as info:
        make_serializer(name).dumps(value)
    assert info.value.__cause__ is not None


# -- cross-format reading ---------------------------------------------------------------------------
def test_pickle_serializer_reads_json_and_msgpack_payloads() -> None:
    reader = make_serializer("pickle")
    assert reader.loads(make_serializer("json").dumps({"a": 1})) == {"a": 1}
    assert reader.loads(make_serializer("msgpack").dumps({"a": 1})) == {"a": 1}


def test_json_serializer_refuses_pickle_payloads() -> None:
    payload = make_serializer("pickle").dumps({"a": 1})
    with pytest.raises(SerializationError, match="refused"):
        make_serializer("json").loads(payload)
    with pytest.raises(SerializationError, match="refused"):
        make_serializer("msgpack").loads(payload)


# -- signing ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", FORMATS)
def test_signed_payload_round_trips(name: str) -> None:
    s = make_serializer(name, signing_key="s3cret", compress_threshold=16)
    assert s.signed
    assert s.loads(s.dumps(ENTRY)) == expected(name, ENTRY)


@pytest.mark.parametrize("index", [1, 2, 3, 20, 34, 35, -1])
def test_tampered_signed_payload_raises_tampered_error(index: int) -> None:
    s = make_serializer("pickle", signing_key=KEY)
    payload = s.dumps({"user": "ada", "admin": False})
    with pytest.raises(TamperedPayloadError):
        s.loads(flip(payload, index % len(payload)))


def test_payload_signed_with_another_key_is_rejected() -> None:
    payload = make_serializer("pickle", signing_key=b"other").dumps("x")
    with pytest.raises(TamperedPayloadError):
        make_serializer("pickle", signing_key=KEY).loads(payload)


@pytest.mark.parametrize("name", FORMATS)
def test_unsigned_payload_is_rejected_in_signed_mode(name: str) -> None:
    payload = make_serializer(name).dumps({"a": 1})
    with pytest.raises(TamperedPayloadError, match="unsigned"):
        make_serializer(name, signing_key=KEY).loads(payload)


def test_raw_ints_are_accepted_unsigned_in_signed_mode() -> None:
    assert make_serializer("pickle", signing_key=KEY).loads(b"17") == 17


def test_reader_without_key_accepts_signed_payloads() -> None:
    payload = make_serializer("pickle", signing_key=KEY).dumps([1])
    assert make_serializer("pickle").loads(payload) == [1]


def test_env_key_is_used_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_SIGNING_KEY, "from-env")
    assert not make_serializer("pickle").signed
    from_env = make_serializer("pickle", use_env_key=True)
    assert from_env.signed
    payload = from_env.dumps("v")
    assert make_serializer("pickle", signing_key="from-env").loads(payload) == "v"
    explicit = make_serializer("pickle", signing_key="explicit", use_env_key=True)
    with pytest.raises(TamperedPayloadError):
        explicit.loads(payload)


def test_empty_env_key_means_unsigned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_SIGNING_KEY, "")
    assert not make_serializer("pickle", use_env_key=True).signed


def test_empty_key_and_unknown_name_are_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        make_serializer("pickle", signing_key=b"")
    with pytest.raises(ValueError, match="pickle, json, msgpack"):
        make_serializer("yaml")


def test_tag_is_standard_hmac_sha256_over_header_and_body() -> None:
    import hashlib
    import hmac

    payload = make_serializer("json", signing_key=KEY).dumps({"a": 1})
    assert payload[35:] == b'{"a":1}'
    assert payload[3:35] == hmac.digest(KEY, payload[:3] + payload[35:], hashlib.sha256)


def test_serializer_pickles_with_its_settings() -> None:
    import pickle

    s = pickle.loads(pickle.dumps(make_serializer("json", signing_key=KEY, compress_threshold=8)))
    assert (s.name, s.compress_threshold, s.signed) == ("json", 8, True)
    assert s.loads(make_serializer("json", signing_key=KEY).dumps([1])) == [1]


def test_repr_does_not_show_the_key() -> None:
    text = repr(make_serializer("json", signing_key="hunter2"))
    assert "hunter2" not in text and "signed=True" in text


# -- hostile pickles --------------------------------------------------------------------------------
class Exploit:
    """Unpickling this runs ``exec``, which writes a marker file: the classic pickle attack."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def exploit_body(marker: Path) -> bytes:
    import pickle

    return pickle.dumps(Exploit(marker), protocol=pickle.HIGHEST_PROTOCOL)


def test_control_unsigned_pickle_mode_would_run_the_exploit(tmp_path: Path) -> None:
    # Proves the exploit is real, so its absence in the tests below means something.
    marker = tmp_path / "marker"
    make_serializer("pickle").loads(b"\xcap\x00" + exploit_body(marker))
    assert marker.read_text() == "pwned"


def test_exploit_without_signature_is_rejected_unrun_in_signed_mode(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    signed = make_serializer("pickle", signing_key=KEY)
    for flags in (b"\x00", b"\x01"):
        with pytest.raises(TamperedPayloadError):
            signed.loads(b"\xcap" + flags + exploit_body(marker))
    assert not marker.exists()


def test_exploit_signed_with_a_guessed_key_is_rejected_unrun(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    forged = make_serializer("pickle", signing_key=b"guess").dumps(Exploit(marker))
    assert not marker.exists()  # dumping does not run it
    with pytest.raises(TamperedPayloadError):
        make_serializer("pickle", signing_key=KEY).loads(forged)
    assert not marker.exists()


def test_exploit_spliced_after_a_genuine_signature_is_rejected_unrun(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    signed = make_serializer("pickle", signing_key=KEY)
    genuine = signed.dumps("harmless")
    spliced = genuine[:35] + exploit_body(marker)
    with pytest.raises(TamperedPayloadError):
        signed.loads(spliced)
    assert not marker.exists()


def test_bare_pickle_without_header_is_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    for s in (make_serializer("pickle"), make_serializer("pickle", signing_key=KEY)):
        with pytest.raises(SerializationError):
            s.loads(exploit_body(marker))
    assert not marker.exists()


def test_json_serializer_never_unpickles_even_unsigned(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    with pytest.raises(SerializationError):
        make_serializer("json").loads(b"\xcap\x00" + exploit_body(marker))
    assert not marker.exists()


# -- optional msgpack -------------------------------------------------------------------------------
def test_missing_msgpack_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tagged, "_msgpack", None)
    monkeypatch.setitem(sys.modules, "msgpack", None)
    with pytest.raises(MissingExtraError, match=r"cachekit-config\[msgpack\]"):
        make_serializer("msgpack")


def test_msgpack_payload_without_msgpack_installed_is_a_serialization_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    payload = make_serializer("msgpack").dumps([1])
    monkeypatch.setattr(tagged, "_msgpack", None)
    monkeypatch.setitem(sys.modules, "msgpack", None)
    with pytest.raises(SerializationError) as info:
        make_serializer("pickle").loads(payload)
    assert isinstance(info.value.__cause__, MissingExtraError)


def test_module_docstring_examples_run() -> None:
    result = doctest.testmod(serializers)
    assert result.attempted > 5 and result.failed == 0


# -- properties -------------------------------------------------------------------------------------
scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text()
)


def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return (
        st.lists(children, max_size=5)
        | st.tuples(children, children)
        | st.dictionaries(st.text(), children, max_size=5)
    )


json_like = st.recursive(scalars, containers, max_leaves=20)
msgpack_like = st.recursive(scalars | st.binary(), containers, max_leaves=20)
pickle_like = st.recursive(
    scalars | st.binary() | st.integers() | st.frozensets(st.integers(), max_size=3),
    lambda children: containers(children) | st.dictionaries(st.integers(), children, max_size=3),
    max_leaves=20,
)
hashable = st.recursive(
    scalars | st.binary(max_size=8) | st.decimals(allow_nan=False) | st.uuids() | st.dates(),
    lambda children: st.tuples(children, children) | st.frozensets(children, max_size=3),
    max_leaves=6,
)
tagged_scalars = (
    scalars | st.binary() | st.decimals(allow_nan=False) | st.uuids() | st.dates() | st.times()
    | st.datetimes() | st.datetimes(timezones=st.timezones()) | st.timedeltas()
)
tagged_like = st.recursive(
    tagged_scalars,
    lambda children: containers(children)
    | st.sets(hashable, max_size=3)
    | st.frozensets(hashable, max_size=3)
    | st.dictionaries(hashable, children, max_size=3)
    | st.dictionaries(st.sampled_from(["~t", "~m", "~b", "~x"]), children, max_size=1),
    max_leaves=20,
)


def same_types(a: Any, b: Any) -> bool:
    """Equal values of the same types all the way down (``==`` alone says ``(1,) == [1]`` is False but
    ``{1} == frozenset({1})`` is True)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return all(same_types(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return all(same_types(a[k], b[k]) for k in a) and all(
            same_types(k, next(j for j in b if j == k)) for k in a)
    if isinstance(a, (datetime.datetime, datetime.time)):
        return a.tzinfo == b.tzinfo or a.utcoffset() == b.utcoffset()
    return True


options = st.fixed_dictionaries(
    {
        "compress_threshold": st.none() | st.integers(0, 64),
        "signing_key": st.none() | st.binary(min_size=1, max_size=16),
    }
)
quick = settings(max_examples=150, deadline=None)


@quick
@given(value=pickle_like, opts=options)
def test_property_pickle_round_trip_is_exact(value: Any, opts: dict[str, Any]) -> None:
    s = make_serializer("pickle", **opts)
    back = s.loads(s.dumps(value))
    assert back == value and type(back) is type(value)


@quick
@given(value=tagged_like, opts=options)
def test_property_json_round_trip_is_exact(value: Any, opts: dict[str, Any]) -> None:
    s = make_serializer("json", **opts)
    back = s.loads(s.dumps(value))
    assert back == value and same_types(back, value)


@quick
@given(value=tagged_like, opts=options)
def test_property_msgpack_round_trip_is_exact(value: Any, opts: dict[str, Any]) -> None:
    s = make_serializer("msgpack", **opts)
    back = s.loads(s.dumps(value))
    assert back == value and same_types(back, value)


@quick
@given(value=json_like, name=st.sampled_from(FORMATS), opts=options)
def test_property_a_headed_payload_never_looks_like_an_int(
    value: Any, name: str, opts: dict[str, Any]
) -> None:
    payload = make_serializer(name, **opts).dumps(value)
    assert (type(value) is int) == bool(INT_PAYLOAD.fullmatch(payload))


@quick
@given(value=json_like, name=st.sampled_from(FORMATS), data=st.data())
def test_property_any_flipped_byte_of_a_signed_payload_is_rejected(value: Any, name: str, data: Any) -> None:
    s = make_serializer(name, signing_key=KEY, compress_threshold=32)
    payload = s.dumps(value)
    if type(value) is int:
        return
    index = data.draw(st.integers(0, len(payload) - 1))
    expected_error = TamperedPayloadError if index >= 3 else SerializationError
    with pytest.raises(expected_error):
        s.loads(flip(payload, index))


headers = st.sampled_from(
    [b"", b"\xca", b"\xcap\x00", b"\xcaj\x00", b"\xcam\x00", b"\xcap\x01", b"\xcaj\x02", b"\xcaJ\x00",
     b"\xcaM\x00", b'\xcaJ\x00{"~m":', b'\xcaJ\x00{"~dt":']
)


@quick
@given(head=headers, tail=st.binary(max_size=64), name=st.sampled_from(FORMATS))
def test_property_random_bytes_decode_or_raise_only_serialization_error(
    head: bytes, tail: bytes, name: str
) -> None:
    s: Serializer = make_serializer(name)
    try:
        s.loads(head + tail)
    except Exception as exc:
        assert isinstance(exc, SerializationError), repr(exc)


@quick
@given(data=st.binary(max_size=64))
def test_property_random_bytes_never_pass_a_signed_serializer_unless_a_number(data: bytes) -> None:
    s = make_serializer("pickle", signing_key=KEY)
    if INT_PAYLOAD.fullmatch(data):
        assert s.loads(data) == int(data)
    else:
        with pytest.raises(SerializationError):
            s.loads(data)


@pytest.mark.parametrize("name", FORMATS)
def test_loads_many_answers_as_loads_does_each(name: str) -> None:
    plain = Serializer(name, compress_threshold=64)
    signed = Serializer(name, signing_key=KEY)
    values = [ENTRY, ENTRY_FOREVER, "x" * 500, 7, None, {"k": [1, 2]}]
    for s in (plain, signed):
        payloads = [s.dumps(v) for v in values]
        assert s.loads_many(payloads) == [s.loads(p) for p in payloads]
        same = [s.dumps(ENTRY)] * 5  # one header: the batch path
        assert s.loads_many(same) == [s.loads(p) for p in same]
        assert s.loads_many([payloads[0], None, payloads[3]], absent="-") == [s.loads(payloads[0]), "-", 7]
        assert s.loads_many([bytearray(payloads[0])]) == [s.loads(payloads[0])]
    assert plain.loads_many([]) == []


@pytest.mark.parametrize("name", FORMATS)
def test_loads_many_raises_for_a_bad_payload_as_loads_does(name: str) -> None:
    s = Serializer(name)
    good = s.dumps(ENTRY)
    bad = good[:3] + b"\xff garbage"  # a known header over a body that does not decode
    with pytest.raises(SerializationError) as one:
        s.loads(bad)
    with pytest.raises(SerializationError) as many:
        s.loads_many([good, bad, good])
    assert str(many.value) == str(one.value)
    with pytest.raises(TamperedPayloadError):
        Serializer(name, signing_key=KEY).loads_many([good])  # unsigned: refused, batch or not


def test_a_json_serializer_never_unpickles_in_a_batch() -> None:
    pickled = Serializer("pickle").dumps(ENTRY)
    with pytest.raises(SerializationError, match="only pickle unpickles"):
        Serializer("json").loads_many([pickled, pickled])


@pytest.mark.parametrize("text", [b" 1", b"1 ", b"\n[1, 2]\n", b"[1,2] x", b"", b"nul", b'{"~t":[1,null]}', b'"a" "b"'])
def test_tagged_json_loads_reads_and_refuses_what_the_json_decoder_does(text: bytes) -> None:
    import json

    decoder = json.JSONDecoder(object_hook=tagged.untag)
    try:
        want: Any = decoder.decode(text.decode())
    except json.JSONDecodeError as exc:
        with pytest.raises(json.JSONDecodeError) as got:
            tagged.tagged_json_loads(text)
        assert str(got.value) == str(exc)
    else:
        assert tagged.tagged_json_loads(text) == want


def test_without_orjson_the_json_format_uses_the_stdlib_codecs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "orjson", None)  # import orjson raises ImportError
    monkeypatch.setattr(fastjson, "_orjson", None)  # not imported yet
    assert not fastjson.available()
    assert fastjson.json_codec() == (tagged.tagged_json_dumps, tagged.tagged_json_loads)
    s = Serializer("json")
    assert s.loads(s.dumps(((1, 2), {b"x"}))) == ((1, 2), {b"x"})
