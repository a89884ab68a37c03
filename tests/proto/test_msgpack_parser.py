"""sioserver.proto.socketio.msgpack_parser: the msgpack wire format (socket.io-msgpack-parser 3.x, whose
bytes are notepack.io 2.2.0's), vectors frozen from the Node reference, then properties.
"""

from __future__ import annotations

import math

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sioserver.proto.socketio import (
    BINARY_ACK,
    BINARY_EVENT,
    CONNECT,
    EVENT,
    MAX_ACK_ID,
    MsgpackParser,
    Packet,
    ack_packet,
    connect_error_packet,
    connect_packet,
    disconnect_packet,
    event_packet,
)
from tests.proto.socketio_support import (
    MSGPACK,
    decode,
    feed_all,
    mutated,
    nested,
    packets,
    reject,
)

# --- msgpack parser (socket.io-msgpack-parser 3.x) --------------------------------------------------


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


UNDEFINED = b"\xd4\x00\x00"  # notepack.io's undefined: fixext 1, type 0


def js_date(ms):
    """notepack.io's Date: fixext 8, type 0, int32 high + uint32 low milliseconds."""
    return b"\xd7\x00" + (ms // 2**32).to_bytes(4, "big", signed=True) + (ms % 2**32).to_bytes(4, "big")


def test_msgpack_encodes_keys_in_node_server_order():
    # The Node server builds {type, data}, adds id for an ack, then nsp.
    assert MSGPACK.encode(event_packet("x", b"\x01", nsp="/a", id=3)) == (
        b"\x84\xa4type\x02\xa4data\x92\xa1x\xc4\x01\x01\xa2id\x03\xa3nsp\xa2/a",
    )
    assert MSGPACK.encode(Packet(CONNECT)) == (b"\x82\xa4type\x00\xa3nsp\xa1/",)


def test_msgpack_binary_types_map_to_event_and_ack():
    assert MSGPACK.encode(Packet(BINARY_EVENT, "/", ["x"]))[0] == pack({"type": 2, "data": ["x"], "nsp": "/"})
    assert MSGPACK.encode(Packet(BINARY_ACK, "/", [], 1))[0] == pack({"type": 3, "data": [], "id": 1, "nsp": "/"})


def test_msgpack_bytes_like_go_out_as_bin():
    (out,) = MSGPACK.encode(event_packet("x", bytearray(b"a"), memoryview(b"b"), (1, 2)))
    assert msgpack.unpackb(out) == {"type": 2, "data": ["x", b"a", b"b", [1, 2]], "nsp": "/"}


def test_msgpack_lone_surrogates_go_out_as_replacement_characters():
    (out,) = MSGPACK.encode(event_packet("x", "a\ud800b", {"\udfff": 1}))
    assert decode([out], MSGPACK).data == ["x", "a\ufffdb", {"\ufffd": 1}]


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        (["x", {1: "a"}], TypeError, "map keys must be str"),
        (["x", {1, 2}], TypeError, "cannot be sent"),
        (["x", object()], TypeError, "cannot be sent"),
        (["x", 2**64], ValueError, "out of msgpack range"),
        (["x", nested(64)], ValueError, "max_depth=64"),
    ],
)
def test_msgpack_encoder_refuses(data, error, match):
    with pytest.raises(error, match=match):
        MSGPACK.encode(Packet(EVENT, "/", data))


def test_msgpack_round_trip_keeps_nan():
    got = decode(MSGPACK.encode(event_packet("x", math.nan, -0.0, 2**64 - 1, -(2**63))), MSGPACK)
    assert math.isnan(got.data[1]) and got.data[2:] == [-0.0, 2**64 - 1, -(2**63)]


def test_msgpack_undefined_is_absent():
    # The Node client's CONNECT without auth: {type: 0, data: undefined, nsp: "/admin"}
    raw = b"\x83\xa4type\x00\xa4data" + UNDEFINED + b"\xa3nsp\xa6/admin"
    assert decode([raw], MSGPACK) == Packet(CONNECT, "/admin")
    raw = b"\x84\xa4type\x02\xa4data\x93\xa1x" + UNDEFINED + b"\x82\xa1a" + UNDEFINED + b"\xa1b\x01" + \
        b"\xa2id" + UNDEFINED + b"\xa3nsp\xa1/"
    assert decode([raw], MSGPACK) == event_packet("x", None, {"b": 1})


