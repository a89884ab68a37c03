"""sioserver.proto.websocket: bytes in, events and bytes out, grouped by RFC 6455 / RFC 7692 section."""

from __future__ import annotations

import base64
import random
import zlib
from collections.abc import Iterable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sioserver.exceptions import HandshakeError, WebSocketProtocolError
from sioserver.proto import websocket as ws
from sioserver.proto.websocket import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Close,
    Connection,
    DeflateConfig,
    DeflateParams,
    Event,
    Ping,
    Pong,
    State,
    accept_key,
    encode_frame,
    encode_message,
    frames,
    handshake_response,
    negotiate_deflate,
    parse_extensions,
    validate_handshake,
)

KEY = b"\x37\xfa\x21\x3d"


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = KEY,
    length: int | None = None,
) -> bytes:
    """Any frame, well-formed or not, as a client (masked) or server (``mask=None``) sends it."""
    b0 = (0x80 if fin else 0) | rsv << 4 | opcode
    n = len(payload) if length is None else length
    bit = 0x80 if mask is not None else 0
    if n < 126:
        header = bytes([b0, bit | n])
    elif n < 65536:
        header = bytes([b0, bit | 126]) + n.to_bytes(2, "big")
    else:
        header = bytes([b0, bit | 127]) + n.to_bytes(8, "big")
    if mask is None:
        return header + payload
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def unframe(data: bytes) -> tuple[int, int, bytes]:
    """(first byte, payload length, payload) of one unmasked frame."""
    n = data[1] & 0x7F
    start = 2
    if n == 126:
        n, start = int.from_bytes(data[2:4], "big"), 4
    elif n == 127:
        n, start = int.from_bytes(data[2:10], "big"), 10
    assert not data[1] & 0x80
    assert len(data) == start + n
    return data[0], n, data[start:]


def failure(events: list[Event]) -> int:
    """The close code of the protocol failure that ends ``events``."""
    assert events, "expected a failure"
    last = events[-1]
    assert isinstance(last, Close) and last.error is not None, events
    assert isinstance(last.error, WebSocketProtocolError)
    return last.code


def feed_bytewise(conn: Connection, data: bytes) -> list[Event]:
    events: list[Event] = []
    for i in range(len(data)):
        events += conn.receive_data(data[i : i + 1])
    return events


