"""sioserver: a Socket.IO v5 / Engine.IO v4 server for asyncio."""

from .exceptions import (
    AckTimeoutError,
    ConfigurationError,
    ConnectionRefusedError,
    DisconnectedError,
    ProtocolError,
    SioserverError,
)

__all__ = [
    "AckTimeoutError",
    "ConfigurationError",
    "ConnectionRefusedError",
    "DisconnectedError",
    "ProtocolError",
    "SioserverError",
]
__version__ = "0.1.0"
