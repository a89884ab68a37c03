"""Every exception sioserver raises, in one tree.

::

    SioserverError
    ├── ProtocolError                 a peer sent something the protocol forbids
    │   ├── WebSocketProtocolError    RFC 6455 / 7692 violation; ``.code`` is the close code to send
    │   │   └── HandshakeError        bad HTTP upgrade request; ``.status`` is the HTTP status to answer
    │   ├── EngineIOProtocolError     bad Engine.IO packet or payload
    │   └── SocketIOProtocolError     bad Socket.IO packet, attachment or namespace
    ├── ConnectionError
    │   └── ConnectionRefusedError    raised by a connect handler or middleware to refuse a client
    ├── AckTimeoutError               (also a builtin ``TimeoutError``) no answer to an ack in time
    ├── DisconnectedError             the target client is gone (pending acks fail with this)
    │   └── UnknownSidError           (also a ``KeyError``, as python-socketio raises) no such sid
    ├── BadNamespaceError             (python-socketio's name; sioserver's server never raises it)
    └── ConfigurationError            (also a ``TypeError``) an unknown or invalid option

python-socketio's names are here too, so that ``import sioserver as socketio`` keeps
``except socketio.exceptions.TimeoutError`` (an alias of :class:`AckTimeoutError`) and
``socketio.exceptions.SocketIOError`` (an alias of :class:`SioserverError`) working. Like
python-socketio's, ``ConnectionError`` and ``TimeoutError`` in this module are not the builtins.

Protocol errors carry what the peer should be told (a close code or an HTTP status) and a short
reason that is safe to log. Their text never goes on the wire beyond the protocol's own fields.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


class SioserverError(Exception):
    """Base class of every exception raised by sioserver."""


class ProtocolError(SioserverError):
    """A peer broke the protocol. The connection that sent it is closed; others are unaffected."""


class WebSocketProtocolError(ProtocolError):
    """An RFC 6455 / RFC 7692 violation.

    ``code`` is the close code to send (RFC 6455 section 7.4.1): 1002 protocol error,
    1007 invalid payload data, 1009 message too big, 1011 internal error.
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{reason} (close code {code})")
        self.code = code
        self.reason = reason


class HandshakeError(WebSocketProtocolError):
    """The HTTP upgrade request is not a valid WebSocket opening handshake (RFC 6455 section 4.2.1)."""

    def __init__(self, reason: str, status: int = 400, headers: dict[str, str] | None = None) -> None:
        super().__init__(1002, reason)
        self.status = status
        self.headers = headers or {}


class EngineIOProtocolError(ProtocolError):
    """A malformed Engine.IO packet or payload."""


class SocketIOProtocolError(ProtocolError):
    """A malformed Socket.IO packet, a bad attachment, or a packet the session state does not allow."""


class ConnectionError(SioserverError):
    """A connection could not be made (python-socketio's base of :class:`ConnectionRefusedError`)."""


class ConnectionRefusedError(ConnectionError):
    """Raise from a ``connect`` handler or a middleware to refuse the client.

    The client receives a CONNECT_ERROR packet ``{"message": message, "data": data}``, which the
    JavaScript client shows as ``err.message`` and ``err.data``. The arguments are python-socketio's:
    none (the default message), a message, a message and data, or a message and several values (the
    data is then their list). ``error_args`` is the payload, as in python-socketio.
    """

    def __init__(self, *args: Any, message: str | None = None, data: Any = None) -> None:
        if message is None:
            message = str(args[0]) if args else "Connection rejected by server"
        if len(args) == 2:
            data = args[1]
        elif len(args) > 2:
            data = list(args[1:])
        super().__init__(*(args or (message,)))
        self.message = message
        self.data = data

    @property
    def error_args(self) -> dict[str, Any]:
        return self.error_payload()

    def error_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"message": self.message}
        if self.data is not None:
            payload["data"] = self.data
        return payload


class AckTimeoutError(SioserverError, TimeoutError):
    """The peer did not acknowledge in time."""


#: python-socketio's name for the ack timeout (``except socketio.exceptions.TimeoutError`` around ``call()``)
TimeoutError = AckTimeoutError

#: python-socketio's name for the base class
SocketIOError = SioserverError


class DisconnectedError(SioserverError):
    """The peer disconnected before the operation completed. ``reason`` says why."""

    def __init__(self, reason: str = "disconnected") -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownSidError(DisconnectedError, KeyError):
    """No client with that sid is connected to that namespace (on this server). A ``KeyError`` too,
    which is what python-socketio raises from ``get_session()`` and the like."""

    def __str__(self) -> str:
        return self.reason


class BadNamespaceError(SioserverError):
    """python-socketio's name for a namespace that is not connected (its client raises it)."""


class ConfigurationError(SioserverError, TypeError):
    """An unknown or invalid option was given."""


def check_options(given: Iterable[str], valid: Iterable[str], where: str) -> None:
    """Raise :class:`ConfigurationError` for the first unknown option, naming the closest valid one."""
    valid_list = sorted(valid)
    for name in given:
        if name not in valid_list:
            close = difflib.get_close_matches(name, valid_list, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigurationError(f"{where} got an unknown option {name!r}{hint}")
