"""msgpack as notepack.io writes and reads it: the one codec behind the msgpack parser and the Redis wire.

Versions matched (each checked against the package's source and, in the test suite, its bytes):

* **notepack.io 2.2.0**, inside **socket.io-msgpack-parser 3.0.2** (the msgpack parser of socket.io-client
  and of the socket.io server 4.x): :data:`SOCKET_IO_MSGPACK_PARSER`.
* **notepack.io 3.0.1**, inside **@socket.io/redis-adapter 8.3** and **@socket.io/redis-emitter 5.1**:
  :data:`REDIS_ADAPTER`.

What a Node peer writes, and what :meth:`Codec.unpack` makes of it:

==========================  ============================  ===============================  ==================
JavaScript value            notepack.io 2.2 writes        notepack.io 3.0 writes           read here as
==========================  ============================  ===============================  ==================
``undefined``               fixext 1, type 0 (d4 00 00)   nil in arrays, key left out      None in arrays,
                                                          of objects                       key left out of maps
``Date``                    fixext 8, type 0: int32 high  timestamp (ext -1: 32, 64 or     the ISO string
                            + uint32 low milliseconds     96 bits)                         ``JSON.stringify`` writes
``ArrayBuffer``, typed      ext 8/16/32, type 0           bin                              bytes
array
``Buffer``                  bin                           bin                              bytes
==========================  ============================  ===============================  ==================

Both decoders read every row of the 2.2 column (3.0 keeps them "for backward-compatibility"); only 3.0
reads timestamps. So :data:`REDIS_ADAPTER` reads timestamps as dates, and :data:`SOCKET_IO_MSGPACK_PARSER`
refuses them, as it refuses every other extension type: socket.io-msgpack-parser would hand a handler
``[-1, <Buffer>]``, which no handler expects. A date outside JavaScript's range (+/-8.64e15 ms, ECMA-262
21.4.1.1) cannot come from a JavaScript peer and is refused.

:meth:`Codec.pack` writes what both versions read the same way: ``str`` as str, bytes-like as ``bin``,
integers in the smallest format, floats as float 64. A lone surrogate (which UTF-8 cannot hold) goes out as
U+FFFD, as ``Buffer.from`` writes it (notepack.io itself pairs it with the next character, corrupting both).
Invalid UTF-8 is read as U+FFFD, as Node's ``Buffer.toString`` reads it.

The ``msgpack`` package (its C extension) does the bytes; it is imported when the first :class:`Codec` is
made, so importing this module costs nothing to those who never use msgpack. Each codec has packers of its
own: use one per thread.
"""

from __future__ import annotations

import codecs
import datetime as _dt
from collections.abc import Callable
from typing import Any, Final

__all__ = [
    "REDIS_ADAPTER",
    "SOCKET_IO_MSGPACK_PARSER",
    "SURROGATE_ERRORS",
    "Codec",
    "Dialect",
    "NotepackError",
    "js_date_iso",
]


class NotepackError(ValueError):
    """Malformed msgpack, or a value notepack.io would not have written. The message is safe to log."""


class Dialect:
    """Which notepack.io a peer runs: ``name`` for logs, ``timestamps`` whether ext -1 is a Date."""

    __slots__ = ("name", "timestamps")

    def __init__(self, name: str, *, timestamps: bool) -> None:
        self.name = name
        self.timestamps = timestamps

    def __repr__(self) -> str:
        return f"Dialect({self.name!r})"


SOCKET_IO_MSGPACK_PARSER: Final = Dialect("socket.io-msgpack-parser 3.0.2 (notepack.io 2.2.0)", timestamps=False)
REDIS_ADAPTER: Final = Dialect("@socket.io/redis-adapter 8.3 (notepack.io 3.0.1)", timestamps=True)


# --- dates ------------------------------------------------------------------------------------------

_JS_DATE_LIMIT: Final = 8_640_000_000_000_000  # ms either side of the epoch (ECMA-262 21.4.1.1)
_EPOCH_ORDINAL: Final = _dt.date(1970, 1, 1).toordinal()


def js_date_iso(ms: int) -> str:
    """``new Date(ms).toISOString()``, years past 9999 and before 0 included (``+010000``, ``-000001``).

    Raises NotepackError outside JavaScript's range of dates.
    """
    if not -_JS_DATE_LIMIT <= ms <= _JS_DATE_LIMIT:
        raise NotepackError("Date out of range")
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


def _timestamp_iso(seconds: int, nanoseconds: int) -> str:
    # notepack.io 3: new Date(s * 1e3 + ns / 1e6); the Date constructor truncates towards zero
    total = seconds * 1_000_000_000 + nanoseconds
    ms = total // 1_000_000 if total >= 0 else -(-total // 1_000_000)
    return js_date_iso(ms)


# --- extensions ---------------------------------------------------------------------------------------


class _Undefined:
    """JavaScript's ``undefined`` as notepack.io 2 writes it (fixext 1, type 0), until resolved."""

    __slots__ = ()


_UNDEFINED: Final = _Undefined()


class _AmbiguousExt(Exception):
    """An ext type 0 of a fixext length: fixext (undefined, Date) or ext 8 (a typed array)? The unpacker's
    hook is not told, so such a message is unpacked again knowing which (see _ext_formats)."""


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


