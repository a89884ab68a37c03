"""An Engine.IO v4 client: HTTP long-polling, WebSocket, and the upgrade from the first to the second
(socket.io repository, docs/engine.io-protocol/v4-current.md).

One :class:`EngineClient` is one Engine.IO session; a reconnect makes a new one. Packets and payloads are
:mod:`sioserver.proto.engineio`'s; the WebSocket is :mod:`sioclient.websocket`'s; HTTP is aiohttp's.

Theory of operation
-------------------
* Output goes through one queue and one writer task, whatever the transport: a batch of packets per
  POST (at most one POST in flight, batches cut at the server's ``maxPayload``), one frame per packet
  on the WebSocket. ``send()`` queues and returns; ``drain()`` waits while more than
  ``max_queued_bytes`` are queued.
* Input: a poll loop (one GET in flight) or a WebSocket reader task feed ``_on_packet``: a ping is
  answered with a pong, a message goes to ``on_message``, a close packet ends the session.
* Heartbeat: a timer of ``pingInterval + pingTimeout`` is armed at the handshake and re-armed on every
  ping; when it fires the session ends with "ping timeout".
* Upgrade (polling first, ``websocket`` in the server's ``upgrades``): open a WebSocket with the sid,
  ``2probe`` -> ``3probe``; then pause polling - take the writer's lock so no POST is in flight and
  let the pending GET come back (the server answers it with a noop) - send ``5`` on the WebSocket
  and switch the writer to it. Packets queued meanwhile go out on the WebSocket, in order. A failed
  probe leaves the session on polling.
* The session ends once: ``on_close(reason)`` is called with one of the reasons of the JavaScript
  client - "transport close", "transport error", "ping timeout", "parse error" or "forced close"
  (``close()``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import aiohttp
from yarl import URL

from sioserver.exceptions import EngineIOProtocolError
from sioserver.proto.engineio import Packet, PacketType, decode_packet, decode_payload, encode_packet, encode_payload

from . import websocket
from .exceptions import ConnectionError, WebSocketClosed

__all__ = ["TRANSPORTS", "EngineClient", "EngineClosedError"]

log = logging.getLogger("sioclient.engine")

TRANSPORTS = ("polling", "websocket")
_POST_HEADERS = {"Content-Type": "text/plain;charset=UTF-8"}


class EngineClosedError(Exception):
    """The session is not open (internal: the Socket.IO layer buffers or raises its own error)."""


def _encoded_size(packet: Packet) -> int:
    """Bytes ``packet`` takes in a polling payload (for the ``maxPayload`` cut)."""
    data = packet.data
    if isinstance(data, bytes):
        return 1 + (len(data) + 2) // 3 * 4
    return 1 + (len(data) if data.isascii() else len(data.encode()))


def _error_message(status: int, body: bytes) -> tuple[str, Any]:
    """``HTTP 400: Session ID unknown`` from an Engine.IO error body, and the parsed body."""
    try:
        data = json.loads(body)
    except ValueError:
        data = body.decode("utf-8", "replace")[:200]
        return f"HTTP {status}" + (f": {data}" if data else ""), data
    if isinstance(data, dict) and "message" in data:
        return f"HTTP {status}: {data['message']}", data
    return f"HTTP {status}: {data!r:.200}", data


class EngineClient:
    """One Engine.IO session, from handshake to close."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        on_message: Callable[[str | bytes], None],
        on_close: Callable[[str], None],
        request_timeout: float = 5.0,
        websocket_compression: bool = True,
        ssl: Any = True,
        max_queued_bytes: int = 1 << 20,
        logger: logging.Logger | None = None,
    ) -> None:
        self._session = session
        self._on_message = on_message
        self._on_close = on_close
        self.request_timeout = request_timeout
        self._compression = websocket_compression
        self._ssl = ssl
        self._max_queued = max_queued_bytes
        self.log = logger or log
        self.state = "new"  # new -> opening -> open -> closing -> closed
        self.transport: str | None = None
        self.sid: str | None = None
        self.upgrades: list[str] = []
        self.ping_interval = 0.0
        self.ping_timeout = 0.0
        self.max_payload = 1_000_000
        self.close_reason: str | None = None
        self._endpoint = URL()
        self._query: dict[str, str] = {}
        self._headers: dict[str, str] = {}
        self._out: deque[Packet] = deque()
        self._out_bytes = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()  # nothing queued, nothing being written
        self._idle.set()
        self._writable = asyncio.Event()  # fewer than max_queued_bytes queued (or closed)
        self._writable.set()
        self._write_lock = asyncio.Lock()
        self._pausing = False  # the upgrade asked the poll loop to stop after its current GET
        self._poll_paused = asyncio.Event()
        self._ws: websocket.WebSocket | None = None
        self._probe_ws: websocket.WebSocket | None = None
        self._ping_timer: asyncio.TimerHandle | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}

    # -- public API --------------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self.state == "open"

    async def connect(
        self,
        url: str,
        *,
        path: str = "engine.io",
        headers: Mapping[str, str] | None = None,
        transports: Sequence[str] = TRANSPORTS,
    ) -> None:
        """Handshake on ``transports[0]`` (falling back to polling when a WebSocket-first handshake
        fails and polling is allowed). Returns once the session is open; raises
        :class:`~sioclient.exceptions.ConnectionError`."""
        if self.state != "new":
            raise RuntimeError("an EngineClient connects once")
        self.state = "opening"
        base = URL(url)
        if base.scheme in ("ws", "wss"):
            base = base.with_scheme("http" if base.scheme == "ws" else "https")
        if base.scheme not in ("http", "https") or not base.host:
            raise ValueError(f"not an http(s) or ws(s) URL: {url!r}")
        self._endpoint = base.with_path("/" + path.strip("/") + "/").with_query(None).with_fragment(None)
        self._query = {k: v for k, v in base.query.items() if k not in ("EIO", "transport", "sid", "t")}
        self._headers = dict(headers or {})
        self._transports = list(transports)
        rest: list[Packet] = []
        try:
            if self._transports[0] == "websocket":
                try:
                    await self._open_websocket()
                except (ConnectionError, OSError, aiohttp.ClientError, TimeoutError) as exc:
                    if "polling" not in self._transports:
                        raise
                    self.log.info("WebSocket handshake failed (%s), falling back to polling", exc)
                    rest = await self._open_polling()
            else:
                rest = await self._open_polling()
        except ConnectionError:
            self._finish("transport error")
            raise
        except (OSError, aiohttp.ClientError, TimeoutError, EngineIOProtocolError, ValueError) as exc:
            self._finish("transport error")
            raise ConnectionError(f"Engine.IO handshake failed: {exc!r}") from exc
        except BaseException:
            self._finish("transport error")
            raise
        self.state = "open"
        self._reset_ping_timer()
        self._spawn("writer", self._writer())
        if self.transport == "polling":
            self._spawn("poll", self._poll_loop())
            if "websocket" in self.upgrades and "websocket" in self._transports:
                self._spawn("upgrade", self._upgrade())
        else:
            assert self._ws is not None
            self._spawn("ws-reader", self._ws_reader(self._ws))
        if rest:
            asyncio.get_running_loop().call_soon(self._on_packets, rest)

    def send(self, messages: Iterable[str | bytes]) -> None:
        """Queue Engine.IO messages (in order). Raises EngineClosedError unless the session is open."""
        if self.state != "open":
            raise EngineClosedError(self.close_reason or self.state)
        for message in messages:
            self._queue(Packet(PacketType.MESSAGE, message))

    async def drain(self) -> None:
        """Wait while more than ``max_queued_bytes`` are queued."""
        if not self._writable.is_set():
            await self._writable.wait()

    async def close(self) -> None:
        """Flush what is queued (for up to ``request_timeout``), tell the server, end the session."""
        if self.state in ("new", "opening"):
            self._finish("forced close")
            return
        if self.state != "open":
            return
        self.state = "closing"
        self._cancel_task("upgrade")
        if self._probe_ws is not None:
            self._probe_ws.abort()
        try:
            async with asyncio.timeout(self.request_timeout):
                await self._idle.wait()
                if self.transport == "polling":
                    async with self._write_lock:
                        await self._post([Packet(PacketType.CLOSE)])
                    self._cancel_task("poll")
                elif self._ws is not None:
                    await self._ws.close()
        except (TimeoutError, OSError, aiohttp.ClientError, EngineClosedError, WebSocketClosed) as exc:
            self.log.debug("Engine.IO close: %r", exc)
        self._finish("forced close")

    def terminate(self, reason: str) -> None:
        """End the session at once (no flush): "parse error" from the layer above, for instance."""
        self._finish(reason)

    # -- handshake -----------------------------------------------------------------------------------
    def _url(self, transport: str, *, sid: bool) -> URL:
        query = dict(self._query)
        query["EIO"] = "4"
        query["transport"] = transport
        if transport == "polling":
            query["t"] = secrets.token_urlsafe(6)
        if sid and self.sid is not None:
            query["sid"] = self.sid
        url = self._endpoint.with_query(query)
        if transport == "websocket":
            url = url.with_scheme("wss" if url.scheme == "https" else "ws")
        return url

    def _handshake(self, data: str | bytes, transport: str) -> None:
        if not isinstance(data, str):
            raise ConnectionError("Engine.IO handshake: binary open packet")
        try:
            info = json.loads(data)
            self.sid = str(info["sid"])
            self.upgrades = [str(u) for u in info.get("upgrades", [])]
            self.ping_interval = float(info["pingInterval"]) / 1000
            self.ping_timeout = float(info["pingTimeout"]) / 1000
            self.max_payload = int(info.get("maxPayload") or 1_000_000)
        except (ValueError, KeyError, TypeError) as exc:
            raise ConnectionError(f"Engine.IO handshake: bad open packet {data[:200]!r}") from exc
        self.transport = transport
        self.log.info(
            "Engine.IO session %s open on %s (ping %.3g+%.3g s)",
            self.sid,
            transport,
            self.ping_interval,
            self.ping_timeout,
        )

    async def _open_polling(self) -> list[Packet]:
        timeout = aiohttp.ClientTimeout(total=self.request_timeout)
        async with self._session.get(
            self._url("polling", sid=False), headers=self._headers, timeout=timeout, ssl=self._ssl
        ) as response:
            body = await response.read()
            if response.status != 200:
                message, data = _error_message(response.status, body)
                raise ConnectionError(f"Engine.IO handshake refused: {message}", data)
        try:
            packets = decode_payload(body.decode("utf-8"))
        except (EngineIOProtocolError, UnicodeDecodeError) as exc:
            raise ConnectionError(f"Engine.IO handshake: bad payload {body[:200]!r}") from exc
        if packets[0].type != PacketType.OPEN:
            raise ConnectionError(f"Engine.IO handshake: expected an open packet, got {body[:200]!r}")
        self._handshake(packets[0].data, "polling")
        return packets[1:]

    async def _open_websocket(self) -> None:
        ws = await self._ws_connect(sid=False)
        try:
            async with asyncio.timeout(self.request_timeout):
                message = await ws.recv()
            packet = decode_packet(message)
            if packet.type != PacketType.OPEN:
                raise ConnectionError(f"Engine.IO handshake: expected an open packet, got {message!r:.200}")
            self._handshake(packet.data, "websocket")
        except BaseException:
            ws.abort()
            raise
        self._ws = ws

    async def _ws_connect(self, *, sid: bool) -> websocket.WebSocket:
        try:
            return await websocket.connect(
                self._url("websocket", sid=sid),
                session=self._session,
                headers=self._headers,
                compression=self._compression,
                open_timeout=self.request_timeout,
                close_timeout=min(self.request_timeout, 2.0),
                ssl=self._ssl,
            )
        except ConnectionError as exc:
            if isinstance(exc.data, dict) and exc.data.get("body"):
                message, _ = _error_message(exc.data.get("status", 0), exc.data["body"])
                raise ConnectionError(f"Engine.IO handshake refused: {message}", exc.data) from exc
            raise

    # -- packets -----------------------------------------------------------------------------------
    def _on_packets(self, packets: list[Packet]) -> None:
        for packet in packets:
            if self.state not in ("open", "closing"):
                return
            self._on_packet(packet)

    def _on_packet(self, packet: Packet) -> None:
        ptype = packet.type
        if ptype == PacketType.MESSAGE:
            try:
                self._on_message(packet.data)
            except Exception:
                self.log.exception("message handler failed")
        elif ptype == PacketType.PING:
            self._queue(Packet(PacketType.PONG, packet.data))
            self._reset_ping_timer()
        elif ptype == PacketType.CLOSE:
            self._finish("transport close")
        elif ptype != PacketType.NOOP:
            self.log.debug("ignoring Engine.IO packet %s", packet)

    def _reset_ping_timer(self) -> None:
        if self._ping_timer is not None:
            self._ping_timer.cancel()
        self._ping_timer = asyncio.get_running_loop().call_later(
            self.ping_interval + self.ping_timeout, self._finish, "ping timeout"
        )

    # -- output ------------------------------------------------------------------------------------
    def _queue(self, packet: Packet) -> None:
        if self.state not in ("open", "closing"):
            return
        self._out.append(packet)
        self._out_bytes += len(packet.data)
        if self._out_bytes > self._max_queued:
            self._writable.clear()
        self._idle.clear()
        self._wake.set()

    def _take(self, count: int) -> list[Packet]:
        batch = [self._out.popleft() for _ in range(count)]
        self._out_bytes -= sum(len(p.data) for p in batch)
        if self._out_bytes <= self._max_queued:
            self._writable.set()
        return batch

    def _batch_size(self) -> int:
        """How many queued packets fit one POST of at most maxPayload bytes (always at least one)."""
        size = 0
        for count, packet in enumerate(self._out):
            size += _encoded_size(packet) + (1 if count else 0)
            if count and size > self.max_payload:
                return count
        return len(self._out)

    async def _writer(self) -> None:
        while self.state in ("open", "closing"):
            await self._wake.wait()
            self._wake.clear()
            async with self._write_lock:
                try:
                    while self._out and self.state in ("open", "closing"):
                        if self.transport == "websocket":
                            ws = self._ws
                            assert ws is not None
                            for packet in self._take(len(self._out)):
                                ws.send_nowait(encode_packet(packet))
                            await ws.drain()
                        else:
                            await self._post(self._take(self._batch_size()))
                except (OSError, aiohttp.ClientError, TimeoutError, WebSocketClosed, EngineClosedError) as exc:
                    self.log.info("Engine.IO write failed: %r", exc)
                    self._finish("transport close" if isinstance(exc, WebSocketClosed) else "transport error")
                    return
            if not self._out:
                self._idle.set()

    async def _post(self, packets: list[Packet]) -> None:
        timeout = aiohttp.ClientTimeout(total=self.request_timeout)
        async with self._session.post(
            self._url("polling", sid=True),
            data=encode_payload(packets).encode(),
            headers={**self._headers, **_POST_HEADERS},
            timeout=timeout,
            ssl=self._ssl,
        ) as response:
            body = await response.read()
            if response.status != 200:
                message, _ = _error_message(response.status, body)
                raise EngineClosedError(f"POST refused: {message}")

    # -- input -------------------------------------------------------------------------------------
    async def _poll_loop(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.ping_interval + self.ping_timeout + self.request_timeout)
        while self.state in ("open", "closing") and self.transport == "polling" and not self._pausing:
            try:
                async with self._session.get(
                    self._url("polling", sid=True), headers=self._headers, timeout=timeout, ssl=self._ssl
                ) as response:
                    body = await response.read()
            except (OSError, aiohttp.ClientError, TimeoutError) as exc:
                self.log.info("Engine.IO poll failed: %r", exc)
                self._finish("transport error")
                return
            if response.status != 200:
                message, _ = _error_message(response.status, body)
                self.log.info("Engine.IO poll refused: %s", message)
                self._finish("transport error")
                return
            try:
                packets = decode_payload(body.decode("utf-8"))
            except (EngineIOProtocolError, UnicodeDecodeError) as exc:
                self.log.info("Engine.IO poll: bad payload: %r", exc)
                self._finish("parse error")
                return
            self._on_packets(packets)
        self._poll_paused.set()

    async def _ws_reader(self, ws: websocket.WebSocket) -> None:
        while True:
            try:
                message = await ws.recv()
            except WebSocketClosed as exc:
                if self.state == "open":
                    self.log.info("Engine.IO WebSocket closed: %s", exc)
                self._finish("forced close" if self.state == "closing" else "transport close")
                return
            try:
                packet = decode_packet(message)
            except EngineIOProtocolError as exc:
                self.log.info("Engine.IO: bad packet %r: %s", message[:100], exc)
                self._finish("parse error")
                return
            self._on_packet(packet)
            if self.state not in ("open", "closing"):
                return

    # -- upgrade -----------------------------------------------------------------------------------
    async def _upgrade(self) -> None:
        try:
            ws = self._probe_ws = await self._ws_connect(sid=True)
        except (ConnectionError, OSError, aiohttp.ClientError, TimeoutError) as exc:
            self.log.info("Engine.IO upgrade: WebSocket refused (%r), staying on polling", exc)
            return
        try:
            await ws.send("2probe")
            async with asyncio.timeout(self.request_timeout):
                answer = await ws.recv()
            if answer != "3probe":
                raise EngineIOProtocolError(f"probe answered with {answer!r:.100}")
        except (EngineIOProtocolError, WebSocketClosed, TimeoutError) as exc:
            self.log.info("Engine.IO upgrade: probe failed (%r), staying on polling", exc)
            ws.abort()
            return
        async with self._write_lock:  # no POST in flight from here on
            if self.state != "open":
                ws.abort()
                return
            self._pausing = True
            try:
                async with asyncio.timeout(self.request_timeout):
                    await self._poll_paused.wait()  # the pending GET came back (noop) and no new one left
            except TimeoutError:
                self.log.info("Engine.IO upgrade: polling did not pause, staying on polling")
                self._pausing = False
                ws.abort()
                if self.state == "open" and self._tasks.get("poll") is None:
                    self._poll_paused.clear()
                    self._spawn("poll", self._poll_loop())
                return
            if self.state != "open":
                ws.abort()
                return
            try:
                await ws.send("5")
            except WebSocketClosed:
                self._finish("transport close")
                return
            self._ws, self._probe_ws = ws, None
            self.transport = "websocket"
            self._spawn("ws-reader", self._ws_reader(ws))
            self.log.info("Engine.IO session %s upgraded to websocket", self.sid)
        if self._out:
            self._wake.set()

    # -- life cycle --------------------------------------------------------------------------------
    def _spawn(self, name: str, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"engineio-{name}-{self.sid}")
        self._tasks[name] = task

        def done(t: asyncio.Task[None]) -> None:
            if self._tasks.get(name) is t:
                del self._tasks[name]
            if not t.cancelled() and t.exception() is not None:
                self.log.error("Engine.IO %s task failed", name, exc_info=t.exception())
                self._finish("transport error")

        task.add_done_callback(done)

    def _cancel_task(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def _finish(self, reason: str) -> None:
        """End the session (once): stop the tasks and timers, drop the transports, tell the owner."""
        if self.state == "closed":
            return
        notify = self.state in ("open", "closing")
        self.state = "closed"
        self.close_reason = reason
        if self._ping_timer is not None:
            self._ping_timer.cancel()
        for name in list(self._tasks):
            self._cancel_task(name)
        for ws in (self._ws, self._probe_ws):
            if ws is not None and not ws.closed:
                ws.abort()
        self._out.clear()
        self._out_bytes = 0
        self._writable.set()
        self._idle.set()
        self._wake.set()
        if reason != "forced close":
            self.log.info("Engine.IO session %s closed: %s", self.sid, reason)
        if notify:
            try:
                self._on_close(reason)
            except Exception:
                self.log.exception("close handler failed")