def test_msgpack_nil_data_and_id_are_absent():
    # python-socketio's msgpack packets carry "data": None (socket.io-msgpack-parser refuses them).
    assert decode([pack({"type": 1, "data": None, "nsp": "/"})], MSGPACK) == disconnect_packet()
    assert decode([pack({"type": 0, "data": None, "nsp": "/", "id": None})], MSGPACK) == Packet(CONNECT)


def typed_array(payload):
    """notepack.io (Node) writes an ArrayBuffer / typed array as ext 8, 16 or 32 of type 0."""
    n = len(payload)
    head = b"\xc7" + n.to_bytes(1, "big") if n < 256 else (
        b"\xc8" + n.to_bytes(2, "big") if n < 65536 else b"\xc9" + n.to_bytes(4, "big"))
    return head + b"\x00" + payload


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 8, 16, 300, 70_000])
def test_msgpack_typed_arrays_are_bytes(size):
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    raw = b"\x83\xa4type\x02\xa4data\x92\xa1x" + typed_array(payload) + b"\xa3nsp\xa1/"
    assert decode([raw], MSGPACK).data == ["x", payload]


def test_msgpack_fixext_and_ext8_of_the_same_length_are_told_apart():
    # notepack.io: undefined = d4 00 00, Uint8Array([0]) = c7 01 00 00; Date = d7 00 .., 8-byte
    # typed array = c7 08 00 ... The unpacker's ext_hook sees the same (0, data) for both.
    raw = (b"\x83\xa4type\x02\xa4data\x96\xa1x" + UNDEFINED + b"\xc7\x01\x00\x00" + js_date(0)
           + b"\xc7\x08\x00" + b"\x00" * 8 + b"\x81\xa1k" + UNDEFINED + b"\xa3nsp\xa1/")
    assert decode([raw], MSGPACK).data == ["x", None, b"\x00", "1970-01-01T00:00:00.000Z", b"\x00" * 8, {}]


@pytest.mark.parametrize(
    ("ms", "iso"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1_700_000_000_123, "2023-11-14T22:13:20.123Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (-62_198_755_200_000, "-000001-01-01T00:00:00.000Z"),
        (-62_167_219_200_000, "0000-01-01T00:00:00.000Z"),
        (253_402_300_800_000, "+010000-01-01T00:00:00.000Z"),
        (8_640_000_000_000_000, "+275760-09-13T00:00:00.000Z"),
        (-8_640_000_000_000_000, "-271821-04-20T00:00:00.000Z"),
    ],
)
def test_msgpack_dates_become_the_iso_string_json_stringify_writes(ms, iso):
    # The expected strings are what Node's new Date(ms).toISOString() prints.
    raw = b"\x83\xa4type\x02\xa4data\x92\xa1d" + js_date(ms) + b"\xa3nsp\xa1/"
    assert decode([raw], MSGPACK).data == ["d", iso]


def test_msgpack_dates_out_of_range_are_refused():
    raw = b"\x83\xa4type\x02\xa4data\x92\xa1d" + js_date(8_640_000_000_000_001) + b"\xa3nsp\xa1/"
    reject([raw], "Date out of range", MSGPACK)


