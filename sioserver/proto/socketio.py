"""Socket.IO v5 packets and their two wire formats (socket.io repository,
docs/socket.io-protocol/v5-current.md, "Packet encoding").

Pure code: no I/O, no asyncio, no clock. ``msgpack`` is imported only by :class:`MsgpackParser`.

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
  strings. Other extension types are refused.
"""

from __future__ import annotations

import codecs
import datetime as _dt
import json as _stdjson
import math
import re
from collections.abc import Callable
from enum import IntEnum
from typing import Any, ClassVar, Final, NamedTuple, Protocol

from ..exceptions import ConfigurationError, SocketIOProtocolError, check_options

__all__ = [
    "DEFAULT_MAX_ATTACHMENTS",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_SIZE",
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


# --- JSON nesting, measured without recursion --------------------------------------------------

# A string literal; an unterminated one runs to the end. Possessive, and it always matches from a
# quote, so the scan is linear whatever the input (a backtracking version is quadratic on \"\"\"..).
_JSON_STRING: Final = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET: Final = re.compile(r"[^\[\]{}]+")
_SQUARE: Final = str.maketrans("{}", "[]")


def _nesting_error(text: str, start: int, limit: int) -> str | None:
    """Why the JSON in ``text[start:]`` must not be parsed, or None: more than ``limit`` nested
    containers, or unbalanced brackets. Parsers recurse once per level; this does not."""
    if text.count("[", start) + text.count("{", start) <= limit:
        return None  # the common case: too few brackets to nest deeper than the limit
    skeleton = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text[start:])).translate(_SQUARE)
    for _ in range(limit):
        if not skeleton:
            return None
        shorter = skeleton.replace("[]", "")  # removes one level: every innermost container
        if len(shorter) == len(skeleton):
            return "unbalanced brackets in JSON"
        skeleton = shorter
    return f"JSON nested deeper than max_depth={limit}" if skeleton else None


# --- default (JSON) parser --------------------------------------------------------------------

_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def _escape_surrogate(match: re.Match[str]) -> str:
    return f"\\u{ord(match[0]):04x}"


class _BinaryFound(Exception):
    """Raised from the encoder's ``default`` hook: take the placeholder path."""


def _json_default(obj: Any) -> Any:
    if isinstance(obj, _BYTES_LIKE):
        raise _BinaryFound
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _make_stdlib_dumps(c_make_encoder: Any) -> Callable[[Any], str]:
    """The fastest ``JSON.stringify``-like dumps the standard library offers.

    The C encoder built once is about 1.6x faster than ``JSONEncoder.encode``, which builds one
    per call. No circular check (its marker dict is left dirty after an exception): circular
    data ends in RecursionError, reported as too deep.
    """
    if c_make_encoder is not None:
        encoder = c_make_encoder(
            None, _json_default, _stdjson.encoder.encode_basestring, None, ":", ",", False, False, False
        )
        return lambda obj: "".join(encoder(obj, 0))
    return _stdjson.JSONEncoder(
        separators=(",", ":"), ensure_ascii=False, allow_nan=False, check_circular=False, default=_json_default
    ).encode


_stdlib_dumps: Final = _make_stdlib_dumps(getattr(_stdjson.encoder, "c_make_encoder", None))
# The scanner itself: raw_decode is a Python wrapper around it that only renames StopIteration.
_stdlib_scan: Final[Callable[[str, int], tuple[Any, int]]] = _stdjson.JSONDecoder(
    parse_constant=_reject_constant).scan_once  # type: ignore[attr-defined]  # not in typeshed


