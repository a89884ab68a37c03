"""An ASGI ``http`` or ``websocket`` scope as the engine's :class:`~sioserver.engine.http.HttpRequest`.

The environ is python-engineio's ASGI environ: the WSGI keys (``REQUEST_METHOD``, ``PATH_INFO``,
``QUERY_STRING``, ``REMOTE_ADDR``, ``HTTP_*`` ...) built from the scope, so ``REMOTE_ADDR`` and
``wsgi.url_scheme`` are what the ASGI server put in ``scope["client"]`` and ``scope["scheme"]`` (the
proxy's client and scheme under ``uvicorn --proxy-headers``), plus ``asgi.scope``, ``asgi.receive`` and
``asgi.send`` until the connect handler has run.

A long-poll whose client goes away is noticed without a task per request: the engine's sweep asks
:meth:`AsgiRequest.is_disconnected` of each parked GET, and the first time it asks (a GET parked for
``poll_check_interval``), a watcher starts waiting for the scope's ``http.disconnect``; from then on the
client's going away cancels the GET at once, as aiohttp cancels its handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any
from urllib.parse import unquote_plus

from ...engine.http import BodyTooLarge, IncompleteBody
from ...engine.transport import TransportHandler
from ...engine.websocket import WebSocketConfig
from .websocket import AsgiWebSocket

__all__ = ["AsgiRequest", "Headers", "Message", "Receive", "Send"]

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def _expire(task: asyncio.Task[Any], expired: list[bool]) -> None:
    if not task.done():
        expired.append(True)
        task.cancel()


class _Resumed:
    """Awaiting a coroutine that was stepped by hand once and suspended on ``yielded``: the rest of it runs
    in the awaiting task, as if it had been awaited from the start (what ``await`` does: the task is
    handed what the coroutine yields, and the coroutine what the task sends or throws)."""

    __slots__ = ("_coro", "_yielded")

    def __init__(self, coro: Any, yielded: Any) -> None:
        self._coro = coro
        self._yielded = yielded

    def __await__(self) -> Any:
        coro = self._coro
        yielded = self._yielded
        while True:
            try:
                sent = yield yielded
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # handed to the coroutine, as await does
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


def _parse_query(query: str) -> dict[str, str]:
    """The query's parameters, the first value of each (what ``parse_qsl`` gives, faster for the Engine.IO
    queries of every poll: ``EIO=4&transport=polling&t=...&sid=...``)."""
    found: dict[str, str] = {}
    for part in query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        if "%" in part or "+" in part:
            key, value = unquote_plus(key), unquote_plus(value)
        if key not in found:
            found[key] = value
    return found


_KEYS: dict[str, bytes] = {}  # a header name as asked for -> as ASGI gives it


class Headers(Mapping[str, str]):
    """The scope's headers, looked up case-insensitively (repeated headers joined with ``,``).

    ASGI servers give header names lowercased: the table is built from the raw pairs at C speed and a
    value is decoded only when asked for (the engine asks for three or four of a poll's headers)."""

    __slots__ = ("_map", "_raw")

    def __init__(self, raw: Sequence[tuple[bytes, bytes]]) -> None:
        self._raw = raw
        table: dict[bytes, bytes] = dict(raw)
        if len(table) != len(raw) or (table and not b"".join(table).islower()):
            table = {}  # a repeated or mixed-case name: the careful way
            for name, value in raw:
                key = name.lower()
                table[key] = table[key] + b"," + value if key in table else value
        self._map = table

    def get(self, key: str, default: Any = None) -> Any:
        raw = _KEYS.get(key)
        if raw is None:
            raw = key.lower().encode("latin-1")
            if len(_KEYS) < 256:  # the few names the engine and apps ask for
                _KEYS[key] = raw
        value = self._map.get(raw)
        return default if value is None else value.decode("latin-1")

    def __getitem__(self, key: str) -> str:
        return self._map[key.lower().encode("latin-1")].decode("latin-1")

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower().encode("latin-1") in self._map

    def __iter__(self) -> Iterator[str]:
        return (name.decode("latin-1") for name in self._map)

    def __len__(self) -> int:
        return len(self._map)


class AsgiRequest:
    """One ASGI ``http`` (or ``websocket``) scope, for the engine."""

    __slots__ = ("_environ", "_gone", "_task", "_watcher", "headers", "method", "query", "receive", "scope",
                 "send", "upgraded")

    def __init__(self, scope: Message, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send
        self.headers = Headers(scope.get("headers") or ())
        self.method: str = scope.get("method", "GET") if scope["type"] == "http" else "GET"
        query = scope.get("query_string")
        self.query = _parse_query(query.decode("latin-1")) if query else {}
        self._environ: dict[str, Any] | None = None
        self._watcher: asyncio.Future[Message] | None = None
        self._gone = False
        #: the task of a parked GET (see :meth:`parked`): cancelled when the watcher sees the client go
        self._task: asyncio.Task[Any] | None = None
        #: the transport :meth:`upgrade_websocket` made (a ``websocket`` scope that became a session)
        self.upgraded: AsgiWebSocket | None = None

    @property
    def remote_addr(self) -> str:
        client = self.scope.get("client")
        return str(client[0]) if client else ""

    def environ(self) -> dict[str, Any]:
        if self._environ is None:
            scope = self.scope
            query = scope.get("query_string") or b""
            path = scope.get("path", "")
            raw_path = scope.get("raw_path")
            raw = raw_path.decode("latin-1") if raw_path else path
            client = scope.get("client") or ("", 0)
            server = scope.get("server") or ("asgi", 0)
            scheme = scope.get("scheme") or ("ws" if scope["type"] == "websocket" else "http")
            env: dict[str, Any] = {
                "REQUEST_METHOD": self.method,
                "PATH_INFO": path,
                "QUERY_STRING": query.decode("latin-1"),
                "RAW_URI": f"{raw}?{query.decode('latin-1')}" if query else raw,
                "SCRIPT_NAME": scope.get("root_path", ""),
                "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
                "REMOTE_ADDR": str(client[0]),
                "REMOTE_PORT": str(client[1]),
                "SERVER_NAME": str(server[0]),
                "SERVER_PORT": str(server[1] if server[1] is not None else ""),
                # as python-engineio: the HTTP scheme, also for a websocket scope
                "wsgi.url_scheme": {"ws": "http", "wss": "https"}.get(scheme, scheme),
                "asgi.scope": scope,
                "asgi.receive": self.receive,
                "asgi.send": self.send,
            }
            for name, value in (scope.get("headers") or ()):
                key = name.decode("latin-1").upper().replace("-", "_")
                text = value.decode("latin-1")
                if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                    env[key] = text
                else:
                    key = sys.intern("HTTP_" + key)
                    env[key] = f"{env[key]},{text}" if key in env else text
            self._environ = env
        return self._environ

    def release(self) -> None:
        """The connect handler has run: the session keeps its environ, not the ASGI callables."""
        env = self._environ
        if env is not None:
            for key in ("asgi.receive", "asgi.send"):
                env.pop(key, None)

    async def read_body(self, limit: int, timeout: float) -> bytes:
        length_header = self.headers.get("content-length")
        if length_header is not None and length_header.isdigit() and int(length_header) > limit:
            raise BodyTooLarge(int(length_header))
        chunks: list[bytes] = []
        size = 0
        # A poll's body is whole before its app is called (the ASGI server read it with the head): then
        # receive() completes without suspending, and needs no deadline. The first receive() that would
        # wait arms it: one timer that cancels this task (what asyncio.timeout() does, at a third of its cost).
        task: asyncio.Task[Any] | None = None
        expired: list[bool] = []
        timer: asyncio.TimerHandle | None = None
        try:
            while True:
                pending: Any = self.receive()
                step: Any = getattr(pending, "send", None)  # a coroutine; any other awaitable is awaited
                waits = step is None
                if step is not None:
                    try:
                        yielded = step(None)
                    except StopIteration as stop:
                        message = stop.value
                    else:
                        waits, pending = True, _Resumed(pending, yielded)
                if waits:
                    if timer is None:
                        task = asyncio.current_task()
                        if task is not None:
                            timer = asyncio.get_running_loop().call_later(timeout, _expire, task, expired)
                    message = await pending
                kind = message["type"]
                if kind == "http.disconnect":
                    self._gone = True
                    raise IncompleteBody(f"the client went away after {size} bytes")
                chunk = message.get("body", b"")
                if chunk:
                    size += len(chunk)
                    if size > limit:
                        raise BodyTooLarge(size)
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    break
        except asyncio.CancelledError as exc:
            if expired and task is not None and task.uncancel() == 0:
                raise IncompleteBody(f"{size} bytes in {timeout}s, body not complete") from exc
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if length_header is not None and length_header.isdigit() and size != int(length_header):
            raise IncompleteBody(f"{size} of {length_header} bytes")
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def parked(self) -> None:
        """The engine parked this GET (called in the request's task): the task the watcher cancels."""
        self._task = asyncio.current_task()

    def is_disconnected(self) -> bool:
        """For a parked GET: has its client gone away? (The first call starts the watcher.)"""
        if self._gone:
            return True
        watcher = self._watcher
        if watcher is None:
            self._watcher = asyncio.ensure_future(self._watch())
            return False
        return watcher.done()

    @property
    def gone(self) -> bool:
        """The client went away before the response (the watcher saw ``http.disconnect``)."""
        return self._gone

    async def _watch(self) -> Message:
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self._gone = True
                task = self._task
                if task is not None and not task.done():
                    task.cancel()  # the parked GET ends now, as when a framework cancels its handler
                return message

    def done(self) -> None:
        """The response went out: stop watching."""
        watcher = self._watcher
        if watcher is not None and not watcher.done():
            watcher.cancel()
            with contextlib.suppress(BaseException):
                watcher.exception()

    def upgrade_websocket(self, handler: TransportHandler, config: WebSocketConfig,
                          extra_headers: Sequence[tuple[str, str]]) -> AsgiWebSocket:
        """Accept the ``websocket`` scope (the ASGI server did the handshake's checks and does the
        framing, and permessage-deflate as it is configured to)."""
        if self.scope["type"] != "websocket":
            # a plain HTTP request with transport=websocket: the engine answers it (400) before this
            raise OSError("not a websocket scope")
        ws = AsgiWebSocket(self.send, handler, config, extra_headers)
        self.upgraded = ws
        return ws
