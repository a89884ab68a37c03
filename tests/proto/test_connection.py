"""sioserver.proto.websocket.connection: bytes in, events and bytes out, grouped by RFC 6455 section:
fragmentation, control frames, UTF-8, closing; then limits and fuzzing."""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    DeflateParams,
    Event,
    Ping,
    Pong,
    State,
    encode_frame,
)
from tests.proto.websocket_support import KEY, failure, feed_bytewise, frame, pair


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
