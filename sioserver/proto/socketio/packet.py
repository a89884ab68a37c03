"""Socket.IO v5 packets (docs/socket.io-protocol/v5-current.md, "Packet format"), the shape rules both
wire formats share, and the protocols a wire format implements (:class:`Parser`, :class:`Decoder`).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, ClassVar, Final, NamedTuple, Protocol

from ...exceptions import ConfigurationError

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
    "RESERVED_EVENTS",
    "Decoder",
    "Encoded",
    "JSONModule",
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
]


class PacketType(IntEnum):
    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    CONNECT_ERROR = 4
    BINARY_EVENT = 5
    BINARY_ACK = 6


CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, BINARY_ACK = PacketType

#: Event names that have a meaning of their own on one side or the other (socket.io-parser).
RESERVED_EVENTS: Final = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)
#: ``Number.MAX_SAFE_INTEGER``: the largest id a JavaScript peer can hold exactly.
MAX_ACK_ID: Final = 2**53 - 1
DEFAULT_MAX_ATTACHMENTS: Final = 10
DEFAULT_MAX_DEPTH: Final = 64
DEFAULT_MAX_SIZE: Final = 1_000_000

#: What ``encode`` returns: Engine.IO messages, immutable so a broadcast is encoded once.
Encoded = tuple[str | bytes, ...]


class Packet(NamedTuple):
    """One Socket.IO packet (immutable; a NamedTuple because the decoder builds one per message
    and a frozen dataclass costs three times as much to construct).

    ``data`` is the payload as JSON would carry it, with ``bytes`` where binary goes: the CONNECT
    auth object or reply, ``[event, *args]`` for EVENT, the argument list for ACK, the error object
    (or string) for CONNECT_ERROR, ``None`` when absent. ``attachments`` tells how many binary
    attachments a decoded packet arrived with; encoders ignore it.
    """

    type: PacketType
    nsp: str = "/"
    data: Any = None
    id: int | None = None
    attachments: int = 0


_tuple_new: Final = tuple.__new__


def args_of(data: Any) -> list[Any]:
    """python-socketio's convention for event and ack arguments: a tuple is several arguments, ``None``
    is none, anything else is one."""
    if data is None:
        return []
    if isinstance(data, tuple):
        return list(data)
    return [data]


def answer_of(args: list[Any]) -> Any:
    """The other way round, for an ack received: no argument is ``None``, one is itself, several a tuple."""
    if not args:
        return None
    if len(args) == 1:
        return args[0]
    return tuple(args)


def connect_packet(sid: str, nsp: str = "/", *, pid: str | None = None) -> Packet:
    """The server's CONNECT reply ``{"sid": ..}`` (``pid`` only with connection-state recovery)."""
    data: dict[str, Any] = {"sid": sid}
    if pid is not None:
        data["pid"] = pid
    return Packet(CONNECT, nsp, data)


def connect_error_packet(message: str, data: Any = None, nsp: str = "/") -> Packet:
    """A refused connection: ``{"message": .., "data": ..}``, ``data`` left out when ``None``."""
    payload: dict[str, Any] = {"message": message}
    if data is not None:
        payload["data"] = data
    return Packet(CONNECT_ERROR, nsp, payload)


def event_packet(event: str, *args: Any, nsp: str = "/", id: int | None = None) -> Packet:
    return Packet(EVENT, nsp, [event, *args], id)


def ack_packet(id: int, *args: Any, nsp: str = "/") -> Packet:
    return Packet(ACK, nsp, list(args), id)


def disconnect_packet(nsp: str = "/") -> Packet:
    return Packet(DISCONNECT, nsp)


class JSONModule(Protocol):
    """What the ``json`` option needs: ``dumps`` (to ``str`` or UTF-8 ``bytes``) and ``loads``."""

    def dumps(self, obj: Any, /) -> str | bytes: ...

    def loads(self, s: str, /) -> Any: ...


class Decoder(Protocol):
    """Per-connection decoder: a state machine fed one Engine.IO message at a time."""

    @property
    def pending(self) -> bool:
        """True while a binary packet waits for its attachments."""
        ...

    def feed(self, message: str | bytes) -> Packet | None: ...

    def reset(self) -> None:
        """Drop a partly received packet."""
        ...


