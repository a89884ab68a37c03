"""Upgrade an aiohttp request to a :class:`~sioserver.engine.websocket.WebSocketConnection`.

aiohttp parses the HTTP request; we answer the handshake ourselves and take the transport over with
``transport.set_protocol``, so every later byte goes straight to our protocol instead of through
aiohttp's WebSocket reader and its per-connection task.

Taking a transport away from aiohttp (checked against aiohttp 3.14's ``web_protocol.py``):

* ``RequestHandler.start()`` ends by closing ``self.transport`` unless ``_force_close`` is set; and
  ``force_close()`` closes ``self.transport`` unless it is None. So we set ``transport`` to None,
  then call ``force_close()``: the request loop stops after our response and leaves the socket alone.
* The server's connection table (``Server._connections``) forgets a handler only in
  ``Server.connection_lost``, which aiohttp calls from ``RequestHandler.connection_lost`` - never, once
  the transport reports to us. We call ``Server.connection_lost`` directly; it removes the handler when
  its request task finishes, right after our response. (``RequestHandler.connection_lost`` itself
  would cancel the request in progress - ours - and, with ``handler_cancellation``, its task.)
* ``keep_alive(False)`` cancels the keep-alive timer, which would otherwise hold the handler for an
  hour (and close our transport if aiohttp still had it).
* Bytes the client sent right behind its request sit in ``_message_tail``; aiohttp may have paused
  reading because of them. We hand them to the connection and resume reading.
* When the request loop (``_task_handler``) has finished, we drop the parser, request factory and
  task the handler keeps for a next request, as ``connection_lost`` would (idle WebSocket memory).

aiohttp's shutdown (``runner.cleanup()``) no longer knows about upgraded connections: whoever keeps
the connections closes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

from ..engine.websocket import WebSocketConfig, WebSocketConnection, WebSocketHandler
from ..exceptions import HandshakeError
from ..proto.websocket import handshake_response, negotiate_deflate, validate_handshake

__all__ = ["upgrade_websocket"]


class _TakenOverResponse(web.StreamResponse):
    """What the aiohttp handler returns after an upgrade: the 101 went out already, so it writes
    nothing."""

    def __init__(self) -> None:
        super().__init__(status=101)

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        return None

    async def write(self, data: Any) -> None:
        raise RuntimeError("the connection was upgraded to a WebSocket")

    async def write_eof(self, data: bytes = b"") -> None:
        return None


def _forget_http_state(protocol: Any) -> None:
    """aiohttp's request loop is over for this connection: drop what it kept for a next request (its
    parser, request factory and finished task, about 1.5 KB), as its own ``connection_lost`` would.
    The request (and through it the handler) is in ``environ["aiohttp.request"]`` until the handshake is
    over (``AiohttpRequest.release``)."""
    protocol._task_handler = None
    protocol._parser = None
    protocol._request_factory = None
    protocol._request_handler = None


def upgrade_websocket(
    request: web.BaseRequest,
    handler: WebSocketHandler,
    config: WebSocketConfig,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> tuple[WebSocketConnection, web.StreamResponse]:
    """Answer a WebSocket handshake and take the connection over from aiohttp.

    Raises HandshakeError for an invalid handshake (the caller answers it with ``.status`` and
    ``.headers``) and ConnectionResetError if the client is gone. Return the response it gives back
    from the aiohttp handler; the connection's callbacks start on the next turn of the event loop.
    """
    key, offers = validate_handshake(request.method, request.version, request.headers)
    if request.body_exists:
        # aiohttp would read the body and switch protocols only after it; nothing legitimate sends one.
        raise HandshakeError("WebSocket handshake with a request body")
    protocol: Any = request.protocol
    transport = request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("client disconnected before the WebSocket upgrade")
    if protocol._upgraded is not True:
        # aiohttp's parser would treat what follows the request as HTTP: refuse rather than lose it.
        raise HandshakeError("aiohttp did not switch the connection to upgraded mode")
    deflate = extension = None
    if config.compression:
        negotiated = negotiate_deflate(offers, config.deflate)
        if negotiated is not None:
            extension, deflate = negotiated
    response = handshake_response(key, extension, extra_headers)

    # Detach aiohttp (see the module docstring). Attribute access is direct on purpose: if a future
    # aiohttp renames these, upgrades fail loudly and tests/integrations/test_aiohttp_ws.py says why.
    tail: bytes = protocol._message_tail
    protocol._message_tail = b""
    writing_paused: bool = protocol.writing_paused
    manager = protocol._manager
    protocol.transport = None
    protocol.force_close()
    protocol.keep_alive(False)
    if manager is not None:
        manager.connection_lost(protocol, None)
    start = protocol._task_handler
    if start is not None:
        start.add_done_callback(lambda _: _forget_http_state(protocol))

    conn = WebSocketConnection(handler, config, deflate)
    transport.set_protocol(conn)
    conn.attach(transport, tail, writable=not writing_paused)
    transport.write(response)
    return conn, _TakenOverResponse()