class JSONParser:
    """The default Socket.IO parser (npm socket.io-parser 4.x).

    ``json``: a module with ``dumps`` and ``loads`` to use instead of the standard library's
    (like python-socketio's ``json`` option). It must write JSON ``JSON.parse`` reads; bytes never
    reach it. The standard library gets a faster path of its own, and so does orjson: its ``dumps``
    (which raises TypeError for bytes and writes NaN as null) gets the data as it is, and only data it
    refuses is walked for bytes and tried again.
    """

    name: ClassVar[str] = "default"

    def __init__(
        self,
        *,
        json: JSONModule | None = None,
        max_attachments: int = DEFAULT_MAX_ATTACHMENTS,
        max_depth: int = DEFAULT_MAX_DEPTH,
        max_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        _check_limits(max_attachments=max_attachments, max_depth=max_depth, max_size=max_size)
        if json is not None and not (callable(getattr(json, "dumps", None)) and callable(getattr(json, "loads", None))):
            raise ConfigurationError("json must have dumps() and loads()")
        self.json = json
        self._custom = None if json is None or json is _stdjson else json
        self._orjson_dumps = json.dumps if json is not None and getattr(json, "__name__", None) == "orjson" else None
        self.max_attachments = max_attachments
        self.max_depth = max_depth
        self.max_size = max_size

    def decoder(self) -> JSONPacketDecoder:
        return JSONPacketDecoder(self)

    def encode(self, packet: Packet) -> Encoded:
        """The Engine.IO messages for ``packet``: ``(text,)`` or ``(text, attachment, ...)``."""
        ptype = _BASE_TYPE.get(packet.type)
        if ptype is None:
            raise ValueError(f"unknown packet type {packet.type!r}")
        _, nsp, data, pid, _ = packet
        _check_outgoing(ptype, nsp, pid, data)
        tail = "" if nsp == "/" else nsp + ","
        if "," in nsp:
            raise ValueError(f"namespace {nsp!r} contains ',' and cannot be written in this format")
        if pid is not None:
            tail += str(pid)
        if data is None:
            return (_DIGIT[ptype] + tail,)
        buffers: list[bytes] = []
        if self._custom is None:
            try:
                body = _stdlib_dumps(data)
            except (_BinaryFound, ValueError, RecursionError):  # bytes, NaN, or too deep
                body = _stdlib_dumps(self._portable(data, buffers, 0))
        else:
            out = None
            if self._orjson_dumps is not None:
                try:
                    out = self._orjson_dumps(data)
                except TypeError:  # bytes (placeholders follow), or too deep: walk the data first
                    pass
            if out is None:
                out = self._custom.dumps(self._portable(data, buffers, 0))
            body = out.decode() if isinstance(out, bytes) else out
        if buffers:
            if ptype not in (EVENT, ACK):
                raise TypeError(f"binary data is only allowed in EVENT and ACK payloads, not {ptype.name}")
            if len(buffers) > self.max_attachments:
                raise ValueError(f"{len(buffers)} attachments exceed max_attachments={self.max_attachments}")
            head = f"{int(ptype) + 3}{len(buffers)}-{tail}"
        else:
            head = _DIGIT[ptype] + tail
        # else too few brackets to nest deeper (and a body no longer than the limit has too few)
        if len(body) > self.max_depth and body.count("[") + body.count("{") > self.max_depth:
            error = _nesting_error(body, 0, self.max_depth)
            if error is not None:
                raise ValueError(error)
        if not body.isascii() and _SURROGATE.search(body):
            body = _SURROGATE.sub(_escape_surrogate, body)  # JSON.stringify escapes lone surrogates
        return (head + body, *buffers) if buffers else (head + body,)

    def _portable(self, obj: Any, buffers: list[bytes], depth: int) -> Any:
        """``obj`` as JavaScript would send it: bytes -> placeholders (in depth-first order, as
        socket.io-parser numbers them), NaN / Infinity -> None, tuples -> lists."""
        if isinstance(obj, _BYTES_LIKE):
            buffers.append(obj if type(obj) is bytes else bytes(obj))
            return {"_placeholder": True, "num": len(buffers) - 1}
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else None
        if isinstance(obj, _CONTAINER):
            if depth >= self.max_depth:
                raise ValueError(f"data nested deeper than max_depth={self.max_depth} (or circular)")
            if isinstance(obj, dict):
                return {k: self._portable(v, buffers, depth + 1) for k, v in obj.items()}
            return [self._portable(v, buffers, depth + 1) for v in obj]
        return obj


class JSONPacketDecoder:
    """Decodes the default format, one Engine.IO message at a time (see :class:`Decoder`)."""

    __slots__ = ("_buffers", "_loads", "_max_attachments", "_max_depth", "_max_size", "_partial")

    def __init__(self, parser: JSONParser) -> None:
        self._max_attachments = parser.max_attachments
        self._max_depth = parser.max_depth
        self._max_size = parser.max_size
        self._loads = None if parser._custom is None else parser._custom.loads
        self._partial: Packet | None = None  # a binary packet waiting for its attachments
        self._buffers: list[bytes] = []

    @property
    def pending(self) -> bool:
        return self._partial is not None

    def reset(self) -> None:
        self._partial = None
        self._buffers = []

    def feed(self, message: str | bytes) -> Packet | None:
        if message.__class__ is str:
            if self._partial is not None:
                raise SocketIOProtocolError("text message while binary attachments are pending")
            return self._decode_text(message)
        if not isinstance(message, _BYTES_LIKE):
            raise TypeError(f"expected str or bytes, not {type(message).__name__}")
        partial = self._partial
        if partial is None:
            raise SocketIOProtocolError("binary message when no attachment is expected")
        if len(message) > self._max_size:
            raise SocketIOProtocolError(f"attachment larger than max_size={self._max_size}")
        buffers = self._buffers
        buffers.append(message if message.__class__ is bytes else bytes(message))
        if len(buffers) < partial.attachments:
            return None
        self.reset()
        used = [False] * len(buffers)
        data = _fill_placeholders(partial.data, buffers, used)
        if not all(used):
            raise SocketIOProtocolError(f"attachment {used.index(False)} has no placeholder")
        return Packet(partial.type, partial.nsp, data, partial.id, partial.attachments)

    def _decode_text(self, s: str) -> Packet | None:
        n = len(s)
        if n > self._max_size:
            raise SocketIOProtocolError(f"packet of {n} characters exceeds max_size={self._max_size}")
        ptype = _TYPE_BY_CHAR.get(s[:1])
        if ptype is None:
            raise SocketIOProtocolError(f"unknown packet type {s[:1]!r}")
        i = 1
        attachments = 0
        if ptype >= BINARY_EVENT:
            dash = s.find("-", 1, 8)
            count = s[1:dash]
            if dash < 0 or not _is_digits(count) or int(count) < 1:
                raise SocketIOProtocolError("bad attachment count")
            attachments = int(count)
            if attachments > self._max_attachments:
                raise SocketIOProtocolError(f"{attachments} attachments exceed max_attachments={self._max_attachments}")
            i = dash + 1
            ptype = _BASE_TYPE[ptype]
        nsp = "/"
        if i < n and s[i] == "/":
            comma = s.find(",", i)
            if comma < 0:
                nsp, i = s[i:], n
            else:
                nsp, i = s[i:comma], comma + 1
        pid: int | None = None
        if i < n and "0" <= s[i] <= "9":
            j = i + 1
            while j < n and "0" <= s[j] <= "9":
                j += 1
            if j - i > _ID_DIGITS or (pid := int(s[i:j])) > MAX_ACK_ID:
                raise SocketIOProtocolError("ack id out of range")
            i = j
        data = None
        if i < n:
            if s[i] not in '[{"':  # also keeps whitespace out: socket.io-parser reads " " as id 0
                raise SocketIOProtocolError("payload must be a JSON array, object or string")
            # else too few brackets to nest deeper (and a payload no longer than the limit has too few)
            if n - i > self._max_depth and s.count("[", i) + s.count("{", i) > self._max_depth:
                error = _nesting_error(s, i, self._max_depth)
                if error is not None:
                    raise SocketIOProtocolError(error)
            if self._loads is None:
                try:
                    data, end = _stdlib_scan(s, i)
                except (StopIteration, ValueError, RecursionError):
                    raise SocketIOProtocolError("invalid JSON payload") from None
                if end != n and s[end:].strip(" \t\n\r"):
                    raise SocketIOProtocolError("data after the JSON payload")
            else:
                try:
                    data = self._loads(s[i:])
                except Exception:
                    raise SocketIOProtocolError("invalid JSON payload") from None
        error = _incoming_error(ptype, data, pid)
        if error is not None:
            raise SocketIOProtocolError(error)
        if attachments:
            self._partial = Packet(ptype, nsp, data, pid, attachments)
            return None
        return _tuple_new(Packet, (ptype, nsp, data, pid, 0))  # Packet(ptype, nsp, data, pid), one call less


def _fill_placeholders(obj: Any, buffers: list[bytes], used: list[bool]) -> Any:
    """Put the attachments in place of their placeholders, anywhere in ``obj`` (a list or a dict).
    Recursion is bounded: the JSON was checked against max_depth before it was parsed."""
    if obj.__class__ is dict:
        if obj.get("_placeholder") is True:
            num = obj.get("num")
            if num.__class__ is not int or not 0 <= num < len(buffers):
                raise SocketIOProtocolError(f"bad placeholder num {num!r}")
            if used[num]:
                raise SocketIOProtocolError(f"placeholder {num} used twice")
            used[num] = True
            return buffers[num]
        for key, value in obj.items():
            if value.__class__ is dict or value.__class__ is list:
                obj[key] = _fill_placeholders(value, buffers, used)
    else:
        for index, value in enumerate(obj):
            if value.__class__ is dict or value.__class__ is list:
                obj[index] = _fill_placeholders(value, buffers, used)
    return obj


# --- msgpack parser ---------------------------------------------------------------------------


class _Undefined:
    """JavaScript's ``undefined`` as notepack.io writes it (fixext 1, type 0)."""


_UNDEFINED: Final = _Undefined()
_MSGPACK_SCALARS: Final = frozenset({type(None), bool, int, float, str, bytes})
_MSGPACK_SENDABLE: Final = (str, int, float, bytes, bytearray, memoryview)


class _AmbiguousExt(Exception):
    """An ext type 0 of a fixext length: fixext (undefined, Date) or ext 8 (a typed array)?
    The unpacker's hook is not told, so such messages are unpacked again knowing (_ext_formats)."""


_FIXEXT_LENGTHS: Final = frozenset({1, 2, 4, 8, 16})


# msgpack sizes by first byte, to find where each extension starts (see _ext_formats).
_FIXED_SIZE: Final = {
    0xC0: 1,
    0xC1: 1,
    0xC2: 1,
    0xC3: 1,
    0xCA: 5,
    0xCB: 9,
    0xCC: 2,
    0xCD: 3,
    0xCE: 5,
    0xCF: 9,
    0xD0: 2,
    0xD1: 3,
    0xD2: 5,
    0xD3: 9,
    0xDC: 3,
    0xDD: 5,
    0xDE: 3,
    0xDF: 5,
}
_LENGTH_WIDTH: Final = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4}  # bin, str
_EXT_WIDTH: Final = {0xC7: 1, 0xC8: 2, 0xC9: 4}
_FIXEXT_SIZE: Final = {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}


