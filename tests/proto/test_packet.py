"""sioserver.proto.socketio.packet: Socket.IO v5 packets, the shape rules both wire formats share, and
choosing a parser (socket.io repository, docs/socket.io-protocol/v5-current.md, "Packet encoding").
"""

from __future__ import annotations

import json

import pytest

from sioserver.exceptions import ConfigurationError
from sioserver.proto.socketio import (
    ACK,
    BINARY_ACK,
    BINARY_EVENT,
    CONNECT,
    CONNECT_ERROR,
    DISCONNECT,
    EVENT,
    MAX_ACK_ID,
    RESERVED_EVENTS,
    JSONParser,
    MsgpackParser,
    Packet,
    PacketType,
    ack_packet,
    connect_error_packet,
    connect_packet,
    disconnect_packet,
    event_packet,
    make_parser,
)
from tests.proto.socketio_support import (
    JSONP,
    MSGPACK,
    decode,
    eio,
)

# --- Packet encoding: the spec's examples -------------------------------------------------------


SPEC_EXAMPLES = [
    # (wire messages, packet): encoded exactly like this, and decoded back to the packet
    (["40"], Packet(CONNECT)),
    (["40/admin,"], Packet(CONNECT, "/admin")),
    (['40{"sid":"abc"}'], connect_packet("abc")),
    (['40/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}'], connect_packet("oSO0OpakMV_3jnilAAAA", "/admin")),
    (['40/admin,{"token":"123"}'], Packet(CONNECT, "/admin", {"token": "123"})),
    (['44{"message":"Not authorized"}'], connect_error_packet("Not authorized")),
    (['42["hello",1]'], event_packet("hello", 1)),
    (['42["foo"]'], event_packet("foo")),
    (['42/admin,["bar"]'], event_packet("bar", nsp="/admin")),
    (['42/admin,13["project:delete",123]'], event_packet("project:delete", 123, nsp="/admin", id=13)),
    (['4212["foo"]'], event_packet("foo", id=12)),
    (["43/admin,13[]"], ack_packet(13, nsp="/admin")),
    (['43/admin,13["bar"]'], ack_packet(13, "bar", nsp="/admin")),
    (['451-["hello",{"_placeholder":true,"num":0}]', b"\x01\x02\x03\x04"],
     event_packet("hello", b"\x01\x02\x03\x04")),
    (['451-["baz",{"_placeholder":true,"num":0}]', b"\x01\x02\x03\x04"], event_packet("baz", b"\x01\x02\x03\x04")),
    (['452-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]', b"\x01\x02", b"\x03\x04"],
     event_packet("baz", b"\x01\x02", b"\x03\x04", nsp="/admin")),
    (['461-15["bar",{"_placeholder":true,"num":0}]', b"\x01\x02\x03\x04"], ack_packet(15, "bar", b"\x01\x02\x03\x04")),
    (['461-/admin,1[{"_placeholder":true,"num":0}]', b"\xff"], ack_packet(1, b"\xff", nsp="/admin")),  # sample session
    (["41"], disconnect_packet()),
    (["41/admin,"], disconnect_packet("/admin")),
]


@pytest.mark.parametrize(("wire", "packet"), SPEC_EXAMPLES)
def test_spec_example_encodes_exactly(wire, packet):
    assert JSONP.encode(packet) == (eio(wire[0]), *wire[1:])


@pytest.mark.parametrize(("wire", "packet"), SPEC_EXAMPLES)
def test_spec_example_decodes(wire, packet):
    got = decode([eio(wire[0]), *wire[1:]])
    assert got == packet
    assert type(got.type) is PacketType


def test_namespace_runs_to_end_without_comma():
    assert decode([eio("40/custom")]) == Packet(CONNECT, "/custom")
    assert decode([eio("41/custom")]) == Packet(DISCONNECT, "/custom")


def test_encode_returns_an_immutable_tuple_reusable_for_a_broadcast():
    encoded = JSONP.encode(event_packet("news", "hi"))
    assert isinstance(encoded, tuple)
    assert encoded == JSONP.encode(event_packet("news", "hi"))


def test_binary_packet_types_are_wire_only():
    # Decoded binary packets come back as EVENT / ACK; the encoder picks 5 / 6 from the data.
    assert JSONP.encode(Packet(BINARY_EVENT, "/", ["x", 1])) == ('2["x",1]',)
    assert JSONP.encode(Packet(BINARY_ACK, "/", [1], 3)) == ("33[1]",)
    assert JSONP.encode(Packet(EVENT, "/", ["x", b"a"]))[0].startswith("51-")
    assert JSONP.encode(Packet(ACK, "/", [b"a"], 3))[0].startswith("61-3")


def test_message_types_encode_as_ints():
    assert JSONP.encode(Packet(2, "/", ["x"])) == ('2["x"]',)  # type: ignore[arg-type]


def test_decoded_binary_packets_tell_their_attachment_count():
    decoder = JSONP.decoder()
    assert decoder.feed(eio('452-["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')) is None
    assert decoder.feed(b"a") is None
    assert decoder.feed(b"b") == Packet(EVENT, "/", ["x", b"a", b"b"], None, 2)
    assert JSONP.encode(Packet(EVENT, "/", ["x", b"a"], None, 7))[0].startswith("51-")  # ignored


