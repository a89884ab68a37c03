"""Engine.IO v3 payloads and binary frames (socket.io-client 2.x; engine.io-parser 2.2, which Node's engine.io 6
still carries as ``parser-v3`` for ``allowEIO3``).

Pure functions: no I/O, no asyncio, no clock.

Packets are the same as in v4 (a one-character type and the data). What differs:

* **Long-polling text payload**: each packet is ``<length>:<packet>``, where ``length`` counts what a JavaScript
  string's ``length`` counts, UTF-16 code units (a character outside the Basic Multilingual Plane counts 2). A
  binary MESSAGE is written as ``b4`` followed by base64 (the client asked for it with ``b64=1``, or the payload
  has no binary packet).
* **Long-polling binary payload** (XHR2, ``application/octet-stream``): each packet is a marker byte (0 text,
  1 binary), its length as one byte per decimal digit, 255, then the packet: a text packet as its UTF-8 bytes
  (the length counts them), a binary one as its type byte (4) and the data.
* **WebSocket binary frames** carry the packet type first: ``b"\\x04" + data``.
* The client sends the pings (``2``) and the server answers ``3`` with the same data.
"""

from __future__ import annotations

import binascii
import json
from base64 import b64decode, b64encode
from collections.abc import Iterable

from ..exceptions import EngineIOProtocolError
from .engineio import Packet, PacketType, decode_packet

__all__ = [
    "decode_binary_payload",
    "decode_payload",
    "decode_ws_binary",
    "encode_binary_payload",
    "encode_payload",
    "encode_ws_binary",
    "js_length",
    "open_packet",
]

_MESSAGE = bytes([PacketType.MESSAGE])
_TYPES = {int(t): t for t in PacketType}
#: the longest length header accepted (the reference stops at 310 digits, Number.MAX_VALUE's)
_MAX_DIGITS = 16


def js_length(text: str) -> int:
    """``text.length`` in JavaScript: UTF-16 code units."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def open_packet(sid: str, upgrades: list[str], ping_interval_ms: int, ping_timeout_ms: int) -> str:
    """The v3 OPEN packet: ``sid``, ``upgrades``, ``pingInterval``, ``pingTimeout`` (no ``maxPayload``)."""
    body = json.dumps(
        {"sid": sid, "upgrades": upgrades, "pingInterval": int(ping_interval_ms), "pingTimeout": int(ping_timeout_ms)},
        separators=(",", ":"),
    )
    return "0" + body


def encode_ws_binary(data: bytes) -> bytes:
    """A binary MESSAGE as a v3 WebSocket binary frame's payload: its type byte, then the data."""
    return _MESSAGE + data


def decode_ws_binary(message: bytes) -> Packet:
    """A v3 WebSocket binary frame: the first byte is the packet type (only MESSAGE carries binary data)."""
    if not message or message[0] != PacketType.MESSAGE:
        raise EngineIOProtocolError("binary frame without the MESSAGE type byte")
    return Packet(PacketType.MESSAGE, bytes(message[1:]))


def encode_payload(messages: Iterable[str | bytes]) -> str:
    """A text payload: ``str`` items are packets as written on a WebSocket (``"4hello"``, ``"3"``); ``bytes``
    items are binary MESSAGEs, written ``b4<base64>``."""
    parts = []
    for message in messages:
        text = message if isinstance(message, str) else "b4" + b64encode(message).decode("ascii")
        parts.append("%d:%s" % (js_length(text), text))
    return "".join(parts) or "0:"


def encode_binary_payload(messages: Iterable[str | bytes]) -> bytes:
    """An XHR2 binary payload of the same items (for a client that did not ask for ``b64``)."""
    out = bytearray()
    for message in messages:
        if isinstance(message, str):
            raw = message.encode("utf-8", "surrogatepass")  # utf8.js with strict: false
            marker = 0
        else:
            raw = _MESSAGE + message
            marker = 1
        out.append(marker)
        out += bytes(int(d) for d in str(len(raw)))
        out.append(255)
        out += raw
    return bytes(out)


