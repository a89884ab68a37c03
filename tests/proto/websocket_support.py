"""Helpers of the WebSocket tests: frames as a peer writes them, and feeding them in."""

from __future__ import annotations

from sioserver.exceptions import WebSocketProtocolError
from sioserver.proto.websocket import (
    Close,
    Connection,
    DeflateParams,
    Event,
)

KEY = b"\x37\xfa\x21\x3d"


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = KEY,
    length: int | None = None,
) -> bytes:
    """Any frame, well-formed or not, as a client (masked) or server (``mask=None``) sends it."""
    b0 = (0x80 if fin else 0) | rsv << 4 | opcode
    n = len(payload) if length is None else length
    bit = 0x80 if mask is not None else 0
    if n < 126:
        header = bytes([b0, bit | n])
    elif n < 65536:
        header = bytes([b0, bit | 126]) + n.to_bytes(2, "big")
    else:
        header = bytes([b0, bit | 127]) + n.to_bytes(8, "big")
    if mask is None:
        return header + payload
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def unframe(data: bytes) -> tuple[int, int, bytes]:
    """(first byte, payload length, payload) of one unmasked frame."""
    n = data[1] & 0x7F
    start = 2
    if n == 126:
        n, start = int.from_bytes(data[2:4], "big"), 4
    elif n == 127:
        n, start = int.from_bytes(data[2:10], "big"), 10
    assert not data[1] & 0x80
    assert len(data) == start + n
    return data[0], n, data[start:]


def failure(events: list[Event]) -> int:
    """The close code of the protocol failure that ends ``events``."""
    assert events, "expected a failure"
    last = events[-1]
    assert isinstance(last, Close) and last.error is not None, events
    assert isinstance(last.error, WebSocketProtocolError)
    return last.code


def feed_bytewise(conn: Connection, data: bytes) -> list[Event]:
    events: list[Event] = []
    for i in range(len(data)):
        events += conn.receive_data(data[i : i + 1])
    return events


def pair(params: DeflateParams, threshold: int = 0, **kwargs: int) -> tuple[Connection, Connection]:
    server = Connection(deflate=params, compression_threshold=threshold, **kwargs)
    client = Connection(client=True, deflate=params, compression_threshold=threshold, **kwargs)
    return server, client
