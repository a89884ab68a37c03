"""Property-based fuzzing of every parser, on a short fixed budget (``FUZZ_EXAMPLES``, default 60
per test; ``scripts/fuzz.sh`` runs the same targets for minutes under atheris).

The byte-level targets live in ``targets.py`` (shared with atheris); this file adds structured
strategies (valid packets for round trips, request heads, adversarial JSON) and one run against a
real server process. An input that crashes a target in a longer run is pinned here as an
``@example`` of that target's test (none so far: ~19 M executions over the nine targets, 3 min each).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sioserver.exceptions import SocketIOProtocolError
from sioserver.proto import engineio as eio
from sioserver.proto import socketio as sio
from sioserver.proto.websocket import OP_BINARY, OP_CONTINUATION, OP_PING, OP_TEXT, Connection, encode_frame

from . import targets

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=os.environ.get("FUZZ_DERANDOMIZE") == "1",
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
BYTES = st.binary(max_size=2048)


# ----------------------------------------------------------------------- byte-level targets


@FUZZ
@given(BYTES)
@example(b"\x00" + b"\x81\x85abcd" + bytes(b ^ k for b, k in zip(b"40abc", b"abcda", strict=True)))
@example(b"\x01" + b"\x00" * 6 + b"\xc1\x80abcd")
def test_ws_frames(data: bytes) -> None:
    targets.ws_frames(data)


@FUZZ
@given(BYTES)
def test_ws_frames_structured(data: bytes) -> None:
    targets.ws_frames_structured(data)


@FUZZ
@given(BYTES)
@example(b"GET\x00\x00\x00\x00\x00HTTP/1.1\nHost: x\nUpgrade: websocket\nConnection: upgrade\n"
         b"Sec-WebSocket-Version: 13\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n"
         b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
def test_ws_handshake(data: bytes) -> None:
    targets.ws_handshake(data)


@FUZZ
@given(BYTES)
def test_deflate_roundtrip(data: bytes) -> None:
    targets.deflate_roundtrip(data)


@FUZZ
@given(BYTES)
def test_deflate_frames(data: bytes) -> None:
    targets.deflate_frames(data)


@FUZZ
@given(BYTES)
@example(b"\x03" + b"4a\x1e4b\x1e4c\x1e4d")
@example(b"\x00b" + b"AAAA")
def test_eio_payload(data: bytes) -> None:
    targets.eio_payload(data)


@FUZZ
@given(BYTES)
@example(b"\x03" + "6:4héllo3:4🚀10:b4AQID/w==".encode())
@example(b"\x00" + bytes.fromhex("0006ff3468656c6c6f0105ff04010203ff"))
@example(b"\x01" + "3:4\udc80".encode("utf-8", "surrogateescape"))
@example(b"\x01\x80:")  # a lone surrogate in the length header (found by this target)
def test_eio3_payload(data: bytes) -> None:
    targets.eio3_payload(data)


@FUZZ
@given(BYTES)
@example(b"\x04" + b"\x10" + b'["a",{"_placeholder":true,"num":0}]' + b"\x01\x01\x00")
def test_sio_json(data: bytes) -> None:
    targets.sio_json(data)


@FUZZ
@given(BYTES)
def test_sio_msgpack(data: bytes) -> None:
    targets.sio_msgpack(data)


@settings(FUZZ, max_examples=max(10, EXAMPLES // 3))
@given(BYTES)
@example(b"GET /engine.io/?EIO=4&transport=polling&sid=SID HTTP/1.1\r\nHost: x\r\n\r\n")
@example(b"POST /engine.io/?EIO=4&transport=polling&sid=SID HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n4abc")
@example(b"POST /engine.io/?EIO=4&transport=polling&sid=SID HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"3\r\n4ab\r\n0\r\n\r\n")
@example(b"GET /engine.io/?EIO=4&transport=websocket&sid=SID HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
         b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
def test_http_head(data: bytes) -> None:
    targets.http_head(data)


# ------------------------------------------------------------------------ structured inputs

_HTTP_METHODS = st.sampled_from(["GET", "POST", "OPTIONS", "PUT", "DELETE", "HEAD", "PATCH"])
_QUERY_VALUES = st.one_of(st.sampled_from(["4", "3", "polling", "websocket", "SID", "", "%00", "%ZZ"]),
                          st.text(max_size=10))
_HEADER_NAMES = st.sampled_from(["Host", "Origin", "Upgrade", "Connection", "Content-Length", "Transfer-Encoding",
                                 "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Extensions",
                                 "Accept-Encoding", "Cookie", "Access-Control-Request-Headers", "X-Any"])


@st.composite
def request_heads(draw: Any) -> bytes:
    method = draw(_HTTP_METHODS)
    params = draw(st.dictionaries(st.sampled_from(["EIO", "transport", "sid", "b64", "t"]), _QUERY_VALUES,
                                  max_size=4))
    from urllib.parse import quote

    query = "&".join(f"{k}={quote(v, safe='%')}" for k, v in params.items())
    headers = draw(st.lists(st.tuples(_HEADER_NAMES, st.text(st.characters(min_codepoint=32, max_codepoint=126),
                                                              max_size=40)), max_size=8))
    body = draw(st.binary(max_size=64))
    lines = [f"{method} /engine.io/?{query} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@settings(FUZZ, max_examples=max(10, EXAMPLES // 2))
@given(request_heads())
def test_http_head_structured(head: bytes) -> None:
    targets.http_head(head)


def _strategies(surrogates: bool) -> tuple[Any, Any, Any, Any, Any]:
    """JSON values as a client could send them, with binary where Socket.IO allows it. Lone
    surrogates only where the format keeps them (JSON escapes them; msgpack, by design, sends
    U+FFFD as JavaScript's encoders do)."""
    chars = st.characters() if surrogates else st.characters(blacklist_categories=("Cs",))
    text = st.text(chars, max_size=20)
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53),
                        st.floats(allow_nan=False, allow_infinity=False), text)
    values = st.recursive(
        st.one_of(scalars, st.binary(max_size=20)),
        lambda children: st.one_of(st.lists(children, max_size=4),
                                   st.dictionaries(st.text(chars, max_size=8), children, max_size=4)),
        max_leaves=12,
    )
    names = st.text(chars, max_size=12).filter(lambda s: s not in sio.RESERVED_EVENTS)
    namespaces = st.one_of(st.just("/"), st.text(chars.filter(lambda c: c != ","), max_size=10).map(
        lambda s: "/" + s))
    return text, scalars, values, names, namespaces