# -- RFC 6455 section 4.2: the opening handshake ---------------------------------------------------
def request_headers(**overrides: str | None) -> dict[str, str]:
    headers = {
        "Host": "example.com",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
    }
    for key, value in overrides.items():
        name = key.replace("_", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return headers


class TestHandshake:
    def test_accept_key_rfc_example(self) -> None:
        assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

    def test_valid_request(self) -> None:
        key, offers = validate_handshake("GET", (1, 1), request_headers())
        assert key == "dGhlIHNhbXBsZSBub25jZQ=="
        assert offers == []

    def test_header_names_and_tokens_are_case_insensitive(self) -> None:
        headers = [
            ("host", "x"),
            ("UPGRADE", "WebSocket"),
            ("connection", "keep-alive, Upgrade"),
            ("sec-websocket-key", " dGhlIHNhbXBsZSBub25jZQ== "),
            ("SEC-WEBSOCKET-VERSION", "13"),
            ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
            ("Sec-WebSocket-Extensions", "x-foo"),
        ]
        key, offers = validate_handshake("GET", "HTTP/2.0", headers)
        assert key == "dGhlIHNhbXBsZSBub25jZQ=="
        assert offers == [("permessage-deflate", [("client_max_window_bits", None)]), ("x-foo", [])]

    @pytest.mark.parametrize("version", ["1.1", "HTTP/1.1", "2", (1, 1), (2, 0)])
    def test_versions(self, version: tuple[int, int] | str) -> None:
        validate_handshake("GET", version, request_headers())

    @pytest.mark.parametrize("version", ["1.0", (1, 0), (0, 9), "HTTP/x.y"])
    def test_old_or_bad_http_version(self, version: tuple[int, int] | str) -> None:
        with pytest.raises(HandshakeError) as info:
            validate_handshake("GET", version, request_headers())
        assert info.value.status == 400

    @pytest.mark.parametrize(
        "overrides",
        [
            {"Host": None},
            {"Upgrade": None},
            {"Upgrade": "h2c"},
            {"Connection": None},
            {"Connection": "keep-alive"},
            {"Sec-WebSocket-Key": None},
            {"Sec-WebSocket-Key": "not base64!"},
            {"Sec-WebSocket-Key": base64.b64encode(b"15 bytes only!!").decode()},
            {"Sec-WebSocket-Version": None},
            {"Sec-WebSocket-Extensions": "permessage-deflate;"},
        ],
    )
    def test_bad_request_is_400(self, overrides: dict[str, str | None]) -> None:
        with pytest.raises(HandshakeError) as info:
            validate_handshake("GET", (1, 1), request_headers(**overrides))
        assert info.value.status == 400
        assert info.value.code == 1002

    def test_method_must_be_get(self) -> None:
        with pytest.raises(HandshakeError, match="POST"):
            validate_handshake("POST", (1, 1), request_headers())

    def test_repeated_key_is_400(self) -> None:
        headers = [*request_headers().items(), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")]
        with pytest.raises(HandshakeError):
            validate_handshake("GET", (1, 1), headers)

    @pytest.mark.parametrize("version", ["8", "12", "13, 8", ""])
    def test_other_version_is_426_naming_13(self, version: str) -> None:
        with pytest.raises(HandshakeError) as info:
            validate_handshake("GET", (1, 1), request_headers(Sec_WebSocket_Version=version))
        assert info.value.status == 426
        assert info.value.headers == {"Sec-WebSocket-Version": "13"}

    def test_response(self) -> None:
        response = handshake_response(
            "dGhlIHNhbXBsZSBub25jZQ==", "permessage-deflate", [("Set-Cookie", "io=abc; Path=/")]
        )
        assert response == (
            b"HTTP/1.1 101 Switching Protocols\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
            b"Set-Cookie: io=abc; Path=/\r\n"
            b"\r\n"
        )
        assert b"Extensions" not in handshake_response("dGhlIHNhbXBsZSBub25jZQ==")

    @pytest.mark.parametrize("header", [("X-A", "b\r\nEvil: 1"), ("Bad Name", "x"), ("X", "a\0")])
    def test_response_refuses_header_injection(self, header: tuple[str, str]) -> None:
        with pytest.raises(ValueError):
            handshake_response("dGhlIHNhbXBsZSBub25jZQ==", None, [header])


class TestExtensionHeader:
    """RFC 6455 section 9.1 grammar."""

    def test_parse(self) -> None:
        assert parse_extensions(
            ['permessage-deflate ; client_max_window_bits=10;server_no_context_takeover , x-y; a="b"', ""]
        ) == [
            ("permessage-deflate", [("client_max_window_bits", "10"), ("server_no_context_takeover", None)]),
            ("x-y", [("a", "b")]),
        ]

    def test_quoted_pair(self) -> None:
        assert parse_extensions(['x; a="1\\0"']) == [("x", [("a", "10")])]

    @pytest.mark.parametrize(
        "value",
        [
            "a=b",  # the extension name takes no value
            '"quoted"',
            "x; =1",
            "x; a=",
            'x; a="not a token"',
            "x,",
            "x, ",
            "x y",
            "x; a=1 b",
            ",x",
        ],
    )
    def test_malformed(self, value: str) -> None:
        with pytest.raises(HandshakeError):
            parse_extensions([value])


# -- RFC 6455 section 5.2: base framing ------------------------------------------------------------
class TestFraming:
    @pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
    def test_text_and_binary_of_every_length_class(self, size: int) -> None:
        conn = Connection(max_message_size=1 << 20)
        text = "é" * (size // 2) + "x" * (size % 2)
        data = bytes(range(256)) * (size // 256) + bytes(size % 256)
        assert conn.receive_data(frame(OP_TEXT, text.encode()) + frame(OP_BINARY, data)) == [text, data]
        assert isinstance(conn.receive_data(frame(OP_BINARY, data))[0], bytes)

    def test_many_frames_in_one_chunk(self) -> None:
        conn = Connection()
        assert conn.receive_data(b"".join(frame(OP_TEXT, b"%d" % i) for i in range(100))) == [
            str(i) for i in range(100)
        ]

    @pytest.mark.parametrize("size", [5, 300, 70000])
    def test_byte_by_byte(self, size: int) -> None:
        conn = Connection()
        data = frame(OP_BINARY, b"a" * size) + frame(OP_PING, b"p") + frame(OP_TEXT, b"t" * size)
        events = feed_bytewise(conn, data)
        assert events[0] == b"a" * size
        assert isinstance(events[1], Ping)
        assert events[2] == "t" * size

    def test_header_split_across_calls(self) -> None:
        conn = Connection()
        data = frame(OP_TEXT, b"x" * 70000)
        assert conn.receive_data(data[:1]) == []
        assert conn.receive_data(data[1:5]) == []  # 64-bit length incomplete
        assert conn.receive_data(data[5:12]) == []  # length known, mask incomplete
        assert conn.receive_data(data[12:]) == ["x" * 70000]

    def test_16_bit_length_split(self) -> None:
        conn = Connection()
        data = frame(OP_BINARY, b"y" * 300)
        assert conn.receive_data(data[:3]) == []
        assert conn.receive_data(data[3:]) == [b"y" * 300]

    @pytest.mark.parametrize("rsv", [1, 2, 3, 4, 5, 6, 7])
    def test_reserved_bits_without_extension(self, rsv: int) -> None:
        assert failure(Connection().receive_data(frame(OP_TEXT, b"x", rsv=rsv))) == 1002

    @pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
    def test_reserved_opcodes(self, opcode: int) -> None:
        conn = Connection()
        events = conn.receive_data(frame(OP_TEXT, b"before") + frame(opcode, b"") + frame(OP_TEXT, b"after"))
        assert events[0] == "before"
        assert failure(events) == 1002
        assert len(events) == 2

    def test_64_bit_length_with_msb_set(self) -> None:
        data = bytes([0x82, 0xFF]) + (1 << 63).to_bytes(8, "big") + KEY
        assert failure(Connection().receive_data(data)) == 1002

    def test_failure_reply_and_state(self) -> None:
        conn = Connection()
        events = conn.receive_data(frame(OP_TEXT, b"x", rsv=2))
        assert conn.state is State.CLOSING
        last = events[-1]
        assert isinstance(last, Close) and last.error is not None
        assert last.error.code == 1002 and "reserved" in last.reason
        assert conn.close_reply() == b"\x88\x02\x03\xea"  # 1002, no reason on the wire
        assert conn.state is State.CLOSED
        assert conn.close_reply() == b""
        assert conn.receive_data(frame(OP_TEXT, b"ignored")) == []

    def test_messages_sent_before_the_reply_go_out(self) -> None:
        conn = Connection()
        events = conn.receive_data(frame(OP_TEXT, b"echo me") + frame(3, b""))
        assert events[0] == "echo me"
        assert conn.send_text("echo me") == b"\x81\x07echo me"
        assert conn.close_reply()
        assert conn.send_text("late") == b""

    def test_encode_frame(self) -> None:
        assert encode_frame(OP_TEXT, b"Hello") == b"\x81\x05Hello"  # RFC 6455 section 5.7
        assert encode_frame(OP_BINARY, b"x", fin=False, rsv1=True) == b"\x42\x01x"
        assert unframe(encode_frame(OP_BINARY, b"a" * 256)) == (0x82, 256, b"a" * 256)
        assert unframe(encode_frame(OP_BINARY, b"a" * 65536)) == (0x82, 65536, b"a" * 65536)
        assert encode_frame(OP_BINARY, b"a" * 256)[:4] == b"\x82\x7e\x01\x00"  # RFC 6455 section 5.7
        assert encode_frame(OP_BINARY, b"a" * 65536)[:10] == b"\x82\x7f" + (65536).to_bytes(8, "big")

    def test_encode_message_once_for_many(self) -> None:
        assert encode_message("Hello") == b"\x81\x05Hello"
        assert encode_message(b"\x00") == b"\x82\x01\x00"
        assert encode_message(bytearray(b"ab")) == b"\x82\x02ab"
        assert unframe(encode_message("é" * 100)) == (0x81, 200, ("é" * 100).encode())
        frame_ = encode_message("broadcast")
        for _ in range(3):
            conn = Connection(client=True)
            assert conn.receive_data(frame_) == ["broadcast"]

    def test_send_matches_encode_message(self) -> None:
        conn = Connection()
        for data in ("", "x" * 125, "x" * 126, "x" * 70000, b"", b"y" * 200):
            if isinstance(data, str):
                assert conn.send_text(data) == encode_message(data)
            else:
                assert conn.send_binary(data) == encode_message(data)


# -- RFC 6455 section 5.3: masking -----------------------------------------------------------------
class TestMasking:
    def test_unmasked_client_frame_is_1002(self) -> None:
        assert failure(Connection().receive_data(frame(OP_TEXT, b"x", mask=None))) == 1002

    def test_client_role_rejects_masked_frames(self) -> None:
        assert failure(Connection(client=True).receive_data(frame(OP_TEXT, b"x"))) == 1002

    def test_client_role_reads_unmasked_frames(self) -> None:
        conn = Connection(client=True)
        data = frame(OP_TEXT, b"x" * 300, mask=None) + frame(OP_BINARY, b"y" * 70000, mask=None)
        assert conn.receive_data(data) == ["x" * 300, b"y" * 70000]
        assert feed_bytewise(Connection(client=True), data) == ["x" * 300, b"y" * 70000]

    @pytest.mark.parametrize("size", [0, 3, 125, 200, 70000])
    def test_client_role_masks_what_it_sends(self, size: int) -> None:
        client, server = Connection(client=True), Connection()
        sent = client.send_text("z" * size) + client.send_binary(b"b" * size) + client.send_ping(b"p")
        sent += client.send_pong(b"q") + client.send_close(1000, "bye")
        events = server.receive_data(sent)
        assert events[:2] == ["z" * size, b"b" * size]
        assert [type(e) for e in events[2:]] == [Ping, Pong, Close]

    def test_server_never_masks(self) -> None:
        conn = Connection()
        for data in (conn.send_text("x" * 300), conn.send_binary(b"x" * 70000), conn.send_ping(b"p")):
            assert not data[1] & 0x80

    def test_mask_keys_differ(self) -> None:
        client = Connection(client=True)
        assert client.send_text("same") != client.send_text("same")

    @pytest.mark.parametrize("size", [0, 1, 1023, 1024, 1025, 4099])
    def test_mask_paths_agree(self, size: int) -> None:
        data = bytes(i * 7 % 256 for i in range(size))
        expected = bytes(b ^ KEY[i % 4] for i, b in enumerate(data))
        assert frames._mask(data, KEY) == expected
        assert frames._mask(bytearray(data), bytearray(KEY)) == expected


# -- RFC 6455 section 5.4: fragmentation -----------------------------------------------------------
class TestFragmentation:
    def test_fragmented_text_and_binary(self) -> None:
        conn = Connection()
        data = (
            frame(OP_TEXT, "fragé".encode()[:5], fin=False)
            + frame(OP_CONTINUATION, b"", fin=False)
            + frame(OP_CONTINUATION, "fragé".encode()[5:])
            + frame(OP_BINARY, b"ab", fin=False)
            + frame(OP_CONTINUATION, b"cd")
        )
        assert conn.receive_data(data) == ["fragé", b"abcd"]
        assert feed_bytewise(Connection(), data) == ["fragé", b"abcd"]

    def test_control_frames_between_fragments(self) -> None:
        conn = Connection()
        events = conn.receive_data(
            frame(OP_TEXT, b"frag", fin=False) + frame(OP_PING, b"hi") + frame(OP_CONTINUATION, b"ment")
        )
        assert events[0] == Ping(b"hi", b"\x8a\x02hi")
        assert events[1] == "fragment"

    def test_continuation_without_message(self) -> None:
        assert failure(Connection().receive_data(frame(OP_CONTINUATION, b"x"))) == 1002

    @pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
    def test_new_message_inside_fragmented_one(self, opcode: int) -> None:
        conn = Connection()
        assert failure(conn.receive_data(frame(OP_TEXT, b"a", fin=False) + frame(opcode, b"b"))) == 1002

    def test_streamed_frame_with_fragments(self) -> None:
        conn = Connection()
        first = frame(OP_BINARY, b"0123456789", fin=False)
        assert conn.receive_data(first[:9]) == []
        assert conn.receive_data(first[9:] + frame(OP_CONTINUATION, b"abc")) == [b"0123456789abc"]

    def test_empty_fragmented_message(self) -> None:
        conn = Connection()
        data = frame(OP_TEXT, b"", fin=False) + frame(OP_CONTINUATION, b"")
        assert conn.receive_data(data) == [""]


# -- RFC 6455 section 5.5: control frames ----------------------------------------------------------
class TestControlFrames:
    def test_ping_gets_a_pong_with_the_same_payload(self) -> None:
        conn = Connection()
        (event,) = conn.receive_data(frame(OP_PING, b"payload"))
        assert event == Ping(b"payload", b"\x8a\x07payload")

    def test_client_role_pong_is_masked(self) -> None:
        (event,) = Connection(client=True).receive_data(frame(OP_PING, b"p", mask=None))
        assert isinstance(event, Ping)
        assert event.reply[1] == 0x81
        assert Connection().receive_data(event.reply) == [Pong(b"p")]

    def test_pong(self) -> None:
        assert Connection().receive_data(frame(OP_PONG, b"x" * 125)) == [Pong(b"x" * 125)]

    @pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
    def test_longer_than_125(self, opcode: int) -> None:
        assert failure(Connection().receive_data(frame(opcode, b"\x03\xe8" + b"x" * 124))) == 1002

    @pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
    def test_fragmented(self, opcode: int) -> None:
        assert failure(Connection().receive_data(frame(opcode, b"", fin=False))) == 1002

    def test_waits_for_the_whole_control_frame(self) -> None:
        conn = Connection()
        data = frame(OP_PING, b"x" * 100)
        assert conn.receive_data(data[:50]) == []
        assert conn.receive_data(data[50:]) == [Ping(b"x" * 100, encode_frame(OP_PONG, b"x" * 100))]

    def test_send_ping_and_pong(self) -> None:
        conn = Connection()
        assert conn.send_ping(b"a") == b"\x89\x01a"
        assert conn.send_pong() == b"\x8a\x00"
        with pytest.raises(ValueError):
            conn.send_ping(b"x" * 126)
        with pytest.raises(ValueError):
            conn.send_pong(b"x" * 126)
        conn.send_close()
        assert conn.send_ping() == b""
        assert conn.send_pong() == b"\x8a\x00"  # a ping may still arrive until the peer's Close
        conn.receive_data(frame(OP_CLOSE, b"\x03\xe8"))
        assert conn.send_pong() == b""


# -- RFC 6455 sections 5.6 and 8.1: UTF-8 ----------------------------------------------------------
# Autobahn 6.4.1: valid, then a sequence that cannot be completed (U+110000), then more
PART1 = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
PART2 = b"\xf4\x90\x80\x80"
PART3 = b"\x65\x64\x69\x74\x65\x64"


class TestUtf8:
    @pytest.mark.parametrize("payload", [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"abc\xce", b"\xf4\x90\x80\x80"])
    def test_invalid_text_message(self, payload: bytes) -> None:
        assert failure(Connection().receive_data(frame(OP_TEXT, payload))) == 1007

    def test_binary_is_not_checked(self) -> None:
        assert Connection().receive_data(frame(OP_BINARY, b"\xff")) == [b"\xff"]

    def test_fails_fast_across_fragments(self) -> None:
        conn = Connection()
        assert conn.receive_data(frame(OP_TEXT, PART1, fin=False)) == []
        assert failure(conn.receive_data(frame(OP_CONTINUATION, PART2, fin=False))) == 1007

    def test_fails_fast_on_the_first_bad_byte(self) -> None:
        conn = Connection()
        assert conn.receive_data(frame(OP_TEXT, PART1 + PART2[:1], fin=False)) == []
        assert failure(conn.receive_data(frame(OP_CONTINUATION, PART2[1:2], fin=False))) == 1007

    def test_fails_fast_within_a_frame(self) -> None:
        """Autobahn 6.4.3: one frame, its payload in three writes."""
        conn = Connection()
        data = frame(OP_TEXT, PART1 + PART2 + PART3)
        cut = 6 + len(PART1)
        assert conn.receive_data(data[:cut]) == []
        assert failure(conn.receive_data(data[cut : cut + len(PART2)])) == 1007

    def test_fails_fast_on_a_surrogate_prefix(self) -> None:
        conn = Connection()
        assert conn.receive_data(frame(OP_TEXT, b"a\xed", fin=False)) == []
        assert failure(conn.receive_data(frame(OP_CONTINUATION, b"\xa0", fin=False))) == 1007

    def test_valid_prefix_waits(self) -> None:
        conn = Connection()
        assert conn.receive_data(frame(OP_TEXT, b"\xf4\x8f", fin=False)) == []
        assert conn.receive_data(frame(OP_CONTINUATION, b"\xbf", fin=False)) == []
        assert conn.receive_data(frame(OP_CONTINUATION, b"\xbf")) == ["\U0010ffff"]

    def test_truncated_at_the_end(self) -> None:
        conn = Connection()
        assert conn.receive_data(frame(OP_TEXT, b"\xce", fin=False)) == []
        assert failure(conn.receive_data(frame(OP_CONTINUATION, b""))) == 1007

    def test_every_split_of_valid_text(self) -> None:
        text = "κόσμε 😀 €".encode()
        for cut in range(len(text) + 1):
            conn = Connection()
            data = frame(OP_TEXT, text[:cut], fin=False) + frame(OP_CONTINUATION, text[cut:])
            assert conn.receive_data(data) == [text.decode()]


# -- RFC 6455 sections 5.5.1, 7.1 and 7.4: closing -------------------------------------------------
class TestClosing:
    @pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999])
    def test_valid_codes_are_echoed(self, code: int) -> None:
        conn = Connection()
        events = conn.receive_data(frame(OP_CLOSE, code.to_bytes(2, "big") + "bye é".encode()))
        assert events == [Close(code, "bye é")]
        assert conn.state is State.CLOSING
        assert conn.close_reply() == b"\x88\x02" + code.to_bytes(2, "big")
        assert conn.state is State.CLOSED

    @pytest.mark.parametrize(
        "code", [0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535]
    )
    def test_invalid_codes(self, code: int) -> None:
        assert failure(Connection().receive_data(frame(OP_CLOSE, code.to_bytes(2, "big")))) == 1002
        assert not ws.is_valid_close_code(code)

    def test_empty_close_is_1005_and_answered_without_a_body(self) -> None:
        conn = Connection()
        assert conn.receive_data(frame(OP_CLOSE)) == [Close(1005, "")]
        assert conn.close_reply() == b"\x88\x00"

    def test_one_byte_payload(self) -> None:
        assert failure(Connection().receive_data(frame(OP_CLOSE, b"\x03"))) == 1002

    def test_invalid_utf8_reason(self) -> None:
        assert failure(Connection().receive_data(frame(OP_CLOSE, b"\x03\xe8\xff"))) == 1007

    def test_input_after_close_is_ignored(self) -> None:
        conn = Connection()
        assert conn.receive_data(frame(OP_CLOSE, b"\x03\xe8") + frame(OP_TEXT, b"late")) == [Close(1000, "")]
        assert conn.receive_data(frame(OP_TEXT, b"later")) == []

    def test_server_initiated(self) -> None:
        conn = Connection()
        assert conn.send_close(1001, "going") == b"\x88\x07\x03\xe9going"
        assert conn.state is State.CLOSING
        assert conn.send_close() == b""
        assert conn.send_text("x") == b"" and conn.send_binary(b"x") == b""
        # data may still arrive before the peer's Close
        assert conn.receive_data(frame(OP_TEXT, b"in flight")) == ["in flight"]
        assert conn.receive_data(frame(OP_CLOSE, b"\x03\xe9")) == [Close(1001, "")]
        assert conn.state is State.CLOSED
        assert conn.close_reply() == b""

    def test_close_without_code(self) -> None:
        conn = Connection()
        assert conn.send_close(None) == b"\x88\x00"

    def test_close_after_received_close(self) -> None:
        conn = Connection()
        conn.receive_data(frame(OP_CLOSE, b"\x03\xe8"))
        assert conn.send_close(1000) == b"\x88\x02\x03\xe8"
        assert conn.state is State.CLOSED
        assert conn.close_reply() == b""

    def test_close_reply_before_any_close(self) -> None:
        assert Connection().close_reply() == b""

    @pytest.mark.parametrize(("code", "reason"), [(1005, ""), (1006, ""), (999, ""), (1000, "x" * 124), (None, "x")])
    def test_send_close_refuses(self, code: int | None, reason: str) -> None:
        with pytest.raises(ValueError):
            Connection().send_close(code, reason)

    def test_failure_after_our_close_needs_no_reply(self) -> None:
        conn = Connection()
        conn.send_close()
        assert failure(conn.receive_data(frame(OP_TEXT, b"\xff"))) == 1007
        assert conn.state is State.CLOSED
        assert conn.close_reply() == b""


# -- RFC 7692: permessage-deflate ------------------------------------------------------------------
def offer(value: str) -> list[ws.ExtensionOffer]:
    return parse_extensions([value])


WIDE = DeflateConfig(server_max_window_bits=15, client_max_window_bits=None, mem_level=8)


class TestDeflateNegotiation:
    def test_defaults_keep_memory_small(self) -> None:
        result = negotiate_deflate(offer("permessage-deflate; client_max_window_bits"), DeflateConfig())
        assert result == (
            "permessage-deflate; client_max_window_bits=12",
            DeflateParams(server_max_window_bits=12, client_max_window_bits=12, mem_level=5),
        )
        result = negotiate_deflate(offer("permessage-deflate; server_max_window_bits=10"), DeflateConfig())
        assert result is not None and result[0] == "permessage-deflate; server_max_window_bits=10"

    def test_no_offer(self) -> None:
        assert negotiate_deflate([], WIDE) is None
        assert negotiate_deflate(offer("x-webkit-deflate-frame"), WIDE) is None

    def test_plain_offer(self) -> None:
        assert negotiate_deflate(offer("permessage-deflate"), WIDE) == (
            "permessage-deflate",
            DeflateParams(),
        )

    def test_browser_offer(self) -> None:
        result = negotiate_deflate(offer("permessage-deflate; client_max_window_bits"), WIDE)
        assert result == ("permessage-deflate", DeflateParams(client_max_window_bits=15))

    def test_server_parameters_are_honoured(self) -> None:
        result = negotiate_deflate(
            offer("permessage-deflate; server_no_context_takeover; server_max_window_bits=10"), WIDE
        )
        assert result == (
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10",
            DeflateParams(server_no_context_takeover=True, server_max_window_bits=10),
        )

    def test_server_window_is_the_smaller(self) -> None:
        config = DeflateConfig(server_max_window_bits=12)
        result = negotiate_deflate(offer("permessage-deflate; server_max_window_bits=15"), config)
        assert result is not None
        assert result[0] == "permessage-deflate; server_max_window_bits=12"
        # not asked: the server uses its smaller window silently
        result = negotiate_deflate(offer("permessage-deflate"), config)
        assert result == ("permessage-deflate", DeflateParams(server_max_window_bits=12, mem_level=5))

    def test_config_requests(self) -> None:
        config = DeflateConfig(
            server_no_context_takeover=True,
            client_no_context_takeover=True,
            client_max_window_bits=10,
            compress_level=1,
            mem_level=5,
        )
        result = negotiate_deflate(offer("permessage-deflate; client_max_window_bits=12"), config)
        assert result == (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=10",
            DeflateParams(True, True, 12, 10, 1, 5),
        )
        # no client_max_window_bits offered: we may not ask for it
        result = negotiate_deflate(offer("permessage-deflate"), config)
        assert result is not None and "client_max_window_bits" not in result[0]

    def test_client_hints(self) -> None:
        result = negotiate_deflate(
            offer("permessage-deflate; client_no_context_takeover; client_max_window_bits=9"), WIDE
        )
        # client_no_context_takeover in an offer is a hint the response does not confirm: we keep
        # the client's window
        assert result == ("permessage-deflate", DeflateParams(client_max_window_bits=9))

    @pytest.mark.parametrize(
        "params",
        [
            "server_max_window_bits=8",  # zlib cannot deflate with a 256-byte window
            "server_max_window_bits",
            "server_max_window_bits=16",
            "server_max_window_bits=09",
            "client_max_window_bits=7",
            "server_no_context_takeover=1",
            "client_no_context_takeover=x",
            "unknown",
            "server_no_context_takeover; server_no_context_takeover",
        ],
    )
    def test_declined_offers_fall_through_to_the_next(self, params: str) -> None:
        offers = offer(f"permessage-deflate; {params}, permessage-deflate; client_max_window_bits")
        assert negotiate_deflate(offers, WIDE) == ("permessage-deflate", DeflateParams(client_max_window_bits=15))
        assert negotiate_deflate(offer(f"permessage-deflate; {params}"), WIDE) is None

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"server_max_window_bits": 8},
            {"server_max_window_bits": 16},
            {"client_max_window_bits": 7},
            {"compress_level": 10},
            {"mem_level": 0},
        ],
    )
    def test_config_validation(self, kwargs: dict[str, int]) -> None:
        with pytest.raises(ValueError):
            DeflateConfig(**kwargs)  # type: ignore[arg-type]


