"""The default Socket.IO wire format, that of the npm package socket.io-parser 4.x:
``<type>[<attachments>-][<nsp>,][<id>][<JSON>]``, with binary attachments as messages of their own.
See the package docstring for the decisions taken where the spec is silent.
"""

from __future__ import annotations

import json as _stdjson
import math
import re
from collections.abc import Callable
from typing import Any, ClassVar, Final

from ...exceptions import ConfigurationError, SocketIOProtocolError
from .packet import (
    _BASE_TYPE,
    _BYTES_LIKE,
    _CONTAINER,
    _DIGIT,
    _ID_DIGITS,
    _TYPE_BY_CHAR,
    ACK,
    BINARY_EVENT,
    DEFAULT_MAX_ATTACHMENTS,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_SIZE,
    EVENT,
    MAX_ACK_ID,
    RESERVED_EVENTS,
    Encoded,
    JSONModule,
    Packet,
    _check_limits,
    _check_outgoing,
    _incoming_error,
    _is_digits,
    _tuple_new,
)

__all__ = ["JSONPacketDecoder", "JSONParser"]


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
    refuses is walked for bytes and tried again; what it still refuses (integers past 64 bits,
    non-string keys) is written by the standard library, and JSON it cannot read (a lone surrogate
    escape, a number past a double) is read by the standard library, so that orjson changes nothing a
    client sees.
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
        if packet.type is ACK and self._orjson_dumps is not None:  # an ack in the main namespace, by orjson
            _, nsp, data, pid, _ = packet
            if nsp == "/" and data.__class__ is list and pid.__class__ is int and 0 <= pid <= MAX_ACK_ID:
                try:
                    written = self._orjson_dumps(data)
                except TypeError:
                    pass  # bytes, or what orjson refuses: the general path below
                else:
                    body = written.decode() if isinstance(written, bytes) else written  # (orjson: no lone surrogate)
                    depth = self.max_depth
                    if len(body) <= depth or body.count("[") + body.count("{") <= depth:
                        return ("3%d%s" % (pid, body),)
        ptype = _BASE_TYPE.get(packet.type)
        if ptype is None:
            raise ValueError(f"unknown packet type {packet.type!r}")
        _, nsp, data, pid, _ = packet
        if not (ptype is ACK and data.__class__ is list and pid.__class__ is int and 0 <= pid <= MAX_ACK_ID
                and nsp.__class__ is str and nsp[:1] == "/"):  # an ack is checked here, one call less
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
                portable = self._portable(data, buffers, 0)
                try:
                    out = self._custom.dumps(portable)
                except TypeError:
                    if self._orjson_dumps is None:
                        raise
                    # what orjson refuses and JavaScript reads (integers past 64 bits, non-string keys):
                    # the standard library writes it as JSON.stringify would have sent the number
                    out = _stdlib_dumps(portable)
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

    __slots__ = ("_buffers", "_fallback", "_loads", "_max_attachments", "_max_depth", "_max_size", "_partial")

    def __init__(self, parser: JSONParser) -> None:
        self._max_attachments = parser.max_attachments
        self._max_depth = parser.max_depth
        self._max_size = parser.max_size
        self._loads = None if parser._custom is None else parser._custom.loads
        self._fallback = parser._orjson_dumps is not None  # orjson: what it refuses, the stdlib reads
        self._partial: Packet | None = None  # a binary packet waiting for its attachments
        self._buffers: list[bytes] = []

    @property
    def pending(self) -> bool:
        return self._partial is not None

    def reset(self) -> None:
        self._partial = None
        self._buffers = []

    def feed(self, message: str | bytes) -> Packet | None:
        if message.__class__ is not str:
            return self._feed_binary(message)
        if self._partial is not None:
            raise SocketIOProtocolError("text message while binary attachments are pending")
        s = message
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
            loads = self._loads
            if loads is not None:
                try:
                    data = loads(s[i:])
                except Exception:
                    if not self._fallback:
                        raise SocketIOProtocolError("invalid JSON payload") from None
                    # orjson refuses some JSON that JSON.stringify writes (a lone surrogate "\\ud800",
                    # 1e400): the standard library decides
                    loads = None
            if loads is None:
                try:
                    data, end = _stdlib_scan(s, i)
                except (StopIteration, ValueError, RecursionError):
                    raise SocketIOProtocolError("invalid JSON payload") from None
                if end != n and s[end:].strip(" \t\n\r"):
                    raise SocketIOProtocolError("data after the JSON payload")
        # the common case, an EVENT named by a string that is not reserved, checked here (one call less);
        # everything else as _incoming_error says
        if not (ptype is EVENT and data.__class__ is list and data and data[0].__class__ is str
                and data[0] not in RESERVED_EVENTS):
            error = _incoming_error(ptype, data, pid)
            if error is not None:
                raise SocketIOProtocolError(error)
        if attachments:
            self._partial = Packet(ptype, nsp, data, pid, attachments)
            return None
        return _tuple_new(Packet, (ptype, nsp, data, pid, 0))  # Packet(ptype, nsp, data, pid), one call less


    def _feed_binary(self, message: str | bytes) -> Packet | None:
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
