"""The options of :class:`~sioclient.AsyncClient` and of its ``connect()``, with their checks."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable, Mapping
from typing import Any, Final

from sioserver.exceptions import ConfigurationError

from .engine import TRANSPORTS
from .exceptions import ConnectionError

__all__ = ["CLIENT_OPTIONS", "CONNECT_OPTIONS", "auth_payload", "make_logger", "namespaces_option",
           "transports_option"]

#: AsyncClient options and their defaults (times in seconds).
CLIENT_OPTIONS: dict[str, Any] = {
    "reconnection": True,
    "reconnection_attempts": 0,
    "reconnection_delay": 1.0,
    "reconnection_delay_max": 5.0,
    "randomization_factor": 0.5,
    "serializer": "default",
    "logger": False,
    "request_timeout": 5.0,
    "max_buffered_emits": 100,
    "http_session": None,
    "ssl_verify": True,
    "websocket_compression": True,
}
#: the keyword arguments of ``AsyncClient.connect()``
CONNECT_OPTIONS: Final = ("headers", "auth", "transports", "namespaces", "socketio_path", "wait_timeout", "retry")

log = logging.getLogger("sioclient")


def make_logger(logger: Any) -> logging.Logger:
    """The ``logger`` option: a Logger as it is, True for ``sioclient`` at INFO level, False for it as set."""
    if isinstance(logger, logging.Logger):
        return logger
    if logger is True:
        log.setLevel(logging.INFO)
        if not log.hasHandlers():
            log.addHandler(logging.StreamHandler())
    elif logger is not False:
        raise ConfigurationError("logger must be True, False or a logging.Logger")
    return log


def transports_option(transports: Iterable[str] | str | None) -> list[str]:
    """``connect(transports=)``: a non-empty list drawn from ``TRANSPORTS`` without repeats (ValueError)."""
    if isinstance(transports, str):
        transports = [transports]
    chosen = list(transports) if transports is not None else list(TRANSPORTS)
    if not chosen or any(t not in TRANSPORTS for t in chosen) or len(set(chosen)) != len(chosen):
        raise ValueError(f"transports must be a non-empty list drawn from {list(TRANSPORTS)}, not {chosen!r}")
    return chosen


def namespaces_option(namespaces: Iterable[str] | str | None, with_handlers: list[str]) -> list[str]:
    """``connect(namespaces=)``: by default the namespaces with handlers, or ``["/"]``; each starts with ``/``."""
    if isinstance(namespaces, str):
        namespaces = [namespaces]
    names = (with_handlers or ["/"]) if namespaces is None else list(dict.fromkeys(namespaces))
    for name in names:
        if not isinstance(name, str) or not name.startswith("/"):
            raise ValueError(f"namespace must start with '/': {name!r}")
    return names


async def auth_payload(auth: Any) -> dict[str, Any] | None:
    """``connect(auth=)`` for one CONNECT: a dict, or what a callable (sync or async) returns, as a new dict."""
    if callable(auth):
        try:
            auth = auth()
            if inspect.isawaitable(auth):
                auth = await auth
        except Exception as exc:
            raise ConnectionError(f"the auth callable failed: {exc!r}") from exc
    if auth is not None and not isinstance(auth, Mapping):
        raise ConnectionError(f"auth must be a dict (or return one), not {type(auth).__name__}")
    return dict(auth) if auth is not None else None