def _ext_value(code: int, data: bytes, fixext: bool | None) -> Any:
    """notepack.io's type-0 extensions; ``fixext`` None means "not known yet"."""
    if code != 0:
        raise NotepackError(f"unsupported msgpack extension type {code}")
    if fixext is None and len(data) in _FIXEXT_LENGTHS:
        raise _AmbiguousExt
    if not fixext:
        return data  # an ArrayBuffer or typed array (notepack.io 2)
    if len(data) == 1:
        return _UNDEFINED
    if len(data) == 8:
        return js_date_iso(int.from_bytes(data[:4], "big", signed=True) * 2**32 + int.from_bytes(data[4:], "big"))
    raise NotepackError(f"unsupported msgpack fixext of {len(data)} bytes")


def _first_pass_ext(code: int, data: bytes) -> Any:
    return _ext_value(code, data, None)


def _replace_surrogate(error: UnicodeError) -> tuple[str | bytes, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    # bytes: the UTF-8 encoder takes only ASCII str replacements
    return "\ufffd".encode() * (error.end - error.start), error.end


#: the codecs error handler that writes a lone surrogate as U+FFFD (for encoding only)
SURROGATE_ERRORS: Final = "sioserver.notepack.surrogate-to-fffd"
codecs.register_error(SURROGATE_ERRORS, _replace_surrogate)

_UNPACK_OPTIONS: Final[dict[str, Any]] = {"strict_map_key": False, "unicode_errors": "replace"}


# --- the codec --------------------------------------------------------------------------------------


class Codec:
    """Packs and unpacks msgpack as a peer running ``dialect`` writes and reads it."""

    __slots__ = ("_lenient_pack", "_pack", "_timestamp_type", "_unpackb", "dialect")

    def __init__(self, dialect: Dialect = SOCKET_IO_MSGPACK_PARSER) -> None:
        import msgpack  # noqa: PLC0415 - only those who use msgpack pay for its import

        self.dialect = dialect
        self._pack: Callable[[Any], bytes] = msgpack.Packer(use_bin_type=True, autoreset=True).pack
        self._lenient_pack: Callable[[Any], bytes] = msgpack.Packer(
            use_bin_type=True, autoreset=True, unicode_errors=SURROGATE_ERRORS
        ).pack
        self._unpackb: Callable[..., Any] = msgpack.unpackb
        self._timestamp_type: Any = msgpack.Timestamp

    def pack(self, obj: Any) -> bytes:
        """``obj`` as msgpack. Raises ValueError for an integer msgpack cannot hold (beyond 64 bits) and
        TypeError for a value it cannot write."""
        try:
            try:
                return self._pack(obj)
            except UnicodeEncodeError:  # lone surrogates: UTF-8 cannot hold them
                return self._lenient_pack(obj)
        except OverflowError as exc:
            raise ValueError(f"integer out of msgpack range: {exc}") from None

    def unpack(self, data: bytes) -> Any:
        """One msgpack value, as the table above says. Raises NotepackError on anything malformed,
        on trailing bytes and on extensions the dialect does not know."""
        unpackb = self._unpackb
        undefined = False
        try:
            try:
                obj = unpackb(data, ext_hook=_first_pass_ext, **_UNPACK_OPTIONS)
            except _AmbiguousExt:
                formats = iter(_ext_formats(data))
                seen: list[bool] = []

                def resolve(code: int, payload: bytes) -> Any:
                    value = _ext_value(code, payload, next(formats, False))
                    if value is _UNDEFINED:
                        seen.append(True)
                    return value

                obj = unpackb(data, ext_hook=resolve, **_UNPACK_OPTIONS)
                undefined = bool(seen)
        except NotepackError:
            raise
        except Exception as exc:  # the unpacker's many errors: all mean a malformed message
            raise NotepackError(f"invalid msgpack: {type(exc).__name__}") from None
        # A timestamp (ext -1) has 0xff as its type byte: without one there is none to look for.
        if undefined or b"\xff" in data:
            obj = self._resolve(obj)
        return obj

    def _resolve(self, obj: Any) -> Any:
        """Replace ``undefined`` (None in arrays, gone from maps) and timestamps, without recursion
        (msgpack nests up to 1024 deep)."""
        timestamp = self._timestamp_type
        convert = self.dialect.timestamps

        def value_of(value: Any) -> Any:
            if value is _UNDEFINED:
                return None
            if value.__class__ is timestamp:
                if not convert:
                    raise NotepackError("unsupported msgpack extension type -1 (timestamp)")
                return _timestamp_iso(value.seconds, value.nanoseconds)
            return value

        top = value_of(obj)
        stack = [top]
        while stack:
            container = stack.pop()
            if container.__class__ is dict:
                gone = [key for key, value in container.items() if value is _UNDEFINED]
                for key in gone:
                    del container[key]
                for key, value in container.items():
                    kind = value.__class__
                    if kind is dict or kind is list:
                        stack.append(value)
                    elif kind is timestamp:
                        container[key] = value_of(value)
            elif container.__class__ is list:
                for index, value in enumerate(container):
                    kind = value.__class__
                    if kind is dict or kind is list:
                        stack.append(value)
                    elif value is _UNDEFINED or kind is timestamp:
                        container[index] = value_of(value)
        return top
