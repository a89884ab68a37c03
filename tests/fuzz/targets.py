"""Fuzz targets: one function per parser, ``target(data: bytes) -> None``.

The same functions run under hypothesis (``test_fuzz.py``, a short fixed budget in the suite) and
under atheris / libFuzzer (``atheris_main.py``, driven by ``scripts/fuzz.sh``). A target returns
normally when the parser accepted the input or refused it with the protocol's own error type; any
other exception escaping, a broken invariant (``AssertionError``), a hang or unbounded memory is a
crash. Inputs are raw bytes; the ``*_structured`` targets first turn them into mostly well-formed
input (frames, packets) so that the fuzzer reaches the deep states of each parser.

Targets
-------
``ws_frames``            RFC 6455 frames into the server's sans-I/O core, in one piece and re-chunked:
                         same events both ways, Close last, the right close codes, bounded buffers
``ws_frames_structured`` the same, from frames built out of the input (masked, plausible headers)
``ws_handshake``         an upgrade request's headers: validate_handshake, negotiate_deflate
``deflate_roundtrip``    permessage-deflate: a client core compresses (and fragments), the server's
                         inflates: every message back as sent, with any negotiated parameters
``deflate_frames``       compressed frames with arbitrary payloads into a server core with deflate
``eio_payload``          Engine.IO polling bodies and WebSocket packets
``eio3_payload``         Engine.IO v3 polling bodies (text and XHR2 binary) and binary WebSocket frames
``sio_json``             Socket.IO default parser: a sequence of text/binary messages into a decoder
``sio_msgpack``          Socket.IO msgpack parser: arbitrary bytes and structured msgpack
``http_head``            an HTTP request through aiohttp's C parser, as the server uses it, then
                         through the Engine.IO request handling (sessions, polling, upgrade checks)
"""

from __future__ import annotations

import asyncio
import json
import math
import struct
import zlib
from typing import Any
from unittest import mock

from sioserver.exceptions import (
    EngineIOProtocolError,
    HandshakeError,
    SocketIOProtocolError,
)
from sioserver.proto import engineio as eio
from sioserver.proto import engineio_v3 as eio3
from sioserver.proto import socketio as sio
from sioserver.proto.websocket import (
    Close,
    Connection,
    DeflateConfig,
    DeflateParams,
    Ping,
    Pong,
    State,
    encode_frame,
    negotiate_deflate,
    parse_extensions,
    validate_handshake,
)

__all__ = ["TARGETS"]