def msgpack_event(*args, **extra):
    return pack({"type": 2, "data": ["x", *args], "nsp": "/", **extra})


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"", "invalid msgpack"),
        (b"\xc1", "invalid msgpack"),
        (b"\x92\x01", "invalid msgpack"),
        (msgpack_event() + b"\x00", "invalid msgpack"),
        (b"\x82\xa4type\x02\x91\x01\x02", "invalid msgpack"),  # unhashable key
        (pack([2, "/", ["x"]]), "must be a map"),
        (pack({"type": 5, "nsp": "/", "data": ["x"]}), "unknown packet type 5"),
        (pack({"type": -1, "nsp": "/"}), "unknown packet type"),
        (pack({"type": True, "nsp": "/"}), "unknown packet type"),
        (pack({"type": 2.0, "nsp": "/", "data": ["x"]}), "unknown packet type"),
        (pack({"nsp": "/", "data": ["x"]}), "unknown packet type None"),
        (pack({"type": 2, "data": ["x"]}), "namespace"),
        (pack({"type": 2, "nsp": "admin", "data": ["x"]}), "namespace"),
        (pack({"type": 2, "nsp": b"/", "data": ["x"]}), "namespace"),
        (pack({"type": 2, "nsp": "/", "data": ["x"], "id": -1}), "ack id"),
        (pack({"type": 2, "nsp": "/", "data": ["x"], "id": 1.0}), "ack id"),
        (pack({"type": 2, "nsp": "/", "data": ["x"], "id": MAX_ACK_ID + 1}), "ack id"),
        (pack({"type": 2, "nsp": "/", "data": []}), "non-empty array"),
        (pack({"type": 2, "nsp": "/", "data": "x"}), "non-empty array"),
        (pack({"type": 2, "nsp": "/", "data": ["connect"]}), "reserved event name"),
        (pack({"type": 2, "nsp": "/", "data": [b"x"]}), "string or a number"),
        (pack({"type": 3, "nsp": "/", "data": []}), "ACK without an id"),
        (pack({"type": 0, "nsp": "/", "data": ["x"]}), "CONNECT payload"),
        (pack({"type": 1, "nsp": "/", "data": {}}), "DISCONNECT with a payload"),
        (pack({"type": 4, "nsp": "/"}), "CONNECT_ERROR payload"),
        (pack({"type": 0, "nsp": "/", "id": 1}), "CONNECT with an ack id"),
        (msgpack_event({1: "a"}), "keys must be strings"),
        (msgpack_event({b"k": "a"}), "keys must be strings"),
        (msgpack_event([{None: 1}]), "keys must be strings"),
        (msgpack_event(msgpack.ExtType(5, b"a")), "extension type 5"),
        (msgpack_event(msgpack.Timestamp(1, 0)), "extension type -1"),
        (msgpack_event({"t": msgpack.Timestamp(1, 0)}), "extension type -1"),
        (msgpack_event(msgpack.ExtType(0, b"ab")), "fixext of 2 bytes"),  # Python writes d5 00 61 62
        (msgpack_event(msgpack.ExtType(0, b"x" * 16)), "fixext of 16 bytes"),
        (msgpack_event(nested(64)), "max_depth=64"),
        (msgpack_event({"a": nested(63)}), "max_depth=64"),
        (b"\x91" * 5000 + b"\xc0", "invalid msgpack"),
    ],
)
def test_msgpack_malformed_is_refused(raw, match):
    reject([raw], match, MSGPACK)


def test_msgpack_fixext_fixtures_are_what_they_claim():
    assert b"\xd5\x00ab" in msgpack_event(msgpack.ExtType(0, b"ab"))
    assert b"\xd8\x00" + b"x" * 16 in msgpack_event(msgpack.ExtType(0, b"x" * 16))


def test_msgpack_text_message_is_refused():
    reject(['2["x"]'], "expects binary", MSGPACK)


def test_msgpack_size_limit_and_memoryview_input():
    parser = MsgpackParser(max_size=len(msgpack_event()))
    assert decode([memoryview(msgpack_event())], parser) == event_packet("x")
    assert decode([bytearray(msgpack_event())], parser) == event_packet("x")
    reject([msgpack_event("y")], "max_size", parser)


def test_msgpack_invalid_utf8_becomes_replacement_characters():
    # As Node's Buffer.toString reads it in notepack.io.
    raw = pack({"type": 2, "nsp": "/", "data": ["x"]}).replace(b"\xa1x", b"\xa2\xff\xfe")
    assert decode([raw], MSGPACK).data == ["\ufffd\ufffd"]


def test_msgpack_ignores_extra_keys_and_has_no_pending_state():
    decoder = MSGPACK.decoder()
    assert decoder.feed(msgpack_event(options={"compress": True})) == event_packet("x")
    assert decoder.pending is False
    decoder.reset()


def test_msgpack_accepts_numbers_as_event_names_and_deep_enough_data():
    assert decode([pack({"type": 2, "nsp": "/", "data": [7, nested(62)]})], MSGPACK).data == [7, nested(62)]