def _decode_one(message: str) -> Packet:
    if message[:1] == "b":
        ptype = _TYPES.get(int(message[1])) if message[1:2].isdigit() else None
        if ptype is not PacketType.MESSAGE:
            raise EngineIOProtocolError("base64 packet that is not a MESSAGE")
        try:
            return Packet(PacketType.MESSAGE, b64decode(message[2:], validate=True))
        except (binascii.Error, ValueError) as exc:
            raise EngineIOProtocolError("invalid base64 in binary packet") from exc
    return decode_packet(message)


def decode_payload(body: str, max_packets: int = 0) -> list[Packet]:
    """Decode a v3 text payload. Raises :class:`EngineIOProtocolError` on any malformed part (the whole body is
    refused, as the reference); ``max_packets`` > 0 bounds how many packets it may carry."""
    if not body:
        raise EngineIOProtocolError("empty payload")
    units = None if body.isascii() else body.encode("utf-16-le", "surrogatepass")
    packets: list[Packet] = []
    i = 0
    end = len(body) if units is None else len(units) // 2
    while i < end:
        colon = body.find(":", i) if units is None else _find_colon(units, i)
        if colon < 0 or colon == i or colon - i > _MAX_DIGITS:
            raise EngineIOProtocolError("bad length header in payload")
        digits = body[i:colon] if units is None else units[2 * i:2 * colon].decode("utf-16-le", "surrogatepass")
        if not (digits.isascii() and digits.isdigit()):
            raise EngineIOProtocolError("bad length header in payload")
        n = int(digits)
        start = colon + 1
        if start + n > end:
            raise EngineIOProtocolError("payload shorter than its length header")
        if units is None:
            message = body[start:start + n]
        else:
            message = units[2 * start:2 * (start + n)].decode("utf-16-le", "surrogatepass")
        if message:
            packets.append(_decode_one(message))
            if max_packets and len(packets) > max_packets:
                raise EngineIOProtocolError(f"payload carries more than {max_packets} packets")
        i = start + n
    return packets


def _find_colon(units: bytes, start: int) -> int:
    """The index (in code units) of the next ``:`` in UTF-16-LE ``units`` from code unit ``start``."""
    at = start * 2
    while True:
        at = units.find(b":\x00", at)
        if at < 0 or at % 2 == 0:
            return at // 2 if at >= 0 else -1
        at += 1


def decode_binary_payload(body: bytes, max_packets: int = 0) -> list[Packet]:
    """Decode an XHR2 binary payload (``application/octet-stream``). Raises :class:`EngineIOProtocolError`."""
    packets: list[Packet] = []
    i = 0
    end = len(body)
    while i < end:
        marker = body[i]
        if marker > 1:
            raise EngineIOProtocolError("bad marker in binary payload")
        stop = body.find(b"\xff", i + 1, i + 2 + _MAX_DIGITS)
        if stop < 0 or stop == i + 1:
            raise EngineIOProtocolError("bad length in binary payload")
        digits = body[i + 1:stop]
        if max(digits) > 9:
            raise EngineIOProtocolError("bad length in binary payload")
        n = int("".join(map(str, digits)))
        start = stop + 1
        if n == 0 or start + n > end:
            raise EngineIOProtocolError("binary payload shorter than its length header")
        raw = body[start:start + n]
        if marker == 0:
            try:
                packets.append(_decode_one(raw.decode("utf-8", "surrogatepass")))
            except UnicodeDecodeError as exc:
                raise EngineIOProtocolError("invalid UTF-8 in binary payload") from exc
        else:
            packets.append(decode_ws_binary(raw))
        if max_packets and len(packets) > max_packets:
            raise EngineIOProtocolError(f"payload carries more than {max_packets} packets")
        i = start + n
    if not packets:
        raise EngineIOProtocolError("empty payload")
    return packets
