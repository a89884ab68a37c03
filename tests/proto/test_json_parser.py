"""sioserver.proto.socketio.json_parser: the default wire format (socket.io-parser 4.x): binary
attachments, the JSON the reference writes, what a receiver must refuse, limits, a json module of one's
own, vectors frozen from the Node reference, then properties.
"""

from __future__ import annotations

import json
import math
import os
import time

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sioserver.proto.socketio import (
    ACK,
    CONNECT,
    CONNECT_ERROR,
    EVENT,
    MAX_ACK_ID,
    RESERVED_EVENTS,
    JSONParser,
    Packet,
    ack_packet,
    connect_error_packet,
    connect_packet,
    disconnect_packet,
    event_packet,
    json_parser,
)
from tests.proto.socketio_support import (
    JSONP,
    MSGPACK,
    ROOMY,
    decode,
    eio,
    feed_all,
    json_scalars,
    json_values,
    mutated,
    nested,
    packets,
    placeholder,
    reject,
    with_bytes,
)

# --- Binary attachments ---------------------------------------------------------------------------


def test_bytes_like_anywhere_become_attachments_in_depth_first_order():
    data = ["up", {"a": [bytearray(b"1"), {"b": memoryview(b"22")}], "c": (b"333",)}, b""]
    encoded = JSONP.encode(event_packet(*data, nsp="/f", id=9))
    assert encoded == (
        '54-/f,9["up",{"a":[{"_placeholder":true,"num":0},{"b":{"_placeholder":true,"num":1}}],'
        '"c":[{"_placeholder":true,"num":2}]},{"_placeholder":true,"num":3}]',
        b"1", b"22", b"333", b"",
    )
    assert all(type(m) is bytes for m in encoded[1:])
    assert decode(encoded) == event_packet("up", {"a": [b"1", {"b": b"22"}], "c": [b"333"]}, b"", nsp="/f", id=9)


def test_placeholder_key_order_is_exact():
    assert JSONP.encode(ack_packet(0, b"x"))[0] == '61-0[{"_placeholder":true,"num":0}]'


def test_reconstruction_of_nested_binary():
    text = eio('452-["x",{"deep":[[{"k":{"_placeholder":true,"num":1}}]]},{"_placeholder":true,"num":0}]')
    assert decode([text, b"zero", b"one"]).data == ["x", {"deep": [[{"k": b"one"}]]}, b"zero"]


def test_decoder_accepts_bytearray_and_memoryview_attachments():
    got = decode([eio('451-["x",{"_placeholder":true,"num":0}]'), memoryview(b"ab")])
    assert got.data == ["x", b"ab"] and type(got.data[1]) is bytes
    assert decode([eio('451-["x",{"_placeholder":true,"num":0}]'), bytearray(b"ab")]).data == ["x", b"ab"]


def test_decoder_state_pending_and_reset():
    decoder = JSONP.decoder()
    assert decoder.feed(eio('452-["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')) is None
    assert decoder.pending
    assert decoder.feed(b"a") is None
    assert decoder.pending
    decoder.reset()
    assert not decoder.pending
    assert decoder.feed(eio('42["y"]')) == event_packet("y")


def test_placeholder_in_a_plain_event_is_just_data():
    # socket.io-parser only reconstructs BINARY_EVENT / BINARY_ACK packets.
    assert decode([eio('42["x",{"_placeholder":true,"num":0}]')]).data == ["x", placeholder(0)]


def test_placeholder_needs_true_not_truthy():
    text = eio('451-["x",{"_placeholder":1,"num":0},{"_placeholder":true,"num":0}]')
    assert decode([text, b"b"]).data == ["x", {"_placeholder": 1, "num": 0}, b"b"]


