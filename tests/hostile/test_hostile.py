"""Hostile clients against a real server process (issue 7).

Every case attacks ``python -m sioserver tests.hostile.app:sio`` (see ``conftest.py`` for the
configurations) over a real socket, checks that the server answers the protocol's way and logs the
event exactly once where it should, and ends with ``assert_healthy()``: the process is alive and a
well-behaved client connects and round-trips an ack within 2 s.

Sections: HTTP, Engine.IO, WebSocket frames, Socket.IO packets, namespaces, churn, slow consumers
and half-open connections. A case that shows a server bug is marked ``xfail(strict=True)`` with the
reason in one line; it turns into a failure the moment the server is fixed, so the mark goes then.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import struct
import time
import zlib
from typing import Any

import aiohttp
import pytest

from tests._support.wait import wait_until

from .conftest import ServerProcess
from .helpers import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_TEXT,
    SEP,
    ConnectionClosed,
    Polling,
    RawWS,
    closed_by_server,
    open_tcp,
    raw_http,
    read_http_response,
    request,
    ws_frame,
)

PATH = "/socket.io/"
HANDSHAKE = f"{PATH}?EIO=4&transport=polling"


def ws_violation(ws: RawWS, code: int) -> str:
    return rf"WebSocket protocol violation from \('127\.0\.0\.1', {ws.local_port}\).*close code {code}"


def sio_violation(sid: str, reason: str) -> str:
    return rf"client {re.escape(sid)} from 127\.0\.0\.1: .*{reason}.*closing the connection"


async def eio_error(srv: ServerProcess, data: bytes, status: int, code: int, message: str) -> None:
    answer = await raw_http(srv.port, data)
    assert answer.status == status, (answer.status, answer.body)
    assert answer.json() == {"code": code, "message": message}
    await srv.expect_log(rf"refused \w+ from 127\.0\.0\.1: {message}")


# =============================================================================================
# HTTP
# =============================================================================================

MALFORMED_HTTP: dict[str, bytes] = {
    "garbage_request_line": b"GARBAGE\r\n\r\n",
    "nul_in_request_target": b"GET /socket.io/\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    "unsupported_http_version": b"GET " + HANDSHAKE.encode() + b" HTTP/9.9\r\nHost: x\r\n\r\n",
    "bare_lf_line_endings": b"GET " + HANDSHAKE.encode() + b" HTTP/1.1\nHost: x\n\n",
    "header_without_colon": b"GET " + HANDSHAKE.encode() + b" HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
    "space_in_header_name": b"GET " + HANDSHAKE.encode() + b" HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n",
    "obsolete_line_folding": b"GET " + HANDSHAKE.encode() + b" HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n",
    "control_char_in_header_value": b"GET " + HANDSHAKE.encode() + b" HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n",
    "oversize_header_line": b"GET " + HANDSHAKE.encode() + b" HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 100_000
    + b"\r\n\r\n",
    "too_many_headers": b"GET " + HANDSHAKE.encode() + b" HTTP/1.1\r\nHost: x\r\n"
    + b"".join(b"X-%d: 1\r\n" % i for i in range(10_000)) + b"\r\n",
    "oversize_request_target": b"GET " + HANDSHAKE.encode() + b"&x=" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "content_length_and_chunked": b"POST " + HANDSHAKE.encode()
    + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "duplicate_content_length": b"POST " + HANDSHAKE.encode()
    + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "negative_content_length": b"POST " + HANDSHAKE.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    "tls_client_hello": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(32),
    "unsupported_content_encoding": b"POST " + HANDSHAKE.encode()
    + b" HTTP/1.1\r\nHost: x\r\nContent-Encoding: br\r\nContent-Length: 8\r\n\r\n\x00\x01\x02\x03\x04\x05\x06\x07",
}


@pytest.mark.parametrize("case", list(MALFORMED_HTTP))
async def test_http_malformed_request_is_400_and_closed(srv: ServerProcess, case: str) -> None:
    """aiohttp's parser answers 400 (or 431/414), closes the connection, and nothing else happens."""
    reader, writer = await open_tcp(srv.port)
    writer.write(MALFORMED_HTTP[case])
    answer = await read_http_response(reader)
    assert answer.status in (400, 413, 414, 431), answer
    assert await closed_by_server(reader)
    writer.close()
    records = await srv.logs()
    assert len(records) <= 1, records
    await srv.assert_healthy()


async def test_http_malformed_requests_each_logged_once_without_traceback(srv: ServerProcess) -> None:
    for case, data in MALFORMED_HTTP.items():
        await srv.mark_logs()
        answer = await raw_http(srv.port, data)
        assert answer.status in (400, 413, 414, 431), case
        records = await srv.expect_log(r"127\.0\.0\.1", timeout=0.5)  # one line naming the peer, no traceback
        assert records[0]["level"] in ("INFO", "WARNING"), (case, records)
    await srv.assert_healthy()


async def test_http_bad_chunk_size_in_post_is_400_and_not_processed(srv: ServerProcess) -> None:
    poll = await Polling.connect(srv.port)
    try:
        await poll.sio_connect()
        body = b'42["mark","bad-chunk"]'
        data = request("POST", poll.url()[len(f"http://127.0.0.1:{srv.port}"):], srv.port,
                       [("Transfer-Encoding", "chunked")], b"%x\r\n%s\r\nzz\r\n" % (len(body), body))
        answer = await raw_http(srv.port, data)
        assert answer.status == 400
        assert "bad-chunk" not in (await srv.state())["marks"]
    finally:
        await poll.close()
    await srv.assert_healthy()


async def test_http_post_100mb_content_length_is_413_at_once(srv: ServerProcess) -> None:
    """The Content-Length alone says too big: 413 before a byte of the body is sent."""
    poll = await Polling.connect(srv.port)
    try:
        rss = srv.rss()
        reader, writer = await open_tcp(srv.port)
        target = poll.url()[len(f"http://127.0.0.1:{srv.port}"):]
        writer.write(request("POST", target, srv.port, [("Content-Length", str(100_000_000))]))
        answer = await read_http_response(reader, timeout=1.0)
        assert answer.status == 413
        assert answer.json() == {"code": 3, "message": "Payload too large"}  # no byte of the body sent
        # The body was never asked for. aiohttp keeps the connection for its lingering time (10 s),
        # reading and discarding what comes: 20 MB more must not be buffered.
        sent = 0
        try:
            async with asyncio.timeout(3):
                while sent < 20_000_000:
                    writer.write(b"4" * 65_536)
                    await writer.drain()
                    sent += 65_536
        except (ConnectionError, OSError):
            pass
        writer.close()
        assert srv.rss() - rss < 5_000_000
        await srv.expect_log(rf"session {poll.sid}: POST body over max_http_buffer_size")
        assert (await poll.post('42["mark","after-413"]')) == (200, "ok")  # the session stays, as the reference
    finally:
        await poll.close()
    await srv.assert_healthy()


async def test_http_post_100mb_chunked_is_413_while_streaming(srv: ServerProcess) -> None:
    poll = await Polling.connect(srv.port)
    try:
        rss = srv.rss()
        reader, writer = await open_tcp(srv.port)
        target = poll.url()[len(f"http://127.0.0.1:{srv.port}"):]
        writer.write(request("POST", target, srv.port, [("Transfer-Encoding", "chunked")]))
        answer_task = asyncio.ensure_future(read_http_response(reader, timeout=10.0))
        chunk = b"4" * 65_536
        sent = 0
        try:
            while sent < 100_000_000 and not answer_task.done():
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
                await asyncio.sleep(0)  # drain() does not yield while the server keeps up: let the reader run
                sent += len(chunk)
        except (ConnectionError, OSError):
            pass
        answer = await answer_task
        assert answer.status == 413
        assert sent < 20_000_000, f"the server read {sent} bytes before refusing"
        writer.close()
        assert srv.rss() - rss < 10_000_000
        await srv.expect_log(rf"session {poll.sid}: POST body over max_http_buffer_size")
    finally:
        await poll.close()
    await srv.assert_healthy()


