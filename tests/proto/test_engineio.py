"""Engine.IO v4 packets and payloads (docs/engine.io-protocol/v4-current.md)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sioserver.exceptions import EngineIOProtocolError
from sioserver.proto.engineio import (
    EngineError,
    Packet,
    PacketType,
    decode_packet,
    decode_payload,
    encode_packet,
    encode_payload,
    error_body,
    open_packet,
)


class TestPackets:
    def test_text_message_is_type_digit_then_data(self) -> None:
        assert encode_packet(Packet(PacketType.MESSAGE, "hello")) == "4hello"
        assert encode_packet(Packet(PacketType.PING, "")) == "2"
        assert encode_packet(Packet(PacketType.PING, "probe")) == "2probe"

    def test_binary_message_is_raw_bytes_on_websocket(self) -> None:
        assert encode_packet(Packet(PacketType.MESSAGE, b"\x01\x02")) == b"\x01\x02"

    def test_only_message_packets_carry_binary(self) -> None:
        with pytest.raises(ValueError):
            encode_packet(Packet(PacketType.PING, b"x"))

    @pytest.mark.parametrize("ptype", list(PacketType))
    def test_every_type_round_trips(self, ptype: PacketType) -> None:
        assert decode_packet(encode_packet(Packet(ptype, "abc"))) == Packet(ptype, "abc")

    def test_binary_websocket_message_is_a_message_packet(self) -> None:
        assert decode_packet(b"\xff\x00") == Packet(PacketType.MESSAGE, b"\xff\x00")

    @pytest.mark.parametrize("bad", ["", "7", "9x", "a", "\x1e"])
    def test_unknown_or_empty_packet_is_refused(self, bad: str) -> None:
        with pytest.raises(EngineIOProtocolError):
            decode_packet(bad)


class TestPayloads:
    def test_packets_are_joined_by_record_separator(self) -> None:
        body = encode_payload([Packet(PacketType.MESSAGE, "hello"), Packet(PacketType.MESSAGE, b"\x01\x02\x03\x04")])
        assert body == "4hello\x1ebAQIDBA=="

    def test_spec_example_decodes(self) -> None:
        assert decode_payload("4hello\x1ebAQIDBA==") == [
            Packet(PacketType.MESSAGE, "hello"),
            Packet(PacketType.MESSAGE, b"\x01\x02\x03\x04"),
        ]

    def test_message_may_contain_any_character_but_the_separator(self) -> None:
        assert decode_payload("4a:b,c\x1e4é😀") == [
            Packet(PacketType.MESSAGE, "a:b,c"),
            Packet(PacketType.MESSAGE, "é😀"),
        ]

    @pytest.mark.parametrize("bad", ["", "4a\x1e", "\x1e4a", "bnot base64!", "x", "4a\x1e\x1e4b"])
    def test_malformed_payload_is_refused_whole(self, bad: str) -> None:
        with pytest.raises(EngineIOProtocolError):
            decode_payload(bad)

    def test_too_many_packets_is_refused_not_truncated(self) -> None:
        body = "\x1e".join(["4x"] * 17)
        assert len(decode_payload(body, max_packets=17)) == 17
        with pytest.raises(EngineIOProtocolError, match="more than 16"):
            decode_payload(body, max_packets=16)

    @given(st.lists(st.one_of(st.text().filter(lambda s: "\x1e" not in s), st.binary()), min_size=1))
    def test_round_trip(self, items: list[str | bytes]) -> None:
        packets = [Packet(PacketType.MESSAGE, item) for item in items]
        assert decode_payload(encode_payload(packets)) == packets

    @given(st.text())
    def test_random_text_raises_only_protocol_errors(self, body: str) -> None:
        try:
            decode_payload(body, max_packets=100)
        except EngineIOProtocolError:
            pass


class TestHandshakeAndErrors:
    def test_open_packet_has_exactly_the_five_keys_in_ms(self) -> None:
        packet = open_packet("abc", ["websocket"], 300, 200, 1_000_000)
        assert packet[0] == "0"
        assert packet[1:] == '{"sid":"abc","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}'
        assert list(json.loads(packet[1:])) == ["sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"]

    @pytest.mark.parametrize(
        ("error", "status", "body"),
        [
            (EngineError.UNKNOWN_TRANSPORT, 400, b'{"code":0,"message":"Transport unknown"}'),
            (EngineError.UNKNOWN_SID, 400, b'{"code":1,"message":"Session ID unknown"}'),
            (EngineError.BAD_HANDSHAKE_METHOD, 400, b'{"code":2,"message":"Bad handshake method"}'),
            (EngineError.BAD_REQUEST, 400, b'{"code":3,"message":"Bad request"}'),
            (EngineError.FORBIDDEN, 403, b'{"code":4,"message":"Forbidden"}'),
            (EngineError.UNSUPPORTED_PROTOCOL_VERSION, 400, b'{"code":5,"message":"Unsupported protocol version"}'),
        ],
    )
    def test_error_table_is_the_reference_servers(self, error: EngineError, status: int, body: bytes) -> None:
        assert error.status == status
        assert error_body(error) == body