def _ext_formats(buf: bytes) -> list[bool]:
    """For each extension in ``buf``, in order: was it a fixext? A flat walk: msgpack is a prefix
    format, so containers need no stack. Garbage only yields a wrong list (the unpacker rejects it)."""
    formats: list[bool] = []
    i, n = 0, len(buf)
    while i < n:
        b = buf[i]
        if b < 0xA0 or b >= 0xE0:  # fixint, fixmap / fixarray headers, negative fixint
            i += 1
        elif b < 0xC0:  # fixstr
            i += 1 + (b & 0x1F)
        elif b in _FIXED_SIZE:
            i += _FIXED_SIZE[b]
        elif b in _LENGTH_WIDTH:
            w = _LENGTH_WIDTH[b]
            i += 1 + w + int.from_bytes(buf[i + 1 : i + 1 + w], "big")
        elif b in _EXT_WIDTH:
            w = _EXT_WIDTH[b]
            formats.append(False)
            i += 2 + w + int.from_bytes(buf[i + 1 : i + 1 + w], "big")
        else:
            formats.append(True)
            i += 2 + _FIXEXT_SIZE[b]
    return formats


_JS_DATE_LIMIT: Final = 8_640_000_000_000_000  # ms either side of the epoch (ECMA-262 21.4.1.1)
_EPOCH_ORDINAL: Final = _dt.date(1970, 1, 1).toordinal()


