"""Bytes on the Redis wire, as the Node packages write them.

* @socket.io/redis-adapter 8.x, classic mode: broadcasts are msgpack ``[uid, packet, opts]``;
  requests and responses are JSON objects with a numeric ``type`` (:class:`RequestType`), except
  BROADCAST and BROADCAST_ACK, which are msgpack maps. A message is JSON when its first byte is ``{``.
* The sharded mode (``createShardedAdapter``) speaks socket.io-adapter's ClusterAdapter format:
  ``{"type", "data", "uid", "nsp"}`` (:class:`~sioserver.adapters.cluster.MessageType`), JSON unless
  the data holds binary.
* @socket.io/redis-emitter 5.x: the classic broadcast and request formats with uid ``"emitter"``.

JSON is written as ``JSON.stringify`` writes it (compact, non-ASCII kept, NaN -> null, a Buffer as
``{"type":"Buffer","data":[..]}``); msgpack as notepack.io writes it (binary as ``bin``). notepack.io's
timestamps (JavaScript ``Date``) come back as the ISO string ``JSON.stringify`` would have given.
"""

from __future__ import annotations

import codecs
import datetime as _dt
import json
import math
import secrets
from collections.abc import Iterable, Mapping
from enum import IntEnum
from typing import Any, Final

import msgpack

from ..server.adapter import BroadcastOptions

__all__ = [
    "EMITTER_UID",
    "RequestType",
    "decode",
    "glob_escape",
    "has_binary",
    "json_bytes",
    "new_id",
    "options_from_wire",
    "pack",
    "unpack",
    "wire_flags",
    "wire_options",
]

EMITTER_UID: Final = "emitter"


class RequestType(IntEnum):
    """Classic mode: the ``type`` of a request (and of some responses)."""

    SOCKETS = 0
    ALL_ROOMS = 1
    REMOTE_JOIN = 2
    REMOTE_LEAVE = 3
    REMOTE_DISCONNECT = 4
    REMOTE_FETCH = 5
    SERVER_SIDE_EMIT = 6
    BROADCAST = 7
    BROADCAST_CLIENT_COUNT = 8
    BROADCAST_ACK = 9


def new_id(length: int = 6) -> str:
    """A random id from the URL-safe alphabet, like the uid2 npm package the adapter uses."""
    return secrets.token_urlsafe(length)[:length]


def glob_escape(text: str) -> str:
    """``text`` as a literal inside a Redis glob pattern (a namespace may hold ``*``, ``?`` or ``[``)."""
    out = []
    for ch in text:
        if ch in "\\*?[]":
            out.append("\\")
        out.append(ch)
    return "".join(out)


# ------------------------------------------------------------------------------------------ JSON


class _Unsendable(Exception):
    pass


def _buffer_json(obj: Any) -> Any:
    """What ``JSON.stringify`` makes of a Node Buffer, for bytes-like values (strict mode)."""
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"type": "Buffer", "data": list(bytes(obj))}
    raise TypeError(f"Object of type {type(obj).__name__} cannot be sent to other servers")


def _lenient_json(obj: Any) -> Any:
    """As :func:`_buffer_json`, but whatever JSON cannot hold becomes ``null`` (as a JS function does)."""
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"type": "Buffer", "data": list(bytes(obj))}
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    return None


