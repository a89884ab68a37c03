"""The WebSocket opening handshake on the HTTP/1.1 front (RFC 6455 section 4.2)."""

from __future__ import annotations

from collections.abc import Sequence

from ...engine.websocket import WebSocketConfig, WebSocketConnection, WebSocketHandler
from ...exceptions import HandshakeError
from ...proto.websocket import handshake_response, negotiate_deflate, validate_handshake
from .request import Http1Request

__all__ = ["accept_websocket"]


def accept_websocket(
    req: Http1Request,
    handler: WebSocketHandler,
    config: WebSocketConfig,
    extra_headers: Sequence[tuple[str, str]],
    tail: bytearray | None,
) -> tuple[bytes, WebSocketConnection]:
    """Check ``req`` as an opening handshake; return the 101 answer and the connection to hand the
    transport to. Raises HandshakeError (the engine answers 400) for an invalid one, including one with
    a body (nothing legitimate sends one) or one llhttp did not parse as an upgrade (``tail`` None:
    what follows the head would be taken for HTTP)."""
    key, offers = validate_handshake(req.method, req.version, req.headers.items_raw())
    length = req.headers.get("content-length")
    if req.body or req.headers.get("transfer-encoding") is not None or length not in (None, "0"):
        raise HandshakeError("WebSocket handshake with a request body")
    if tail is None or not req.upgrade:
        raise HandshakeError("the request does not ask for an upgrade")
    deflate = extension = None
    if config.compression:
        negotiated = negotiate_deflate(offers, config.deflate)
        if negotiated is not None:
            extension, deflate = negotiated
    return handshake_response(key, extension, extra_headers), WebSocketConnection(handler, config, deflate)
