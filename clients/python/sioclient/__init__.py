"""sioclient: a Socket.IO v5 / Engine.IO v4 client for asyncio, on sioserver's protocol cores.

* :class:`AsyncClient` - the client (polling + upgrade, or WebSocket only; namespaces, acks both ways,
  binary, msgpack, reconnection with backoff).
* :class:`SimpleClient` - a blocking wrapper with ``receive()``.
* :mod:`sioclient.engine` - the Engine.IO client; :mod:`sioclient.websocket` - the WebSocket client.

Public names are imported on first use (PEP 562): ``import sioclient`` loads neither asyncio nor aiohttp,
and never a web server (``aiohttp.web``). To add one, add it to ``_EXPORTS``, ``__all__`` and the
``TYPE_CHECKING`` block; tests/clients/test_imports.py checks that the three agree.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

__version__ = "0.1.0"

#: public name -> the module that defines it, relative to this package
_EXPORTS: Final[dict[str, str]] = {
    "CLIENT_OPTIONS": ".options",
    "AsyncClient": ".client",
    "Backoff": ".reconnection",
    "AckTimeoutError": ".exceptions",
    "ConnectionError": ".exceptions",
    "DisconnectedError": ".exceptions",
    "EmitBufferFullError": ".exceptions",
    "NotConnectedError": ".exceptions",
    "WebSocketClosed": ".exceptions",
    "WebSocketHandshakeError": ".exceptions",
    "SimpleClient": ".simple",
}

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

if TYPE_CHECKING:
    from .client import AsyncClient
    from .exceptions import (
        AckTimeoutError,
        ConnectionError,
        DisconnectedError,
        EmitBufferFullError,
        NotConnectedError,
        WebSocketClosed,
        WebSocketHandshakeError,
    )
    from .options import CLIENT_OPTIONS
    from .reconnection import Backoff
    from .simple import SimpleClient


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'sioclient' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name, __name__), name)
    globals()[name] = value  # later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
