"""sioserver's own HTTP/1.1 front (``sioserver.run``): HTTP behaviour a client sees on the socket.

Each test serves a real ``sioserver.AsyncServer`` through ``sioserver.integrations.standalone.serve``
in the test's loop and talks raw HTTP/1.1 to it over TCP.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

import sioserver
from sioserver.integrations.http1 import HttpConfig
from sioserver.integrations.standalone import serve
from tests.hostile.helpers import ConnectionClosed, HttpAnswer, closed_by_server, read_http_response

Server = tuple[sioserver.AsyncServer, int]


@asynccontextmanager
async def running(sio: sioserver.AsyncServer | None = None, **kwargs: Any) -> AsyncIterator[int]:
    sio = sio or echo_server()
    stop = asyncio.Event()
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.ensure_future(serve(sio, "127.0.0.1", 0, stop=stop,
                                       ready=lambda addresses: bound.set_result(addresses[0][1]), **kwargs))
    done, _ = await asyncio.wait([bound, task], return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    try:
        yield bound.result()
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def echo_server(**options: Any) -> sioserver.AsyncServer:
    sio = sioserver.AsyncServer(**options)

    @sio.on("echo")
    async def echo(sid: str, *args: Any) -> Any:
        return args

    return sio


HANDSHAKE = "/socket.io/?EIO=4&transport=polling"


def req(method: str, target: str, headers: dict[str, str] | None = None, body: bytes = b"",
        version: str = "1.1") -> bytes:
    lines = [f"{method} {target} HTTP/{version}", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k in headers or {}):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def exchange(port: int, data: bytes) -> HttpAnswer:
    reader, writer = await connect(port)
    try:
        writer.write(data)
        return await read_http_response(reader)
    finally:
        writer.close()


def sid_of(answer: HttpAnswer) -> str:
    assert answer.status == 200, answer
    return str(json.loads(answer.body[1:])["sid"])


# ------------------------------------------------------------------------------------ keep-alive


async def test_keep_alive_serves_many_requests_on_one_connection() -> None:
    async with running() as port:
        reader, writer = await connect(port)
        sids = set()
        for _ in range(3):
            writer.write(req("GET", HANDSHAKE))
            answer = await read_http_response(reader)
            sids.add(sid_of(answer))
            assert "connection" not in answer.headers
            assert answer.headers["date"].endswith("GMT")
        assert len(sids) == 3
        writer.close()


async def test_a_poll_parked_past_head_timeout_is_answered_once_and_kept_alive() -> None:
    """The head deadline ends with the head: a long-poll parked longer than ``head_timeout`` (here on a
    reused keep-alive connection, as browsers do) gets its ping, not a 408 written after it."""
    sio = echo_server(ping_interval=0.6, ping_timeout=5)
    async with running(sio, http=HttpConfig(head_timeout=0.2)) as port:
        reader, writer = await connect(port)
        writer.write(req("GET", HANDSHAKE))
        sid = sid_of(await read_http_response(reader))
        writer.write(req("GET", f"{HANDSHAKE}&sid={sid}"))
        parked = await read_http_response(reader)
        assert (parked.status, parked.body) == (200, b"2")
        assert "connection" not in parked.headers  # still keep-alive
        writer.write(req("POST", f"{HANDSHAKE}&sid={sid}", body=b"3"))
        assert (await read_http_response(reader)).body == b"ok"  # the same connection goes on
        writer.close()


async def test_pipelined_requests_are_answered_in_order_behind_a_parked_poll() -> None:
    """A GET that parks holds the answers behind it; a POST on another connection releases it."""
    async with running() as port:
        sid = sid_of(await exchange(port, req("GET", HANDSHAKE)))
        poll = f"{HANDSHAKE}&sid={sid}"
        assert (await exchange(port, req("POST", poll, body=b"40"))).body == b"ok"
        first = await exchange(port, req("GET", poll))  # the CONNECT reply
        assert first.body.startswith(b'40{"sid":')
        reader, writer = await connect(port)
        # a parked GET, then three handshakes in the same write
        writer.write(req("GET", poll) + req("GET", HANDSHAKE) * 3)
        read = asyncio.ensure_future(read_http_response(reader))
        done, _ = await asyncio.wait([read], timeout=0.3)
        assert not done, "the long-poll should be parked"
        assert (await exchange(port, req("POST", poll, body=b'421["echo","x"]'))).body == b"ok"
        parked = await read
        assert parked.body == b'431["x"]'
        for _ in range(3):
            assert (await read_http_response(reader)).body.startswith(b"0{")
        writer.close()


async def test_pipelined_requests_past_the_bound_are_read_later_not_refused() -> None:
    async with running(http=HttpConfig(max_pipelined=2)) as port:
        reader, writer = await connect(port)
        writer.write(req("GET", HANDSHAKE) * 50)
        answers = [await read_http_response(reader) for _ in range(50)]
        assert all(a.status == 200 for a in answers)
        assert len({sid_of(a) for a in answers}) == 50
        writer.close()


async def test_http_1_0_is_answered_and_closed() -> None:
    async with running() as port:
        reader, writer = await connect(port)
        writer.write(req("GET", HANDSHAKE, version="1.0"))
        answer = await read_http_response(reader)
        assert answer.status == 200 and answer.body.startswith(b"0{")
        assert answer.headers["connection"] == "close"
        assert await closed_by_server(reader)
        writer.close()


async def test_connection_close_is_honoured() -> None:
    async with running() as port:
        reader, writer = await connect(port)
        writer.write(req("GET", HANDSHAKE, {"Connection": "close"}) + req("GET", HANDSHAKE))
        answer = await read_http_response(reader)
        assert answer.status == 200 and answer.headers["connection"] == "close"
        assert await closed_by_server(reader)  # the second request is not answered
        writer.close()


async def test_idle_keep_alive_connection_is_closed_after_the_timeout() -> None:
    async with running(http=HttpConfig(keepalive_timeout=0.3)) as port:
        reader, writer = await connect(port)
        writer.write(req("GET", HANDSHAKE))
        await read_http_response(reader)
        start = asyncio.get_running_loop().time()
        assert await closed_by_server(reader, timeout=3)
        assert asyncio.get_running_loop().time() - start >= 0.25
        writer.close()


# ------------------------------------------------------------------------------------ bodies


async def test_chunked_post_body_reaches_the_engine() -> None:
    async with running() as port:
        sid = sid_of(await exchange(port, req("GET", HANDSHAKE)))
        poll = f"{HANDSHAKE}&sid={sid}"
        chunked = b"1\r\n4\r\n1\r\n0\r\n0\r\n\r\n"  # "40" in two chunks
        answer = await exchange(port, req("POST", poll, {"Transfer-Encoding": "chunked"}, chunked))
        assert (answer.status, answer.body) == (200, b"ok")
        assert (await exchange(port, req("GET", poll))).body.startswith(b'40{"sid":')


async def test_expect_100_continue_is_answered_before_the_body_is_sent() -> None:
    async with running() as port:
        sid = sid_of(await exchange(port, req("GET", HANDSHAKE)))
        reader, writer = await connect(port)
        writer.write(req("POST", f"{HANDSHAKE}&sid={sid}", {"Expect": "100-continue", "Content-Length": "2"}))
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"40")
        answer = await read_http_response(reader)
        assert (answer.status, answer.body) == (200, b"ok")
        writer.close()


async def test_expect_100_continue_with_a_body_too_large_is_413_without_continue() -> None:
    async with running(echo_server(max_http_buffer_size=1000)) as port:
        sid = sid_of(await exchange(port, req("GET", HANDSHAKE)))
        answer = await exchange(port, req("POST", f"{HANDSHAKE}&sid={sid}",
                                          {"Expect": "100-continue", "Content-Length": "5000"}))
        assert answer.status == 413


async def test_unknown_expectation_is_417() -> None:
    async with running() as port:
        answer = await exchange(port, req("GET", HANDSHAKE, {"Expect": "something-else"}))
        assert answer.status == 417


async def test_body_deadline_answers_400_and_closes_the_session(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "sioserver")
    async with running(echo_server(body_timeout=0.3)) as port:
        sid = sid_of(await exchange(port, req("GET", HANDSHAKE)))
        reader, writer = await connect(port)
        writer.write(req("POST", f"{HANDSHAKE}&sid={sid}", {"Content-Length": "100"}, b"4"))
        answer = await read_http_response(reader, timeout=3)
        assert answer.status == 400
        assert await closed_by_server(reader)
        writer.close()
        gone = await exchange(port, req("GET", f"{HANDSHAKE}&sid={sid}"))
        assert (gone.status, gone.body) in ((200, b"1"), (400, b'{"code":1,"message":"Session ID unknown"}'))
    assert any("body not complete" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize(("data", "status"), [
    (req("GET", HANDSHAKE + "&x=" + "a" * 9000), 414),
    (req("GET", HANDSHAKE, {"X-Big": "b" * 9000}), 431),
    (req("GET", HANDSHAKE, {f"X-{i}": "1" for i in range(150)}), 431),
    (b"NOT HTTP AT ALL\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
])
async def test_malformed_or_oversized_requests_get_one_answer_and_one_log_line(
        data: bytes, status: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "sioserver.http")
    async with running() as port:
        reader, writer = await connect(port)
        writer.write(data)
        answer = await read_http_response(reader)
        assert answer.status == status
        assert answer.headers["connection"] == "close"
        assert await closed_by_server(reader)
        writer.close()
        await exchange(port, req("GET", HANDSHAKE))  # still serving
    lines = [r for r in caplog.records if r.name == "sioserver.http"]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert "127.0.0.1" in lines[0].getMessage() and lines[0].exc_info is None


async def test_slow_request_head_gets_408_after_the_head_deadline() -> None:
    async with running(http=HttpConfig(head_timeout=0.3)) as port:
        reader, writer = await connect(port)
        writer.write(b"GET /socket.io/?EIO=4&tra")
        answer = await read_http_response(reader, timeout=3)
        assert answer.status == 408
        assert await closed_by_server(reader)
        writer.close()


# ------------------------------------------------------------------------------------ other paths


async def test_paths_outside_socketio_are_404_without_an_app() -> None:
    async with running() as port:
        assert (await exchange(port, req("GET", "/"))).status == 404
        assert (await exchange(port, req("GET", "/socket.io/extra"))).status == 404


async def test_static_files(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<h1>hi</h1>")
    public = tmp_path / "public"
    public.mkdir()
    (public / "app.js").write_text("console.log(1)")
    (public / "index.html").write_text("public index")
    (tmp_path / "secret.txt").write_text("no")
    static = {"/": str(tmp_path / "index.html"), "/static": str(public),
              "/data": {"filename": str(tmp_path / "index.html"), "content_type": "text/x-mine"}}
    async with running(static_files=static) as port:
        index = await exchange(port, req("GET", "/"))
        assert (index.status, index.body) == (200, b"<h1>hi</h1>")
        assert index.headers["content-type"] == "text/html; charset=utf-8"
        js = await exchange(port, req("GET", "/static/app.js"))
        assert js.body == b"console.log(1)" and "javascript" in js.headers["content-type"]
        assert (await exchange(port, req("GET", "/static/"))).body == b"public index"
        assert (await exchange(port, req("GET", "/data"))).headers["content-type"] == "text/x-mine"
        reader, writer = await connect(port)
        writer.write(req("GET", "/static/app.js", {"If-None-Match": js.headers["etag"]}))
        not_modified = await read_http_response(reader, head_request=True)  # a 304 has no body
        assert not_modified.status == 304 and "content-length" not in not_modified.headers
        writer.write(req("HEAD", "/static/app.js"))
        head = await read_http_response(reader, head_request=True)
        assert head.status == 200 and head.headers["content-length"] == str(len(b"console.log(1)"))
        writer.close()
        for sneaky in ("/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/missing.js"):
            assert (await exchange(port, req("GET", sneaky))).status == 404, sneaky
        assert (await exchange(port, req("POST", "/static/app.js", body=b"x"))).status == 405
        assert (await exchange(port, req("GET", HANDSHAKE))).status == 200


async def test_other_paths_go_to_the_asgi_app_with_its_lifespan() -> None:
    events: list[str] = []

    async def app(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]],
                  send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                events.append(message["type"])
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        body = (await receive())["body"]
        if scope["path"] == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"1")]})
            for part in (b"one,", b"two,", b"three"):
                await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        reply = json.dumps({"path": scope["path"], "query": scope["query_string"].decode(),
                            "method": scope["method"], "body": body.decode()}).encode()
        await send({"type": "http.response.start", "status": 201, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": reply})

    async with running(other_asgi_app=app) as port:
        assert events == ["lifespan.startup"]
        answer = await exchange(port, req("POST", "/api/x?y=1", body=b"hello"))
        assert answer.status == 201
        assert answer.json() == {"path": "/api/x", "query": "y=1", "method": "POST", "body": "hello"}
        stream = await exchange(port, req("GET", "/stream"))
        assert stream.headers["transfer-encoding"] == "chunked" and stream.body == b"one,two,three"
        assert (await exchange(port, req("GET", HANDSHAKE))).status == 200  # the engine keeps its path
    assert events == ["lifespan.startup", "lifespan.shutdown"]


# ------------------------------------------------------------------------------------ WebSocket


def _frame(text: str) -> bytes:
    payload = text.encode()
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + masked


async def _read_frame(reader: asyncio.StreamReader) -> str:
    head = await asyncio.wait_for(reader.readexactly(2), 2)
    length = head[1] & 0x7F
    if length == 126:
        length = struct.unpack("!H", await reader.readexactly(2))[0]
    return (await reader.readexactly(length)).decode()


async def test_websocket_upgrade_keeps_the_bytes_sent_behind_the_handshake() -> None:
    """The client's CONNECT rides in the same TCP write as its handshake."""
    async with running() as port:
        reader, writer = await connect(port)
        handshake = req("GET", "/socket.io/?EIO=4&transport=websocket", {
            "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
        writer.write(handshake + _frame("40"))
        answer = await read_http_response(reader)
        assert answer.status == 101
        assert answer.headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        assert (await _read_frame(reader)).startswith("0{")
        assert (await _read_frame(reader)).startswith('40{"sid":')
        writer.write(_frame('421["echo","hi"]'))
        assert await _read_frame(reader) == '431["hi"]'
        writer.close()


# ------------------------------------------------------------------------------------ shutdown


async def test_aborted_long_poll_closes_the_session() -> None:
    sio = echo_server()
    gone: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    @sio.event
    async def disconnect(sid: str, reason: str) -> None:
        gone.set_result(reason)

    async with running(sio) as port:
        sid = sid_of(await exchange(port, req("GET", HANDSHAKE)))
        poll = f"{HANDSHAKE}&sid={sid}"
        await exchange(port, req("POST", poll, body=b"40"))
        await exchange(port, req("GET", poll))
        _reader, writer = await connect(port)
        writer.write(req("GET", poll))
        await writer.drain()
        while not sio.eio.polling.parked:  # the engine parks the GET
            await asyncio.sleep(0.01)
        writer.transport.abort()
        assert await asyncio.wait_for(gone, 2) == "transport close"


async def test_stop_answers_parked_polls_and_returns() -> None:
    sio = echo_server()
    stop = asyncio.Event()
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.ensure_future(serve(sio, "127.0.0.1", 0, stop=stop,
                                       ready=lambda addresses: bound.set_result(addresses[0][1])))
    port = await bound
    sid = sid_of(await exchange(port, req("GET", HANDSHAKE)))
    poll = f"{HANDSHAKE}&sid={sid}"
    reader, writer = await connect(port)
    writer.write(req("GET", poll))
    await writer.drain()
    while not sio.eio.polling.parked:
        await asyncio.sleep(0.01)
    stop.set()
    answer = await read_http_response(reader, timeout=5)
    assert (answer.status, answer.body) == (200, b"1")  # the CLOSE packet
    await asyncio.wait_for(task, 10)
    with pytest.raises((ConnectionError, OSError, ConnectionClosed)):
        await exchange(port, req("GET", HANDSHAKE))
    writer.close()


async def test_websockets_outside_socketio_go_to_the_asgi_app() -> None:
    """An ASGI app's own WebSocket routes (a FastAPI websocket endpoint, say) work behind run()."""
    import aiohttp

    closed: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def app(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]],
                  send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] != "websocket":
            return
        assert (await receive())["type"] == "websocket.connect"
        if scope["path"] == "/refuse":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "websocket.accept", "subprotocol": scope["subprotocols"][0]})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                closed.set_result(message["code"])
                return
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": "echo:" + message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"][::-1]})

    async with running(other_asgi_app=app) as port, aiohttp.ClientSession() as http:
        async with http.ws_connect(f"http://127.0.0.1:{port}/ws?x=1", protocols=["chat", "other"]) as ws:
            assert ws.protocol == "chat"
            await ws.send_str("hi")
            assert await ws.receive_str() == "echo:hi"
            await ws.send_bytes(b"\x01\x02")
            assert await ws.receive_bytes() == b"\x02\x01"
        assert await asyncio.wait_for(closed, 2) == 1000
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"http://127.0.0.1:{port}/refuse")
        assert refused.value.status == 403
        assert (await exchange(port, req("GET", HANDSHAKE))).status == 200


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_compressed_post_body_is_inflated_for_the_engine(encoding: str) -> None:
    import zlib

    async with running() as port:
        sid = sid_of(await exchange(port, req("GET", HANDSHAKE)))
        poll = f"{HANDSHAKE}&sid={sid}"
        packer = zlib.compressobj(6, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
        body = packer.compress(b"40") + packer.flush()
        answer = await exchange(port, req("POST", poll, {"Content-Encoding": encoding}, body))
        assert (answer.status, answer.body) == (200, b"ok")
        assert (await exchange(port, req("GET", poll))).body.startswith(b'40{"sid":')
