"""Engine.IO v4 packets and payloads (socket.io repository, docs/engine.io-protocol/v4-current.md).

Pure functions: no I/O, no asyncio, no clock.

A packet is a one-character type followed by its data. Over WebSocket every packet is one message:
text for every packet type, and a binary frame (raw bytes, no type prefix) for a binary MESSAGE.
Over HTTP long-polling, packets are joined with the record separator ``\\x1e`` into one text body and
binary messages are written as ``b`` followed by base64.
"""

from __future__ import annotations

import binascii
import json
from base64 import b64decode, b64encode
from enum import IntEnum
from typing import NamedTuple

from ..exceptions import EngineIOProtocolError

__all__ = [
    "SEPARATOR",
    "EngineError",
    "Packet",
    "PacketType",
    "decode_packet",
    "decode_payload",
    "encode_packet",
    "encode_payload",
    "error_body",
    "open_packet",
]

SEPARATOR = "\x1e"


class PacketType(IntEnum):
    OPEN = 0
    CLOSE = 1
    PING = 2
    PONG = 3
    MESSAGE = 4
    UPGRADE = 5
    NOOP = 6


class Packet(NamedTuple):
    """One Engine.IO packet. ``data`` is ``str`` for text and ``bytes`` for a binary MESSAGE."""

    type: PacketType
    data: str | bytes = ""


_TYPES = {str(int(t)): t for t in PacketType}
_tuple_new = tuple.__new__


class EngineError(IntEnum):
    """The wire error table of the reference server (engine.io ``Server.errors``).

    Users search for these exact messages; keep them verbatim.
    """

    UNKNOWN_TRANSPORT = 0
    UNKNOWN_SID = 1
    BAD_HANDSHAKE_METHOD = 2
    BAD_REQUEST = 3
    FORBIDDEN = 4
    UNSUPPORTED_PROTOCOL_VERSION = 5

    @property
    def message(self) -> str:
        return _ERROR_MESSAGES[self]

    @property
    def status(self) -> int:
        return 403 if self is EngineError.FORBIDDEN else 400


_ERROR_MESSAGES = {
    EngineError.UNKNOWN_TRANSPORT: "Transport unknown",
    EngineError.UNKNOWN_SID: "Session ID unknown",
    EngineError.BAD_HANDSHAKE_METHOD: "Bad handshake method",
    EngineError.BAD_REQUEST: "Bad request",
    EngineError.FORBIDDEN: "Forbidden",
    EngineError.UNSUPPORTED_PROTOCOL_VERSION: "Unsupported protocol version",
}


def error_body(error: EngineError) -> bytes:
    """The JSON body of an error response: ``{"code":N,"message":".."}``."""
    return b'{"code":%d,"message":"%s"}' % (int(error), error.message.encode())


def open_packet(
    sid: str, upgrades: list[str], ping_interval_ms: int, ping_timeout_ms: int, max_payload: int
) -> str:
    """The OPEN packet of the handshake: exactly the five keys of the v4 spec, integers in ms and bytes."""
    body = json.dumps(
        {
            "sid": sid,
            "upgrades": upgrades,
            "pingInterval": int(ping_interval_ms),
            "pingTimeout": int(ping_timeout_ms),
            "maxPayload": int(max_payload),
        },
        separators=(",", ":"),
    )
    return "0" + body


def encode_packet(packet: Packet) -> str | bytes:
    """Encode for WebSocket: ``str`` for a text frame, ``bytes`` (the raw data) for a binary frame."""
    if isinstance(packet.data, bytes):
        if packet.type is not PacketType.MESSAGE:
            raise ValueError("only MESSAGE packets carry binary data")
        return packet.data
    return "%d%s" % (packet.type, packet.data)


def decode_packet(message: str | bytes) -> Packet:
    """Decode one WebSocket message into a packet. Raises :class:`EngineIOProtocolError`."""
    if isinstance(message, (bytes, bytearray, memoryview)):
        return Packet(PacketType.MESSAGE, bytes(message))
    if not message:
        raise EngineIOProtocolError("empty packet")
    ptype = _TYPES.get(message[0])
    if ptype is None:
        raise EngineIOProtocolError(f"unknown packet type {message[0]!r}")
    return _tuple_new(Packet, (ptype, message[1:]))  # Packet(ptype, ...) without the NamedTuple's Python __new__


def encode_payload(packets: list[Packet]) -> str:
    """Encode packets for a long-polling response body (binary as ``b`` + base64)."""
    parts = []
    for ptype, data in packets:
        if isinstance(data, bytes):
            parts.append("b" + b64encode(data).decode("ascii"))
        else:
            parts.append("%d%s" % (ptype, data))
    return SEPARATOR.join(parts)


def decode_payload(body: str, max_packets: int = 0) -> list[Packet]:
    """Decode a long-polling request body into packets.

    ``max_packets`` > 0 bounds how many packets one body may carry; more raises (never a silent drop).
    Raises :class:`EngineIOProtocolError` on any malformed packet: the whole body is refused.
    """
    if not body:
        raise EngineIOProtocolError("empty payload")
    if max_packets and body.count(SEPARATOR) >= max_packets:
        raise EngineIOProtocolError(f"payload carries more than {max_packets} packets")
    packets = []
    for part in body.split(SEPARATOR):
        if part[:1] == "b":
            try:
                data = b64decode(part[1:], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise EngineIOProtocolError("invalid base64 in binary packet") from exc
            packets.append(Packet(PacketType.MESSAGE, data))
        else:
            packets.append(decode_packet(part))
    return packets
