"""sioclient: a Socket.IO v5 / Engine.IO v4 client for asyncio, on sioserver's protocol cores.

* :class:`AsyncClient` - the client (polling + upgrade, or WebSocket only; namespaces, acks both ways,
  binary, msgpack, reconnection with backoff).
* :class:`SimpleClient` - a blocking wrapper with ``receive()``.
* :mod:`sioclient.engine` - the Engine.IO client; :mod:`sioclient.websocket` - the WebSocket client.
"""

from .client import CLIENT_OPTIONS, AsyncClient, Backoff
from .exceptions import (
    AckTimeoutError,
    ConnectionError,
    DisconnectedError,
    EmitBufferFullError,
    NotConnectedError,
    WebSocketClosed,
    WebSocketHandshakeError,
)
from .simple import SimpleClient

__all__ = [
    "CLIENT_OPTIONS",
    "AckTimeoutError",
    "AsyncClient",
    "Backoff",
    "ConnectionError",
    "DisconnectedError",
    "EmitBufferFullError",
    "NotConnectedError",
    "SimpleClient",
    "WebSocketClosed",
    "WebSocketHandshakeError",
]
__version__ = "0.1.0"
