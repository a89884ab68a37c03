"""The wire of ``@socket.io/redis-streams-adapter`` 0.3: stream entries, offsets and stored sessions.

* A stream entry is the fields ``uid``, ``nsp``, ``type`` (decimal) and, when the message has data, ``data``:
  ``JSON.stringify`` of it, or the base64 of its msgpack when the data of a broadcast or an answer holds binary.
* Requests (``FETCH_SOCKETS``, ``SERVER_SIDE_EMIT``, broadcasts with acks) are *ephemeral*: msgpack over
  Pub/Sub, as are the answers.
* An offset is an entry id (``<ms>-<seq>``); a stored session is the base64 of msgpack ``{sid, pid, rooms, data}``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from ._wire import has_binary, json_bytes, pack, unpack
from .cluster import MAY_HOLD_BINARY, ClusterMessage, MessageType

__all__ = [
    "RESTORE_MAX_XRANGE_CALLS",
    "RESTORE_XRANGE_COUNT",
    "decode_entry",
    "decode_session",
    "encode_entry",
    "entry_size",
    "id_key",
    "is_ephemeral",
    "is_offset",
    "message_label",
    "next_offset",
    "pack_lenient",
]

def is_ephemeral(message: ClusterMessage) -> bool:
    """What the Node package sends over Pub/Sub instead of the stream (``isEphemeral``)."""
    kind = message.get("type")
    if kind == MessageType.BROADCAST:
        data = message.get("data")
        return isinstance(data, dict) and data.get("requestId") is not None
    return kind in (MessageType.SERVER_SIDE_EMIT, MessageType.FETCH_SOCKETS)


def encode_entry(message: ClusterMessage, *, lenient: bool = False) -> dict[str, str]:
    """A message as the fields of a stream entry (``RedisStreamsAdapter.encode`` of the Node package)."""
    kind = int(message["type"])
    fields = {"uid": str(message.get("uid")), "nsp": str(message.get("nsp")), "type": str(kind)}
    data = message.get("data")
    if data is not None:
        if kind in MAY_HOLD_BINARY and has_binary(data):
            fields["data"] = base64.b64encode(pack(data)).decode("ascii")
        else:
            fields["data"] = json_bytes(data, lenient=lenient).decode()
    return fields


def decode_entry(fields: dict[str, str]) -> ClusterMessage:
    """The message of a stream entry; ``ValueError`` when it is not one."""
    try:
        kind = int(fields.get("type", ""), 10)
    except ValueError:
        raise ValueError(f"no message type in {sorted(fields)}") from None
    message: ClusterMessage = {"uid": fields.get("uid"), "nsp": fields.get("nsp"), "type": kind}
    raw = fields.get("data")
    if raw:
        if raw.startswith("{"):
            message["data"] = json.loads(raw)
        else:
            try:
                message["data"] = unpack(base64.b64decode(raw, validate=True))
            except binascii.Error as exc:
                raise ValueError(f"invalid base64: {exc}") from None
    return message


_OFFSET = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")


def is_offset(value: str) -> bool:
    """Whether a client's offset looks like an entry id (the Node package's check)."""
    return _OFFSET.fullmatch(value) is not None

RESTORE_MAX_XRANGE_CALLS = 100  # as the Node package's RESTORE_SESSION_MAX_XRANGE_CALLS
RESTORE_XRANGE_COUNT = 1000


def id_key(entry_id: str) -> tuple[int, int]:
    """A stream id as a comparable pair (``"1700000000000-3"`` -> ``(1700000000000, 3)``)."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def next_offset(entry_id: str) -> str:
    """The smallest id after ``entry_id`` (an exclusive XRANGE start that Redis < 6.2 understands too)."""
    ms, seq = id_key(entry_id)
    return f"{ms}-{seq + 1}"


def entry_size(fields: dict[str, str]) -> int:
    return sum(len(k) + len(v) for k, v in fields.items())


def pack_lenient(message: ClusterMessage) -> bytes:
    """msgpack of an answer; what msgpack cannot hold becomes what JSON would make of it (or null)."""
    try:
        return pack(message)
    except (TypeError, ValueError):
        return pack(json.loads(json_bytes(message, lenient=True)))


def decode_session(raw: str | None, pid: str) -> tuple[str, list[str], Any] | None:
    """``(sid, rooms, data)`` of a stored session (base64 msgpack, as the Node package writes it)."""
    if raw is None:
        return None
    try:
        value = unpack(base64.b64decode(raw, validate=True))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(value, dict) or value.get("pid") != pid or not isinstance(value.get("sid"), str):
        return None
    rooms = value.get("rooms")
    return value["sid"], [r for r in rooms if isinstance(r, str)] if isinstance(rooms, list) else [], value.get("data")


def message_label(message: ClusterMessage) -> str:
    try:
        kind = MessageType(message["type"]).name
    except (KeyError, ValueError):
        kind = str(message.get("type"))
    return f"a {kind} message in {message.get('nsp')}"