def test_helpers():
    assert connect_packet("s", pid="p") == Packet(CONNECT, "/", {"sid": "s", "pid": "p"})
    assert connect_error_packet("no", {"why": 1}, "/a") == Packet(CONNECT_ERROR, "/a", {"message": "no", "data": {"why": 1}})
    assert connect_error_packet("no").data == {"message": "no"}
    assert event_packet("e", 1, 2, nsp="/a", id=4) == Packet(EVENT, "/a", ["e", 1, 2], 4)
    assert ack_packet(4, 1, nsp="/a") == Packet(ACK, "/a", [1], 4)
    assert disconnect_packet() == Packet(DISCONNECT)


def test_packets_are_immutable():
    packet = event_packet("x")
    with pytest.raises(AttributeError):
        packet.nsp = "/admin"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("packet", "match"),
    [
        (Packet(7, "/", ["x"]), "unknown packet type"),  # type: ignore[arg-type]
        (Packet(EVENT, "admin", ["x"]), "namespace must be"),
        (Packet(EVENT, None, ["x"]), "namespace must be"),  # type: ignore[arg-type]
        (Packet(EVENT, "/a,b", ["x"]), "contains ','"),
        (Packet(EVENT, "/", ["x"], -1), "ack id"),
        (Packet(EVENT, "/", ["x"], MAX_ACK_ID + 1), "ack id"),
        (Packet(EVENT, "/", ["x"], True), "ack id"),  # type: ignore[arg-type]
        (Packet(EVENT, "/", ["x"], "1"), "ack id"),  # type: ignore[arg-type]
        (Packet(CONNECT, "/", None, 1), "cannot carry an ack id"),
        (Packet(ACK, "/", []), "ACK needs an ack id"),
        (Packet(EVENT, "/", []), "non-empty list"),
        (Packet(EVENT, "/", None), "non-empty list"),
        (Packet(EVENT, "/", "x"), "non-empty list"),
        (Packet(EVENT, "/", [True]), "string or a number"),
        (Packet(EVENT, "/", [None]), "string or a number"),
        (Packet(ACK, "/", None, 1), "ACK payload must be a list"),
        (Packet(ACK, "/", {"a": 1}, 1), "ACK payload must be a list"),
        (Packet(CONNECT, "/", []), "CONNECT payload"),
        (Packet(DISCONNECT, "/", {}), "DISCONNECT carries no payload"),
        (Packet(CONNECT_ERROR, "/", None), "CONNECT_ERROR payload"),
        (Packet(CONNECT_ERROR, "/", ["x"]), "CONNECT_ERROR payload"),
    ],
)
@pytest.mark.parametrize("parser", [JSONP, MSGPACK], ids=["json", "msgpack"])
def test_encoder_refuses_packets_the_peer_would_reject(parser, packet, match):
    if match == "contains ','" and parser is MSGPACK:
        assert decode(parser.encode(packet), MSGPACK) == packet  # msgpack has no such restriction
        return
    with pytest.raises(ValueError, match=match):
        parser.encode(packet)


@pytest.mark.parametrize("name", sorted(RESERVED_EVENTS))
@pytest.mark.parametrize("parser", [JSONP, MSGPACK], ids=["json", "msgpack"])
def test_encoder_refuses_reserved_event_names(parser, name):
    with pytest.raises(ValueError, match="reserved event name"):
        parser.encode(event_packet(name))


# --- Choosing a parser; options ---------------------------------------------------------------------


def test_make_parser_by_name():
    assert isinstance(make_parser(), JSONParser)
    assert isinstance(make_parser("default", max_depth=3), JSONParser)
    assert make_parser("msgpack", max_size=10).max_size == 10
    assert make_parser("default").name == "default" and make_parser("msgpack").name == "msgpack"
    with pytest.raises(ConfigurationError, match="unknown parser 'json'"):
        make_parser("json")
    with pytest.raises(ConfigurationError, match="did you mean 'max_attachments'"):
        make_parser("default", max_attachment=3)
    with pytest.raises(ConfigurationError, match="unknown option 'json'"):
        make_parser("msgpack", json=json)


@pytest.mark.parametrize("value", [0, -1, "10", 1.5, True])
def test_limits_must_be_positive_ints(value):
    with pytest.raises(ConfigurationError, match="must be a positive int"):
        JSONParser(max_depth=value)
    with pytest.raises(ConfigurationError, match="must be a positive int"):
        MsgpackParser(max_size=value)


def test_json_module_must_have_dumps_and_loads():
    with pytest.raises(ConfigurationError, match="dumps"):
        JSONParser(json=object())  # type: ignore[arg-type]


class TestArgumentConvention:
    """python-socketio's convention, shared by the server and the client: a tuple is several arguments."""

    def test_args_of(self) -> None:
        from sioserver.proto.socketio import args_of

        assert args_of(None) == []
        assert args_of((1, "two")) == [1, "two"]
        assert args_of([1, 2]) == [[1, 2]]  # a list is one argument
        assert args_of({"a": 1}) == [{"a": 1}]

    def test_answer_of(self) -> None:
        from sioserver.proto.socketio import answer_of

        assert answer_of([]) is None
        assert answer_of(["x"]) == "x"
        assert answer_of([1, 2]) == (1, 2)
