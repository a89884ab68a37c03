"""The msgpack Socket.IO wire format, that of the npm package socket.io-msgpack-parser 3.x: one binary
message per packet, a map with the keys ``type``, ``data``, ``id``, ``nsp``; bytes travel as msgpack
``bin`` and the BINARY_* types do not exist. The bytes are :mod:`.notepack`'s, in the dialect of
socket.io-msgpack-parser 3.0.2 (notepack.io 2.2.0).
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from ...exceptions import SocketIOProtocolError
from .notepack import SOCKET_IO_MSGPACK_PARSER, Codec, NotepackError
from .packet import (
    _BASE_TYPE,
    _BYTES_LIKE,
    _CONTAINER,
    CONNECT,
    CONNECT_ERROR,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_SIZE,
    MAX_ACK_ID,
    Encoded,
    Packet,
    PacketType,
    _check_limits,
    _check_outgoing,
    _incoming_error,
)

__all__ = ["MsgpackPacketDecoder", "MsgpackParser"]

_MSGPACK_SCALARS: Final = frozenset({type(None), bool, int, float, str, bytes})
_MSGPACK_SENDABLE: Final = (str, int, float, bytes, bytearray, memoryview)


class MsgpackParser:
    """The msgpack Socket.IO parser (npm socket.io-msgpack-parser 3.x, notepack.io inside).

    Creating one imports the ``msgpack`` package (``pip install sioserver[msgpack]``).
    """

    name: ClassVar[str] = "msgpack"

    def __init__(
        self,
        *,
        max_depth: int = DEFAULT_MAX_DEPTH,
        max_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        _check_limits(max_depth=max_depth, max_size=max_size)
        self.max_depth = max_depth
        self.max_size = max_size
        self.codec = Codec(SOCKET_IO_MSGPACK_PARSER)

    def decoder(self) -> MsgpackPacketDecoder:
        return MsgpackPacketDecoder(self)

    def encode(self, packet: Packet) -> Encoded:
        """``(bytes,)``: one map, keys in the order the Node server writes them."""
        ptype = _BASE_TYPE.get(packet.type)
        if ptype is None:
            raise ValueError(f"unknown packet type {packet.type!r}")
        _, nsp, data, pid, _ = packet
        _check_outgoing(ptype, nsp, pid, data)
        obj: dict[str, Any] = {"type": int(ptype)}
        if data is not None:
            if isinstance(data, _CONTAINER):
                self._check_data(data, 0)
            obj["data"] = data
        if pid is not None:
            obj["id"] = pid
        obj["nsp"] = nsp
        return (self.codec.pack(obj),)

    def _check_data(self, obj: Any, depth: int) -> None:
        """Refuse what the JSON parser would refuse too (and non-str keys), and over-deep data."""
        if depth >= self.max_depth:
            raise ValueError(f"data nested deeper than max_depth={self.max_depth} (or circular)")
        if isinstance(obj, dict):
            for key in obj:
                if not isinstance(key, str):
                    raise TypeError(f"msgpack map keys must be str, not {type(key).__name__}")
            obj = obj.values()
        for value in obj:
            if value.__class__ not in _MSGPACK_SCALARS:
                if isinstance(value, _CONTAINER):
                    self._check_data(value, depth + 1)
                elif not isinstance(value, _MSGPACK_SENDABLE):
                    raise TypeError(f"Object of type {type(value).__name__} cannot be sent")


class MsgpackPacketDecoder:
    """Decodes socket.io-msgpack-parser packets: one binary message each, nothing pending."""

    __slots__ = ("_max_depth", "_max_size", "_unpack")

    pending: Final = False

    def __init__(self, parser: MsgpackParser) -> None:
        self._max_depth = parser.max_depth
        self._max_size = parser.max_size
        self._unpack = parser.codec.unpack

    def reset(self) -> None:
        pass

    def feed(self, message: str | bytes) -> Packet | None:
        if message.__class__ is str:
            raise SocketIOProtocolError("text message: the msgpack parser expects binary")
        if not isinstance(message, _BYTES_LIKE):
            raise TypeError(f"expected str or bytes, not {type(message).__name__}")
        if len(message) > self._max_size:
            raise SocketIOProtocolError(f"packet larger than max_size={self._max_size}")
        try:
            obj = self._unpack(message if message.__class__ is bytes else bytes(message))
        except NotepackError as exc:
            raise SocketIOProtocolError(str(exc)) from None
        if obj.__class__ is not dict:
            raise SocketIOProtocolError("msgpack packet must be a map")
        ptype = obj.get("type")
        if ptype.__class__ is not int or not CONNECT <= ptype <= CONNECT_ERROR:
            raise SocketIOProtocolError(f"unknown packet type {ptype!r}")
        nsp = obj.get("nsp")
        if nsp.__class__ is not str or not nsp.startswith("/"):
            raise SocketIOProtocolError("namespace must be a string starting with '/'")
        pid = obj.get("id")
        if pid is not None and (pid.__class__ is not int or not 0 <= pid <= MAX_ACK_ID):
            raise SocketIOProtocolError("ack id out of range")
        data = obj.get("data")
        if data.__class__ is list or data.__class__ is dict:
            self._clean(data, 1)
        ptype = PacketType(ptype)
        error = _incoming_error(ptype, data, pid)
        if error is not None:
            raise SocketIOProtocolError(error)
        return Packet(ptype, nsp, data, pid)

    def _clean(self, obj: Any, depth: int) -> None:
        """Check depth and map keys. Values need no check: notepack yields only msgpack's scalars, bytes,
        str (dates) and containers, with ``undefined`` resolved and other extensions refused."""
        if depth > self._max_depth:
            raise SocketIOProtocolError(f"data nested deeper than max_depth={self._max_depth}")
        if obj.__class__ is dict:
            for key, value in obj.items():
                if key.__class__ is not str:
                    raise SocketIOProtocolError("msgpack map keys must be strings")
                if value.__class__ is list or value.__class__ is dict:
                    self._clean(value, depth + 1)
            return
        for value in obj:
            if value.__class__ is list or value.__class__ is dict:
                self._clean(value, depth + 1)
