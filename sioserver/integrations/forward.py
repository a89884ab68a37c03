"""Serving another node's session: the request is sent to its owner's HTTP front and the answer relayed.

A node names itself in the sids it hands out (``"<node>.<random>"``); the door to its HTTP front is a
Unix socket (worker ``i`` of ``--workers`` serves on ``<dir>/http-<i>.sock`` too, and hands out
``"<i>."``) or a TCP address (a node of a Redis-backed cluster, found through
:mod:`sioserver.adapters.registry`, see :mod:`.nodes`). The ``owner`` given to :class:`Forwarder` says
which door a sid's node has (raising ``OSError`` when there is none). The engine asks
:meth:`Forwarder.forward` only for a sid it does not hold (the requests of its own sessions never come
here); a request that was forwarded once already is never forwarded again (``X-Sioserver-Hop``: a stale
address now served by another node cannot make a loop).

A polling GET or POST is replayed to the owner (on a kept-alive connection to it, up to ``POOL_SIZE``
idle ones reused within ``POOL_IDLE`` seconds) and the owner's answer returned: a GET parks at the
owner, and when the client goes away the forwarded connection closes with it. A WebSocket upgrade is
replayed too; on the owner's 101 the client's connection is handed over and the bytes piped both ways.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeAlias

from ..engine.http import HttpRequest, HttpResponse
from .http1.request import Http1Request

__all__ = ["Door", "Forwarder", "http_socket", "local_owner"]

#: where a node takes forwarded requests: a Unix socket, or (host, port)
Door: TypeAlias = Path | tuple[str, int]
HOP = "X-Sioserver-Hop"
CONNECT_TIMEOUT = 2.0

_HOP = frozenset({"connection", "keep-alive", "content-length", "transfer-encoding", "upgrade", "proxy-connection",
                  "te", "trailer"})
_REQUEST_HOP = _HOP | {"content-encoding"}  # the body is sent on inflated, as the engine read it


def http_socket(directory: str | Path, index: int) -> Path:
    return Path(directory) / f"http-{index}.sock"


def _head(request: Http1Request, extra: list[tuple[str, str]], drop: frozenset[str] = _REQUEST_HOP) -> bytes:
    lines = [f"{request.method} {request.target} HTTP/1.1"]
    lines.extend(f"{name}: {value}" for name, value in request.headers.items_raw() if name.lower() not in drop)
    lines.extend(f"{name}: {value}" for name, value in extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _parse_head(head: bytes) -> tuple[int, list[tuple[str, str]]]:
    status_line, *lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ConnectionError(f"the owner answered {status_line[:60]!r}")
    headers = []
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip(), value.strip()))
    return int(parts[1]), headers


HIGH_WATER = 256 * 1024
POOL_SIZE = 32  # idle connections kept to each owner
POOL_IDLE = 2.0  # seconds one is reused within: under the owner's keepalive_timeout (5 s by default)


class _Stale(Exception):
    """A kept-alive connection the owner had closed: nothing of the request was read."""


class _Pipe(asyncio.Protocol):
    """The client's side of a forwarded WebSocket: what it sends goes to the owner. Both ways are flow
    controlled: the client is not read while the owner's socket is backed up, and the owner is not read
    (so its own WebSocket backs up, as for a client of its own) while the client is slow."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.client: asyncio.Transport | None = None
        self.writable = asyncio.Event()
        self.writable.set()
        self._draining = False

    def data_received(self, data: bytes) -> None:
        writer = self.writer
        writer.write(data)
        if not self._draining and writer.transport.get_write_buffer_size() > HIGH_WATER and self.client is not None:
            self._draining = True
            self.client.pause_reading()
            asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            await self.writer.drain()
        except ConnectionError:
            return
        finally:
            self._draining = False
        if self.client is not None and not self.client.is_closing():
            self.client.resume_reading()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def eof_received(self) -> bool | None:
        self.writer.close()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.writable.set()
        self.writer.close()


def local_owner(directory: str | Path, index: int, count: int) -> Callable[[str], Door]:
    """The door of a sid's worker among the ``count`` of one machine (``index`` is this one)."""
    directory = Path(directory)

    def owner(sid: str) -> Door:
        node = sid.partition(".")[0]
        if not node.isdigit() or int(node) >= count or int(node) == index:
            raise ConnectionRefusedError(f"no worker {node!r} on this machine")
        return http_socket(directory, int(node))
    return owner


async def _connect(door: Door) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    # wait_for, not asyncio.timeout: the front may run this coroutine outside any task
    if isinstance(door, Path):
        return await asyncio.wait_for(asyncio.open_unix_connection(str(door)), CONNECT_TIMEOUT)
    return await asyncio.wait_for(asyncio.open_connection(door[0], door[1]), CONNECT_TIMEOUT)