def test_bytes_are_refused_outside_event_and_ack():
    with pytest.raises(TypeError, match="only allowed in EVENT and ACK"):
        JSONP.encode(Packet(CONNECT, "/", {"token": b"x"}))
    with pytest.raises(TypeError, match="only allowed in EVENT and ACK"):
        JSONP.encode(Packet(CONNECT_ERROR, "/", {"message": "m", "data": b"x"}))


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ([b"x"], "no attachment is expected"),
        ([eio('451-["x",{"_placeholder":true,"num":0}]'), eio('42["y"]')], "pending"),
        ([eio('451-["x",{"_placeholder":true,"num":1}]'), b"a"], "bad placeholder num 1"),
        ([eio('451-["x",{"_placeholder":true,"num":-1}]'), b"a"], "bad placeholder"),
        ([eio('451-["x",{"_placeholder":true,"num":0.0}]'), b"a"], "bad placeholder"),
        ([eio('451-["x",{"_placeholder":true,"num":"0"}]'), b"a"], "bad placeholder"),
        ([eio('451-["x",{"_placeholder":true,"num":true}]'), b"a"], "bad placeholder"),
        ([eio('451-["x",{"_placeholder":true}]'), b"a"], "bad placeholder"),
        ([eio('452-["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}]'), b"a", b"b"], "used twice"),
        ([eio('452-["x",{"_placeholder":true,"num":1}]'), b"a", b"b"], "attachment 0 has no placeholder"),
        ([eio('451-["x"]'), b"a"], "attachment 0 has no placeholder"),
    ],
)
def test_bad_attachments_are_refused(messages, match):
    reject(messages, match)


# --- JSON as JavaScript writes it -----------------------------------------------------------------


def test_json_is_compact_keeps_key_order_and_non_ascii():
    packet = event_packet("é", {"z": 1, "a": [1, 2], "日本": "😀"}, "\u2028")
    assert JSONP.encode(packet) == ('2["é",{"z":1,"a":[1,2],"日本":"😀"},"\u2028"]',)


def test_control_characters_are_escaped_like_json_stringify():
    assert JSONP.encode(event_packet("c", '\x01\n"\\\t\x7f')) == ('2["c","\\u0001\\n\\"\\\\\\t\x7f"]',)


def test_lone_surrogates_are_escaped_like_json_stringify():
    # JSON.stringify (ES2019) writes a lone surrogate as an escape; raw, UTF-8 could not carry it.
    assert JSONP.encode(event_packet("s", "a\ud800b", "\udfff")) == ('2["s","a\\ud800b","\\udfff"]',)
    assert decode(JSONP.encode(event_packet("s", "a\ud800b"))) == event_packet("s", "a\ud800b")


def test_nan_and_infinity_become_null_as_in_javascript():
    packet = event_packet("n", math.nan, [math.inf], {"x": -math.inf}, 1.5)
    assert JSONP.encode(packet) == ('2["n",null,[null],{"x":null},1.5]',)


def test_nan_next_to_bytes():
    assert JSONP.encode(event_packet("n", math.nan, b"b")) == ('51-["n",null,{"_placeholder":true,"num":0}]', b"b")


def test_tuples_are_arrays():
    assert JSONP.encode(Packet(EVENT, "/", ("t", (1, 2)))) == ('2["t",[1,2]]',)
    assert JSONP.encode(Packet(ACK, "/", (), 1)) == ("31[]",)


def test_connect_error_may_be_a_string():
    assert JSONP.encode(Packet(CONNECT_ERROR, "/", "nope")) == ('4"nope"',)
    assert decode(['4"nope"']) == Packet(CONNECT_ERROR, "/", "nope")


@pytest.mark.parametrize("value", [{1, 2}, object(), 1j, {"k": {1}}])
def test_values_json_cannot_hold_raise_type_error(value):
    with pytest.raises(TypeError, match="not JSON serializable"):
        JSONP.encode(event_packet("x", value))


def test_unserializable_value_next_to_bytes_raises_type_error():
    with pytest.raises(TypeError, match="not JSON serializable"):
        JSONP.encode(event_packet("x", b"b", {1}))


def test_numeric_event_names():
    assert JSONP.encode(Packet(EVENT, "/", [1, "a"])) == ('2[1,"a"]',)
    assert decode(['2[1.5,"a"]']).data == [1.5, "a"]