@st.composite
def sio_packets(draw: Any, surrogates: bool = True) -> sio.Packet:
    text, scalars, values, names, namespaces = _strategies(surrogates)
    nsp = draw(namespaces)
    kind = draw(st.sampled_from(["event", "ack", "connect", "disconnect", "error"]))
    if kind == "event":
        args = draw(st.lists(values, max_size=4))
        ack = draw(st.one_of(st.none(), st.integers(0, sio.MAX_ACK_ID)))
        return sio.Packet(sio.PacketType.EVENT, nsp, [draw(names), *args], ack)
    if kind == "ack":
        return sio.Packet(sio.PacketType.ACK, nsp, draw(st.lists(values, max_size=4)), draw(st.integers(0, 2**53 - 1)))
    if kind == "connect":
        auth = draw(st.one_of(st.none(), st.dictionaries(text, scalars, max_size=4)))
        return sio.Packet(sio.PacketType.CONNECT, nsp, auth)
    if kind == "disconnect":
        return sio.Packet(sio.PacketType.DISCONNECT, nsp)
    return sio.Packet(sio.PacketType.CONNECT_ERROR, nsp, {"message": draw(text)})


@FUZZ
@given(sio_packets())
def test_sio_json_roundtrip(packet: sio.Packet) -> None:
    parser = sio.JSONParser()
    try:
        targets.check_sio_roundtrip(packet, parser)
    except ValueError as exc:  # more attachments than max_attachments: refused on the way out
        assert "attachments" in str(exc)


@FUZZ
@given(sio_packets(surrogates=False))
def test_sio_msgpack_roundtrip(packet: sio.Packet) -> None:
    targets.check_sio_roundtrip(packet, sio.MsgpackParser())


