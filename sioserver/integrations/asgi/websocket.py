"""An Engine.IO session's WebSocket over an ASGI ``websocket`` scope.

Under ASGI the server (uvicorn, hypercorn ...) does the RFC 6455 work: the handshake's checks, the
framing, permessage-deflate (as that server is configured), pings of its own; sioserver's own RFC 6455
connection is not involved. This transport satisfies :class:`~sioserver.engine.transport.WebSocketTransport`:
``send`` never blocks, messages wait in a queue that one writer (the scope's own coroutine) hands to the
ASGI ``send`` in order; a reader task turns ``websocket.receive`` into the handler's messages.

Flow control: ``writable`` turns False when the queue holds more than ``write_buffer_high`` bytes (the
ASGI server's own ``send`` waits while its socket buffer is full, so the queue grows while the client
does not read) and the handler's ``on_ws_drain`` runs once the queue is back under ``write_buffer_low``:
the session's outbox and its byte bounds take over from there, as on every other front end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from ...engine.transport import SharedPacket, TransportHandler
from ...engine.websocket import WebSocketConfig

__all__ = ["AsgiWebSocket"]

log = logging.getLogger("sioserver.engine")

Message = MutableMapping[str, Any]


class AsgiWebSocket:
    """One accepted ASGI WebSocket, as a session's transport."""

    __slots__ = ("_accept", "_closing", "_config", "_ended", "_handler", "_queue", "_queued", "_reported",
                 "_send", "_wake", "_writable")

    def __init__(self, send: Callable[[Message], Awaitable[None]], handler: TransportHandler,
                 config: WebSocketConfig, extra_headers: Sequence[tuple[str, str]]) -> None:
        self._send = send
        self._handler = handler
        self._config = config
        headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in extra_headers
                   if not name.lower().startswith("access-control-")]
        self._accept: Message = {"type": "websocket.accept", "headers": headers}
        self._queue: deque[str | bytes] = deque()
        self._queued = 0
        self._writable = True
        self._closing: tuple[int, str] | None = None
        self._reported = False
        self._ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._wake: asyncio.Future[None] | None = None

    # ----------------------------------------------------------------- the transport contract

    @property
    def closed(self) -> bool:
        return self._reported

    @property
    def writable(self) -> bool:
        return self._writable

    @property
    def buffered_amount(self) -> int:
        return self._queued

    def send(self, data: str | bytes) -> None:
        if self._closing is not None or self._reported:
            return
        self._queue.append(data)
        self._queued += len(data)
        if self._queued > self._config.write_buffer_high:
            self._writable = False
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    def send_shared(self, packet: SharedPacket) -> None:
        self.send(packet.message)

    def send_batch(self, items: Sequence[SharedPacket | str | bytes]) -> None:
        for item in items:
            self.send(item.message if isinstance(item, SharedPacket) else item)

    def close(self, code: int | None = 1000, reason: str = "") -> None:
        """Close after what is queued; an ASGI close always carries a code (``None`` sends 1000)."""
        if self._closing is not None or self._reported:
            return
        self._closing = (1000 if code is None else code, reason)
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    # ----------------------------------------------------------------- the scope's coroutines

    async def run(self, receive: Callable[[], Awaitable[Message]]) -> None:
        """Serve the connection until it is over: the ASGI app's coroutine for this scope."""
        reader = asyncio.ensure_future(self._read(receive))
        send = self._send
        queue = self._queue
        low = self._config.write_buffer_low
        try:
            await send(self._accept)
            while True:
                while queue and not self._ended.done():
                    data = queue.popleft()
                    self._queued -= len(data)
                    if isinstance(data, str):
                        await send({"type": "websocket.send", "text": data})
                    else:
                        await send({"type": "websocket.send", "bytes": data})
                    if not self._writable and self._queued <= low:
                        self._writable = True
                        if not self._reported:
                            self._drained()
                if self._closing is not None or self._ended.done():
                    break
                self._wake = asyncio.get_running_loop().create_future()
                await self._wake
                self._wake = None
            if not self._ended.done() and self._closing is not None:
                code, reason = self._closing
                await send({"type": "websocket.close", "code": code, "reason": reason})
                # the peer's Close (websocket.disconnect), within close_timeout
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._ended), self._config.close_timeout)
        except asyncio.CancelledError:
            self._report(1006, "")
            raise
        except Exception as exc:  # the ASGI server's send failed: the client is gone
            log.debug("ASGI websocket send failed: %r", exc)
        finally:
            closing = self._closing
            self._report(closing[0] if closing is not None else 1006, closing[1] if closing is not None else "")
            queue.clear()
            self._queued = 0
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader

    async def _read(self, receive: Callable[[], Awaitable[Message]]) -> None:
        limit = self._config.max_message_size
        handler = self._handler
        try:
            while True:
                message = await receive()
                kind = message["type"]
                if kind == "websocket.receive":
                    text = message.get("text")
                    data: str | bytes = text if text is not None else (message.get("bytes") or b"")
                    if self._closing is not None or self._reported:
                        continue
                    if len(data) > limit:
                        log.info("websocket message of %d bytes over max_message_size=%d; closing with 1009",
                                 len(data), limit)
                        self.close(1009, "message too big")
                        continue
                    try:
                        handler.on_ws_message(self, data)
                    except Exception:
                        log.exception("the session failed on a websocket message; closing with 1011")
                        self.close(1011)
                elif kind == "websocket.disconnect":
                    closing = self._closing  # we closed first: the code we closed with (the contract's)
                    if closing is not None:
                        self._report(*closing)
                    else:
                        self._report(int(message.get("code") or 1005), str(message.get("reason") or ""))
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("ASGI websocket receive failed: %r", exc)
            self._report(1006, "")
        finally:
            if not self._ended.done():
                self._ended.set_result(None)
            wake = self._wake
            if wake is not None and not wake.done():
                wake.set_result(None)

    def _drained(self) -> None:
        try:
            self._handler.on_ws_drain(self)
        except Exception:
            log.exception("on_ws_drain failed; closing with 1011")
            self.close(1011)

    def _report(self, code: int, reason: str) -> None:
        if self._reported:
            return
        self._reported = True
        if not self._ended.done():
            self._ended.set_result(None)
        try:
            self._handler.on_ws_close(self, code, reason)
        except Exception:
            log.exception("on_ws_close failed")