def test_stdlib_fallback_encoder_writes_the_same():
    dumps = json_parser._make_stdlib_dumps(None)
    value = ["é", {"z": [1, 2.5, None, True]}, "\u2028"]
    assert dumps(value) == json_parser._stdlib_dumps(value) == '["é",{"z":[1,2.5,null,true]},"\u2028"]'
    with pytest.raises(json_parser._BinaryFound):
        dumps([b"x"])


# --- What a receiver must refuse -------------------------------------------------------------------


REJECTED_TEXT = [
    # unknown packet type
    ("", "unknown packet type"),  # socket.io-parser reads "" as CONNECT
    ("7", "unknown packet type"),
    ("9[]", "unknown packet type"),
    ("x", "unknown packet type"),
    ('\u0662["x"]', "unknown packet type"),
    # attachment count
    ('5-["x"]', "attachment count"),
    ('5x-["x"]', "attachment count"),
    ('50-["x"]', "attachment count"),
    ('5 1-["x"]', "attachment count"),  # socket.io-parser accepts " 1"
    ('5\u0661-["x"]', "attachment count"),  # ARABIC-INDIC DIGIT ONE: isdigit(), int() accept it
    ('5["x"]', "attachment count"),
    ('51["x"]', "attachment count"),
    ('511-["x"]', "11 attachments exceed max_attachments=10"),
    ('61234567-["x"]', "attachment count"),
    # ack id
    ('2 ["x"]', "payload must be"),  # socket.io-parser reads the space as ack id 0
    ('29007199254740992["x"]', "ack id out of range"),
    ('2' + "1" * 17 + '["x"]', "ack id out of range"),
    ('2' + "9" * 5000 + '["x"]', "ack id out of range"),
    # payload that is not JSON, or not the JSON JSON.parse reads
    ('2["x"', "invalid JSON"),
    ('2["x",NaN]', "invalid JSON"),
    ('2["x",Infinity]', "invalid JSON"),
    ('2["x",-Infinity]', "invalid JSON"),
    ('2["x"]x', "data after the JSON"),
    ('2["x"]["y"]', "data after the JSON"),
    ("0null", "payload must be"),
    ("0true", "payload must be"),
    ("0/admin,null", "payload must be"),
    ('2["x",1' + "0" * 5000 + "]", "invalid JSON"),  # int() digit limit
    # payload shape per type
    ("0[]", "CONNECT payload must be an object"),
    ('0"x"', "CONNECT payload must be an object"),
    ("012", "CONNECT with an ack id"),
    ("1{}", "DISCONNECT with a payload"),
    ("1[]", "DISCONNECT with a payload"),
    ("11", "DISCONNECT with an ack id"),
    ("2", "non-empty array"),
    ("2/admin", "non-empty array"),
    ("2/admin,", "non-empty array"),
    ("21", "non-empty array"),
    ("2[]", "non-empty array"),
    ('2{"a":1}', "non-empty array"),
    ('2"x"', "non-empty array"),
    ("2[true]", "string or a number"),
    ("2[null]", "string or a number"),
    ("2[{}]", "string or a number"),
    ('2[["x"]]', "string or a number"),
    ("3[]", "ACK without an id"),
    ("31", "ACK payload must be an array"),
    ("31{}", "ACK payload must be an array"),
    ('31"x"', "ACK payload must be an array"),
    ("4", "CONNECT_ERROR payload"),
    ("4[]", "CONNECT_ERROR payload"),
    ('41{"message":"x"}', "CONNECT_ERROR with an ack id"),
    ('51-{"x":{"_placeholder":true,"num":0}}', "non-empty array"),
    ('51-[{"_placeholder":true,"num":0}]', "string or a number"),
    ('61-{"_placeholder":true,"num":0}', "ACK payload must be an array"),
    ('61-[{"_placeholder":true,"num":0}]', "ACK without an id"),
]


@pytest.mark.parametrize(("text", "match"), REJECTED_TEXT)
def test_malformed_text_is_refused(text, match):
    reject([text], match)


