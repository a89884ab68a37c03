"""``engineio_logger=True``: every Engine.IO packet a session sends and receives, at INFO, as python-engineio.

The lines read as python-engineio's (``<sid>: Sending packet MESSAGE data 2["chat","hi"]``,
``<sid>: Received packet PING data None``; binary data as ``<binary>``), so an app's log filters and habits
keep working. Only the sessions of a server given ``engineio_logger`` are of these classes: a server without
it runs :class:`~sioserver.engine.session.Session` itself, and pays nothing for the feature.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..proto.engineio import Packet, PacketType
from .outbox import OutItem
from .session import Session
from .session_v3 import SessionV3
from .transport import SharedPacket

if TYPE_CHECKING:
    from .transport import WebSocketTransport

__all__ = ["LoggedSession", "LoggedSessionV3", "log_packet"]

_NAMES = {int(t): t.name for t in PacketType}


def _shown(data: object) -> object:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return "<binary>"
    return data if data != "" else None  # a packet without data, as python-engineio prints it


def log_packet(session: Session, direction: str, ptype: int, data: object) -> None:
    """One line: ``direction`` is ``"Sending"`` or ``"Received"``."""
    session._ctx.logger.info("%s: %s packet %s data %s", session.sid, direction, _NAMES.get(ptype, ptype),
                             _shown(data), extra={"sid": session.sid})


def _wire(message: str) -> tuple[int, object]:
    """A control packet as the engine queues it (``"2"``, ``"3probe"``): its type and data."""
    if message[:1].isdigit():
        return int(message[0]), message[1:] or None
    return PacketType.MESSAGE, message


class _PacketLog(Session):
    __slots__ = ()

    def send(self, data: str | bytes) -> bool:
        log_packet(self, "Sending", PacketType.MESSAGE, data)
        return super().send(data)

    def send_shared(self, packets: Sequence[SharedPacket], volatile: bool = False) -> bool:
        for packet in packets:
            log_packet(self, "Sending", PacketType.MESSAGE, packet.data)
        return super().send_shared(packets, volatile)

    def send_packet(self, packet: Packet) -> bool:
        if packet.type is PacketType.MESSAGE:  # a control packet is logged by _enqueue
            log_packet(self, "Sending", packet.type, packet.data)
        return super().send_packet(packet)

    def _enqueue(self, item: OutItem, bounded: bool) -> bool:
        # every control packet (a ping, a close, a v3 pong) comes here unbounded; messages are logged above
        if not bounded and isinstance(item, str):
            ptype, data = _wire(item)
            log_packet(self, "Sending", ptype, data)
        return super()._enqueue(item, bounded)

    def receive(self, packet: Packet) -> None:
        log_packet(self, "Received", packet.type, packet.data)
        super().receive(packet)

    def receive_message(self, data: str) -> None:
        log_packet(self, "Received", PacketType.MESSAGE, data)
        super().receive_message(data)

    def on_ws_message(self, conn: WebSocketTransport, data: str | bytes) -> None:
        if conn is self.ws and data.__class__ is str and data[:1] == "4":
            log_packet(self, "Received", PacketType.MESSAGE, data[1:])  # the hot path skips receive()
        super().on_ws_message(conn, data)


class LoggedSession(_PacketLog):
    __slots__ = ()


class LoggedSessionV3(_PacketLog, SessionV3):
    __slots__ = ()
