"""Helpers of the Socket.IO parser tests: the two parsers, feeding Engine.IO messages in, and the
hypothesis strategies for packets.

Wire strings in these tests are written as they appear on the wire, Engine.IO MESSAGE prefix ``4``
included (``42["hello",1]``); ``eio()`` strips it to the Socket.IO packet the parser sees.
"""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

from sioserver.exceptions import SocketIOProtocolError
from sioserver.proto.socketio import (
    ACK,
    CONNECT,
    CONNECT_ERROR,
    DISCONNECT,
    EVENT,
    MAX_ACK_ID,
    RESERVED_EVENTS,
    JSONParser,
    MsgpackParser,
    Packet,
)

JSONP = JSONParser()


MSGPACK = MsgpackParser()


def eio(wire: str) -> str:
    """The Socket.IO packet inside an Engine.IO MESSAGE as written on the wire."""
    assert wire[0] == "4", wire
    return wire[1:]


def decode(messages, parser=JSONP):
    """Feed every message to a fresh decoder; only the last may complete the packet. Checks the
    packet's attachment count (one per binary message in the default format) and returns the
    packet with it zeroed, to compare with packets built for encoding."""
    decoder = parser.decoder()
    results = [decoder.feed(m) for m in messages]
    assert all(r is None for r in results[:-1])
    assert not decoder.pending
    packet = results[-1]
    binary = sum(not isinstance(m, str) for m in messages) if isinstance(parser, JSONParser) else 0
    assert packet.attachments == binary
    return packet._replace(attachments=0)


def reject(messages, match=None, parser=JSONP):
    decoder = parser.decoder()
    with pytest.raises(SocketIOProtocolError, match=match):
        for m in messages:
            decoder.feed(m)


def placeholder(num):
    return {"_placeholder": True, "num": num}


def nested(depth, leaf="x"):
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | st.text()


with_bytes = json_scalars | st.binary(max_size=20)


def json_values(leaves):
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
        max_leaves=20,
    )


event_names = st.text().filter(lambda s: s not in RESERVED_EVENTS) | st.integers(0, 2**53)


namespaces = st.just("/") | st.text(min_size=1).map(lambda s: "/" + s.replace(",", ""))


ack_ids = st.none() | st.integers(0, MAX_ACK_ID)


@st.composite
def packets(draw, leaves=with_bytes, binary=True):
    kind = draw(st.sampled_from([CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR]))
    nsp = draw(namespaces)
    args = draw(st.lists(json_values(leaves if binary else json_scalars), max_size=4))
    objects = st.dictionaries(st.text(max_size=5), json_values(json_scalars), max_size=4)
    if kind == EVENT:
        return Packet(EVENT, nsp, [draw(event_names), *args], draw(ack_ids))
    if kind == ACK:
        return Packet(ACK, nsp, args, draw(st.integers(0, MAX_ACK_ID)))
    if kind == CONNECT:
        return Packet(CONNECT, nsp, draw(st.none() | objects))
    if kind == CONNECT_ERROR:
        return Packet(CONNECT_ERROR, nsp, draw(st.text() | objects))
    return Packet(DISCONNECT, nsp)


ROOMY = JSONParser(max_attachments=1000)  # the strategies can sprinkle more than 10 bytes values


def feed_all(parser, messages):
    decoder = parser.decoder()
    for message in messages:
        try:
            result = decoder.feed(message)
        except SocketIOProtocolError:
            decoder.reset()
            continue
        assert result is None or isinstance(result, Packet)


@st.composite
def mutated(draw, base):
    data = bytearray(base) if isinstance(base, bytes) else list(base)
    alphabet = st.integers(0, 255) if isinstance(base, bytes) else st.sampled_from(
        [*'[]{}",:-/0123456789_ \\abcdeéntrufl', "\ud800", "\x00"])
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["replace", "insert", "delete", "truncate"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "replace" and data:
            data[pos] = draw(alphabet)
        elif op == "insert":
            data.insert(pos, draw(alphabet))
        elif op == "delete" and data:
            del data[pos]
        else:
            del data[pos:]
    return bytes(data) if isinstance(base, bytes) else "".join(data)
