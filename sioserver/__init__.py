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
"""

from typing import TYPE_CHECKING, Any

from . import engineio
from .engine.session import DisconnectReason
from .exceptions import (
    AckTimeoutError,
    ConfigurationError,
    ConnectionRefusedError,
    DisconnectedError,
    ProtocolError,
    SioserverError,
)
from .integrations.standalone import run
from .server.adapter import Adapter, BroadcastOptions, MemoryAdapter
from .server.broadcast import BroadcastOperator
from .server.namespace import AsyncNamespace
from .server.server import AsyncServer

__all__ = [
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
    "SioserverError",
    "engineio",
    "run",
]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from .adapters import AsyncRedisManager, Emitter, RedisAdapter, RedisManager


def __getattr__(name: str) -> Any:
    # RedisAdapter and Emitter import redis-py (a quarter of a second): only when asked for
    if name in ("AsyncRedisManager", "Emitter", "RedisAdapter", "RedisManager"):
        from . import adapters  # noqa: PLC0415

        return getattr(adapters, name)
    raise AttributeError(f"module 'sioserver' has no attribute {name!r}")
