"""WebSocket frames (RFC 6455 section 5): opcodes, close codes, masking, encoding.

:func:`encode_frame` makes a complete frame; a server's frames are never masked, so a message encoded
once with :func:`encode_message` can be written to any number of connections (broadcast).
"""

from __future__ import annotations

import os
import struct
from enum import IntEnum
from typing import Final

__all__ = [
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONTINUATION",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "CloseCode",
    "encode_frame",
    "encode_message",
    "is_valid_close_code",
]

# -- RFC 6455 section 5.2: opcodes ---------------------------------------------------------------
OP_CONTINUATION: Final = 0x0
OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA


class CloseCode(IntEnum):
    """RFC 6455 section 7.4.1."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005  # never on the wire: the Close frame had no body
    ABNORMAL_CLOSURE = 1006  # never on the wire: the connection ended without a Close frame
    INVALID_PAYLOAD = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011


# Codes a peer may put in a Close frame (section 7.4): the defined ones minus those reserved for
# local use (1004-1006, 1015), plus 3000-4999 (libraries, frameworks, applications).
_VALID_CLOSE_CODES: Final = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011))


def is_valid_close_code(code: int) -> bool:
    """Whether ``code`` may appear in a Close frame (RFC 6455 section 7.4)."""
    return code in _VALID_CLOSE_CODES or 3000 <= code <= 4999


# -- frames ----------------------------------------------------------------------------------------
_PACK_2: Final = struct.Struct("!BB").pack
_PACK_4: Final = struct.Struct("!BBH").pack
_PACK_10: Final = struct.Struct("!BBQ").pack
# 2-byte headers of unfragmented, uncompressed, unmasked text and binary frames of 0-125 bytes
_SHORT_HEADERS: Final = {op: [_PACK_2(0x80 | op, n) for n in range(126)] for op in (OP_TEXT, OP_BINARY)}


_XOR_TABLES: list[bytes] = []  # _XOR_TABLES[k] maps every byte b to b ^ k; built on first use


def _mask(data: bytes | bytearray, key: bytes | bytearray) -> bytes:
    """XOR ``data`` with the 4-byte ``key`` repeated (section 5.3), without a Python loop per byte.

    Short payloads take one big-integer XOR; longer ones four strided ``translate`` calls, about
    twice as fast from a few kilobytes on.
    """
    n = len(data)
    if n < 1024:
        return (int.from_bytes(data, "little") ^ int.from_bytes((key * ((n >> 2) + 1))[:n], "little")).to_bytes(
            n, "little"
        )
    tables = _XOR_TABLES
    if not tables:
        tables.extend(bytes(b ^ k for b in range(256)) for k in range(256))
    out = bytearray(data)
    for i in range(4):
        out[i::4] = out[i::4].translate(tables[key[i]])
    return bytes(out)


def encode_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False, mask: bool = False) -> bytes:
    """One complete frame (section 5.2). Servers never mask; clients always do (section 5.3)."""
    n = len(payload)
    b0 = opcode | (0x80 if fin else 0) | (0x40 if rsv1 else 0)
    if not mask:
        if n < 126:
            return _PACK_2(b0, n) + payload
        if n < 65536:
            return _PACK_4(b0, 126, n) + payload
        return _PACK_10(b0, 127, n) + payload
    key = os.urandom(4)  # section 10.3: unpredictable masking keys
    if n < 126:
        header = _PACK_2(b0, 0x80 | n)
    elif n < 65536:
        header = _PACK_4(b0, 0xFE, n)
    else:
        header = _PACK_10(b0, 0xFF, n)
    return header + key + _mask(payload, key)


def encode_message(data: str | bytes) -> bytes:
    """A server's unfragmented, uncompressed message frame: encode once, write to many connections."""
    if isinstance(data, str):
        payload = data.encode()
        headers = _SHORT_HEADERS[OP_TEXT]
        opcode = OP_TEXT
    else:
        payload = bytes(data)
        headers = _SHORT_HEADERS[OP_BINARY]
        opcode = OP_BINARY
    if len(payload) < 126:
        return headers[len(payload)] + payload
    return encode_frame(opcode, payload)


def _close_payload(code: int | None, reason: str) -> bytes:
    if code is None:
        if reason:
            raise ValueError("a close reason needs a close code")
        return b""
    if not is_valid_close_code(code):
        raise ValueError(f"invalid close code {code}")
    payload = code.to_bytes(2, "big") + reason.encode()
    if len(payload) > 125:
        raise ValueError("close reason longer than 123 bytes")
    return payload
