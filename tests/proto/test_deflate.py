"""sioserver.proto.websocket.deflate and compressed messages on a Connection (RFC 7692): negotiation
(section 7.1), then messages (section 7.2)."""

from __future__ import annotations

import zlib

import pytest

from sioserver.proto import websocket as ws
from sioserver.proto.websocket import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Connection,
    DeflateConfig,
    DeflateParams,
    encode_message,
    negotiate_deflate,
    parse_extensions,
)
from tests.proto.websocket_support import failure, feed_bytewise, frame, pair


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