NODE_MSGPACK_DECODE_VECTORS = [
    ("82a47479706500a36e7370a12f", Packet(CONNECT)),
    ("83a47479706500a36e7370a62f61646d696ea46461746181a5746f6b656ea3313233",
     Packet(CONNECT, "/admin", {"token": "123"})),
    ("82a47479706501a36e7370a62f61646d696e", disconnect_packet("/admin")),
    ("84a47479706502a36e7370a62f61646d696ea46461746192ae70726f6a6563743a64656c6574657ba269640d",
     event_packet("project:delete", 123, nsp="/admin", id=13)),
    ("84a47479706503a36e7370a62f61646d696ea46461746190a269640d", ack_packet(13, nsp="/admin")),
    ("84a47479706502a36e7370a62f61646d696ea46461746193a17881a16192c4010181a162c4020203c400a2696407",
     event_packet("x", {"a": [b"\x01", {"b": b"\x02\x03"}]}, b"", nsp="/admin", id=7)),
    ("83a47479706504a36e7370a12fa46461746181a76d657373616765ae4e6f7420617574686f72697a6564",
     connect_error_packet("Not authorized")),
    # notepack.io writes a lone surrogate as U+10000 (it pairs it with whatever follows)
    ("83a47479706502a36e7370a12fa46461746196a2c3a9a6e697a5e69caca3e280a8a4f0908080a4f09f9880a3010a22",
     event_packet("é", "日本", "\u2028", "\U00010000", "😀", "\x01\n\"")),
    ("83a47479706502a36e7370a12fa46461746199a16e00ffcb3ff8000000000000cf0de0b6b3a7640000cf001fffffffffffffc0c000",
     event_packet("n", 0, -1, 1.5, 10**18, MAX_ACK_ID, None, None, 0)),
    # captured from socket.io-client 4.8: CONNECT to /admin without auth (data: undefined)
    ("83a47479706500a464617461d40000a36e7370a62f61646d696e", Packet(CONNECT, "/admin")),
    # captured: the client's emit("hello", "w", Buffer, Uint8Array, undefined, new Date(0), cb),
    # with the client's extra "options" key
    ("85a47479706502a46461746196a568656c6c6fa177c40103c702000405d40000d7000000000000000000"
     "a76f7074696f6e7381a8636f6d7072657373c3a2696400a36e7370a12f",
     event_packet("hello", "w", b"\x03", b"\x04\x05", None, "1970-01-01T00:00:00.000Z", id=0)),
    # captured from the socket.io 4.8 server: its CONNECT reply carries pid: undefined
    ("83a47479706500a46461746182a3736964b4702d44457037662d3864327a7763685541414143a3706964d40000a36e7370a12f",
     connect_packet("p-DEp7f-8d2zwchUAAAC")),
    # captured from the server: the ack of the emit above, keys {id, type, data, nsp}
    ("84a2696400a47479706503a46461746192a26f6bc4020102a36e7370a12f", ack_packet(0, "ok", b"\x01\x02")),
]


@pytest.mark.parametrize(("hexed", "packet"), NODE_MSGPACK_DECODE_VECTORS)
def test_node_msgpack_vectors_decode(hexed, packet):
    assert decode([bytes.fromhex(hexed)], MSGPACK) == packet


# Our encoding; socket.io-msgpack-parser decoded each to the same packet. The first was captured
# byte for byte from the Node server: socket.emit("withack", 1, callback).


NODE_MSGPACK_ENCODE_VECTORS = [
    (event_packet("withack", 1, id=0), "84a47479706502a46461746192a77769746861636b01a2696400a36e7370a12f"),
    (Packet(CONNECT), "82a47479706500a36e7370a12f"),
    (connect_packet("oSO0OpakMV_3jnilAAAA"),
     "83a47479706500a46461746181a3736964b46f534f304f70616b4d565f336a6e696c41414141a36e7370a12f"),
    (ack_packet(15, "bar", b"\x01\x02\x03\x04"),
     "84a47479706503a46461746192a3626172c40401020304a269640fa36e7370a12f"),
    (event_packet("x", {"a": [b"\x01", {"b": b"\x02\x03"}]}, b"", nsp="/admin", id=7),
     "84a47479706502a46461746193a17881a16192c4010181a162c4020203c400a2696407a36e7370a62f61646d696e"),
    (event_packet("é", "日本", "\u2028", "\ud800", "😀", "\x01\n\""),  # the reference reads U+FFFD
     "83a47479706502a46461746196a2c3a9a6e697a5e69caca3e280a8a3efbfbda4f09f9880a3010a22a36e7370a12f"),
]


@pytest.mark.parametrize(("packet", "hexed"), NODE_MSGPACK_ENCODE_VECTORS)
def test_node_msgpack_vectors_encode(packet, hexed):
    assert MSGPACK.encode(packet) == (bytes.fromhex(hexed),)


@given(packets())
def test_msgpack_round_trip(packet):
    assert decode(MSGPACK.encode(packet), MSGPACK) == packet


@given(st.lists(st.binary(max_size=60), max_size=4))
def test_msgpack_decoder_only_raises_protocol_errors_on_random_input(messages):
    feed_all(MSGPACK, messages)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), packets())
def test_mutated_msgpack_packets_only_raise_protocol_errors(data, packet):
    feed_all(MSGPACK, [data.draw(mutated(MSGPACK.encode(packet)[0]))])
