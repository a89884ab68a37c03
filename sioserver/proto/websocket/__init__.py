"""The WebSocket protocol (RFC 6455) with permessage-deflate (RFC 7692), sans I/O.

One module per protocol concept, all re-exported here:

* :mod:`.frames` - opcodes, close codes, masking, :func:`encode_frame` / :func:`encode_message`
  (section 5);
* :mod:`.connection` - :class:`Connection`, the state machine of an established connection, and its
  events (sections 5-7);
* :mod:`.handshake` - the opening handshake, server and client side (section 4);
* :mod:`.extensions` - the Sec-WebSocket-Extensions grammar (section 9.1);
* :mod:`.deflate` - permessage-deflate negotiation, server and client side (RFC 7692).

Standard library only: importing this package loads neither asyncio nor any I/O library.
"""

from .connection import Close, Connection, Event, Ping, Pong, State
from .deflate import DeflateConfig, DeflateOffer, DeflateParams, negotiate_deflate
from .extensions import ExtensionOffer, parse_extensions
from .frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    CloseCode,
    encode_frame,
    encode_message,
    is_valid_close_code,
)
from .handshake import (
    accept_key,
    client_key,
    client_request_headers,
    handshake_response,
    validate_handshake,
    validate_handshake_response,
)

__all__ = [
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONTINUATION",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "Close",
    "CloseCode",
    "Connection",
    "DeflateConfig",
    "DeflateOffer",
    "DeflateParams",
    "Event",
    "ExtensionOffer",
    "Ping",
    "Pong",
    "State",
    "accept_key",
    "client_key",
    "client_request_headers",
    "encode_frame",
    "encode_message",
    "handshake_response",
    "is_valid_close_code",
    "negotiate_deflate",
    "parse_extensions",
    "validate_handshake",
    "validate_handshake_response",
]