@FUZZ
@given(st.text(alphabet='[]{}"\\,:a0 ', min_size=1000, max_size=20_000), st.sampled_from(["42", "42[", '42["e",']))
def test_sio_json_scan_is_linear_on_adversarial_text(text: str, head: str) -> None:
    """Bracket soup, escapes and unterminated strings: refused or accepted, quickly, no recursion."""
    decoder = sio.JSONParser(max_depth=8).decoder()
    started = time.perf_counter()
    try:
        packet = decoder.feed(head + text)
    except SocketIOProtocolError:
        packet = None
    assert time.perf_counter() - started < 0.5
    if packet is not None:
        targets._check_packet(packet)


_EIO_TEXT = st.text(st.characters(blacklist_characters="\x1e", blacklist_categories=("Cs",)), max_size=50)


@FUZZ
@given(st.lists(st.one_of(
    st.builds(eio.Packet, st.sampled_from(list(eio.PacketType)), _EIO_TEXT),
    st.builds(eio.Packet, st.just(eio.PacketType.MESSAGE), st.binary(max_size=50)),
), min_size=1, max_size=10))
def test_eio_payload_roundtrip(packets: list[eio.Packet]) -> None:
    assert eio.decode_payload(eio.encode_payload(packets)) == packets
    for packet in packets:
        assert eio.decode_packet(eio.encode_packet(packet)) == packet


@FUZZ
@given(st.lists(st.one_of(st.text(max_size=300), st.binary(max_size=300)), min_size=1, max_size=6),
       st.lists(st.integers(1, 40), min_size=1, max_size=6), st.lists(st.integers(1, 200), max_size=10))
def test_ws_client_to_server_with_fragments_and_pings(messages: list[str | bytes], sizes: list[int],
                                                      cuts: list[int]) -> None:
    """Fragmented messages with pings between the fragments arrive whole, whatever the TCP chunking."""
    stream = []
    for i, message in enumerate(messages):
        payload = message.encode() if isinstance(message, str) else message
        size = sizes[i % len(sizes)]
        parts = [payload[j : j + size] for j in range(0, len(payload), size)] or [b""]
        for k, part in enumerate(parts):
            opcode = (OP_TEXT if isinstance(message, str) else OP_BINARY) if k == 0 else OP_CONTINUATION
            stream.append(encode_frame(opcode, part, fin=k == len(parts) - 1, mask=True))
            if k == 0 and len(parts) > 1:
                stream.append(encode_frame(OP_PING, b"between", mask=True))
    blob = b"".join(stream)
    server = Connection(max_message_size=1 << 20)
    received: list[Any] = []
    pos = 0
    for cut in [*cuts, len(blob)]:
        received.extend(e for e in server.receive_data(blob[pos : pos + cut]) if isinstance(e, (str, bytes)))
        pos += cut
    received.extend(e for e in server.receive_data(blob[pos:]) if isinstance(e, (str, bytes)))
    assert received == messages


# -------------------------------------------------------------------------- a real server


@pytest.fixture(scope="module")
def live_server() -> Any:
    from tests.hostile.conftest import ServerProcess

    server = ServerProcess("main")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@settings(FUZZ, max_examples=max(10, EXAMPLES // 3))
@given(st.one_of(request_heads(), st.binary(min_size=1, max_size=300)))
def test_http_heads_against_a_real_server(live_server: Any, head: bytes) -> None:
    """Whatever arrives, the server answers with an HTTP status line (or closes) and lives on."""
    from tests.hostile.helpers import ConnectionClosed, read_http_response

    async def go() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", live_server.port)
        writer.write(head.replace(b"/engine.io/", b"/socket.io/"))
        writer.write_eof()
        try:
            answer = await read_http_response(reader, timeout=3, head_request=head.startswith(b"HEAD "))
            assert 100 <= answer.status < 600
            assert answer.status != 500, answer.body
        except ConnectionClosed:
            pass
        except ValueError:  # a status line we cannot parse would be the bug
            raise
        finally:
            writer.close()

    asyncio.run(go())
    assert live_server.alive()
