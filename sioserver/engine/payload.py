"""How a long-polling session's packets are framed: Engine.IO v4 (``\\x1e``-joined), or v3 (``<length>:``
framing, in text or, for a client that can read it, XHR2 binary payloads).

A session carries its :class:`PayloadFormat` (``session.payload``); the polling transport asks it for the
bodies of every GET and to decode every POST, so the v4 path is the code it always was.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..exceptions import EngineIOProtocolError
from ..proto import engineio_v3 as v3
from ..proto.engineio import SEPARATOR, Packet, PacketType, decode_payload
from .outbox import OutItem, encode_items
from .transport import SharedPacket

__all__ = ["V3_BASE64", "V3_BINARY", "V4", "PayloadFormat", "TooManyPackets"]

Headers = list[tuple[str, str]]
TEXT: Headers = [("Content-Type", "text/plain; charset=UTF-8")]
BINARY: Headers = [("Content-Type", "application/octet-stream")]


class TooManyPackets(EngineIOProtocolError):
    """A POST carries more than ``max_payload_packets`` packets (answered 400, not a parse error)."""


class PayloadFormat:
    """Engine.IO v4 payloads."""

    __slots__ = ("close_body", "noop_body", "noop_close_body")

    def __init__(self) -> None:
        self.close_body = self.encode(["%d" % PacketType.CLOSE])[0]
        self.noop_body = self.encode(["%d" % PacketType.NOOP])[0]
        self.noop_close_body = self.encode(["%d" % PacketType.NOOP, "%d" % PacketType.CLOSE])[0]

    def encode(self, items: Sequence[OutItem]) -> tuple[bytes, Headers]:
        """A GET's body and its content type."""
        return encode_items(items).encode(), TEXT

    def decode(self, body: bytes, content_type: str | None, max_packets: int) -> list[Packet]:
        """A POST's packets. Raises :class:`TooManyPackets`, ``EngineIOProtocolError`` or ``UnicodeDecodeError``."""
        if max_packets and body.count(SEPARATOR.encode()) >= max_packets:
            raise TooManyPackets(f"payload carries more than {max_packets} packets")
        return decode_payload(body.decode("utf-8"))


def _messages(items: Sequence[OutItem]) -> list[str | bytes]:
    return [item.message if isinstance(item, SharedPacket) else item for item in items]


class V3Payload(PayloadFormat):
    """Engine.IO v3 payloads; ``binary``: XHR2 binary bodies whenever a binary MESSAGE is owed (a client that
    did not ask for ``b64=1``), else binary MESSAGEs as ``b4`` + base64 in a text body."""

    __slots__ = ("binary",)

    def __init__(self, binary: bool) -> None:
        self.binary = binary
        super().__init__()

    def encode(self, items: Sequence[OutItem]) -> tuple[bytes, Headers]:
        messages = _messages(items)
        if self.binary and any(not isinstance(m, str) for m in messages):
            return v3.encode_binary_payload(messages), BINARY
        return v3.encode_payload(messages).encode(), TEXT

    def decode(self, body: bytes, content_type: str | None, max_packets: int) -> list[Packet]:
        if content_type is not None and content_type.split(";", 1)[0].strip().lower() == "application/octet-stream":
            packets = v3.decode_binary_payload(body)
        else:
            packets = v3.decode_payload(body.decode("utf-8"))
        if max_packets and len(packets) > max_packets:
            raise TooManyPackets(f"payload carries more than {max_packets} packets")
        return packets


V4 = PayloadFormat()
V3_BINARY = V3Payload(binary=True)
V3_BASE64 = V3Payload(binary=False)