@pytest.mark.parametrize("name", sorted(RESERVED_EVENTS))
def test_reserved_event_names_are_refused(name):
    reject([f'2["{name}",1]'], "reserved event name")
    reject([f'2/admin,5["{name}"]'], "reserved event name")
    reject([f'51-["{name}",{{"_placeholder":true,"num":0}}]'], "reserved event name")


def test_reserved_names_are_fine_as_arguments_and_in_acks():
    assert decode(['2["x","connect"]']).data == ["x", "connect"]
    assert decode(['31["disconnect"]']).data == ["disconnect"]


ACCEPTED_EDGES = [
    ('2["x"] \n', event_packet("x")),  # JSON.parse allows trailing whitespace
    ('2007["x"]', event_packet("x", id=7)),  # Number("007") is 7
    ('29007199254740991["x"]', event_packet("x", id=MAX_ACK_ID)),
    ('20["x"]', event_packet("x", id=0)),
    ("0/admin?x=1,", Packet(CONNECT, "/admin?x=1")),  # the name is the server's business
    ("0/", Packet(CONNECT, "/")),
    ("0/,", Packet(CONNECT, "/")),
    ("0{}", Packet(CONNECT, "/", {})),
    ('2/a/b,["x"]', event_packet("x", nsp="/a/b")),
    ('2["x",{"a":1,"a":2}]', event_packet("x", {"a": 2})),  # last key wins, as in JSON.parse
    ('2["x","\\ud800"]', event_packet("x", "\ud800")),
    ('2["x",1e400]', event_packet("x", math.inf)),  # JSON.parse gives Infinity too
    ('2["x",[[[[["deep"]]]]]]', event_packet("x", [[[[["deep"]]]]])),
]


@pytest.mark.parametrize(("text", "packet"), ACCEPTED_EDGES)
def test_edge_cases_that_are_valid(text, packet):
    assert decode([text]) == packet


def test_decoder_refuses_non_string_non_bytes():
    with pytest.raises(TypeError):
        JSONP.decoder().feed(123)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        MSGPACK.decoder().feed(None)  # type: ignore[arg-type]


def test_depth_limit_counts_the_outer_array():
    parser = JSONParser(max_depth=5)
    assert decode([JSONP.encode(event_packet("x", nested(4)))[0]], parser).data == ["x", nested(4)]
    reject([JSONP.encode(event_packet("x", nested(5)))[0]], "nested deeper than max_depth=5", parser)
    reject(['2["x",{"a":{"b":{"c":{"d":{}}}}}]'], "nested deeper", parser)
    assert parser.encode(event_packet("x", nested(4)))
    with pytest.raises(ValueError, match="max_depth=5"):
        parser.encode(event_packet("x", nested(5)))
    with pytest.raises(ValueError, match="max_depth=5"):
        parser.encode(event_packet("x", nested(5, leaf=b"b")))


def test_default_depth_is_64():
    assert decode([JSONP.encode(event_packet("x", nested(63)))[0]]).data[1] == nested(63)
    with pytest.raises(ValueError, match="max_depth=64"):
        JSONP.encode(event_packet("x", nested(64)))


@pytest.mark.parametrize(
    "text",
    [
        '2["x",' + "[" * 5000 + "]" * 5000 + "]",
        '2["x",' + "[" * 5000,
        '2["x",' + '{"a":' * 5000 + "1" + "}" * 5000 + "]",
        "0" + '{"a":' * 100_000,
        '2["x",' + "[1," * 5000 + "]",
    ],
)
def test_very_deep_json_is_a_protocol_error_not_a_recursion_error(text):
    reject([text])


def test_unbalanced_brackets_are_refused_before_parsing():
    reject(['2["x",' + "]" * 70 + "[" * 70 + "]"], "unbalanced")


def test_brackets_inside_strings_do_not_count():
    text = '2["x","' + "[{" * 10_000 + '\\"]","' + "]]\\\\" * 100 + '"]'
    assert decode([text]).data[0] == "x"