def _finite(obj: Any) -> Any:
    """NaN and +/-Infinity -> None, as ``JSON.stringify`` writes them (only called when some are there)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def json_bytes(obj: Any, *, lenient: bool = False) -> bytes:
    """Compact UTF-8 JSON, as ``JSON.stringify`` writes it.

    Bytes become ``{"type":"Buffer","data":[..]}``. Other values JSON cannot hold raise ``TypeError``,
    or become ``null`` with ``lenient`` (for answers that must go out whatever they hold).
    """
    default = _lenient_json if lenient else _buffer_json
    try:
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=default)
    except ValueError as exc:
        if "Out of range float" not in str(exc) and "not JSON compliant" not in str(exc):
            raise
        text = json.dumps(_finite(obj), separators=(",", ":"), ensure_ascii=False, default=default)
    try:
        return text.encode()
    except UnicodeEncodeError:  # lone surrogates: escape them, as JSON.stringify does
        return json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=True).encode()


# --------------------------------------------------------------------------------------- msgpack


def _surrogate_to_fffd(error: UnicodeError) -> tuple[str | bytes, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    return "\ufffd".encode() * (error.end - error.start), error.end


_SURROGATES: Final = "sioserver.adapters.surrogate-to-fffd"
codecs.register_error(_SURROGATES, _surrogate_to_fffd)
_PACKER: Final = msgpack.Packer(use_bin_type=True, autoreset=True)
_LENIENT_PACKER: Final = msgpack.Packer(use_bin_type=True, autoreset=True, unicode_errors=_SURROGATES)


def pack(obj: Any) -> bytes:
    """msgpack as notepack.io reads it: bytes-like values as ``bin``, str as ``str``."""
    try:
        try:
            return bytes(_PACKER.pack(obj))
        except UnicodeEncodeError:  # a lone surrogate goes out as U+FFFD, as Buffer.from writes it
            return bytes(_LENIENT_PACKER.pack(obj))
    except OverflowError as exc:
        raise ValueError(f"integer out of msgpack range: {exc}") from None


def _ext_hook(code: int, data: bytes) -> Any:
    # notepack.io < 3 wrote ``undefined`` as fixext 1 of type 0; other extensions: keep the bytes
    if code == 0 and len(data) == 1:
        return None
    return data


_JS_DATE_LIMIT_MS: Final = 8_640_000_000_000_000
_EPOCH: Final = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


def _iso(ts: msgpack.Timestamp) -> str:
    """A notepack.io Date, as ``Date.prototype.toISOString`` (what ``JSON.stringify`` sends)."""
    ms = ts.to_unix_nano() // 1_000_000
    try:
        moment = _EPOCH + _dt.timedelta(milliseconds=ms)
    except OverflowError:
        return str(ms) if abs(ms) <= _JS_DATE_LIMIT_MS else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _dates(obj: Any) -> Any:
    if isinstance(obj, msgpack.Timestamp):
        return _iso(obj)
    if isinstance(obj, dict):
        return {k: _dates(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_dates(v) for v in obj]
    return obj


def unpack(data: bytes) -> Any:
    """Decode notepack.io's msgpack. Raises ``ValueError`` on anything malformed."""
    try:
        obj = msgpack.unpackb(
            data, raw=False, strict_map_key=False, unicode_errors="replace", ext_hook=_ext_hook, timestamp=0
        )
    except Exception as exc:  # the unpacker's many errors all mean "malformed"
        raise ValueError(f"invalid msgpack: {type(exc).__name__}: {exc}") from None
    if b"\xff" in data:  # a timestamp extension has type -1 (0xff): only then look for dates
        obj = _dates(obj)
    return obj


def decode(data: bytes) -> Any:
    """A request, response or cluster message: JSON when it starts with ``{``, msgpack otherwise."""
    if data[:1] == b"{":
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"invalid JSON: {exc}") from None
    return unpack(data)


def has_binary(obj: Any, depth: int = 0) -> bool:
    """Whether bytes-like values hide anywhere in ``obj`` (the sharded mode then uses msgpack)."""
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return True
    if depth > 64:
        return False
    if isinstance(obj, dict):
        return any(has_binary(v, depth + 1) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(has_binary(v, depth + 1) for v in obj)
    return False


# --------------------------------------------------------------------------------------- options


def wire_flags(opts: BroadcastOptions, timeout: float | None = None) -> dict[str, Any]:
    """The ``flags`` object of the Node broadcast operator: only what differs from the defaults."""
    flags = dict(opts.flags)
    if opts.volatile:
        flags["volatile"] = True
    if not opts.compress:
        flags["compress"] = False
    if timeout is not None:
        flags["timeout"] = round(timeout * 1000)
    return flags


def wire_options(opts: BroadcastOptions, flags: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"rooms": [..], "except": [..]}`` plus ``"flags"`` when given."""
    # sets have no order; sorted, the bytes are the same on every run (Node keeps insertion order)
    out: dict[str, Any] = {"rooms": sorted(opts.rooms), "except": sorted(opts.except_rooms)}
    if flags is not None:
        out["flags"] = flags
    return out


def _room_names(rooms: Any) -> Iterable[str]:
    if not isinstance(rooms, list):
        return ()
    # Node rooms may be numbers; their string form is what a sioserver room would be called
    return (r if isinstance(r, str) else json.dumps(r) for r in rooms if r is not None)


def options_from_wire(raw: Any) -> BroadcastOptions:
    """Broadcast options from their wire form (unknown keys ignored, missing ones defaulted)."""
    if not isinstance(raw, Mapping):
        return BroadcastOptions()
    flags = raw.get("flags")
    if not isinstance(flags, Mapping):
        flags = {}
    timeout = flags.get("timeout")
    return BroadcastOptions(
        rooms=frozenset(_room_names(raw.get("rooms"))),
        except_rooms=frozenset(_room_names(raw.get("except"))),
        volatile=bool(flags.get("volatile", False)),
        compress=flags.get("compress", True) is not False,
        timeout=timeout / 1000 if isinstance(timeout, (int, float)) and timeout > 0 else None,
    )
