"""sioserver: a Socket.IO v5 / Engine.IO v4 server for asyncio.

::

    import sioserver

    sio = sioserver.AsyncServer(cors_allowed_origins="*")

    @sio.event
    async def connect(sid, environ, auth): ...

    @sio.on("chat")
    async def chat(sid, data):
        await sio.emit("chat", data, skip_sid=sid)

    sioserver.run(sio, port=8000)

Public names are imported on first use (PEP 562), so that ``import sioserver.proto.websocket`` or
``import sioserver.exceptions`` loads neither asyncio nor a web framework, and ``RedisAdapter`` costs
redis-py's import time only to those who use it. To add a public name, add it to ``_EXPORTS`` (name ->
module), to ``__all__`` and to the ``TYPE_CHECKING`` block below; tests/proto/test_imports.py checks
that the three agree.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

__version__ = "0.1.0"

#: public name -> the module that defines it, relative to this package
_EXPORTS: Final[dict[str, str]] = {
    "AckTimeoutError": ".exceptions",
    "ConfigurationError": ".exceptions",
    "ConnectionRefusedError": ".exceptions",
    "DisconnectedError": ".exceptions",
    "ProtocolError": ".exceptions",
    "SioserverError": ".exceptions",
    "UnknownSidError": ".exceptions",
    "DisconnectReason": ".engine.session",
    "run": ".integrations.standalone",
    "ASGIApp": ".integrations.asgi",
    "Adapter": ".server.adapter",
    "BroadcastOptions": ".server.adapter",
    "MemoryAdapter": ".server.adapter",
    "BroadcastOperator": ".server.broadcast",
    "AsyncNamespace": ".server.namespace",
    "AsyncServer": ".server.server",
    "AsyncRedisManager": ".adapters",
    "Emitter": ".adapters",
    "RedisAdapter": ".adapters",
    "RedisManager": ".adapters",
    "RedisStreamsAdapter": ".adapters",
}
#: public submodules, imported on first access like the names above
_SUBMODULES: Final = frozenset({"engineio", "exceptions"})  # socketio.exceptions.TimeoutError ports as is

# A literal, so that type checkers read it; tests/proto/test_imports.py checks it against the tables.
__all__ = [
    "ASGIApp",
    "AckTimeoutError",
    "Adapter",
    "AsyncNamespace",
    "AsyncRedisManager",
    "AsyncServer",
    "BroadcastOperator",
    "BroadcastOptions",
    "ConfigurationError",
    "ConnectionRefusedError",
    "DisconnectReason",
    "DisconnectedError",
    "Emitter",
    "MemoryAdapter",
    "ProtocolError",
    "RedisAdapter",
    "RedisManager",
    "RedisStreamsAdapter",
    "SioserverError",
    "UnknownSidError",
    "engineio",
    "exceptions",
    "run",
]

if TYPE_CHECKING:
    from . import engineio, exceptions
    from .adapters import AsyncRedisManager, Emitter, RedisAdapter, RedisManager, RedisStreamsAdapter
    from .engine.session import DisconnectReason
    from .exceptions import (
        AckTimeoutError,
        ConfigurationError,
        ConnectionRefusedError,
        DisconnectedError,
        ProtocolError,
        SioserverError,
        UnknownSidError,
    )
    from .integrations.asgi import ASGIApp
    from .integrations.standalone import run
    from .server.adapter import Adapter, BroadcastOptions, MemoryAdapter
    from .server.broadcast import BroadcastOperator
    from .server.namespace import AsyncNamespace
    from .server.server import AsyncServer


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)  # the import system binds it here
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'sioserver' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name, __name__), name)
    globals()[name] = value  # later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