class Forwarder:
    """``owner(sid)`` (a function or a coroutine function): the door of the sid's node, or ``OSError``;
    ``lost(sid, door)``: called when the owner could not be reached there."""

    def __init__(self, engine: Any, owner: Callable[[str], Door | Awaitable[Door]],
                 lost: Callable[[str, Door], None] | None = None) -> None:
        self.engine = engine
        self.owner = owner
        self.lost = lost
        self._pipes: set[asyncio.Task[None]] = set()
        #: kept-alive connections to each owner's door: (reader, writer, idle since)
        self._idle: dict[Door, list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]]] = {}

    async def forward(self, request: HttpRequest, sid: str, cors: list[tuple[str, str]]) -> HttpResponse | None:
        if not isinstance(request, Http1Request):
            raise ConnectionRefusedError("this front cannot forward")
        if request.headers.get(HOP) is not None:
            raise ConnectionRefusedError("the request was forwarded here already (a stale address of that node?)")
        door = self.owner(sid)
        if not isinstance(door, (Path, tuple)):
            door = await door
        try:
            return await self._forward(request, sid, door)
        except OSError:
            if self.lost is not None:
                self.lost(sid, door)
            raise

    async def _forward(self, request: Http1Request, sid: str, path: Door) -> HttpResponse | None:
        self.engine.stats["forwarded"] += 1
        if request.upgrade:
            return await self._websocket(request, path)
        body = b""
        if request.method == "POST":
            body = await request.read_body(self.engine.max_http_buffer_size, self.engine.body_timeout)
        message = _head(request, [("Content-Length", str(len(body))), ("X-Forwarded-For", request.remote_addr),
                                  (HOP, "1")]) + body
        loop = asyncio.get_running_loop()
        idle = self._idle.setdefault(path, [])
        while idle:  # a kept-alive connection to the owner, if one is fresh enough
            reader, writer, since = idle.pop()
            if loop.time() - since < POOL_IDLE and not writer.is_closing() and not reader.at_eof():
                try:
                    return await self._exchange(path, reader, writer, message, sid)
                except _Stale:
                    continue  # the owner closed it idle: the request was not read; on a new one
            writer.close()
        reader, writer = await _connect(path)
        try:
            return await self._exchange(path, reader, writer, message, sid)
        except _Stale as exc:
            raise ConnectionResetError(f"the owner of {sid!r} closed without an answer") from exc

    async def _exchange(self, path: Door, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        message: bytes, sid: str) -> HttpResponse:
        """One request on a connection to the owner (a parked GET waits here); the connection goes back
        to the pool after a whole answer, else it is closed."""
        kept = False
        try:
            writer.write(message)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                if not exc.partial:
                    raise _Stale from None
                raise ConnectionResetError(f"the owner of {sid!r} closed in its answer") from exc
            status, headers = _parse_head(head[:-4])
            length = 0
            close = False
            for name, value in headers:
                low = name.lower()
                if low == "content-length" and value.isdigit():
                    length = int(value)
                elif low == "connection" and value.lower() == "close":
                    close = True
            body = await reader.readexactly(length) if length else b""
            idle = self._idle.setdefault(path, [])
            if not close and len(idle) < POOL_SIZE:
                idle.append((reader, writer, asyncio.get_running_loop().time()))
                kept = True
            return HttpResponse(status, body, [(n, v) for n, v in headers if n.lower() not in _HOP])
        except asyncio.IncompleteReadError as exc:
            raise ConnectionResetError(f"the owner of {sid!r} closed in its answer") from exc
        finally:
            if not kept:
                writer.close()

    async def _websocket(self, request: Http1Request, path: Door) -> HttpResponse | None:
        reader, writer = await _connect(path)
        try:
            writer.write(_head(request, [("X-Forwarded-For", request.remote_addr), (HOP, "1")],
                               frozenset({"proxy-connection", HOP.lower()})))
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                raise ConnectionResetError("the owner closed during the WebSocket handshake") from exc
            status, headers = _parse_head(head[:-4])
            if status != 101:
                length = next((int(v) for n, v in headers if n.lower() == "content-length" and v.isdigit()), 0)
                body = await reader.readexactly(length) if length else b""
                writer.close()
                return HttpResponse(status, body, [(n, v) for n, v in headers if n.lower() not in _HOP])
            transport, tail = request.conn.take_over()
        except BaseException:
            writer.close()
            raise
        pipe = _Pipe(writer)
        pipe.client = transport
        transport.set_protocol(pipe)
        transport.write(head)
        if tail:
            writer.write(tail)
        task = asyncio.get_running_loop().create_task(self._relay(reader, writer, transport, pipe))
        self._pipes.add(task)
        task.add_done_callback(self._pipes.discard)
        return None

    @staticmethod
    async def _relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, transport: asyncio.Transport,
                     pipe: _Pipe) -> None:
        """The owner's side of a forwarded WebSocket: what it sends goes to the client."""
        try:
            while data := await reader.read(65536):
                if transport.is_closing():
                    break
                transport.write(data)
                if not pipe.writable.is_set():
                    await pipe.writable.wait()
        except ConnectionError:
            pass
        finally:
            writer.close()
            transport.close()