class Input:
    """Reads a fuzzer's bytes as a stream of small decisions (what atheris' FuzzedDataProvider
    does), so that every input means something and short inputs mean short programs."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def __len__(self) -> int:
        return len(self.data) - self.pos

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def int(self, n: int) -> int:
        """An int in [0, n)."""
        if n <= 1:
            return 0
        value = self.byte() if n <= 256 else (self.byte() << 8 | self.byte())
        return value % n

    def bool(self) -> bool:
        return bool(self.byte() & 1)

    def bytes(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += len(chunk)
        return chunk

    def rest(self) -> bytes:
        return self.bytes(len(self))


# =========================================================================== WebSocket frames

_CLOSE_CODES = {1002, 1007, 1009}
_LIMIT = 4096
_FRAGMENTS = 16


def _feed(conn: Connection, chunks: list[bytes]) -> list[Any]:
    events: list[Any] = []
    for chunk in chunks:
        out = conn.receive_data(chunk)
        if events and isinstance(events[-1], Close):
            assert not out, f"events after Close: {out!r}"
        events.extend(out)
        # no unbounded buffering: only a partial frame header or control frame waits whole
        buffered = len(conn._buf or b"")
        assert buffered <= 14 + 125, f"{buffered} bytes buffered"
        assert sum(map(len, conn._m_data)) <= _LIMIT
        assert sum(map(len, conn._m_text)) <= _LIMIT
    return events


def _check_events(events: list[Any]) -> None:
    for i, event in enumerate(events):
        if isinstance(event, Close):
            assert i == len(events) - 1, "Close is not the last event"
            if event.error is not None:
                assert event.code in _CLOSE_CODES, event
                assert event.error.code == event.code
            else:
                assert event.code == 1005 or event.code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011) \
                    or 3000 <= event.code <= 4999, event
        elif isinstance(event, (str, bytes)):
            assert len(event.encode() if isinstance(event, str) else event) <= _LIMIT
        else:
            assert isinstance(event, (Ping, Pong)), event
            assert len(event.data) <= 125


def _normalize(events: list[Any]) -> list[Any]:
    out = []
    for event in events:
        if isinstance(event, Close):
            out.append(("close", event.code, event.error is not None))
        elif isinstance(event, Ping):
            out.append(("ping", event.data, event.reply))
        else:
            out.append(event)
    return out


def check_ws_stream(stream: bytes, deflate: DeflateParams | None, cuts: list[int]) -> None:
    """Feed ``stream`` whole and cut at ``cuts``: same events, and every invariant holds."""
    whole = Connection(deflate=deflate, max_message_size=_LIMIT, max_fragments=_FRAGMENTS)
    events = _feed(whole, [stream])
    _check_events(events)
    pieces, last = [], 0
    for cut in sorted(set(c for c in cuts if 0 < c < len(stream))):
        pieces.append(stream[last:cut])
        last = cut
    pieces.append(stream[last:])
    chunked = Connection(deflate=deflate, max_message_size=_LIMIT, max_fragments=_FRAGMENTS)
    chunked_events = _feed(chunked, pieces)
    _check_events(chunked_events)
    assert _normalize(events) == _normalize(chunked_events), (events, chunked_events)
    if events and isinstance(events[-1], Close):
        reply = whole.close_reply()
        assert reply[:1] == b"\x88" and whole.state is State.CLOSED
        assert whole.receive_data(b"\x81\x80abcd") == []
        assert whole.send_text("x") == b""


def _deflate_params(inp: Input) -> DeflateParams:
    return DeflateParams(
        server_no_context_takeover=inp.bool(),
        client_no_context_takeover=inp.bool(),
        server_max_window_bits=9 + inp.int(7),
        client_max_window_bits=8 + inp.int(8),
        compress_level=inp.int(10),
        mem_level=1 + inp.int(9),
    )


def ws_frames(data: bytes) -> None:
    inp = Input(data)
    flags = inp.byte()
    deflate = _deflate_params(inp) if flags & 1 else None
    cuts = [inp.int(4096) for _ in range(flags >> 5)]
    check_ws_stream(inp.rest(), deflate, cuts)


def build_frame(inp: Input) -> bytes:
    """One frame from the input: mostly plausible, sometimes broken on purpose."""
    head = inp.byte()
    choice = inp.int(16)
    if choice < 10:  # a common opcode, FIN usually set, RSV usually clear
        opcode = (0x0, 0x1, 0x2, 0x8, 0x9, 0xA, 0x1, 0x2, 0x0, 0x1)[choice]
        b0 = (0x80 if head & 0x3 else 0) | (0x40 if head & 0x1C == 0x1C else 0) | opcode
    else:
        b0 = head
    size_kind = inp.int(8)
    payload_len = (inp.int(126), inp.int(200), inp.int(_LIMIT + 200), inp.int(3), inp.int(30),
                   inp.int(126), inp.int(66000), 0)[size_kind]
    payload = inp.bytes(min(payload_len, len(inp))) if size_kind != 7 else b""
    if b0 & 0x0F == 0x8 and payload and inp.bool():  # a Close frame with a plausible code
        payload = struct.pack("!H", (1000, 1001, 1005, 1006, 999, 3000, 4999, 5000)[inp.int(8)]) + payload[2:]
    declared = len(payload)
    if inp.int(16) == 0:
        declared = inp.int(1 << 16) if inp.bool() else (1 << 63) + inp.int(256)
    masked = inp.int(32) != 0
    if declared < 126:
        header = struct.pack("!BB", b0, (0x80 if masked else 0) | declared)
    elif declared < 65536:
        header = struct.pack("!BBH", b0, (0x80 if masked else 0) | 126, declared)
    else:
        header = struct.pack("!BBQ", b0, (0x80 if masked else 0) | 127, declared % (1 << 64))
    if not masked:
        return header + payload
    key = inp.bytes(4).ljust(4, b"\0")
    return header + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


def ws_frames_structured(data: bytes) -> None:
    inp = Input(data)
    flags = inp.byte()
    deflate = _deflate_params(inp) if flags & 1 else None
    cuts = [inp.int(8192) for _ in range(flags >> 5)]
    frames = []
    while len(inp) and len(frames) < 64:
        frames.append(build_frame(inp))
    check_ws_stream(b"".join(frames), deflate, cuts)


# ============================================================================ WS handshake


def ws_handshake(data: bytes) -> None:
    text = data.decode("latin-1")
    first, _, rest = text.partition("\n")
    headers = []
    for line in rest.split("\n"):
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip(), value.strip()))
    method = first[:8] or "GET"
    version = first[8:16] or "HTTP/1.1"
    try:
        key, offers = validate_handshake(method, version, headers)
    except HandshakeError as exc:
        assert exc.status in (400, 426)
        return
    assert len(key) == 24
    for config in (DeflateConfig(), DeflateConfig(client_max_window_bits=None, server_max_window_bits=9)):
        negotiated = negotiate_deflate(offers, config)
        if negotiated is None:
            continue
        response, params = negotiated
        assert 9 <= params.server_max_window_bits <= 15 and 8 <= params.client_max_window_bits <= 15
        # our answer must be a valid header that offers exactly what we use
        (name, _), *more = parse_extensions([response])
        assert name == "permessage-deflate" and not more


# ===================================================================== permessage-deflate


def deflate_roundtrip(data: bytes) -> None:
    """A client core compresses what the fuzzer chose; the server's inflates it back."""
    inp = Input(data)
    params = _deflate_params(inp)
    params = DeflateParams(params.server_no_context_takeover, params.client_no_context_takeover,
                           params.server_max_window_bits, max(params.client_max_window_bits, 9),
                           params.compress_level, params.mem_level)
    client = Connection(client=True, deflate=params, compression_threshold=0, max_message_size=1 << 20)
    server = Connection(deflate=params, max_message_size=1 << 20)
    sent: list[str | bytes] = []
    stream = []
    while len(inp) and len(sent) < 32:
        size = inp.int(2000)
        kind = inp.int(4)
        body = inp.bytes(size)
        if kind == 0:  # repetitive: compresses well
            body = body[:8] * 200
        message: str | bytes = body.decode("utf-8", "replace") if kind == 1 else body
        sent.append(message)
        frame = client.send_text(message) if isinstance(message, str) else client.send_binary(message)
        pieces = inp.int(4)
        if pieces and len(frame) > 20:
            frame = _refragment(frame, pieces + 1)
        stream.append(frame)
    blob = b"".join(stream)
    received: list[Any] = []
    pos = 0
    while pos < len(blob):
        step = 1 + inp.int(3000)
        received.extend(server.receive_data(blob[pos : pos + step]))
        pos += step
    assert received == sent, (len(received), len(sent))