def test_many_shallow_containers_are_fine():
    data = ["x", [{"id": i, "tags": [i]} for i in range(1000)]]
    assert decode(JSONP.encode(Packet(EVENT, "/", data))).data == data


def test_depth_scan_is_linear_on_hostile_strings():
    # A backtracking string pattern would be quadratic here (every \" a new start).
    hostile = [
        '2["x",' + "[" * 100 + '"' + '\\"' * 300_000,
        '2["x",' + "[" * 100 + '"' + '\\"' * 300_000 + "\\",
        '2["x",' + '"a",' * 200_000 + "[" * 100,
    ]
    start = time.perf_counter()
    for text in hostile:
        reject([text], parser=JSONParser(max_size=10_000_000))
    assert time.perf_counter() - start < 2.0


def test_circular_data_is_refused_as_too_deep():
    loop: list = ["x"]
    loop.append(loop)
    with pytest.raises(ValueError, match="circular"):
        JSONP.encode(Packet(EVENT, "/", loop))
    with pytest.raises(ValueError, match="circular"):
        MSGPACK.encode(Packet(EVENT, "/", loop))


def test_size_limit():
    parser = JSONParser(max_size=20)
    assert decode(['2["' + "a" * 15 + '"]'], parser)
    reject(['2["' + "a" * 16 + '"]'], "max_size=20", parser)


def test_attachment_size_limit():
    parser = JSONParser(max_size=40)
    text = '51-["x",{"_placeholder":true,"num":0}]'
    assert decode([text, b"a" * 40], parser)
    reject([text, b"a" * 41], "attachment larger than max_size=40", parser)


def test_attachment_count_limit():
    parser = JSONParser(max_attachments=2)
    reject(['53-["x"]'], "3 attachments exceed max_attachments=2", parser)
    assert parser.encode(event_packet("x", b"1", b"2"))
    with pytest.raises(ValueError, match="3 attachments exceed max_attachments=2"):
        parser.encode(event_packet("x", b"1", b"2", b"3"))
    big = JSONParser(max_attachments=10_000)
    many = [b"%d" % i for i in range(1000)]
    assert decode(big.encode(event_packet("x", *many)), big).data == ["x", *many]


def test_default_attachment_limit_matches_socket_io_parser():
    assert decode(JSONP.encode(event_packet("x", *[b"b"] * 10))) == event_packet("x", *[b"b"] * 10)
    with pytest.raises(ValueError, match="max_attachments=10"):
        JSONP.encode(event_packet("x", *[b"b"] * 11))


# --- A JSON module of one's own --------------------------------------------------------------------


class RecordingJSON:
    """A ``json`` option: stdlib underneath, dumps to bytes (as orjson does), calls recorded."""

    def __init__(self):
        self.calls = []

    def dumps(self, obj):
        self.calls.append(("dumps", obj))
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()

    def loads(self, s):
        self.calls.append(("loads", s))
        return json.loads(s)


def test_custom_json_module_is_used_both_ways():
    module = RecordingJSON()
    parser = JSONParser(json=module)
    encoded = parser.encode(event_packet("x", {"b": b"1"}, "é", math.nan))
    assert encoded == ('51-["x",{"b":{"_placeholder":true,"num":0}},"é",null]', b"1")
    assert module.calls == [("dumps", ["x", {"b": placeholder(0)}, "é", None])]
    assert decode(encoded, parser) == event_packet("x", {"b": b"1"}, "é", None)
    assert module.calls[-1] == ("loads", '["x",{"b":{"_placeholder":true,"num":0}},"é",null]')


def test_custom_json_module_errors_are_protocol_errors():
    reject(['2["x"'], "invalid JSON", JSONParser(json=RecordingJSON()))
    reject(["2" + "[" * 5000], None, JSONParser(json=RecordingJSON()))


def test_stdlib_json_module_takes_the_fast_path():
    parser = JSONParser(json=json)
    assert parser._custom is None
    assert decode(parser.encode(event_packet("x", 1)), parser) == event_packet("x", 1)


