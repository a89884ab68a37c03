"""The exceptions sioclient raises.

::

    sioserver.exceptions.SioserverError
    ├── ConnectionError            (also the builtin ConnectionError) connect() failed: the
    │   │                          handshake, a transport, or a namespace refused (``.data``)
    │   └── WebSocketHandshakeError  the server did not switch protocols (``.status``, ``.body``)
    ├── WebSocketClosed            (also the builtin ConnectionError) the WebSocket is closed
    │                              (``.code``, ``.reason``)
    ├── DisconnectedError          (sioserver's) the operation cannot complete: the client is
    │   │                          disconnected, or it disconnected while an answer was due
    │   ├── NotConnectedError      emit() on a namespace that is not connected and will not be
    │   └── EmitBufferFullError    emit() while reconnecting and ``max_buffered_emits`` are queued
    └── AckTimeoutError            (sioserver's, also the builtin TimeoutError) call() got no answer
"""

from __future__ import annotations

import builtins
from typing import Any

from sioserver.exceptions import AckTimeoutError, DisconnectedError, SioserverError

__all__ = [
    "AckTimeoutError",
    "ConnectionError",
    "DisconnectedError",
    "EmitBufferFullError",
    "NotConnectedError",
    "WebSocketClosed",
    "WebSocketHandshakeError",
]


class ConnectionError(SioserverError, builtins.ConnectionError):  # python-socketio names it so too
    """``connect()`` failed. ``data`` is what a refusing server sent (``{"message", "data"}``), if any."""

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class WebSocketHandshakeError(ConnectionError):
    """The server answered the opening handshake with something other than a valid 101."""

    def __init__(self, message: str, status: int = 0, body: bytes = b"") -> None:
        super().__init__(message, {"status": status, "body": body})
        self.status = status
        self.body = body


class WebSocketClosed(SioserverError, builtins.ConnectionError):
    """The WebSocket is closed: ``code`` is the peer's close code (1006 when the connection just ended,
    1005 when its Close frame had no code), or ours when we failed the connection."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"WebSocket closed with code {code}" + (f": {reason}" if reason else ""))
        self.code = code
        self.reason = reason


class NotConnectedError(DisconnectedError):
    """``emit()``/``call()`` on a namespace that is not connected and is not reconnecting."""


class EmitBufferFullError(DisconnectedError):
    """``emit()``/``call()`` while reconnecting, with ``max_buffered_emits`` already queued."""