def _refragment(frame: bytes, pieces: int) -> bytes:
    """Split one masked client frame into ``pieces`` frames (RSV1 on the first only)."""
    b0, b1 = frame[0], frame[1]
    n = b1 & 0x7F
    offset = 2
    if n == 126:
        n = struct.unpack("!H", frame[2:4])[0]
        offset = 4
    elif n == 127:
        n = struct.unpack("!Q", frame[2:10])[0]
        offset = 10
    key = frame[offset : offset + 4]
    payload = bytes(b ^ key[i & 3] for i, b in enumerate(frame[offset + 4 :]))
    size = -(-len(payload) // pieces) or 1
    parts = [payload[i : i + size] for i in range(0, len(payload), size)] or [b""]
    out = []
    for i, part in enumerate(parts):
        opcode = b0 & 0x0F if i == 0 else 0
        fin = i == len(parts) - 1
        out.append(encode_frame(opcode, part, fin=fin, rsv1=i == 0 and bool(b0 & 0x40), mask=True))
    return b"".join(out)


def deflate_frames(data: bytes) -> None:
    """Compressed frames whose payload is the fuzzer's (mostly garbage for zlib), or real deflate
    of the fuzzer's bytes, possibly truncated: only the protocol's close codes may come out."""
    inp = Input(data)
    params = _deflate_params(inp)
    frames = []
    while len(inp) and len(frames) < 16:
        kind = inp.int(3)
        body = inp.bytes(inp.int(600))
        if kind == 0:
            bits = max(params.client_max_window_bits, 9)
            comp = zlib.compressobj(inp.int(10), zlib.DEFLATED, -bits)
            body = comp.compress(body * (1 + inp.int(64))) + comp.flush(zlib.Z_SYNC_FLUSH)
            body = body[:-4] if inp.bool() else body[: inp.int(len(body) + 1)]
        frames.append(encode_frame(1 + inp.int(2), body, fin=inp.int(4) != 0, rsv1=inp.int(8) != 0, mask=True))
    check_ws_stream(b"".join(frames), params, [inp.int(4096) for _ in range(3)])


# ================================================================================ Engine.IO


def eio_payload(data: bytes) -> None:
    inp = Input(data)
    limit = inp.int(20)
    raw = inp.rest()
    text = raw.decode("utf-8", "surrogateescape" if limit & 1 else "replace")
    try:
        packets = eio.decode_payload(text, limit)
    except EngineIOProtocolError:
        pass
    else:
        assert packets and (not limit or len(packets) <= limit)
        for packet in packets:
            assert isinstance(packet.type, eio.PacketType)
            if isinstance(packet.data, bytes):
                assert packet.type is eio.PacketType.MESSAGE
        # what decodes re-encodes to an equivalent body
        again = eio.decode_payload(eio.encode_payload(packets))
        assert again == packets
    for message in (text, raw):
        try:
            packet = eio.decode_packet(message)
        except EngineIOProtocolError:
            continue
        encoded = eio.encode_packet(packet)
        assert eio.decode_packet(encoded) == packet


def _v3_message(packet: eio.Packet) -> str | bytes:
    return packet.data if isinstance(packet.data, bytes) else "%d%s" % (packet.type, packet.data)


def eio3_payload(data: bytes) -> None:
    inp = Input(data)
    limit = inp.int(20)
    raw = inp.rest()
    text = raw.decode("utf-8", "surrogateescape" if limit & 1 else "replace")
    decoders = ((eio3.decode_payload, text), (eio3.decode_binary_payload, raw))
    for decode, body in decoders:
        try:
            packets = decode(body, limit)  # type: ignore[operator]
        except EngineIOProtocolError:
            continue
        assert packets and (not limit or len(packets) <= limit)
        for packet in packets:
            assert isinstance(packet.type, eio.PacketType)
            if isinstance(packet.data, bytes):
                assert packet.type is eio.PacketType.MESSAGE
        # what decodes re-encodes, in either format, to the same packets
        messages = [_v3_message(p) for p in packets]
        assert eio3.decode_payload(eio3.encode_payload(messages)) == packets
        assert eio3.decode_binary_payload(eio3.encode_binary_payload(messages)) == packets
    try:
        frame = eio3.decode_ws_binary(raw)
    except EngineIOProtocolError:
        return
    assert eio3.encode_ws_binary(frame.data) == raw  # type: ignore[arg-type]


# ================================================================================ Socket.IO


_SIO_LIMITS = {"max_attachments": 3, "max_depth": 8, "max_size": 4096}


def _check_packet(packet: sio.Packet) -> None:
    assert packet.nsp.startswith("/")
    assert packet.id is None or 0 <= packet.id <= sio.MAX_ACK_ID
    if packet.type is sio.PacketType.EVENT:
        assert isinstance(packet.data, list) and packet.data
        assert packet.data[0] not in sio.RESERVED_EVENTS
        assert isinstance(packet.data[0], (str, int, float)) and not isinstance(packet.data[0], bool)
    elif packet.type is sio.PacketType.ACK:
        assert isinstance(packet.data, list) and packet.id is not None
    else:
        assert packet.id is None
    assert _depth(packet.data) <= _SIO_LIMITS["max_depth"]


def _depth(obj: Any) -> int:
    """Nesting depth, iteratively (a recursive check would itself be the bug)."""
    best, stack = 0, [(obj, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, (list, dict)):
            best = max(best, level)
            stack.extend((v, level + 1) for v in (value.values() if isinstance(value, dict) else value))
    return best


_SIO_HEADS = ("0", "1", "2", "3", "4", "51-", "62-", "2/x,", "31", "52-/a,7", "0/b,", "21", "61-9")


def sio_json(data: bytes) -> None:
    """Messages: [kind][len][bytes]... kind even = text (UTF-8, replaced), odd = binary."""
    inp = Input(data)
    parser = sio.JSONParser(**_SIO_LIMITS)
    decoder = parser.decoder()
    while len(inp):
        kind = inp.byte()
        body = inp.bytes(inp.int(600) if kind & 2 else inp.int(60))
        message: str | bytes = body if kind & 1 else body.decode("utf-8", "replace")
        if kind & 4 and not kind & 1:  # a plausible head for the text
            message = _SIO_HEADS[(kind >> 4) % len(_SIO_HEADS)] + str(message)
        try:
            packet = decoder.feed(message)
        except SocketIOProtocolError:
            decoder.reset()
            continue
        if packet is not None:
            _check_packet(packet)
            # what we decode, we can send back (the server echoes client data)
            with_ack = packet.type is sio.PacketType.EVENT and packet.data[0] != "x"
            if with_ack:
                parser.encode(sio.Packet(sio.PacketType.ACK, packet.nsp, packet.data, 1))


def check_sio_roundtrip(packet: sio.Packet, parser: Any) -> None:
    """Encode then decode: the same packet (tuples as lists, bytearray/memoryview as bytes)."""
    encoded = parser.encode(packet)
    decoder = parser.decoder()
    result = None
    for i, message in enumerate(encoded):
        result = decoder.feed(message)
        if i < len(encoded) - 1:
            assert result is None
    assert result is not None
    base = {sio.PacketType.BINARY_EVENT: sio.PacketType.EVENT, sio.PacketType.BINARY_ACK: sio.PacketType.ACK}
    assert result.type == base.get(packet.type, packet.type)
    assert result.nsp == packet.nsp and result.id == packet.id
    assert _plain(result.data) == _plain(packet.data), (result.data, packet.data)


def _plain(obj: Any) -> Any:
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return ("bytes", bytes(obj))
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    return obj


def sio_msgpack(data: bytes) -> None:
    parser = sio.MsgpackParser(max_depth=8, max_size=4096)
    decoder = parser.decoder()
    inp = Input(data)
    mode = inp.byte()
    raw = inp.rest()
    if mode & 1:
        raw = _structured_msgpack(Input(raw))
    try:
        packet = decoder.feed(raw)
    except SocketIOProtocolError:
        return
    assert packet is not None
    _check_packet(packet)
    if packet.type in (sio.PacketType.EVENT, sio.PacketType.ACK):
        parser.encode(packet)


def _structured_msgpack(inp: Input) -> bytes:
    import msgpack

    def value(depth: int) -> Any:
        kind = inp.int(12)
        if depth > 10 or kind < 3:
            return (None, True, inp.int(1 << 16) - 100)[kind % 3]
        if kind == 3:
            return inp.bytes(inp.int(20)).decode("utf-8", "replace")
        if kind == 4:
            return inp.bytes(inp.int(20))
        if kind == 5:
            return msgpack.ExtType((0, 0, 1, 127)[inp.int(4)], inp.bytes((1, 2, 4, 8, 16, 3)[inp.int(6)]))
        if kind == 6:
            return float(inp.int(1000)) / 7
        if kind in (7, 8, 9):
            return [value(depth + 1) for _ in range(inp.int(4))]
        return {("type", "data", "nsp", "id", "_placeholder", inp.bytes(3).decode("latin-1"))[inp.int(6)]:
                value(depth + 1) for _ in range(inp.int(4))}

    obj: dict[Any, Any] = {"type": inp.int(8) - 1, "nsp": ("/", "/a", "a", 1)[inp.int(4)]}
    if inp.bool():
        obj["data"] = (["ev", value(0)] if inp.bool() else value(0))
    if inp.bool():
        obj["id"] = (inp.int(1 << 16), -1, 2**53, None)[inp.int(4)]
    return bytes(msgpack.packb(obj, use_bin_type=True))


# ============================================================================ HTTP request head


class _FuzzEngine:
    """An Engine.IO server, a session whose sid the input can name (``SID``), and a loop."""

    def __init__(self) -> None:
        from sioserver.engine.server import EngineServer

        self.loop = asyncio.new_event_loop()
        self.server_cls = EngineServer

    def run(self, data: bytes) -> None:
        from aiohttp.http_exceptions import HttpProcessingError
        from aiohttp.http_parser import HttpRequestParserC
        from aiohttp.web_protocol import RequestPayloadError

        loop = self.loop
        engine = self.server_cls(body_timeout=0.05, ping_interval=5, ping_timeout=5, cors_allowed_origins=None,
                                 max_payload_packets=8, max_http_buffer_size=4096, logger=_QUIET)
        protocol = mock.Mock()
        parser = HttpRequestParserC(protocol, loop, 2**16, max_line_size=8190, max_headers=128,
                                    max_field_size=8190, payload_exception=RequestPayloadError)

        async def go() -> None:
            session_sid = await self._handshake(engine)
            raw = data.replace(b"SID", session_sid.encode())
            try:
                messages, _upgraded, _tail = parser.feed_data(raw)
            except HttpProcessingError:
                return
            for message, payload in messages[:4]:
                if not payload.is_eof():
                    payload.feed_eof()
                request = _request(message, payload, loop)
                session = engine.sessions.get(session_sid)
                if session is not None and session.outbox_empty:
                    engine.send(session_sid, "keep the GET from parking")
                response = await asyncio.wait_for(engine.handle_request(request), 2)
                if response is not None:
                    assert 200 <= response.status < 600
                    if response.status in (400, 403):
                        body = json.loads(response.body)
                        assert set(body) == {"code", "message"}
        try:
            loop.run_until_complete(go())
        finally:
            engine.close_all()

    async def _handshake(self, engine: Any) -> str:
        from aiohttp.test_utils import make_mocked_request

        from sioserver.integrations.aiohttp import AiohttpRequest

        request = AiohttpRequest(make_mocked_request("GET", "/engine.io/?EIO=4&transport=polling"))
        response = await engine.handle_request(request)
        return str(json.loads(response.body[1:])["sid"])


class _Quiet:
    """A logger that drops everything (the fuzzer would drown in refusals)."""

    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: None


_QUIET: Any = _Quiet()
_ENGINE: _FuzzEngine | None = None


def _request(message: Any, payload: Any, loop: asyncio.AbstractEventLoop) -> Any:
    from aiohttp import web

    from sioserver.integrations.aiohttp import AiohttpRequest

    transport = mock.Mock()
    transport.get_extra_info.return_value = ("127.0.0.1", 1234)
    transport.is_closing.return_value = False
    protocol = mock.Mock()
    protocol.transport = transport
    protocol._upgraded = False
    writer = mock.Mock()
    writer.transport = transport
    req = web.Request(message, payload, protocol, writer, mock.Mock(), loop)
    return AiohttpRequest(req)


def http_head(data: bytes) -> None:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _FuzzEngine()
    _ENGINE.run(data)


TARGETS = {
    "ws_frames": ws_frames,
    "ws_frames_structured": ws_frames_structured,
    "ws_handshake": ws_handshake,
    "deflate_roundtrip": deflate_roundtrip,
    "deflate_frames": deflate_frames,
    "eio_payload": eio_payload,
    "eio3_payload": eio3_payload,
    "sio_json": sio_json,
    "sio_msgpack": sio_msgpack,
    "http_head": http_head,
}