def _bomb(encoding: str, size: int = 50_000_000) -> bytes:
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
    chunk = b"a" * 1_000_000
    return b"".join([compressor.compress(b"4"), *(compressor.compress(chunk) for _ in range(size // len(chunk))),
                     compressor.flush()])


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_http_post_compression_bomb_is_413_while_inflating(srv: ServerProcess, encoding: str) -> None:
    """aiohttp inflates request bodies: 200 KB that inflate to 50 MB must be refused at the limit."""
    poll = await Polling.connect(srv.port)
    try:
        body = _bomb(encoding)
        rss = srv.rss()
        reader, writer = await open_tcp(srv.port)
        target = poll.url()[len(f"http://127.0.0.1:{srv.port}"):]
        writer.write(request("POST", target, srv.port, [("Content-Length", str(len(body))),
                                                         ("Content-Encoding", encoding)], body))
        answer = await read_http_response(reader, timeout=2.0)
        writer.close()
        assert answer.status == 413  # within read_http_response's 2 s: refused at the limit, not inflated first
        assert srv.rss() - rss < 10_000_000
        await srv.expect_log(rf"session {poll.sid}: POST body over max_http_buffer_size")
        assert (await poll.post('42["mark","after-bomb"]')) == (200, "ok")
    finally:
        await poll.close()
    await srv.assert_healthy()


async def _truncated_post(srv: ServerProcess, poll: Polling, token: str) -> None:
    reader, writer = await open_tcp(srv.port)
    body = f'42["mark","{token}"]{SEP}42["mark",'.encode()
    target = poll.url()[len(f"http://127.0.0.1:{srv.port}"):]
    writer.write(request("POST", target, srv.port, [("Content-Length", "100")], body))
    await writer.drain()
    writer.write_eof()  # fewer bytes than announced, then the end
    await closed_by_server(reader)
    writer.close()


async def test_http_post_shorter_than_content_length_is_not_processed(srv: ServerProcess) -> None:
    poll = await Polling.connect(srv.port)
    try:
        await poll.sio_connect()
        await _truncated_post(srv, poll, "truncated-1")
        # the server's log of the truncated body is the sign it has handled it
        await srv.expect_log(rf"session {poll.sid}: .*(truncated|incomplete|prematurely)")
        assert "truncated-1" not in (await srv.state())["marks"]
    finally:
        await poll.close()
    await srv.assert_healthy()


async def test_http_post_shorter_than_content_length_closes_session_and_logs(srv: ServerProcess) -> None:
    poll = await Polling.connect(srv.port)
    try:
        await poll.sio_connect()
        await _truncated_post(srv, poll, "truncated-2")
        await srv.expect_log(rf"session {poll.sid}: .*(truncated|incomplete|prematurely)")
        status, body = await poll.get()
        assert (status, body) in ((200, "1"), (400, '{"code":1,"message":"Session ID unknown"}'))
    finally:
        await poll.close()
    await srv.assert_healthy()


async def test_http_post_100k_packets_is_400_and_logged(srv: ServerProcess) -> None:
    poll = await Polling.connect(srv.port)
    try:
        await poll.sio_connect()
        body = SEP.join(['42["mark","flood"]'] + ["6"] * 99_999)  # 300 KB: under max_http_buffer_size
        status, text = await poll.post(body)
        assert (status, json.loads(text)) == (400, {"code": 3, "message": "Bad request"})
        await srv.expect_log(rf"session {poll.sid}: bad POST payload \(payload carries more than 1000 packets\)")
        assert "flood" not in (await srv.state())["marks"]  # refused whole, not cut
        status, text = await poll.get()
        assert (status, text) in ((200, "1"), (400, '{"code":1,"message":"Session ID unknown"}'))
    finally:
        await poll.close()
    await srv.assert_healthy()


async def test_http_slowloris_headers_do_not_block_other_clients(srv: ServerProcess) -> None:
    """Fifty connections trickle their request heads a byte at a time. Today's deadline for a head
    is aiohttp's keep-alive timer armed at connection start: 75 s (run_app's keepalive_timeout)."""
    conns = [await open_tcp(srv.port) for _ in range(50)]
    head = request("GET", HANDSHAKE, srv.port, [("X-Slow", "y" * 100)])
    stop = asyncio.Event()

    async def trickle(writer: asyncio.StreamWriter) -> None:
        for byte in head[:-4]:
            if stop.is_set():
                return
            writer.write(bytes([byte]))
            await asyncio.sleep(0.02)

    tasks = [asyncio.ensure_future(trickle(w)) for _, w in conns]
    try:
        for _ in range(5):
            await srv.assert_healthy()  # each within its deadline while the heads trickle in
            await asyncio.sleep(0.1)
        assert all(not r.at_eof() for r, _ in conns)  # still held open, a head at a time
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for _, w in conns:
            w.close()
    await srv.assert_no_errors()


async def test_http_slowloris_body_does_not_block_other_clients(srv: ServerProcess) -> None:
    """Twenty sessions each trickle a POST body. The deadline is ``body_timeout`` (30 s by default):
    past it the POST is answered 400 and the session closed."""
    polls = [await Polling.connect(srv.port) for _ in range(20)]
    conns = []
    try:
        for poll in polls:
            reader, writer = await open_tcp(srv.port)
            target = poll.url()[len(f"http://127.0.0.1:{srv.port}"):]
            writer.write(request("POST", target, srv.port, [("Content-Length", "1000")], b"4"))
            conns.append((reader, writer))
        for _ in range(10):
            for _, writer in conns:
                writer.write(b"x")
            await srv.assert_healthy()  # each within its deadline while the bodies trickle in
            await asyncio.sleep(0.05)
    finally:
        for _, writer in conns:
            writer.close()
        for poll in polls:
            await poll.close()
    await srv.assert_no_errors()


async def test_http_idle_tcp_connections_do_not_block_other_clients(srv: ServerProcess) -> None:
    """Two hundred connections that never send a byte (half-open from the server's side)."""
    conns = [await open_tcp(srv.port) for _ in range(200)]
    try:
        for _ in range(3):
            await srv.assert_healthy()
    finally:
        for _, writer in conns:
            writer.close()
    await srv.assert_no_errors()


async def test_http_reset_in_the_middle_of_a_request(srv: ServerProcess) -> None:
    """A hundred clients send half a request (or half a body) and reset the connection."""
    poll = await Polling.connect(srv.port)
    try:
        for i in range(100):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", srv.port))
            target = poll.url()[len(f"http://127.0.0.1:{srv.port}"):]
            data = request("POST", target, srv.port, [("Content-Length", "50")], b"4abc")
            await asyncio.get_running_loop().sock_sendall(sock, data[: len(data) // 2] if i % 2 else data)
            sock.close()  # SO_LINGER 0: RST
        await asyncio.sleep(0.2)
    finally:
        await poll.close()
    await srv.assert_no_errors()
    await srv.assert_healthy()


# =============================================================================================
# Engine.IO
# =============================================================================================


async def test_eio_handshake_without_eio_is_400_code_5(srv: ServerProcess) -> None:
    await eio_error(srv, request("GET", f"{PATH}?transport=polling", srv.port), 400, 5, "Unsupported protocol version")
    await srv.assert_healthy()


async def test_eio_handshake_eio3_is_400_code_5(srv: ServerProcess) -> None:
    await eio_error(srv, request("GET", f"{PATH}?EIO=3&transport=polling", srv.port), 400, 5,
                    "Unsupported protocol version")
    await srv.assert_healthy()


async def test_eio_unknown_transport_is_400_code_0(srv: ServerProcess) -> None:
    await eio_error(srv, request("GET", f"{PATH}?EIO=4&transport=flashsocket", srv.port), 400, 0, "Transport unknown")
    await srv.assert_healthy()


async def test_eio_unknown_sid_is_400_code_1(srv: ServerProcess) -> None:
    await eio_error(srv, request("GET", f"{HANDSHAKE}&sid=nope", srv.port), 400, 1, "Session ID unknown")
    await srv.assert_healthy()


async def test_eio_post_handshake_is_400_code_2(srv: ServerProcess) -> None:
    data = request("POST", HANDSHAKE, srv.port, [("Content-Length", "2")], b"40")
    await eio_error(srv, data, 400, 2, "Bad handshake method")
    await srv.assert_healthy()


async def test_eio_forbidden_origin_is_403_code_4(srv: ServerProcess) -> None:
    data = request("GET", HANDSHAKE, srv.port, [("Origin", "https://evil.example")])
    await eio_error(srv, data, 403, 4, "Forbidden")
    await srv.assert_healthy()


async def test_eio_websocket_upgrade_from_forbidden_origin_is_refused(srv: ServerProcess) -> None:
    """Cross-site WebSocket hijacking: the upgrade carries the attacker's Origin."""
    with pytest.raises(ConnectionError, match="403"):
        await RawWS.connect(srv.port, extra_headers=[("Origin", "https://evil.example")])
    await srv.expect_log(r"refused GET from 127\.0\.0\.1: Forbidden")
    await srv.assert_healthy()


async def test_eio_unsupported_method_on_a_session_is_400_code_3(srv: ServerProcess) -> None:
    poll = await Polling.connect(srv.port)
    try:
        await eio_error(srv, request("DELETE", f"{HANDSHAKE}&sid={poll.sid}", srv.port), 400, 3, "Bad request")
    finally:
        await poll.close()
    await srv.assert_healthy()


async def test_eio_websocket_transport_without_upgrade_is_400(srv: ServerProcess) -> None:
    await eio_error(srv, request("GET", f"{PATH}?EIO=4&transport=websocket", srv.port), 400, 3, "Bad request")
    await srv.assert_healthy()


@pytest.mark.parametrize("case,headers", [
    ("bad_key", [("Sec-WebSocket-Key", "short")]),
    ("version_8", [("Sec-WebSocket-Version", "8")]),
    ("with_body", [("Content-Length", "5")]),
    ("bad_extension_header", [("Sec-WebSocket-Extensions", "permessage-deflate; ;;,")]),
])
async def test_eio_bad_websocket_handshake_is_refused(srv: ServerProcess, case: str, headers: list[tuple[str, str]]
                                                      ) -> None:
    base = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13"}
    base.update(dict(headers))
    body = b"hello" if case == "with_body" else b""
    before = (await srv.state())["sessions"]
    answer = await raw_http(srv.port, request("GET", f"{PATH}?EIO=4&transport=websocket", srv.port,
                                              list(base.items()), body))
    assert answer.status in (400, 426), answer
    assert answer.json()["code"] == 3
    await srv.expect_log(r"refused GET from 127\.0\.0\.1: Bad request")
    assert (await srv.state())["sessions"] <= before
    await srv.assert_healthy()


async def test_eio_ping_from_a_v4_client_over_websocket_closes_the_session(srv: ServerProcess) -> None:
    ws = await RawWS.connect(srv.port)
    ws.send_text("2")
    assert await ws.expect_close() == 1005  # as the reference: a Close frame without a status code
    await srv.expect_log(rf"session {ws.eio_sid}: protocol error: unexpected packet type PING")
    await srv.assert_healthy()


async def test_eio_ping_from_a_v4_client_over_polling_closes_the_session(srv: ServerProcess) -> None:
    poll = await Polling.connect(srv.port)
    try:
        status, _ = await poll.post("2")
        assert status in (200, 400)
        status, body = await poll.get()
        assert (status, body) in ((200, "1"), (400, '{"code":1,"message":"Session ID unknown"}'))
        await srv.expect_log(rf"session {poll.sid}: protocol error: unexpected packet type PING")
    finally:
        await poll.close()
    await srv.assert_healthy()


@pytest.mark.parametrize("message", ["", "9", "x", "0", "5", "6"])
async def test_eio_bad_packet_over_websocket_closes_the_session(srv: ServerProcess, message: str) -> None:
    ws = await RawWS.connect(srv.port)
    ws.send_text(message)
    assert await ws.expect_close() == 1005  # as the reference: a Close frame without a status code
    await srv.expect_log(rf"session {ws.eio_sid}: protocol error")
    await srv.assert_healthy()


@pytest.mark.parametrize("body", ["9", "b!!!notbase64", "4a\x1e\x1e4b", "\xff"])
async def test_eio_bad_post_payload_closes_the_session(srv: ServerProcess, body: str) -> None:
    poll = await Polling.connect(srv.port)
    try:
        status, text = await poll.post(body.encode("latin-1") if body == "\xff" else body)
        assert (status, text) == (200, "ok")  # as the reference: "ok", and the session is gone
        await srv.expect_log(rf"session {poll.sid}: bad POST payload")
        assert await poll.get() == (400, '{"code":1,"message":"Session ID unknown"}')
    finally:
        await poll.close()
    await srv.assert_healthy()


async def test_eio_polling_with_the_sid_of_a_websocket_session_is_400(srv: ServerProcess) -> None:
    ws = await RawWS.connect(srv.port)
    try:
        data = request("GET", f"{HANDSHAKE}&sid={ws.eio_sid}", srv.port)
        await eio_error(srv, data, 400, 3, "Bad request")
        await ws.sio_connect()  # the WebSocket session is untouched
    finally:
        await ws.close()
    await srv.assert_healthy()


async def _upgraded(port: int) -> tuple[Polling, RawWS]:
    poll = await Polling.connect(port)
    ws = await RawWS.connect(port, f"EIO=4&transport=websocket&sid={poll.sid}", read_open=False)
    ws.send_text("2probe")
    assert await ws.recv_text() == "3probe"
    ws.send_text("5")
    return poll, ws


async def test_eio_upgrade_without_probe_keeps_polling(srv: ServerProcess) -> None:
    poll = await Polling.connect(srv.port)
    try:
        await poll.sio_connect()
        ws = await RawWS.connect(srv.port, f"EIO=4&transport=websocket&sid={poll.sid}", read_open=False)
        ws.send_text("5")
        assert await ws.expect_close() in (1000, 1002, 1005)
        await srv.expect_log(rf"session {poll.sid}: upgrade abandoned")
        assert (await poll.post('427["echo","still-polling"]')) == (200, "ok")
        assert await poll.packets() == ['437["still-polling"]']
    finally:
        await poll.close()
    await srv.assert_healthy()


async def test_eio_second_websocket_for_an_upgraded_sid_is_closed(srv: ServerProcess) -> None:
    poll, ws = await _upgraded(srv.port)
    try:
        ws.send_text("40")
        assert (await ws.recv_text()).startswith("40{")
        second = await RawWS.connect(srv.port, f"EIO=4&transport=websocket&sid={poll.sid}", read_open=False)
        second.send_text("2probe")
        assert await second.expect_close() in (1000, 1002, 1005, 1008)
        await srv.expect_log(rf"session {poll.sid}: a second websocket")
        ws.send_text('421["echo","first"]')
        assert await ws.recv_text() == '431["first"]'
        status, _ = await poll.get()  # and polling is over for that sid
        assert status == 400
    finally:
        await ws.close()
        await poll.close()
    await srv.assert_healthy()


async def test_eio_second_probe_during_an_upgrade_is_closed(srv: ServerProcess) -> None:
    poll = await Polling.connect(srv.port)
    try:
        first = await RawWS.connect(srv.port, f"EIO=4&transport=websocket&sid={poll.sid}", read_open=False)
        first.send_text("2probe")
        assert await first.recv_text() == "3probe"
        second = await RawWS.connect(srv.port, f"EIO=4&transport=websocket&sid={poll.sid}", read_open=False)
        assert await second.expect_close() in (1000, 1002, 1005, 1008)
        await srv.expect_log(rf"session {poll.sid}: a second websocket")
        first.send_text("5")
        first.send_text("40")
        assert (await first.recv_text()).startswith("40{")
        await first.close()
    finally:
        await poll.close()
    await srv.assert_healthy()


async def test_eio_interleaved_probe_traffic(srv: ServerProcess) -> None:
    """Polling traffic between ``2probe`` and ``5`` is processed; what the server answers meanwhile
    is held and flushed over the WebSocket; a message on the probe itself abandons the upgrade."""
    poll = await Polling.connect(srv.port)
    try:
        await poll.sio_connect()
        parked = asyncio.ensure_future(poll.get(timeout=3))
        await srv.get_parked(poll.sid)
        ws = await RawWS.connect(srv.port, f"EIO=4&transport=websocket&sid={poll.sid}", read_open=False)
        ws.send_text("2probe")
        assert await ws.recv_text() == "3probe"
        assert await parked == (200, "6")  # the parked GET is released with a noop
        assert (await poll.post('421["echo","during-upgrade"]')) == (200, "ok")
        ws.send_text("5")
        assert await ws.recv_text() == '431["during-upgrade"]'
        ws.send_text('422["echo","after-upgrade"]')
        assert await ws.recv_text() == '432["after-upgrade"]'
        await ws.close()

        poll2 = await Polling.connect(srv.port)
        await poll2.sio_connect()
        ws2 = await RawWS.connect(srv.port, f"EIO=4&transport=websocket&sid={poll2.sid}", read_open=False)
        ws2.send_text("2probe")
        assert await ws2.recv_text() == "3probe"
        ws2.send_text('421["echo","on-the-probe"]')  # not allowed before 5
        assert await ws2.expect_close() in (1000, 1002, 1005)
        await srv.expect_log(rf"session {poll2.sid}: upgrade abandoned")
        assert (await poll2.post('423["echo","back-on-polling"]')) == (200, "ok")
        assert await poll2.packets() == ['433["back-on-polling"]']
        await poll2.close()
    finally:
        await poll.close()
    await srv.assert_healthy()


async def test_eio_overlapping_gets_close_the_session(srv: ServerProcess) -> None:
    poll = await Polling.connect(srv.port)
    try:
        await poll.sio_connect()
        first = asyncio.ensure_future(poll.get(timeout=3))
        await srv.get_parked(poll.sid)
        second = await poll.get()
        assert second[0] == 400
        assert await first == (200, "1")
        await srv.expect_log(rf"session {poll.sid}: overlapping GET requests")
    finally:
        await poll.close()
    await srv.assert_healthy()


async def test_eio_overlapping_posts_close_the_session(srv: ServerProcess) -> None:
    poll = await Polling.connect(srv.port)
    _reader, writer = await open_tcp(srv.port)
    try:
        await poll.sio_connect()
        target = poll.url()[len(f"http://127.0.0.1:{srv.port}"):]
        writer.write(request("POST", target, srv.port, [("Content-Length", "100")], b"4"))  # stays open
        await asyncio.sleep(0.05)
        status, _ = await poll.post('42["mark","overlap"]')
        assert status == 400
        await srv.expect_log(rf"session {poll.sid}: overlapping POST requests")
        assert "overlap" not in (await srv.state())["marks"]
    finally:
        writer.close()
        await poll.close()
    await srv.assert_healthy()


async def test_eio_aborted_long_poll_closes_the_session(srv: ServerProcess) -> None:
    poll = await Polling.connect(srv.port)
    try:
        await poll.sio_connect()
        _reader, writer = await open_tcp(srv.port)
        writer.write(request("GET", poll.url()[len(f"http://127.0.0.1:{srv.port}"):], srv.port))
        await writer.drain()
        await srv.get_parked(poll.sid)
        writer.transport.abort()
        await srv.session_closed(poll.sid, 3)
    finally:
        await poll.close()
    await srv.assert_healthy()


async def _keep_polling(poll: Polling, seen: list[str]) -> None:
    """Answer the heartbeat of a polling session, keeping what comes."""
    while True:
        seen.extend(await poll.packets(timeout=5))


async def test_eio_upgrade_timeout_keeps_polling(fast_srv: ServerProcess) -> None:
    poll = await Polling.connect(fast_srv.port)
    seen: list[str] = []
    pinger = None
    try:
        await poll.sio_connect()
        pinger = asyncio.ensure_future(_keep_polling(poll, seen))
        ws = await RawWS.connect(fast_srv.port, f"EIO=4&transport=websocket&sid={poll.sid}", read_open=False)
        assert await ws.expect_close(timeout=3) in (1000, 1002, 1005)
        await fast_srv.expect_log(rf"session {poll.sid}: upgrade abandoned: upgrade timed out")
        assert (await poll.post('421["echo","polling-on"]')) == (200, "ok")
        async with asyncio.timeout(2):
            while '431["polling-on"]' not in seen:
                await asyncio.sleep(0.02)
    finally:
        if pinger is not None:
            pinger.cancel()
        await poll.close()
    await fast_srv.assert_healthy()


# =============================================================================================
# WebSocket frames (RFC 6455 / 7692)
# =============================================================================================

FRAME_CASES: dict[str, tuple[list[bytes], int]] = {
    "unmasked_frame": ([ws_frame(OP_TEXT, b"40", mask=False)], 1002),
    "rsv1_without_extension": ([ws_frame(OP_TEXT, b"40", rsv=4)], 1002),
    "rsv2": ([ws_frame(OP_TEXT, b"40", rsv=2)], 1002),
    "rsv3": ([ws_frame(OP_TEXT, b"40", rsv=1)], 1002),
    "unknown_data_opcode": ([ws_frame(0x3, b"40")], 1002),
    "unknown_control_opcode": ([ws_frame(0xB, b"")], 1002),
    "oversize_ping": ([ws_frame(OP_PING, b"p" * 126)], 1002),
    "oversize_close": ([ws_frame(OP_CLOSE, b"\x03\xe8" + b"r" * 124)], 1002),
    "fragmented_ping": ([ws_frame(OP_PING, b"p", fin=False), ws_frame(OP_CONT, b"q")], 1002),
    "invalid_utf8": ([ws_frame(OP_TEXT, b"4\xff\xfe")], 1007),
    "invalid_utf8_across_fragments": ([ws_frame(OP_TEXT, b"4\xe2\x82", fin=False), ws_frame(OP_CONT, b"\x28")], 1007),
    "utf16_surrogate_in_utf8": ([ws_frame(OP_TEXT, b"4\xed\xa0\x80")], 1007),
    "close_code_999": ([ws_frame(OP_CLOSE, struct.pack("!H", 999))], 1002),
    "close_code_1004": ([ws_frame(OP_CLOSE, struct.pack("!H", 1004))], 1002),
    "close_code_1005": ([ws_frame(OP_CLOSE, struct.pack("!H", 1005))], 1002),
    "close_code_1006": ([ws_frame(OP_CLOSE, struct.pack("!H", 1006))], 1002),
    "close_code_1015": ([ws_frame(OP_CLOSE, struct.pack("!H", 1015))], 1002),
    "close_code_2999": ([ws_frame(OP_CLOSE, struct.pack("!H", 2999))], 1002),
    "close_code_5000": ([ws_frame(OP_CLOSE, struct.pack("!H", 5000))], 1002),
    "close_code_65535": ([ws_frame(OP_CLOSE, struct.pack("!H", 65535))], 1002),
    "close_1_byte_payload": ([ws_frame(OP_CLOSE, b"\x03")], 1002),
    "close_reason_invalid_utf8": ([ws_frame(OP_CLOSE, b"\x03\xe8\xff")], 1007),
    "message_over_max_http_buffer_size": ([ws_frame(OP_TEXT, b"", length=1_000_001)], 1009),
    "message_of_2_63_bytes": ([b"\x81\xff" + struct.pack("!Q", 2**63 - 1) + b"mask"], 1009),
    "length_with_msb_set": ([b"\x81\xff" + struct.pack("!Q", 2**63) + b"mask"], 1002),
    "fragments_over_max_http_buffer_size": (
        [ws_frame(OP_TEXT, b"4" + b"a" * 399_999, fin=False), ws_frame(OP_CONT, b"a" * 400_000, fin=False),
         ws_frame(OP_CONT, b"a" * 400_000)], 1009),
    "too_many_fragments": ([ws_frame(OP_TEXT, b"4", fin=False)] + [ws_frame(OP_CONT, b"", fin=False)] * 4100, 1009),
    "continuation_without_start": ([ws_frame(OP_CONT, b"40")], 1002),
    "new_message_inside_fragmented": ([ws_frame(OP_TEXT, b"4", fin=False), ws_frame(OP_TEXT, b"0")], 1002),
    "binary_inside_fragmented_text": ([ws_frame(OP_TEXT, b"4", fin=False), ws_frame(OP_BINARY, b"0")], 1002),
}


@pytest.mark.parametrize("case", list(FRAME_CASES))
async def test_ws_frame_violation(srv: ServerProcess, case: str) -> None:
    frames, code = FRAME_CASES[case]
    ws = await RawWS.connect(srv.port)
    ws.send_raw(b"".join(frames))
    started = time.monotonic()
    assert await ws.expect_close() == code
    assert time.monotonic() - started < 1.0  # at once, not after a timeout
    await srv.expect_log(ws_violation(ws, code))
    await srv.session_closed(ws.eio_sid)
    await srv.assert_healthy()


async def test_ws_messages_after_a_close_frame_are_ignored(srv: ServerProcess) -> None:
    ws = await RawWS.connect(srv.port)
    ws.send_raw(ws_frame(OP_CLOSE, struct.pack("!H", 1000)) + ws_frame(OP_TEXT, b"40") + b"\xff" * 100)
    frame = await ws.recv_frame()
    assert frame.close_code == 1000
    assert await closed_by_server(ws.reader)
    await srv.assert_healthy()
    assert (await srv.state())["stats"].get("connects", 0) >= 1
    await srv.assert_no_errors()


async def test_ws_ping_flood_without_reading_stays_bounded(slow_srv: ServerProcess) -> None:
    """A client that sends pings and never reads the pongs: the server must not buffer pongs without bound."""
    ws = await RawWS.connect(slow_srv.port, rcvbuf=4096)
    ws.writer.transport.pause_reading()
    rss = slow_srv.rss()
    ping = ws_frame(OP_PING, b"p" * 125)
    burst = ping * 8000  # ~1 MB
    sent = 0
    try:
        async with asyncio.timeout(10):
            while sent < 40_000_000:
                ws.writer.write(burst)
                await ws.writer.drain()
                sent += len(burst)
    except (ConnectionError, OSError, TimeoutError):
        pass
    growth = slow_srv.rss() - rss
    ws.abort()
    assert growth < 8 * 1024 * 1024, f"server RSS grew {growth / 1e6:.1f} MB buffering pongs for {sent / 1e6:.0f} MB of pings"
    await slow_srv.assert_healthy()


async def test_ws_deflate_bomb_closes_1009(deflate_srv: ServerProcess) -> None:
    ws = await RawWS.connect(deflate_srv.port, extra_headers=[("Sec-WebSocket-Extensions", "permessage-deflate")])
    assert "permessage-deflate" in ws.handshake.headers.get("sec-websocket-extensions", "")
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = compressor.compress(b"4" + b"\x00" * 50_000_000) + compressor.flush(zlib.Z_SYNC_FLUSH)
    rss = deflate_srv.rss()
    ws.send_raw(ws_frame(OP_TEXT, bomb[:-4], rsv=4))
    assert await ws.expect_close() in (1009, 1007)
    assert deflate_srv.rss() - rss < 20_000_000
    await deflate_srv.expect_log(ws_violation(ws, 1009))
    await deflate_srv.assert_healthy()


async def test_ws_invalid_deflate_data_closes_1007(deflate_srv: ServerProcess) -> None:
    ws = await RawWS.connect(deflate_srv.port, extra_headers=[("Sec-WebSocket-Extensions", "permessage-deflate")])
    ws.send_raw(ws_frame(OP_TEXT, b"\xff\xff\xff\xff\xff", rsv=4))
    assert await ws.expect_close() == 1007
    await deflate_srv.expect_log(ws_violation(ws, 1007))
    await deflate_srv.assert_healthy()


async def test_ws_rsv1_on_a_control_frame_with_deflate_closes_1002(deflate_srv: ServerProcess) -> None:
    ws = await RawWS.connect(deflate_srv.port, extra_headers=[("Sec-WebSocket-Extensions", "permessage-deflate")])
    ws.send_raw(ws_frame(OP_PING, b"x", rsv=4))
    assert await ws.expect_close() == 1002
    await deflate_srv.expect_log(ws_violation(ws, 1002))
    await deflate_srv.assert_healthy()


# =============================================================================================
# Socket.IO packets
# =============================================================================================

def _nested(depth: int, open_: str = "[", close: str = "]") -> str:
    return open_ * depth + close * depth


SIO_CASES: dict[str, tuple[bool, list[str | bytes], str]] = {
    # name: (connect first, messages, reason in the log)
    "deep_nested_array_5000": (True, ['42["echo",' + _nested(5000) + "]"], "nested deeper"),
    "deep_nested_object_5000": (True, ['42["echo",' + '{"a":' * 5000 + "1" + "}" * 5000 + "]"], "nested deeper"),
    "unbalanced_brackets": (True, ['42["echo",' + "[" * 100 + "]"], "invalid JSON|unbalanced"),
    "bad_placeholder_num_out_of_range": (True, ['451-["echo",{"_placeholder":true,"num":5}]', b"\x01"],
                                         "bad placeholder"),
    "placeholder_num_is_a_string": (True, ['451-["echo",{"_placeholder":true,"num":"0"}]', b"\x01"],
                                    "bad placeholder"),
    "placeholder_num_is_negative": (True, ['451-["echo",{"_placeholder":true,"num":-1}]', b"\x01"],
                                    "bad placeholder"),
    "placeholder_used_twice": (True, ['452-["echo",{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}]',
                                      b"\x01", b"\x02"], "used twice"),
    "attachment_without_placeholder": (True, ['452-["echo",{"_placeholder":true,"num":0}]', b"\x01", b"\x02"],
                                       "has no placeholder"),
    "too_many_attachments": (True, ['4511-["echo"' + ',{"_placeholder":true,"num":0}' + "]"], "exceed max_attachments"),
    "attachment_count_zero": (True, ['450-["echo"]'], "bad attachment count"),
    "attachment_count_not_digits": (True, ['45x-["echo"]'], "bad attachment count"),
    "attachment_count_huge": (True, ['459999999-["echo"]'], "bad attachment count|exceed"),
    "text_while_attachments_pending": (True, ['451-["echo",{"_placeholder":true,"num":0}]', '42["echo"]'],
                                       "text message while binary attachments are pending"),
    "binary_without_pending_attachment": (True, [b"\x00\x01\x02"], "binary message when no attachment"),
    "ack_id_over_2_53": (True, ['429007199254740992["echo"]'], "ack id out of range"),
    "ack_id_of_1000_digits": (True, ["42" + "9" * 1000 + '["echo"]'], "ack id out of range"),
    "duplicate_connect": (True, ["40"], "duplicate CONNECT"),
    "event_before_connect": (False, ['42["echo","early"]'], "not connected"),
    "ack_before_connect": (False, ["431[]"], "not connected"),
    "event_to_a_namespace_not_joined": (True, ['42/other,["echo"]'], "not connected"),
    "disconnect_of_a_namespace_not_joined": (True, ["41/other,"], "not connected"),
    "garbage_after_packet": (True, ['42["echo","a"]garbage'], "data after the JSON payload"),
    "unknown_packet_type": (True, ['47["echo"]'], "unknown packet type"),
    "connect_error_from_client": (True, ['44{"message":"x"}'], "not allowed from a client"),
    "nan_literal": (True, ['42["echo",NaN]'], "invalid JSON"),
    "infinity_literal": (True, ['42["echo",-Infinity]'], "invalid JSON"),
    "event_payload_not_an_array": (True, ['42{"event":"echo"}'], "EVENT payload must be a non-empty array"),
    "event_payload_empty_array": (True, ["42[]"], "EVENT payload must be a non-empty array"),
    "event_name_not_a_string": (True, ['42[{"x":1},"a"]'], "EVENT name must be a string"),
    "event_name_null": (True, ["42[null]"], "EVENT name must be a string"),
    "ack_without_id": (True, ['43["x"]'], "ACK without an id"),
    "connect_payload_not_an_object": (False, ["40[1,2]"], "CONNECT payload must be an object"),
    "namespace_without_slash": (True, ['42chat,["echo"]'], "payload must be a JSON"),
    "whitespace_before_payload": (True, ['42 ["echo"]'], "payload must be a JSON"),
    "packet_over_max_size": (True, ['42["echo","' + "a" * 1_000_000 + '"]'], ""),
}


@pytest.mark.parametrize("case", list(SIO_CASES))
async def test_sio_protocol_violation_closes_the_connection(srv: ServerProcess, case: str) -> None:
    connect, messages, reason = SIO_CASES[case]
    ws = await RawWS.connect(srv.port)
    if connect:
        await ws.sio_connect()
    for message in messages:
        if isinstance(message, bytes):
            ws.send_binary(message)
        else:
            ws.send_text(message)
    code = await ws.expect_close()
    if case == "packet_over_max_size":  # over max_http_buffer_size: the WebSocket layer refuses it first
        assert code == 1009
        await srv.expect_log(ws_violation(ws, 1009))
    else:
        assert code == 1002
        await srv.expect_log(sio_violation(ws.eio_sid, reason))
        records = await srv.logs()
        assert not any("Recursion" in r["message"] or r["exc_type"] == "RecursionError" for r in records)
    await srv.session_closed(ws.eio_sid)
    await srv.assert_healthy()


@pytest.mark.parametrize("name", ["connect", "connect_error", "disconnect", "disconnecting", "newListener",
                                  "removeListener"])
async def test_sio_reserved_event_name_closes_the_connection(srv: ServerProcess, name: str) -> None:
    ws = await RawWS.connect(srv.port)
    await ws.sio_connect()
    ws.send_text(f'42["{name}","x"]')
    assert await ws.expect_close() == 1002
    await srv.expect_log(sio_violation(ws.eio_sid, f"reserved event name '{name}'"))
    await srv.assert_healthy()


async def test_sio_deep_nesting_inside_a_string_is_fine(srv: ServerProcess) -> None:
    """Brackets in a string are not nesting: the depth check must not refuse them."""
    ws = await RawWS.connect(srv.port)
    try:
        await ws.sio_connect()
        text = _nested(5000)
        ws.send_text(json.dumps(["echo", text], separators=(",", ":")).join(["421", ""]))
        assert await ws.recv_text() == "431" + json.dumps([text], separators=(",", ":"))
    finally:
        await ws.close()
    await srv.assert_healthy()


async def test_sio_nesting_at_max_depth_is_echoed(srv: ServerProcess) -> None:
    ws = await RawWS.connect(srv.port)
    try:
        await ws.sio_connect()
        ws.send_text('421["echo",' + _nested(63) + "]")  # 64 levels with the payload array
        assert await ws.recv_text() == "431[" + _nested(63) + "]"
    finally:
        await ws.close()
    await srv.assert_healthy()


async def test_sio_ack_for_nothing_pending_is_ignored(srv: ServerProcess) -> None:
    ws = await RawWS.connect(srv.port)
    try:
        await ws.sio_connect()
        ws.send_text('3123["who asked"]')
        ws.send_text('421["echo","still-here"]')
        assert await ws.recv_text() == '431["still-here"]'
    finally:
        await ws.close()
    await srv.assert_no_errors()
    await srv.assert_healthy()


async def test_sio_binary_event_round_trip_with_attachments_at_the_limit(srv: ServerProcess) -> None:
    ws = await RawWS.connect(srv.port)
    try:
        await ws.sio_connect()
        placeholders = ",".join(f'{{"_placeholder":true,"num":{i}}}' for i in range(10))
        ws.send_text(f'4510-1["echo",{placeholders}]')
        for i in range(10):
            ws.send_binary(bytes([i]))
        answer = await ws.recv_text()
        assert answer == f"4610-1[{placeholders}]"
        assert [await ws.recv_message() for _ in range(10)] == [bytes([i]) for i in range(10)]
    finally:
        await ws.close()
    await srv.assert_healthy()


async def test_sio_connect_handler_raising_leaks_nothing_on_the_wire(srv: ServerProcess) -> None:
    from .app import SECRET

    ws = await RawWS.connect(srv.port)
    try:
        ws.send_text('40{"boom":1}')
        answer = await ws.recv_text()
        assert answer == '44{"message":"Connection rejected by server"}', answer
        assert SECRET not in answer and "Traceback" not in answer and "RuntimeError" not in answer
        await srv.expect_log(r"connect handler for / failed", allow_exc=True)
        # the connection stays usable: the client may try again
        await ws.sio_connect()
        ws.send_text('421["echo","again"]')
        assert await ws.recv_text() == '431["again"]'
    finally:
        await ws.close()
    await srv.assert_healthy()


async def test_sio_connect_handler_raising_over_polling_leaks_nothing(srv: ServerProcess) -> None:
    from .app import SECRET

    poll = await Polling.connect(srv.port)
    try:
        assert (await poll.post('40{"boom":1}')) == (200, "ok")
        packets = await poll.packets()
        assert packets == ['44{"message":"Connection rejected by server"}']
        assert SECRET not in "".join(packets)
        await srv.expect_log(r"connect handler for / failed", allow_exc=True)
    finally:
        await poll.close()
    await srv.assert_healthy(transport="polling")


async def test_sio_msgpack_garbage_closes_the_connection(msgpack_srv: ServerProcess) -> None:
    for message in (b"\xc1", b"\x93\x01\x02", b"\xdd\xff\xff\xff\xff", "42[\"echo\"]"):
        ws = await RawWS.connect(msgpack_srv.port)
        if isinstance(message, bytes):
            ws.send_binary(message)
        else:
            ws.send_text(message)
        assert await ws.expect_close() == 1002
        await msgpack_srv.expect_log(sio_violation(ws.eio_sid, "undecodable packet"))
        await msgpack_srv.mark_logs()
    await msgpack_srv.assert_no_errors()
    assert msgpack_srv.alive()


async def test_sio_msgpack_deep_nesting_closes_the_connection(msgpack_srv: ServerProcess) -> None:
    import msgpack

    ws = await RawWS.connect(msgpack_srv.port)
    ws.send_binary(msgpack.packb({"type": 0, "nsp": "/"}))
    reply = await ws.recv_message()
    assert isinstance(reply, bytes) and msgpack.unpackb(reply)["type"] == 0
    deep = b"\x91" * 5000 + b"\x01"  # 5,000 nested one-element arrays
    packet = b"\x84\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa4echo" + deep + b"\xa2id\x01"
    ws.send_binary(packet)
    assert await ws.expect_close() == 1002
    await msgpack_srv.expect_log(sio_violation(ws.eio_sid, "undecodable packet"))
    records = await msgpack_srv.logs()
    assert not any(r["exc_type"] == "RecursionError" for r in records)
    assert msgpack_srv.alive()


# =============================================================================================
# Namespaces
# =============================================================================================


async def test_sio_connect_to_5000_unknown_namespaces(srv: ServerProcess) -> None:
    """Each gets ``Invalid namespace`` and the connection stays; nothing is kept."""
    before = await srv.state()
    ws = await RawWS.connect(srv.port)
    try:
        names = [f"/r{os.urandom(6).hex()}" for _ in range(5000)]
        ws.send_raw(b"".join(ws_frame(OP_TEXT, f"40{name},".encode()) for name in names))
        for name in names:
            assert await ws.recv_text() == f'44{name},{{"message":"Invalid namespace"}}'
        after = await srv.state()
        assert after["namespace_count"] == before["namespace_count"]
        assert after["specs"] == before["specs"]
        assert after["rss"] - before["rss"] < 10_000_000
        await ws.sio_connect()
    finally:
        await ws.close()
    await srv.assert_healthy()


@pytest.mark.parametrize("config", [
    "nsp_option",
    "nsp_catchall",
    "nsp_regex",
])
async def test_sio_connect_to_5000_dynamic_namespaces_keeps_nothing(servers: Any, config: str) -> None:
    srv: ServerProcess = servers.get(config)
    await srv.mark_logs()
    before = await srv.state()
    ws = await RawWS.connect(srv.port)
    names = [f"/dyn-{int.from_bytes(os.urandom(6), 'big')}" for _ in range(5000)]
    ws.send_raw(b"".join(ws_frame(OP_TEXT, f"40{name},".encode()) for name in names))
    for name in names:
        assert (await ws.recv_text()).startswith(f'40{name},{{"sid":')
    await ws.close()
    after = await srv.wait_for(lambda s: s["namespace_count"] <= before["namespace_count"], 1.5,
                               "the namespaces to go")
    assert after["specs"] == before["specs"]
    await srv.settle()
    await srv.assert_no_errors()
    await srv.assert_healthy()


async def test_sio_huge_namespace_name_log_line_is_bounded(srv: ServerProcess) -> None:
    ws = await RawWS.connect(srv.port)
    try:
        name = "/" + "n" * 900_000
        ws.send_text(f"40{name},")
        assert (await ws.recv_text()).endswith('{"message":"Invalid namespace"}')
        records = await srv.expect_log(r"unknown namespace")
        assert records[0]["length"] < 2000, f"a log line of {records[0]['length']} characters"
    finally:
        await ws.close()
    await srv.assert_healthy()


# =============================================================================================
# Churn
# =============================================================================================


async def _cycle(port: int, i: int) -> None:
    mode = i % 4
    if mode == 0:  # clean WebSocket
        ws = await RawWS.connect(port)
        await ws.sio_connect()
        ws.send_text("41")
        await ws.close()
    elif mode == 1:  # WebSocket reset without a close frame, in the middle of things
        ws = await RawWS.connect(port)
        ws.send_text('40')
        ws.send_text('421["echo","x"]')
        ws.abort()
    elif mode == 2:  # polling, clean
        poll = await Polling.connect(port)
        await poll.sio_connect()
        await poll.post("1")
        await poll.close()
    else:  # polling, reset with a long-poll parked
        poll = await Polling.connect(port)
        await poll.sio_connect()
        await poll.reset_long_poll(0.01)


async def _reset_during_ws_handshake(port: int) -> None:
    _reader, writer = await open_tcp(port)
    writer.write(request("GET", f"{PATH}?EIO=4&transport=websocket", port,
                         [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                          ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]))
    await writer.drain()
    writer.transport.abort()


async def test_churn_rapid_connect_disconnect(srv: ServerProcess) -> None:
    """400 cycles, 20 at a time, mixing clean leaves, resets and polling: every table drains."""
    for batch in range(20):
        results = await asyncio.gather(*(_cycle(srv.port, batch * 20 + i) for i in range(20)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert not errors, errors[:3]
    state = await srv.settle(5)
    assert state["tasks"] < 20, state["tasks"]
    await srv.assert_no_errors()
    await srv.assert_healthy()


async def test_churn_reset_during_websocket_handshake(srv: ServerProcess) -> None:
    """Clients that reset right after their upgrade request: nothing is kept."""
    before = await srv.state()
    await asyncio.gather(*(_reset_during_ws_handshake(srv.port) for _ in range(50)))
    await asyncio.sleep(0.3)
    after = await srv.settle()
    assert after["sessions"] <= before["sessions"]
    await srv.assert_healthy()


async def test_churn_reset_during_websocket_handshake_logs_no_error(srv: ServerProcess) -> None:
    await asyncio.gather(*(_reset_during_ws_handshake(srv.port) for _ in range(50)))
    await asyncio.sleep(0.3)
    await srv.assert_no_errors()
    await srv.assert_healthy()


# =============================================================================================
# Slow consumers
# =============================================================================================


class Reader:
    """A good client that reads everything and counts the blasts."""

    def __init__(self, ws: RawWS) -> None:
        self.ws = ws
        self.blasts: list[int] = []
        self.acks: asyncio.Queue[str] = asyncio.Queue()
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            try:
                text = await self.ws.recv_text(timeout=30)
            except (ConnectionClosed, TimeoutError):
                return
            if text.startswith('42["blast",'):
                index, _sent, _ = json.loads(text[2:])[1:]
                self.blasts.append(index)
            else:
                self.acks.put_nowait(text)

    async def call(self, text: str, timeout: float = 10.0) -> str:
        self.ws.send_text(text)
        return await asyncio.wait_for(self.acks.get(), timeout)


async def _blast_with_a_silent_client(srv: ServerProcess, count: int, size: int,
                                      ) -> tuple[RawWS, list[Reader], float]:
    silent = await RawWS.connect(srv.port, rcvbuf=4096)
    await silent.sio_connect()
    silent.writer.transport.pause_reading()  # stops reading, forever
    readers = []
    for _ in range(3):
        ws = await RawWS.connect(srv.port)
        await ws.sio_connect()
        readers.append(Reader(ws))
    started = time.monotonic()
    # at 400 a second (6.5 MB/s of 16 KB blasts to each reader): the silent client owes the bound within a
    # tenth of a second, while a reader of this process starved for a moment by a loaded machine has the
    # kernel's buffers to catch up with (as fast as the loop goes, one fell behind the bound now and then)
    rate = 400
    assert await readers[0].call(f'421["blast",{count},{size},{rate}]', timeout=30) == f"431[{count}]"
    elapsed = time.monotonic() - started
    return silent, readers, elapsed


async def test_slow_consumer_is_disconnected(slow_srv: ServerProcess) -> None:
    rss = slow_srv.rss()
    silent, readers, _ = await _blast_with_a_silent_client(slow_srv, 400, 16_384)  # 6.5 MB each
    try:
        state = await slow_srv.wait_for(lambda s: s["stats"].get("slow_consumers", 0) >= 1, 3, "the policy")
        assert state["stats"].get("disconnect:slow consumer", 0) == 1
        await slow_srv.expect_log(rf"session {silent.eio_sid}: \d+ bytes waiting .* disconnecting it")
        for reader in readers:  # the ack may reach the first reader before the others read their blasts
            await wait_until(lambda reader=reader: len(reader.blasts) >= 400, timeout=10, what="the 400 blasts")
            assert reader.blasts == list(range(400))
        assert slow_srv.rss() - rss < 30_000_000
    finally:
        silent.abort()
        for reader in readers:
            reader.task.cancel()
            await reader.ws.close()
    await slow_srv.assert_healthy()


async def test_slow_consumer_drop_policy_keeps_it_connected(drop_srv: ServerProcess) -> None:
    silent, readers, _ = await _blast_with_a_silent_client(drop_srv, 400, 16_384)
    try:
        state = await drop_srv.state()
        assert state["stats"].get("dropped_slow_consumer", 0) > 0
        assert state["stats"].get("slow_consumers", 0) == 0
        await drop_srv.expect_log(rf"session {silent.eio_sid}: \d+ bytes waiting .* dropping messages")
        for reader in readers:  # the ack may reach the first reader before the others read their blasts
            await wait_until(lambda reader=reader: len(reader.blasts) >= 400, timeout=10, what="the 400 blasts")
            assert reader.blasts == list(range(400))
        # it catches up (reads its backlog: whole frames, none cut by a drop) and is served again
        silent.writer.transport.resume_reading()
        async with asyncio.timeout(10):
            while True:
                try:
                    text = await silent.recv_text(timeout=0.5)
                except TimeoutError:
                    break
                assert text.startswith('42["blast",')
        silent.send_text('429["echo","caught-up"]')
        async with asyncio.timeout(30):  # on a loaded machine a pause may have ended the loop above early
            while (text := await silent.recv_text(timeout=10)) != '439["caught-up"]':
                assert text.startswith('42["blast",'), text
    finally:
        silent.abort()
        for reader in readers:
            reader.task.cancel()
            await reader.ws.close()
    await drop_srv.assert_healthy()


async def test_slow_consumer_on_polling_is_disconnected(slow_srv: ServerProcess) -> None:
    poll = await Polling.connect(slow_srv.port)
    try:
        await poll.sio_connect()  # then never polls again
        ws = await RawWS.connect(slow_srv.port)
        await ws.sio_connect()
        reader = Reader(ws)
        assert await reader.call('421["blast",40,16384]') == "431[40]"
        await slow_srv.expect_log(rf"session {poll.sid}: \d+ bytes waiting .* disconnecting it")
        status, body = await poll.get()
        assert (status, body) in ((200, "6\x1e1"), (400, '{"code":1,"message":"Session ID unknown"}'))
        reader.task.cancel()
        await ws.close()
    finally:
        await poll.close()
    await slow_srv.assert_healthy()


async def test_slow_consumer_that_floods_acks_without_reading(slow_srv: ServerProcess) -> None:
    ws = await RawWS.connect(slow_srv.port, rcvbuf=4096)
    await ws.sio_connect()
    ws.writer.transport.pause_reading()
    payload = "a" * 8192
    burst = b"".join(ws_frame(OP_TEXT, f'42{i}["echo","{payload}"]'.encode()) for i in range(100))
    try:
        async with asyncio.timeout(10):
            for _ in range(40):  # 4,000 acks of 8 KB: 32 MB the client never reads
                ws.writer.write(burst)
                await ws.writer.drain()
    except (ConnectionError, OSError, TimeoutError):
        pass
    await slow_srv.wait_for(lambda s: s["stats"].get("slow_consumers", 0) >= 1, 5, "the policy")
    await slow_srv.expect_log(rf"session {ws.eio_sid}: \d+ bytes waiting .* disconnecting it")
    ws.abort()
    await slow_srv.assert_healthy()


# =============================================================================================
# Half-open connections and deadlines
# =============================================================================================


async def test_half_open_websocket_is_closed_by_the_heartbeat(fast_srv: ServerProcess) -> None:
    ws = await RawWS.connect(fast_srv.port)
    await ws.sio_connect()
    started = time.monotonic()
    # silent from now on: neither reads nor answers pings
    await fast_srv.session_closed(ws.eio_sid, 3)
    assert time.monotonic() - started < 1.0 + 0.5
    await fast_srv.expect_log(rf"session {ws.eio_sid}: no pong within")
    ws.abort()
    await fast_srv.settle()
    await fast_srv.assert_healthy()


async def test_half_open_polling_session_is_closed_and_forgotten(fast_srv: ServerProcess) -> None:
    poll = await Polling.connect(fast_srv.port)
    try:
        await poll.sio_connect()  # then silent: no GET, no pong
        await fast_srv.session_closed(poll.sid, 3, forgotten=True)
        await fast_srv.expect_log(rf"session {poll.sid}: no pong within")
    finally:
        await poll.close()
    await fast_srv.assert_healthy()


async def test_connect_timeout_closes_a_client_that_joins_nothing(fast_srv: ServerProcess) -> None:
    ws = await RawWS.connect(fast_srv.port)
    reader = asyncio.ensure_future(ws.expect_close(timeout=3))  # answers pings meanwhile? no: it only reads
    code = await reader
    assert code in (1005, 1006)
    await fast_srv.expect_log(rf"client {ws.eio_sid}: no namespace connected within connect_timeout")
    await fast_srv.assert_healthy()


async def test_good_clients_get_through_during_attacks(srv: ServerProcess) -> None:
    """Protocol violations and unmasked frames from four attackers at once, each closed by the server, while
    a good client connects and gets its ack ten times over (each within assert_healthy's deadline). How
    fast is bench/'s business, not a test's."""
    stop = asyncio.Event()
    closed = [0, 0, 0, 0]  # connections each attacker saw the server close

    async def attacker(i: int) -> None:
        while not stop.is_set():
            try:
                ws = await RawWS.connect(srv.port)
                ws.send_raw(ws_frame(OP_TEXT, b"4\xff") if i % 2 else ws_frame(OP_TEXT, b"40" * 10, mask=False))
                await ws.expect_close()
                closed[i] += 1
            except (ConnectionError, OSError, AssertionError, TimeoutError):
                pass

    attackers = [asyncio.ensure_future(attacker(i)) for i in range(4)]
    try:
        # the attack is under way: every attacker has had a connection closed by the server
        await wait_until(lambda: all(closed), timeout=5, what=lambda: f"attacks closed by the server: {closed}")
        for _ in range(10):
            await srv.assert_healthy()
        assert all(closed), closed
    finally:
        stop.set()
        await asyncio.gather(*attackers, return_exceptions=True)
    await srv.assert_no_errors()


async def test_post_to_a_session_of_another_transport_during_close(srv: ServerProcess) -> None:
    """A POST racing the session's close (client sends ``1`` then more packets in the same body)."""
    poll = await Polling.connect(srv.port)
    try:
        await poll.sio_connect()
        status, _ = await poll.post(SEP.join(["1", '42["mark","after-close"]']))
        assert status == 200
        # the CLOSE packet has been handled (the packets of a body are handled in order), and a good client's
        # round trip after it has been through the server too
        await srv.session_closed(poll.sid)
        await srv.assert_healthy()
        assert "after-close" not in (await srv.state())["marks"]
        status, _ = await poll.post('42["mark","after-close-2"]')
        assert status == 400
    finally:
        await poll.close()
    await srv.assert_no_errors()
    await srv.assert_healthy()


async def test_client_session_http_keepalive_reuse_after_error(srv: ServerProcess) -> None:
    """An error answer on a kept-alive connection does not poison the next request on it."""
    async with aiohttp.ClientSession() as http:
        for _ in range(3):
            async with http.get(f"{srv.base}{PATH}?EIO=4&transport=nope") as resp:
                assert resp.status == 400
            async with http.get(f"{srv.base}{HANDSHAKE}") as resp:
                assert resp.status == 200
    await srv.assert_healthy()