def pair(params: DeflateParams, threshold: int = 0, **kwargs: int) -> tuple[Connection, Connection]:
    server = Connection(deflate=params, compression_threshold=threshold, **kwargs)
    client = Connection(client=True, deflate=params, compression_threshold=threshold, **kwargs)
    return server, client


# RFC 7692 section 7.2.3.1: "Hello" compressed, as one frame and as two fragments
HELLO = b"\xf2\x48\xcd\xc9\xc9\x07\x00"


class TestDeflateMessages:
    def test_rfc_examples(self) -> None:
        conn = Connection(deflate=DeflateParams())
        assert conn.receive_data(frame(OP_TEXT, HELLO, rsv=4)) == ["Hello"]
        data = frame(OP_TEXT, HELLO[:3], rsv=4, fin=False) + frame(OP_CONTINUATION, HELLO[3:])
        assert conn.receive_data(data) == ["Hello"]
        # section 7.2.3.2: the second "Hello" reuses the first one's window
        assert conn.receive_data(frame(OP_TEXT, b"\xf2\x00\x11\x00\x00", rsv=4)) == ["Hello"]
        # section 7.2.3.4: a stored (uncompressed) deflate block
        assert conn.receive_data(frame(OP_TEXT, b"\x00\x05\x00\xfa\xffHello\x00", rsv=4)) == ["Hello"]

    def test_bfinal_ends_the_stream(self) -> None:
        """Section 7.2.3.3: a sender may end each message with a final block; bytes after it are
        padding, and the next message starts a new deflate stream."""
        conn = Connection(deflate=DeflateParams())
        final = b"\xf3\x48\xcd\xc9\xc9\x07\x00\x00"
        assert conn.receive_data(frame(OP_TEXT, final, rsv=4)) == ["Hello"]
        assert conn.receive_data(frame(OP_TEXT, final, rsv=4)) == ["Hello"]

    def test_empty_compressed_message(self) -> None:
        conn = Connection(deflate=DeflateParams())
        assert conn.receive_data(frame(OP_BINARY, b"\x00", rsv=4)) == [b""]
        server, client = pair(DeflateParams())
        assert server.receive_data(client.send_text("")) == [""]

    @pytest.mark.parametrize(
        "params",
        [
            DeflateParams(),
            DeflateParams(True, True, 9, 9),
            DeflateParams(False, True, 10, 15),
            DeflateParams(True, False, 15, 12),
        ],
    )
    def test_round_trips(self, params: DeflateParams) -> None:
        server, client = pair(params)
        assert server.compressing and client.compressing
        messages: list[str | bytes] = ["hello " * 50, b"\x00" * 10000, "x", "hello " * 50, bytes(range(256)) * 300]
        for message in messages:
            data = client.send_text(message) if isinstance(message, str) else client.send_binary(message)
            assert data[0] & 0x40
            assert server.receive_data(data) == [message]
            data = server.send_text(message) if isinstance(message, str) else server.send_binary(message)
            assert data[0] & 0x40
            assert client.receive_data(data) == [message]
            fresh = Connection(client=True, deflate=params, compression_threshold=0).send_text("fresh " * 9)
            assert feed_bytewise(Connection(deflate=params), fresh) == ["fresh " * 9]

    def test_context_takeover_shrinks_repeats(self) -> None:
        server, _ = pair(DeflateParams())
        first, second = server.send_text("a fairly long message " * 5), server.send_text("a fairly long message " * 5)
        assert len(second) < len(first)
        server, _ = pair(DeflateParams(server_no_context_takeover=True))
        assert server.send_text("repeat " * 20) == server.send_text("repeat " * 20)

    def test_threshold(self) -> None:
        server, client = pair(DeflateParams(), threshold=100)
        small = server.send_text("x" * 99)
        assert small == encode_message("x" * 99)
        assert server.send_binary(b"x" * 100)[0] == 0xC2
        assert client.receive_data(small + server.send_text("y" * 500)) == ["x" * 99, "y" * 500]

    def test_uncompressed_message_on_deflate_connection(self) -> None:
        conn = Connection(deflate=DeflateParams())
        assert conn.receive_data(frame(OP_TEXT, b"plain") + frame(OP_TEXT, HELLO, rsv=4)) == ["plain", "Hello"]

    def test_window_8_is_inflated_with_9(self) -> None:
        params = DeflateParams(client_max_window_bits=8)
        server = Connection(deflate=params)
        compressor = zlib.compressobj(6, zlib.DEFLATED, -9)
        payload = (compressor.compress(b"abc" * 1000) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
        assert server.receive_data(frame(OP_BINARY, payload, rsv=4)) == [b"abc" * 1000]
        # a client told to use an 8-bit window cannot compress with zlib: it sends plain messages
        client = Connection(client=True, deflate=params, compression_threshold=0)
        assert not client.compressing
        assert server.receive_data(client.send_text("plain")) == ["plain"]

    def test_rsv1_on_a_continuation_frame(self) -> None:
        conn = Connection(deflate=DeflateParams())
        data = frame(OP_TEXT, HELLO[:3], rsv=4, fin=False) + frame(OP_CONTINUATION, HELLO[3:], rsv=4)
        assert failure(conn.receive_data(data)) == 1002

    @pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
    def test_rsv1_on_control_frames(self, opcode: int) -> None:
        assert failure(Connection(deflate=DeflateParams()).receive_data(frame(opcode, b"", rsv=4))) == 1002

    @pytest.mark.parametrize("rsv", [2, 1, 6])
    def test_other_rsv_bits(self, rsv: int) -> None:
        assert failure(Connection(deflate=DeflateParams()).receive_data(frame(OP_TEXT, HELLO, rsv=rsv))) == 1002

    def test_invalid_compressed_data(self) -> None:
        assert failure(Connection(deflate=DeflateParams()).receive_data(frame(OP_TEXT, b"\xff\xff", rsv=4))) == 1007

    def test_invalid_utf8_inside_compressed_text(self) -> None:
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        payload = (compressor.compress(b"ok\xff") + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
        assert failure(Connection(deflate=DeflateParams()).receive_data(frame(OP_TEXT, payload, rsv=4))) == 1007

    def test_streamed_compressed_fragments(self) -> None:
        server, client = pair(DeflateParams())
        payload = client.send_binary(bytes(range(256)) * 100)
        assert feed_bytewise(server, payload) == [bytes(range(256)) * 100]


# -- limits ----------------------------------------------------------------------------------------
class TestLimits:
    def test_size_is_checked_from_the_header(self) -> None:
        conn = Connection(max_message_size=1000)
        header = frame(OP_BINARY, b"x" * 1001)[:8]
        assert failure(conn.receive_data(header)) == 1009

    def test_size_at_the_limit(self) -> None:
        conn = Connection(max_message_size=1000)
        assert conn.receive_data(frame(OP_TEXT, b"x" * 1000)) == ["x" * 1000]

    def test_fragments_add_up(self) -> None:
        conn = Connection(max_message_size=1000)
        assert conn.receive_data(frame(OP_BINARY, b"x" * 600, fin=False)) == []
        assert failure(conn.receive_data(frame(OP_CONTINUATION, b"x" * 401)[:8])) == 1009

    def test_fragment_count(self) -> None:
        conn = Connection(max_fragments=3)
        data = frame(OP_TEXT, b"a", fin=False) + frame(OP_CONTINUATION, b"b", fin=False)
        assert conn.receive_data(data + frame(OP_CONTINUATION, b"c")) == ["abc"]
        data += frame(OP_CONTINUATION, b"c", fin=False) + frame(OP_CONTINUATION, b"d")
        assert failure(conn.receive_data(data)) == 1009

    def test_inflation_stops_at_the_limit(self) -> None:
        conn = Connection(deflate=DeflateParams(), max_message_size=100_000)
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        bomb = (compressor.compress(b"\x00" * 50_000_000) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
        assert len(bomb) < 100_000
        assert failure(conn.receive_data(frame(OP_BINARY, bomb, rsv=4))) == 1009

    def test_inflated_size_exactly_at_the_limit(self) -> None:
        server, client = pair(DeflateParams(), max_message_size=5000)
        assert server.receive_data(client.send_binary(b"z" * 5000)) == [b"z" * 5000]
        assert failure(server.receive_data(client.send_binary(b"z" * 5001))) == 1009

    def test_inflated_size_adds_up_over_fragments(self) -> None:
        server = Connection(deflate=DeflateParams(), max_message_size=5000)
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        first = compressor.compress(b"a" * 3000) + compressor.flush(zlib.Z_SYNC_FLUSH)
        second = (compressor.compress(b"a" * 3000) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
        assert server.receive_data(frame(OP_BINARY, first, rsv=4, fin=False)) == []
        assert failure(server.receive_data(frame(OP_CONTINUATION, second))) == 1009

    def test_compressed_wire_size_has_slack(self) -> None:
        # incompressible data grows a little when deflated; the inflated size is what counts
        server, client = pair(DeflateParams(), max_message_size=20000)
        data = random.Random(1).randbytes(20000)
        message = client.send_binary(data)
        assert server.receive_data(message) == [data]
        assert failure(Connection(deflate=DeflateParams(), max_message_size=1000).receive_data(message[:10])) == 1009


# -- fuzzing: bad input never raises ---------------------------------------------------------------
def valid_stream(client_role: bool, deflate: bool) -> bytes:
    """A stream of frames as the peer of a ``client_role`` connection sends them."""
    params = DeflateParams() if deflate else None
    peer = Connection(client=not client_role, deflate=params, compression_threshold=10)
    mask = None if client_role else KEY
    return b"".join(
        [
            peer.send_text("hello"),
            peer.send_text("long " * 40),
            peer.send_binary(b"\x00\x01" * 100),
            frame(OP_TEXT, "fragé".encode()[:5], fin=False, mask=mask),
            frame(OP_PING, b"ping", mask=mask),
            frame(OP_CONTINUATION, "fragé".encode()[5:], mask=mask),
            peer.send_ping(b"x"),
            peer.send_pong(b"y"),
            peer.send_binary(b"z" * 70000),
            peer.send_close(1000, "bye"),
        ]
    )


STREAMS = {(c, d): valid_stream(c, d) for c in (False, True) for d in (False, True)}


def check(events: Iterable[Event]) -> None:
    events = list(events)
    for i, event in enumerate(events):
        assert isinstance(event, str | bytes | Ping | Pong | Close)
        if isinstance(event, Close):
            assert i == len(events) - 1
            if event.error is not None:
                assert event.code in (1002, 1007, 1009)


def run(client_role: bool, deflate: bool, chunks: Iterable[bytes]) -> list[Event]:
    conn = Connection(
        client=client_role, deflate=DeflateParams() if deflate else None, max_message_size=100_000, max_fragments=50
    )
    events: list[Event] = []
    for chunk in chunks:
        events += conn.receive_data(chunk)
    check(events)
    conn.close_reply()
    return events


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class TestFuzz:
    @FUZZ
    @given(st.booleans(), st.booleans(), st.lists(st.binary(max_size=300), max_size=8))
    def test_random_bytes(self, client_role: bool, deflate: bool, chunks: list[bytes]) -> None:
        run(client_role, deflate, chunks)

    @FUZZ
    @given(
        st.booleans(),
        st.booleans(),
        st.lists(st.tuples(st.integers(0, 80_000), st.integers(0, 255)), min_size=1, max_size=6),
        st.lists(st.integers(1, 5000), max_size=10),
    )
    def test_mutated_valid_streams(
        self, client_role: bool, deflate: bool, mutations: list[tuple[int, int]], cuts: list[int]
    ) -> None:
        data = bytearray(STREAMS[client_role, deflate])
        for position, value in mutations:
            data[position % len(data)] = value
        chunks, pos = [], 0
        for cut in cuts:
            chunks.append(bytes(data[pos : pos + cut]))
            pos += cut
        chunks.append(bytes(data[pos:]))
        run(client_role, deflate, chunks)

    @FUZZ
    @given(st.booleans(), st.booleans(), st.lists(st.integers(1, 3000), max_size=20))
    def test_valid_streams_in_any_pieces(self, client_role: bool, deflate: bool, cuts: list[int]) -> None:
        data = STREAMS[client_role, deflate]
        chunks, pos = [], 0
        for cut in cuts:
            chunks.append(data[pos : pos + cut])
            pos += cut
        chunks.append(data[pos:])
        events = run(client_role, deflate, chunks)
        assert events[:3] == ["hello", "long " * 40, b"\x00\x01" * 100]
        assert events[-1] == Close(1000, "bye")