# --- Vectors frozen from the Node reference ---------------------------------------------------------
# Produced by socket.io-parser 4.2.7 and socket.io-msgpack-parser 3.0.2 (notepack.io 2.2.0) under
# Node 20: Encoder().encode() of the packets below, and bytes captured between a socket.io 4.8
# server and a socket.io-client 4.8 client (engine "packet" / "packetCreate" events). Each vector
# was also checked the other way: the reference Decoder read our encoding back to the same packet.


NODE_DEFAULT_VECTORS = [
    (["0"], Packet(CONNECT)),
    (['0/admin,{"token":"123"}'], Packet(CONNECT, "/admin", {"token": "123"})),
    (['0{"sid":"oSO0OpakMV_3jnilAAAA"}'], connect_packet("oSO0OpakMV_3jnilAAAA")),
    (["1/admin,"], disconnect_packet("/admin")),
    (['2["hello",1]'], event_packet("hello", 1)),
    (['2/admin,13["project:delete",123]'], event_packet("project:delete", 123, nsp="/admin", id=13)),
    (["3/admin,13[]"], ack_packet(13, nsp="/admin")),
    (['51-["hello",{"_placeholder":true,"num":0}]', bytes.fromhex("01020304")],
     event_packet("hello", b"\x01\x02\x03\x04")),
    (['53-/admin,7["x",{"a":[{"_placeholder":true,"num":0},{"b":{"_placeholder":true,"num":1}}]},'
      '{"_placeholder":true,"num":2}]', b"\x01", b"\x02\x03", b""],
     event_packet("x", {"a": [b"\x01", {"b": b"\x02\x03"}]}, b"", nsp="/admin", id=7)),
    (['61-15["bar",{"_placeholder":true,"num":0}]', bytes.fromhex("01020304")],
     ack_packet(15, "bar", b"\x01\x02\x03\x04")),
    (['4{"message":"Not authorized"}'], connect_error_packet("Not authorized")),
    (['2["é","日本","\u2028","\\ud800","😀","\\u0001\\n\\""]'],
     event_packet("é", "日本", "\u2028", "\ud800", "😀", "\x01\n\"")),
    (['2["n",0,-1,1.5,1000000000000000000,9007199254740991,null,null,0]'],
     event_packet("n", 0, -1, 1.5, 10**18, MAX_ACK_ID, None, None, 0)),
    # captured: socket.emit("hey", "Jude", {n: 1.5, u: undefined, "é": "ü"}, Buffer.from([0xff]))
    (['51-["hey","Jude",{"n":1.5,"é":"ü"},{"_placeholder":true,"num":0}]', b"\xff"],
     event_packet("hey", "Jude", {"n": 1.5, "é": "ü"}, b"\xff")),
    # captured: the client's emit("hello", "w", Buffer, Uint8Array, undefined, new Date(0), cb)
    (['52-0["hello","w",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1},null,'
      '"1970-01-01T00:00:00.000Z"]', b"\x03", b"\x04\x05"],
     event_packet("hello", "w", b"\x03", b"\x04\x05", None, "1970-01-01T00:00:00.000Z", id=0)),
    (['0{"token":"t"}'], Packet(CONNECT, "/", {"token": "t"})),
    (['20["withack",1]'], event_packet("withack", 1, id=0)),
]


@pytest.mark.parametrize(("messages", "packet"), NODE_DEFAULT_VECTORS)
def test_node_default_parser_vectors(messages, packet):
    assert decode(messages) == packet
    assert JSONP.encode(packet) == tuple(messages)


# Reference encoder output (keys in the order of the packet object given to it) -> our packet.


@given(packets())
def test_json_round_trip(packet):
    assert decode(ROOMY.encode(packet), ROOMY) == packet


@given(packets(leaves=with_bytes | st.text(st.characters(codec=None, categories=["Cs", "Lo", "Zl"]))))
def test_json_round_trip_with_surrogates(packet):
    assert decode(ROOMY.encode(packet), ROOMY) == packet


