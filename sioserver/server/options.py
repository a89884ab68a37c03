"""The options of :class:`~sioserver.AsyncServer` beyond the Engine.IO ones, and their checks."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from ..exceptions import ConfigurationError

__all__ = ["SOCKETIO_OPTIONS", "async_mode", "logger_for", "resolve_adapter", "room_set", "short"]

log = logging.getLogger("sioserver.server")

#: Socket.IO options and their defaults (the Engine.IO options are accepted as well).
SOCKETIO_OPTIONS: dict[str, Any] = {
    "connect_timeout": 45.0,
    "serializer": "default",
    "json": None,
    "always_connect": False,
    "async_handlers": True,
    "namespaces": None,
    "adapter": None,
    "ack_timeout": 60.0,
    "max_attachments": 10,
    "max_depth": 64,
    "max_backlog": 256,
    "shutdown_grace": 0.0,
    "metrics": False,
    "connection_state_recovery": None,
    "engineio_logger": None,
    # python-socketio's names, so that its apps port by changing the import
    "client_manager": None,
    "async_mode": None,
    "monitor_clients": True,
}

#: python-socketio's ``async_mode`` values that sioserver serves, and what the others need instead
_ASYNC_MODES = ("aiohttp", "asgi")
_SYNC_MODES = ("threading", "eventlet", "gevent", "gevent_uwsgi")


def resolve_adapter(opts: dict[str, Any]) -> None:
    """``client_manager=`` (python-socketio's name) becomes ``adapter=``; wrong combinations are refused."""
    manager = opts.pop("client_manager")
    if manager is not None:
        if opts["adapter"] is not None:
            raise ConfigurationError("give adapter= or client_manager= (its python-socketio name), not both")
        if type(manager).__module__.split(".")[0] == "socketio":
            raise ConfigurationError(
                f"client_manager={type(manager).__name__}(...) is python-socketio's object: use "
                f"sioserver.{type(manager).__name__}(...) (the same arguments and channel format)")
        opts["adapter"] = manager
    if getattr(opts["adapter"], "write_only", False) is True:
        raise ConfigurationError("a write_only manager only publishes; a server needs write_only=False")
    if not opts.pop("monitor_clients"):
        log.warning("monitor_clients=False is ignored: sioserver always closes a client that misses its pings")


def async_mode(mode: Any) -> str:
    """python-socketio's ``async_mode``: the asyncio ones are accepted, the others refused with why."""
    if mode is None or mode in _ASYNC_MODES:
        return mode or "aiohttp"
    if mode in _SYNC_MODES:
        raise ConfigurationError(
            f"async_mode={mode!r}: sioserver is asyncio only; use async_mode='aiohttp' (sio.attach(app)) or "
            f"'asgi' (sioserver.ASGIApp), or leave it out")
    if mode in ("sanic", "tornado"):
        raise ConfigurationError(
            f"async_mode={mode!r}: sioserver is asyncio only and serves aiohttp (sio.attach(app)) and ASGI "
            f"(sioserver.ASGIApp); it has no {mode} integration")
    raise ConfigurationError(f"async_mode={mode!r} is not one of {', '.join(map(repr, _ASYNC_MODES))}")


def room_set(rooms: str | Iterable[str] | None) -> frozenset[str]:
    if rooms is None:
        return frozenset()
    if isinstance(rooms, str):
        return frozenset((rooms,))
    return frozenset(rooms)


def logger_for(value: Any, name: str) -> logging.Logger | None:
    if isinstance(value, logging.Logger):
        return value
    if value is True:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
        return logger
    return None


def short(text: str, limit: int = 100) -> str:
    """A client-chosen string as it goes into a log line: bounded."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"
