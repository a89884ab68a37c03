"""Engine.IO v3 payloads and binary frames (engine.io-parser 2.2, Node engine.io 6.6's ``parser-v3``).

The vectors were written by that parser (``encodePayload`` / ``encodePacket`` of
``tests/interop/node_modules/engine.io/build/parser-v3``, with and without binary support).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sioserver.exceptions import EngineIOProtocolError
from sioserver.proto.engineio import Packet, PacketType
from sioserver.proto.engineio_v3 import (
    decode_binary_payload,
    decode_payload,
    decode_ws_binary,
    encode_binary_payload,
    encode_payload,
    encode_ws_binary,
    js_length,
    open_packet,
)

# what the server's outbox holds: packets as WebSocket messages, bytes for a binary MESSAGE
MESSAGES: list[str | bytes] = ["4hello", "4héllo 🚀 中文", "2probe", b"\x01\x02\x03\xff", "6"]
PACKETS = [
    Packet(PacketType.MESSAGE, "hello"),
    Packet(PacketType.MESSAGE, "héllo 🚀 中文"),
    Packet(PacketType.PING, "probe"),
    Packet(PacketType.MESSAGE, b"\x01\x02\x03\xff"),
    Packet(PacketType.NOOP, ""),
]
NODE_TEXT = "6:4hello12:4héllo 🚀 中文6:2probe10:b4AQID/w==1:6"
NODE_BINARY = bytes.fromhex(
    "0006ff3468656c6c6f000109ff3468c3a96c6c6f20f09f9a8020e4b8ade696870006ff3270726f62650105ff04010203ff0001ff36"
)


class TestVectors:
    def test_text_payload_is_nodes(self) -> None:
        assert encode_payload(MESSAGES) == NODE_TEXT

    def test_binary_payload_is_nodes(self) -> None:
        assert encode_binary_payload(MESSAGES) == NODE_BINARY

    def test_empty_and_close_payloads(self) -> None:
        assert encode_payload([]) == "0:"
        assert encode_payload(["1"]) == "1:1"

    def test_nodes_payloads_decode(self) -> None:
        assert decode_payload(NODE_TEXT) == PACKETS
        assert decode_binary_payload(NODE_BINARY) == PACKETS

    def test_websocket_binary_frame_carries_the_type_byte(self) -> None:
        assert encode_ws_binary(b"\x09\x08") == bytes.fromhex("040908")
        assert decode_ws_binary(bytes.fromhex("040908")) == Packet(PacketType.MESSAGE, b"\x09\x08")

    def test_length_counts_utf16_code_units(self) -> None:
        assert js_length("abc") == 3
        assert js_length("é中") == 2
        assert js_length("🚀") == 2  # a surrogate pair in JavaScript
        assert encode_payload(["4🚀"]) == "3:4🚀"

    def test_open_packet_has_the_four_v3_keys(self) -> None:
        assert open_packet("abc", ["websocket"], 25000, 20000) == (
            '0{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000}'
        )

    def test_empty_messages_are_skipped_as_the_reference(self) -> None:
        assert decode_payload("0:2:4a") == [Packet(PacketType.MESSAGE, "a")]


class TestRefused:
    @pytest.mark.parametrize("bad", ["", "4hello", "x:4a", ":4a", "5:4a", "2:4a1", "3:4a", "2:9a", "3:b4!", "3:b2A",
                                     "²:4a", "99999999999999999:4", "\udc80:4a",
                                     "\u3a01\u0100:4a"])  # its UTF-16 holds ":\\x00" at an odd offset
    def test_bad_text_payload(self, bad: str) -> None:
        with pytest.raises(EngineIOProtocolError):
            decode_payload(bad)

    @pytest.mark.parametrize("bad", [b"", b"\x02\x01\xff4", b"\x00\xff", b"\x00\x0a\xff4", b"\x00\x05\xff4",
                                     b"\x00\x02\xff\xc3(", b"\x01\x02\xff\x03\x01", b"\x00" + b"\x01" * 20 + b"\xff"])
    def test_bad_binary_payload(self, bad: bytes) -> None:
        with pytest.raises(EngineIOProtocolError):
            decode_binary_payload(bad)

    @pytest.mark.parametrize("bad", [b"", b"\x03abc", b"4abc"])
    def test_binary_frame_without_message_type(self, bad: bytes) -> None:
        with pytest.raises(EngineIOProtocolError):
            decode_ws_binary(bad)

    def test_packet_bound(self) -> None:
        assert len(decode_payload("2:4a" * 3, max_packets=3)) == 3
        with pytest.raises(EngineIOProtocolError):
            decode_payload("2:4a" * 4, max_packets=3)
        with pytest.raises(EngineIOProtocolError):
            decode_binary_payload(encode_binary_payload(["4a"] * 4), max_packets=3)


_message = st.one_of(
    st.tuples(st.sampled_from("0123456"), st.text()).map(lambda t: t[0] + t[1]),
    st.binary(),
)


def _as_packet(message: str | bytes) -> Packet:
    if isinstance(message, bytes):
        return Packet(PacketType.MESSAGE, message)
    return Packet(PacketType(int(message[0])), message[1:])


class TestProperties:
    @given(st.lists(_message, min_size=1))
    def test_text_payload_round_trips(self, messages: list[str | bytes]) -> None:
        assert decode_payload(encode_payload(messages)) == [_as_packet(m) for m in messages]

    @given(st.lists(_message, min_size=1))
    def test_binary_payload_round_trips(self, messages: list[str | bytes]) -> None:
        assert decode_binary_payload(encode_binary_payload(messages)) == [_as_packet(m) for m in messages]

    @given(st.text())
    def test_js_length_is_utf16_units(self, text: str) -> None:
        assert js_length(text) == sum(2 if ord(c) > 0xFFFF else 1 for c in text)

    @given(st.text())
    def test_text_decoder_never_raises_anything_else(self, body: str) -> None:
        try:
            decode_payload(body)
        except EngineIOProtocolError:
            pass

    @given(st.binary())
    def test_binary_decoder_never_raises_anything_else(self, body: bytes) -> None:
        try:
            decode_binary_payload(body)
        except EngineIOProtocolError:
            pass