def _js_date_iso(data: bytes) -> str:
    """notepack.io's Date (fixext 8: int32 high, uint32 low, ms) as ``Date.toISOString()``."""
    ms = int.from_bytes(data[:4], "big", signed=True) * 2**32 + int.from_bytes(data[4:], "big")
    if not -_JS_DATE_LIMIT <= ms <= _JS_DATE_LIMIT:
        raise SocketIOProtocolError("Date out of range")
    days, ms = divmod(ms, 86_400_000)
    cycles, day = divmod(days + _EPOCH_ORDINAL - 1, 146_097)  # 400 Gregorian years
    date = _dt.date.fromordinal(day + 1)
    year = date.year + 400 * cycles
    y = f"{year:04d}" if 0 <= year <= 9999 else f"{'+' if year > 0 else '-'}{abs(year):06d}"
    seconds, ms = divmod(ms, 1000)
    return (
        f"{y}-{date.month:02d}-{date.day:02d}T{seconds // 3600:02d}:"
        f"{seconds // 60 % 60:02d}:{seconds % 60:02d}.{ms:03d}Z"
    )


def _ext_value(code: int, data: bytes, fixext: bool | None) -> Any:
    if code != 0:
        raise SocketIOProtocolError(f"unsupported msgpack extension type {code}")
    if fixext is None and len(data) in _FIXEXT_LENGTHS:
        raise _AmbiguousExt
    if not fixext:
        return data  # a Node ArrayBuffer or typed array
    if len(data) == 1:
        return _UNDEFINED
    if len(data) == 8:
        return _js_date_iso(data)
    raise SocketIOProtocolError(f"unsupported msgpack fixext of {len(data)} bytes")