@given(st.lists(st.text(max_size=60) | st.binary(max_size=20), max_size=6))
def test_json_decoder_only_raises_protocol_errors_on_random_input(messages):
    feed_all(JSONP, messages)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), packets())
def test_mutated_json_packets_only_raise_protocol_errors(data, packet):
    encoded = list(ROOMY.encode(packet))
    index = data.draw(st.integers(0, len(encoded) - 1))
    encoded[index] = data.draw(mutated(encoded[index]))
    if data.draw(st.booleans()):
        encoded = data.draw(st.permutations(encoded))
    feed_all(JSONP, encoded)


@given(json_values(json_scalars))
def test_nesting_check_agrees_with_the_parser(value):
    text = json.dumps(value)

    def depth(v):
        if isinstance(v, list | dict):
            children = v.values() if isinstance(v, dict) else v
            return 1 + max((depth(c) for c in children), default=0)
        return 0

    assume(depth(value) > 0)
    limit = depth(value)
    assert json_parser._nesting_error(text, 0, limit) is None
    if text.count("[") + text.count("{") > limit - 1:
        assert json_parser._nesting_error(text, 0, limit - 1) is not None


# --- json=orjson: the real module ---------------------------------------------------------------------


def orjson_module():
    if os.environ.get("CI") == "true":
        import orjson  # a test dependency: under CI its absence is a failure
    else:
        orjson = pytest.importorskip("orjson")
    return orjson


def test_orjson_writes_what_the_standard_library_writes():
    parser = JSONParser(json=orjson_module())
    for packet in (
        event_packet("x", {"b": 1, "é": [1.5, None, True]}, "\u2028", nsp="/a", id=3),
        event_packet("bin", {"b": b"\x01"}, [b"", b"\xff"]),  # orjson refuses bytes: placeholders
        event_packet("nan", math.nan, -math.inf),  # orjson writes null, as JSON.stringify
        ack_packet(7, "ok"),
        connect_packet("sid"),
    ):
        assert parser.encode(packet) == JSONP.encode(packet)
        assert decode(parser.encode(packet), parser) == decode(JSONP.encode(packet))


def test_orjson_refusals_match_the_standard_library():
    parser = JSONParser(json=orjson_module())
    with pytest.raises(ValueError, match="max_depth"):
        parser.encode(event_packet("x", nested(70)))  # orjson's own limit is 254: ours comes first
    with pytest.raises(TypeError):
        parser.encode(event_packet("x", object()))
    reject(['2["x",NaN]'], "invalid JSON", parser)


def test_orjson_fallbacks_keep_the_wire_javascript_reads():
    """What orjson refuses is written and read by the standard library: the client sees no difference."""
    parser = JSONParser(json=orjson_module())
    for packet in (
        event_packet("big", 2**70, -(2**64)),  # orjson: "Integer exceeds 64-bit range"
        event_packet("keys", {1: "a", None: "b"}),  # orjson: "Dict key must be str"
        event_packet("lone", "\ud800", b"\x01"),  # orjson refuses lone surrogates; JSON.stringify escapes them
    ):
        assert parser.encode(packet) == JSONP.encode(packet)
    assert parser.encode(event_packet("big", 2**70)) == ('2["big",1180591620717411303424]',)
    # JSON.stringify("\ud800") and a number past a double are valid JSON that orjson does not read
    assert decode(['2["x","\\ud800"]'], parser) == event_packet("x", "\ud800")
    assert decode(['2["x",1e400]'], parser) == event_packet("x", math.inf)
    reject(['2["x",NaN]'], "invalid JSON", parser)
    reject(['2["x"] trailing'], "invalid JSON|data after", parser)


def test_custom_json_module_refusals_reach_the_caller():
    # only orjson's refusals fall back to the standard library; another module's are the caller's to see
    with pytest.raises(TypeError, match="not JSON serializable"):
        JSONParser(json=RecordingJSON()).encode(event_packet("x", object()))
