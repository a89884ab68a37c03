"""sioserver.proto.websocket.frames and the frame parser of .connection: base framing (RFC 6455 section
5.2) and masking (section 5.3)."""

from __future__ import annotations

import pytest

from sioserver.proto.websocket import (
    OP_BINARY,
    OP_PING,
    OP_TEXT,
    Close,
    Connection,
    Ping,
    Pong,
    State,
    encode_frame,
    encode_message,
    frames,
)
from tests.proto.websocket_support import KEY, failure, feed_bytewise, frame, unframe


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