def _first_pass_ext(code: int, data: bytes) -> Any:
    return _ext_value(code, data, None)


def _replace_surrogate(error: UnicodeError) -> tuple[str | bytes, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    # bytes: the UTF-8 encoder takes only ASCII str replacements
    return "\ufffd".encode() * (error.end - error.start), error.end


# A lone surrogate goes out as U+FFFD, as Buffer.from and TextEncoder write it (notepack.io itself
# pairs it with the next character, which corrupts both).
_SURROGATE_ERRORS: Final = "sioserver.surrogate-to-fffd"
codecs.register_error(_SURROGATE_ERRORS, _replace_surrogate)


class MsgpackParser:
    """The msgpack Socket.IO parser (npm socket.io-msgpack-parser 3.x, notepack.io inside)."""

    name: ClassVar[str] = "msgpack"

    def __init__(
        self,
        *,
        max_depth: int = DEFAULT_MAX_DEPTH,
        max_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        import msgpack  # noqa: PLC0415 - proto/ stays standard-library only unless msgpack is chosen

        _check_limits(max_depth=max_depth, max_size=max_size)
        self.max_depth = max_depth
        self.max_size = max_size
        self._msgpack = msgpack
        self._packer = msgpack.Packer(use_bin_type=True, autoreset=True)
        self._lenient_packer = msgpack.Packer(use_bin_type=True, autoreset=True, unicode_errors=_SURROGATE_ERRORS)

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
        try:
            try:
                return (self._packer.pack(obj),)
            except UnicodeEncodeError:  # lone surrogates: UTF-8 cannot hold them
                return (self._lenient_packer.pack(obj),)
        except OverflowError as exc:
            raise ValueError(f"integer out of msgpack range: {exc}") from None

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


# Keys are checked by _clean, with a clearer message. Invalid UTF-8 becomes U+FFFD, as Node's
# Buffer.toString (notepack.io) reads it.
_UNPACK_OPTIONS: Final[dict[str, Any]] = {"strict_map_key": False, "unicode_errors": "replace"}


class MsgpackPacketDecoder:
    """Decodes socket.io-msgpack-parser packets: one binary message each, nothing pending."""

    __slots__ = ("_max_depth", "_max_size", "_unpackb")

    pending: Final = False

    def __init__(self, parser: MsgpackParser) -> None:
        self._max_depth = parser.max_depth
        self._max_size = parser.max_size
        self._unpackb = parser._msgpack.unpackb

    def reset(self) -> None:
        pass

    def feed(self, message: str | bytes) -> Packet | None:
        if message.__class__ is str:
            raise SocketIOProtocolError("text message: the msgpack parser expects binary")
        if not isinstance(message, _BYTES_LIKE):
            raise TypeError(f"expected str or bytes, not {type(message).__name__}")
        if len(message) > self._max_size:
            raise SocketIOProtocolError(f"packet larger than max_size={self._max_size}")
        raw = message if message.__class__ is bytes else bytes(message)
        try:
            try:
                obj = self._unpackb(raw, ext_hook=_first_pass_ext, **_UNPACK_OPTIONS)
            except _AmbiguousExt:
                formats = iter(_ext_formats(raw))

                def resolve(code: int, data: bytes) -> Any:
                    return _ext_value(code, data, next(formats, False))

                obj = self._unpackb(raw, ext_hook=resolve, **_UNPACK_OPTIONS)
        except SocketIOProtocolError:
            raise
        except Exception as exc:  # the unpacker's many errors: all mean a malformed message
            raise SocketIOProtocolError(f"invalid msgpack: {type(exc).__name__}") from None
        if obj.__class__ is not dict:
            raise SocketIOProtocolError("msgpack packet must be a map")
        ptype = obj.get("type")
        if ptype.__class__ is not int or not CONNECT <= ptype <= CONNECT_ERROR:
            raise SocketIOProtocolError(f"unknown packet type {ptype!r}")
        nsp = obj.get("nsp")
        if nsp.__class__ is not str or not nsp.startswith("/"):
            raise SocketIOProtocolError("namespace must be a string starting with '/'")
        pid = obj.get("id")
        if pid is _UNDEFINED:
            pid = None
        elif pid is not None and (pid.__class__ is not int or not 0 <= pid <= MAX_ACK_ID):
            raise SocketIOProtocolError("ack id out of range")
        data = obj.get("data")
        if data is _UNDEFINED:
            data = None
        elif data.__class__ is list or data.__class__ is dict:
            self._clean(data, 1)
        ptype = PacketType(ptype)
        error = _incoming_error(ptype, data, pid)
        if error is not None:
            raise SocketIOProtocolError(error)
        return Packet(ptype, nsp, data, pid)

    def _clean(self, obj: Any, depth: int) -> None:
        """Check depth, keys and types; ``undefined`` -> None in arrays, gone from maps."""
        if depth > self._max_depth:
            raise SocketIOProtocolError(f"data nested deeper than max_depth={self._max_depth}")
        if obj.__class__ is dict:
            undefined = []
            for key, value in obj.items():
                if key.__class__ is not str:
                    raise SocketIOProtocolError("msgpack map keys must be strings")
                kind = value.__class__
                if kind is list or kind is dict:
                    self._clean(value, depth + 1)
                elif value is _UNDEFINED:
                    undefined.append(key)
                elif kind not in _MSGPACK_SCALARS:
                    raise SocketIOProtocolError(f"unsupported msgpack value {kind.__name__}")
            for key in undefined:
                del obj[key]
            return
        for index, value in enumerate(obj):
            kind = value.__class__
            if kind is list or kind is dict:
                self._clean(value, depth + 1)
            elif value is _UNDEFINED:
                obj[index] = None
            elif kind not in _MSGPACK_SCALARS:
                raise SocketIOProtocolError(f"unsupported msgpack value {kind.__name__}")


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
