"""Socket.IO v5 packets and their two wire formats (socket.io repository,
docs/socket.io-protocol/v5-current.md, "Packet encoding").

Pure code: no I/O, no asyncio, no clock. ``msgpack`` is imported only when a :class:`MsgpackParser` is
made. One module per concept, all re-exported here: :mod:`.packet` (packets, shape rules, the parser
protocols), :mod:`.json_parser` (the default format), :mod:`.msgpack_parser` and :mod:`.notepack` (msgpack
as notepack.io writes it, shared with the Redis adapter's wire code).

Theory of operation
-------------------
A :class:`Packet` is ``(type, nsp, data, id)``. A *parser* turns packets into Engine.IO messages and
back; two are offered, chosen by name with :func:`make_parser`:

``"default"`` (:class:`JSONParser`, the format of the npm package socket.io-parser 4.x)
    ``<type>[<attachments>-][<nsp>,][<id>][<JSON>]``. The namespace is left out for ``"/"``; when
    present it runs up to the first ``,`` or the end of the message (``0/custom`` has no comma).
    Bytes anywhere in an EVENT or ACK payload are replaced by ``{"_placeholder":true,"num":i}`` and
    sent as binary messages after the text one; the type becomes BINARY_EVENT (5) / BINARY_ACK (6).
``"msgpack"`` (:class:`MsgpackParser`, the format of socket.io-msgpack-parser 3.x)
    One binary message per packet: a msgpack map with the keys ``type``, ``data``, ``id``, ``nsp``.
    Bytes travel as native msgpack ``bin``; types 5 and 6 do not exist.

``parser.encode(packet)`` returns an immutable tuple of Engine.IO messages: ``(str,)`` or
``(str, bytes, ...)`` for JSON, ``(bytes,)`` for msgpack. Encode a broadcast once and hand the same
tuple to every recipient. Each connection gets its own decoder from ``parser.decoder()``, a small
state machine: ``feed(message)`` returns a :class:`Packet`, or ``None`` while attachments of a
binary packet are still due, and raises :class:`SocketIOProtocolError` for anything malformed.
Decoded binary packets come back as EVENT / ACK with ``attachments`` set to the number received,
as socket.io-parser does; the encoder picks 5 / 6 itself from the data, whatever type it is given.

Decisions (where the spec is silent, or the reference is looser)
----------------------------------------------------------------
* JSON is written as ``JSON.stringify`` writes it: compact, key order kept, non-ASCII unescaped,
  lone surrogates escaped as ``\\udxxx``. NaN and +/-Infinity become ``null``, as in JavaScript.
  Floats use Python's shortest repr (``1.0``, ``1e+16``): same number, not always the same bytes.
  A value JSON cannot hold raises ``TypeError``; a bad packet (payload shape, namespace, id, too
  deep, too many attachments) raises ``ValueError``. Circular data is reported as too deep.
* Incoming NaN / Infinity literals are refused, as ``JSON.parse`` refuses them.
* Limits (constructor arguments, same for both directions): ``max_attachments`` = 10, the default of
  socket.io-parser's decoder, so a JavaScript client accepts everything we send; ``max_depth`` = 64
  nested arrays/objects, the outer payload array counting as one; ``max_size`` = 1,000,000
  characters (text) or bytes (binary) per Engine.IO message. Nothing here recurses deeper than
  ``max_depth``: JSON nesting is measured on the text, without recursion, before it is parsed.
* Stricter than socket.io-parser, as the spec requires: EVENT and ACK must carry a payload, ACK
  an id, CONNECT / DISCONNECT / CONNECT_ERROR no id; ids are ASCII digits up to 2**53 - 1;
  attachment counts are ASCII digits; every placeholder ``num`` is an int, in range, used once, and
  every attachment is used. Reserved event names are refused in both directions.
* msgpack: the Node client sends ``undefined`` (fixext 1, type 0) for absent fields, ``Uint8Array``
  as ext type 0 and ``Date`` as fixext 8, type 0, and adds an ``options`` key. ``undefined`` becomes
  ``None`` in arrays and drops the key in maps; typed arrays become bytes; a Date becomes the ISO
  string ``JSON.stringify`` would have sent, so a handler sees the same value with either parser.
  ``nil`` data or id counts as absent (python-socketio sends ``"data": None``). Map keys must be
  strings. Other extension types are refused. :mod:`.notepack` has the table of what each notepack.io
  version writes.
"""

from __future__ import annotations

from typing import Any, Final

from ...exceptions import ConfigurationError, check_options
from .json_parser import JSONPacketDecoder, JSONParser
from .msgpack_parser import MsgpackPacketDecoder, MsgpackParser
from .packet import (
    ACK,
    BINARY_ACK,
    BINARY_EVENT,
    CONNECT,
    CONNECT_ERROR,
    DEFAULT_MAX_ATTACHMENTS,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_SIZE,
    DISCONNECT,
    EVENT,
    MAX_ACK_ID,
    RESERVED_EVENTS,
    Decoder,
    Encoded,
    JSONModule,
    Packet,
    PacketType,
    Parser,
    ack_packet,
    answer_of,
    args_of,
    connect_error_packet,
    connect_packet,
    disconnect_packet,
    event_packet,
)

__all__ = [
    "ACK",
    "BINARY_ACK",
    "BINARY_EVENT",
    "CONNECT",
    "CONNECT_ERROR",
    "DEFAULT_MAX_ATTACHMENTS",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_SIZE",
    "DISCONNECT",
    "EVENT",
    "MAX_ACK_ID",
    "PARSERS",
    "RESERVED_EVENTS",
    "Decoder",
    "Encoded",
    "JSONModule",
    "JSONPacketDecoder",
    "JSONParser",
    "MsgpackPacketDecoder",
    "MsgpackParser",
    "Packet",
    "PacketType",
    "Parser",
    "ack_packet",
    "answer_of",
    "args_of",
    "connect_error_packet",
    "connect_packet",
    "disconnect_packet",
    "event_packet",
    "make_parser",
]

# --- choosing a parser ------------------------------------------------------------------------

PARSERS: Final[dict[str, type[JSONParser] | type[MsgpackParser]]] = {
    "default": JSONParser,
    "msgpack": MsgpackParser,
}
_OPTIONS: Final = {
    "default": ("json", "max_attachments", "max_depth", "max_size"),
    "msgpack": ("max_depth", "max_size"),
}


def make_parser(name: str = "default", **options: Any) -> JSONParser | MsgpackParser:
    """The parser called ``name`` ("default" or "msgpack"), with its options checked by name."""
    if name not in PARSERS:
        raise ConfigurationError(f"unknown parser {name!r}; choose one of {sorted(PARSERS)}")
    check_options(options, _OPTIONS[name], f"the {name!r} parser")
    return PARSERS[name](**options)
