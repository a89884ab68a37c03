"""Bytes on the Redis wire, as the Node packages write them.

* @socket.io/redis-adapter 8.x, classic mode: broadcasts are msgpack ``[uid, packet, opts]``;
  requests and responses are JSON objects with a numeric ``type`` (:class:`RequestType`), except
  BROADCAST and BROADCAST_ACK, which are msgpack maps. A message is JSON when its first byte is ``{``.
* The sharded mode (``createShardedAdapter``) speaks socket.io-adapter's ClusterAdapter format:
  ``{"type", "data", "uid", "nsp"}`` (:class:`~sioserver.adapters.cluster.MessageType`), JSON unless
  the data holds binary.
* @socket.io/redis-emitter 5.x: the classic broadcast and request formats with uid ``"emitter"``.

JSON is written as ``JSON.stringify`` writes it (compact, non-ASCII kept, NaN -> null, a Buffer as
``{"type":"Buffer","data":[..]}``); msgpack as notepack.io writes it (binary as ``bin``), through
:mod:`sioserver.proto.socketio.notepack`: notepack.io's dates (JavaScript ``Date``) come back as the ISO
string ``JSON.stringify`` would have given, ``undefined`` as absent.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Iterable, Mapping
from enum import IntEnum
from typing import Any, Final

from ..proto.socketio.notepack import REDIS_ADAPTER, Codec
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


# One notepack.io-compatible codec for every msgpack byte the Redis adapter and the emitter write or read:
# proto.socketio.notepack, in the dialect of @socket.io/redis-adapter 8.3 (notepack.io 3.0.1).
_CODEC: Final = Codec(REDIS_ADAPTER)


def pack(obj: Any) -> bytes:
    """msgpack as notepack.io reads it: bytes-like values as ``bin``, str as ``str``."""
    return _CODEC.pack(obj)


def unpack(data: bytes) -> Any:
    """Decode notepack.io's msgpack. Raises ``ValueError`` on anything malformed."""
    return _CODEC.unpack(data)


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