class Parser(Protocol):
    """A wire format: stateless encoding, plus a fresh :class:`Decoder` per connection."""

    name: ClassVar[str]

    def encode(self, packet: Packet) -> Encoded: ...

    def decoder(self) -> Decoder: ...


# --- shared validation ---------------------------------------------------------------------------

# Wire type -> the type a packet is validated (and returned) as.
_BASE_TYPE: Final = {t: t for t in PacketType} | {BINARY_EVENT: EVENT, BINARY_ACK: ACK}
_TYPE_BY_CHAR: Final = {str(int(t)): t for t in PacketType}
_DIGIT: Final = {t: str(int(t)) for t in PacketType}
_ID_DIGITS: Final = len(str(MAX_ACK_ID))
# isinstance() tuples, built once: ``list | tuple`` in a call builds a UnionType every time.
_SEQUENCE: Final = (list, tuple)
_CONTAINER: Final = (list, tuple, dict)
_NUMBER: Final = (int, float)
_DICT_OR_STR: Final = (dict, str)
_BYTES_LIKE: Final = (bytes, bytearray, memoryview)


def _is_digits(s: str) -> bool:
    return s.isascii() and s.isdigit()  # str.isdigit alone accepts superscripts, Arabic-Indic..


def _incoming_error(ptype: PacketType, data: Any, pid: int | None) -> str | None:
    """Why a decoded packet breaks the spec's shape rules, or None. ``data`` None means absent."""
    if ptype == EVENT:
        if data.__class__ is not list or not data:
            return "EVENT payload must be a non-empty array"
        first = data[0]
        kind = first.__class__
        if kind is str:
            if first in RESERVED_EVENTS:
                return f"reserved event name {first!r}"
        elif kind is not int and kind is not float:
            return "EVENT name must be a string or a number"
        return None
    if ptype == ACK:
        if data.__class__ is not list:
            return "ACK payload must be an array"
        return None if pid is not None else "ACK without an id"
    if pid is not None:
        return f"{ptype.name} with an ack id"
    if ptype == CONNECT:
        return None if data is None or data.__class__ is dict else "CONNECT payload must be an object"
    if ptype == DISCONNECT:
        return None if data is None else "DISCONNECT with a payload"
    if data.__class__ is dict or data.__class__ is str:  # CONNECT_ERROR
        return None
    return "CONNECT_ERROR payload must be an object or a string"


def _check_outgoing(ptype: PacketType, nsp: Any, pid: Any, data: Any) -> None:
    """Refuse (ValueError) a packet the peer's parser would reject."""
    if type(nsp) is not str or not nsp.startswith("/"):
        raise ValueError(f"namespace must be a string starting with '/', not {nsp!r}")
    if pid is not None:
        if type(pid) is not int or not 0 <= pid <= MAX_ACK_ID:
            raise ValueError(f"ack id must be an int in [0, 2**53 - 1], not {pid!r}")
        if ptype not in (EVENT, ACK):
            raise ValueError(f"{ptype.name} cannot carry an ack id")
    elif ptype == ACK:
        raise ValueError("ACK needs an ack id")
    if ptype == EVENT:
        if not isinstance(data, _SEQUENCE) or not data:
            raise ValueError("EVENT payload must be a non-empty list: [event, *args]")
        first = data[0]
        if isinstance(first, str):
            if first in RESERVED_EVENTS:
                raise ValueError(f"{first!r} is a reserved event name")
        elif not isinstance(first, _NUMBER) or isinstance(first, bool):
            raise ValueError("EVENT name must be a string or a number")
    elif ptype == ACK:
        if not isinstance(data, _SEQUENCE):
            raise ValueError("ACK payload must be a list")
    elif ptype == CONNECT:
        if data is not None and not isinstance(data, dict):
            raise ValueError("CONNECT payload must be a dict or None")
    elif ptype == DISCONNECT:
        if data is not None:
            raise ValueError("DISCONNECT carries no payload")
    elif not isinstance(data, _DICT_OR_STR):
        raise ValueError("CONNECT_ERROR payload must be a dict or a str")


def _check_limits(**limits: int) -> None:
    for name, value in limits.items():
        if type(value) is not int or value < 1:
            raise ConfigurationError(f"{name} must be a positive int, not {value!r}")
