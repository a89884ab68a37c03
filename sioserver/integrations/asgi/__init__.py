"""The ASGI front end: ``sioserver.ASGIApp`` (Socket.IO) and ``sioserver.engineio.ASGIApp`` (Engine.IO)."""

from .app import ASGIApp, EngineASGIApp

__all__ = ["ASGIApp", "EngineASGIApp"]
