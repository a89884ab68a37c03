"""python-socketio's Redis channel format: task workers and mixed clusters keep working.

python-socketio's ``AsyncRedisManager`` / ``RedisManager`` (and every ``PubSubManager``) publish JSON
objects on one channel (``socketio`` by default), every server subscribed to it::

    {"method": "emit", "event": .., "data": [args], "binary": false, "namespace": "/", "room": ..,
     "skip_sid": .., "callback": null | [sid, namespace, ack_id], "host_id": ..}
    {"method": "callback", "host_id": <the emitter's>, "sid": .., "namespace": .., "id": .., "args": [..]}
    {"method": "disconnect" | "enter_room" | "leave_room", "sid": .., "room": .., "namespace": .., "host_id": ..}
    {"method": "close_room", "room": .., "namespace": .., "host_id": ..}

Binary arguments travel as ``"binary": true`` with ``data = [args with {"_placeholder": true, "num": i},
base64 of attachment 0, ..]``. Each server drops its own messages (its ``host_id``) except callbacks,
which are for the ``host_id`` they name.

:class:`AsyncRedisManager` speaks that format. As a server's adapter (``AsyncServer(adapter=
AsyncRedisManager(url))``) it delivers what python-socketio servers and write-only managers publish
to this server's clients, and publishes this server's broadcasts for theirs, so a cluster moves from
python-socketio to sioserver one process at a time. ``sio.call(to=sid)`` and ``emit(to=sid, callback=)``
reach a client of another server as python-socketio's callbacks across hosts do. With ``write_only=True``
it is an emitter for a process that serves no clients; :class:`RedisManager` is the same for synchronous
code (Celery, RQ).

What the format cannot say is done on this server only, with one warning per kind: ``exclude=``
rooms other than sids (python-socketio's ``skip_sid`` takes sids), acks from a broadcast
(``emit_with_ack``), ``fetch_sockets`` and ``all_rooms`` (this server's), ``server_side_emit`` and
joins, leaves and disconnects aimed at anything but one sid or one room.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigurationError
from ..proto.socketio import EVENT, Packet, answer_of, args_of
from ..server.acks import CallbackAck
from ..server.adapter import Adapter, BroadcastOptions
from ..server.protocols import AckHandler, AdapterNamespace
from ._link import Link, RedisLink
from ._resp import safe_url
from ._target import client_for

if TYPE_CHECKING:
    import redis

__all__ = ["AsyncRedisManager", "PubSubAdapter", "RedisManager"]

log = logging.getLogger("sioserver.redis")

_METHODS = frozenset(("emit", "callback", "disconnect", "enter_room", "leave_room", "close_room"))


# ------------------------------------------------------------------------------------- the format


def _deconstruct(data: Any, attachments: list[bytes]) -> Any:
    if isinstance(data, (bytes, bytearray, memoryview)):
        attachments.append(bytes(data))
        return {"_placeholder": True, "num": len(attachments) - 1}
    if isinstance(data, (list, tuple)):
        return [_deconstruct(item, attachments) for item in data]
    if isinstance(data, dict):
        return {key: _deconstruct(value, attachments) for key, value in data.items()}
    return data


def _reconstruct(data: Any, attachments: list[bytes]) -> Any:
    if isinstance(data, list):
        return [_reconstruct(item, attachments) for item in data]
    if isinstance(data, dict):
        if data.get("_placeholder") is True and isinstance(data.get("num"), int):
            return attachments[data["num"]]
        return {key: _reconstruct(value, attachments) for key, value in data.items()}
    return data


def _no_count(count: int) -> None:
    pass


def _room_field(rooms: Iterable[str] | str | None) -> str | list[str] | None:
    if rooms is None or isinstance(rooms, str):
        return rooms
    rooms = sorted(rooms)
    if not rooms:
        return None
    return rooms[0] if len(rooms) == 1 else rooms


def _rooms_of(value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset((value,))
    if isinstance(value, list):
        return frozenset(item for item in value if isinstance(item, str))
    return frozenset()


def emit_message(event: str, args: list[Any], namespace: str, room: str | list[str] | None,
                 skip_sid: str | list[str] | None, host_id: str,
                 callback: list[Any] | None = None) -> dict[str, Any]:
    """The ``emit`` message python-socketio's managers publish (``args`` is the argument list)."""
    attachments: list[bytes] = []
    data = _deconstruct(list(args), attachments)
    if attachments:
        data = [data, *(base64.b64encode(a).decode("ascii") for a in attachments)]
    return {"method": "emit", "event": event, "data": data, "binary": bool(attachments),
            "namespace": namespace, "room": room, "skip_sid": skip_sid, "callback": callback,
            "host_id": host_id}


def emit_args(message: dict[str, Any]) -> list[Any]:
    """The argument list of an ``emit`` message, as a python-socketio server would send it."""
    data = message.get("data")
    if message.get("binary"):
        if not isinstance(data, list) or not data:
            raise ValueError("binary emit without data")
        attachments = [base64.b64decode(a, validate=True) for a in data[1:]]
        data = _reconstruct(data[0], attachments)
    if not isinstance(data, list):
        raise ValueError(f"emit data is {type(data).__name__}, not a list")
    # python-socketio turns the list back into its data (one value or a tuple) before emitting
    return args_of(answer_of(data))


def _encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()


# ------------------------------------------------------------------------------------ the adapter


class _Member:
    """One server's link to Redis, its host id and its namespace adapters."""

    def __init__(self, link: Link) -> None:
        self.link = link
        self.host_id = secrets.token_hex(16)
        self.adapters: dict[str, PubSubAdapter] = {}


class AsyncRedisManager:
    """python-socketio's Redis manager, in sioserver: ``AsyncServer(adapter=AsyncRedisManager(url))``.

    Options as python-socketio's: ``url`` (``redis://``, ``rediss://``, ``unix://``), ``channel``
    (``"socketio"``: the same in every process), ``write_only`` (only publish, from a process that
    serves no clients), ``logger``, ``json`` (a module with ``dumps``/``loads`` for the messages),
    ``redis_options`` (keyword arguments for redis-py). Reconnects to Redis as
    :class:`~sioserver.RedisAdapter` does (its ``connect_timeout``... options are accepted too).

    Write-only use (a task worker)::

        manager = sioserver.AsyncRedisManager("redis://", write_only=True)
        await manager.emit("report", {"done": True}, room="user-42", namespace="/jobs")
    """

    name = "aioredis"

    def __init__(self, url: str = "redis://localhost:6379/0", channel: str = "socketio", write_only: bool = False,
                 logger: logging.Logger | None = None, json: Any = None,
                 redis_options: dict[str, Any] | None = None, **link_options: Any) -> None:
        if not isinstance(url, str) or "://" not in url:
            raise ValueError(f"AsyncRedisManager needs a redis:// URL, not {url!r}")
        unknown = set(link_options) - {"connect_timeout", "command_timeout", "reconnect_min_delay",
                                       "reconnect_max_delay", "health_check_interval", "max_queue",
                                       "max_queue_bytes", "max_queue_age", "resume_hold"}
        if unknown:
            raise ConfigurationError(f"AsyncRedisManager got an unknown option {sorted(unknown)[0]!r}")
        self.url = url
        self.channel = channel
        self.write_only = bool(write_only)
        self.logger = logger if isinstance(logger, logging.Logger) else log
        self.json = json
        self.redis_options = dict(redis_options or {})
        self.host_id = secrets.token_hex(16)
        self.stats: Counter[str] = Counter()
        self._link_options = link_options
        self._members: dict[object, _Member] = {}
        self._writer: Any = None
        self._warned: set[str] = set()

    def __repr__(self) -> str:
        mode = " write-only" if self.write_only else ""
        return f"<AsyncRedisManager{mode} {safe_url(self.url)} channel={self.channel!r}>"

    # ------------------------------------------------------------- as an adapter

    def __call__(self, namespace: AdapterNamespace) -> Adapter:
        if self.write_only:
            raise ConfigurationError("a write_only AsyncRedisManager publishes only; a server needs write_only=False")
        server = namespace.server
        member = self._members.get(server)
        if member is None or member.link._closing:
            link = RedisLink(self.url, logger=self.logger, stats=self.stats,
                             redis_options=self.redis_options, **self._link_options)
            member = self._members[server] = _Member(link)
            link.subscribe("sub", self.channel.encode(), lambda _channel, data: self._received(member, data))
        adapter = PubSubAdapter(namespace, self, member)
        member.adapters[namespace.name] = adapter
        return adapter

    @property
    def healthy(self) -> bool:
        members = list(self._members.values())
        return bool(members) and all(m.link.healthy for m in members)

    async def wait_ready(self, timeout: float = 5.0) -> bool:
        """Wait until every server's link is subscribed (False after ``timeout`` s)."""
        for member in list(self._members.values()):
            if not await member.link.wait_ready(timeout):
                return False
        return True

    def warn_once(self, what: str, detail: str) -> None:
        self.stats["not_expressible"] += 1
        if what not in self._warned:
            self._warned.add(what)
            self.logger.warning("AsyncRedisManager: %s cannot be said in python-socketio's channel format; %s "
                                "(logged once)", what, detail)

    def _dumps(self, message: dict[str, Any]) -> bytes:
        if self.json is not None:
            out = self.json.dumps(message)
            return out if isinstance(out, bytes) else str(out).encode()
        return _encode(message)

    def _loads(self, data: bytes) -> Any:
        return (self.json or json).loads(data)

    def publish(self, member: _Member, message: dict[str, Any]) -> None:
        self.stats["published"] += 1
        member.link.publish(self.channel.encode(), self._dumps(message))

    def _received(self, member: _Member, data: bytes) -> None:
        try:
            message = self._loads(data)
        except ValueError:
            message = None
        if not isinstance(message, dict) or message.get("method") not in _METHODS:
            self.stats["malformed"] += 1
            self.logger.debug("ignoring a message on %r that is not python-socketio's", self.channel)
            return
        self.stats["received"] += 1
        method = message["method"]
        if method == "callback":
            if message.get("host_id") != member.host_id:
                return
        elif message.get("host_id") == member.host_id:
            return  # our own, already handled here
        namespace = message.get("namespace") or "/"
        adapter = member.adapters.get(namespace) if isinstance(namespace, str) else None
        if adapter is None:
            return  # no client of this server is in that namespace
        try:
            adapter.handle(method, message)
        except Exception as exc:  # one bad message never stops the subscriber
            self.stats["handler_errors"] += 1
            self.logger.warning("AsyncRedisManager: cannot apply a %r message: %s", method, exc)

    async def _release(self, adapter: PubSubAdapter) -> None:
        member = adapter.member
        if member.adapters.get(adapter.namespace.name) is adapter:
            del member.adapters[adapter.namespace.name]
        if not member.adapters:
            for server, candidate in list(self._members.items()):
                if candidate is member:
                    del self._members[server]
            await member.link.close()

    async def close(self) -> None:
        """Close every adapter and connection (a server's shutdown does it for its namespaces)."""
        for member in list(self._members.values()):
            for adapter in list(member.adapters.values()):
                await adapter.close()
        if self._writer is not None:
            writer, self._writer = self._writer, None
            await writer.aclose()

    # ----------------------------------------------------------- write-only use

    async def _publish_now(self, message: dict[str, Any]) -> None:
        if self._writer is None:
            self._writer = client_for(self.url, self.redis_options, "AsyncRedisManager")
        self.stats["published"] += 1
        await self._writer.publish(self.channel, self._dumps(message))

    async def emit(self, event: str, data: Any = None, namespace: str | None = None, room: Any = None,
                   skip_sid: Any = None, callback: Callable[..., Any] | None = None, to: Any = None,
                   **kwargs: Any) -> None:
        """Emit to the clients of every server (python-socketio's signature; ``data`` a tuple for
        several arguments). Callbacks need a server: they are refused here, as in python-socketio."""
        if callback is not None:
            raise RuntimeError("Callbacks can only be issued from the context of a server.")
        await self._publish_now(emit_message(event, args_of(data), namespace or "/", _room_field(to or room),
                                             skip_sid, self.host_id))

    async def close_room(self, room: str, namespace: str | None = None) -> None:
        await self._publish_now({"method": "close_room", "room": room, "namespace": namespace or "/",
                                 "host_id": self.host_id})

    async def disconnect(self, sid: str, namespace: str | None = None, **kwargs: Any) -> None:
        await self._publish_now({"method": "disconnect", "sid": sid, "namespace": namespace or "/",
                                 "host_id": self.host_id})

    async def enter_room(self, sid: str, namespace: str | None, room: str, eio_sid: Any = None) -> None:
        await self._publish_now({"method": "enter_room", "sid": sid, "room": room,
                                 "namespace": namespace or "/", "host_id": self.host_id})

    async def leave_room(self, sid: str, namespace: str | None, room: str) -> None:
        await self._publish_now({"method": "leave_room", "sid": sid, "room": room,
                                 "namespace": namespace or "/", "host_id": self.host_id})


class RedisManager:
    """python-socketio's synchronous ``RedisManager(url, write_only=True)``: emit from Celery, RQ or cron."""

    name = "redis"

    def __init__(self, url: str = "redis://localhost:6379/0", channel: str = "socketio", write_only: bool = False,
                 logger: logging.Logger | None = None, json: Any = None,
                 redis_options: dict[str, Any] | None = None) -> None:
        if not write_only:
            raise ConfigurationError("sioserver is asyncio only: RedisManager is for write_only=True emitters; "
                                     "a server uses AsyncRedisManager")
        self.url = url
        self.channel = channel
        self.write_only = True
        self.logger = logger or log
        self.json = json
        self.redis_options = dict(redis_options or {})
        self.host_id = secrets.token_hex(16)
        self._redis: redis.Redis | None = None

    def _publish(self, message: dict[str, Any]) -> None:
        if self._redis is None:
            import redis as redis_sync  # noqa: PLC0415

            self._redis = redis_sync.Redis.from_url(self.url, **self.redis_options)
        payload = self.json.dumps(message) if self.json is not None else _encode(message)
        self._redis.publish(self.channel, payload)

    def emit(self, event: str, data: Any = None, namespace: str | None = None, room: Any = None,
             skip_sid: Any = None, callback: Callable[..., Any] | None = None, to: Any = None,
             **kwargs: Any) -> None:
        if callback is not None:
            raise RuntimeError("Callbacks can only be issued from the context of a server.")
        self._publish(emit_message(event, args_of(data), namespace or "/", _room_field(to or room), skip_sid,
                                   self.host_id))

    def close_room(self, room: str, namespace: str | None = None) -> None:
        self._publish({"method": "close_room", "room": room, "namespace": namespace or "/", "host_id": self.host_id})

    def disconnect(self, sid: str, namespace: str | None = None, **kwargs: Any) -> None:
        self._publish({"method": "disconnect", "sid": sid, "namespace": namespace or "/", "host_id": self.host_id})

    def enter_room(self, sid: str, namespace: str | None, room: str, eio_sid: Any = None) -> None:
        self._publish({"method": "enter_room", "sid": sid, "room": room, "namespace": namespace or "/",
                       "host_id": self.host_id})

    def leave_room(self, sid: str, namespace: str | None, room: str) -> None:
        self._publish({"method": "leave_room", "sid": sid, "room": room, "namespace": namespace or "/",
                       "host_id": self.host_id})

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
            self._redis = None


class PubSubAdapter(Adapter):
    """The adapter of one namespace on one server, in python-socketio's channel format."""

    def __init__(self, namespace: AdapterNamespace, factory: AsyncRedisManager, member: _Member) -> None:
        super().__init__(namespace)
        self.factory = factory
        self.member = member
        self._closed = False
        # emits with a callback to a client of another server: ack id -> (sid, handler, timer)
        self._remote_acks: dict[int, tuple[str, AckHandler, asyncio.TimerHandle | None]] = {}

    def __repr__(self) -> str:
        return f"<PubSubAdapter {self.namespace.name} host_id={self.member.host_id}>"

    @property
    def healthy(self) -> bool:
        return self.member.link.healthy

    async def init(self) -> None:
        self.member.link.ensure_running()

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            pending, self._remote_acks = self._remote_acks, {}
            for _, handler, timer in pending.values():
                if timer is not None:
                    timer.cancel()
                handler.fail("the adapter closed")
            await self.factory._release(self)

    def emit_with_callback(self, sid: str, event: str, args: list[Any], handler: AckHandler,
                           timeout: float | None) -> None:
        """An emit with a callback to ``sid``, a client of another server (python-socketio's callbacks
        across hosts): the server holding it asks its client and publishes the answer back."""
        ack_id = self.namespace.next_ack_id()
        if timeout is None:
            timeout = self.namespace.ack_timeout
        timer = asyncio.get_running_loop().call_later(timeout, self._remote_expired, ack_id) if timeout else None
        self._remote_acks[ack_id] = (sid, handler, timer)
        self._publish(emit_message(event, args, self.namespace.name, sid, None, self.member.host_id,
                                   [sid, self.namespace.name, ack_id]))

    def _remote_expired(self, ack_id: int) -> None:
        pending = self._remote_acks.pop(ack_id, None)
        if pending is not None:
            pending[1].expire()

    def _publish(self, message: dict[str, Any]) -> None:
        message.setdefault("namespace", self.namespace.name)
        message.setdefault("host_id", self.member.host_id)  # a callback names the emitter's instead
        self.factory.publish(self.member, message)

    def _is_sid(self, name: str) -> bool:
        return name in self.namespace.sockets

    # ------------------------------------------------------------- outgoing

    def broadcast(self, packet: Packet, opts: BroadcastOptions) -> int:
        count = super().broadcast(packet, opts)
        if opts.local:
            return count
        data = packet.data
        if opts.except_rooms and any(not self._is_sid(room) for room in opts.except_rooms):
            self.factory.warn_once("exclude= of rooms", "python-socketio servers exclude only the sids among them")
        self._publish(emit_message(data[0], data[1:], self.namespace.name, _room_field(opts.rooms),
                                   _room_field(opts.except_rooms), self.member.host_id))
        return count

    def broadcast_with_ack(self, packet: Packet, opts: BroadcastOptions, client_count: Callable[[int], None],
                           ack: AckHandler) -> None:
        if not opts.local:
            self.factory.warn_once("a broadcast with acks", "only this server's clients are asked")
        super().broadcast_with_ack(packet, opts, client_count, ack)

    async def server_count(self) -> int:
        """1: the format has no requests, so no other server can be asked anything (an emit with acks
        waits for this server's clients only). :meth:`subscribers` counts the servers listening."""
        return 1

    async def subscribers(self) -> int:
        """The servers subscribed to the channel, python-socketio's included (``PUBSUB NUMSUB``)."""
        return await self.member.link.numsub(self.factory.channel.encode())

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        super().add_sockets(opts, rooms)
        if opts.local:
            return
        target = self._one_remote_sid(opts, "joining rooms")
        if target is not None:
            for room in rooms:
                self._publish({"method": "enter_room", "sid": target, "room": room})

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        super().del_sockets(opts, rooms)
        if opts.local:
            return
        if len(opts.rooms) == 1 and not opts.except_rooms and list(opts.rooms) == rooms:
            self._publish({"method": "close_room", "room": rooms[0]})  # sio.close_room(room)
            return
        target = self._one_remote_sid(opts, "leaving rooms")
        if target is not None:
            for room in rooms:
                self._publish({"method": "leave_room", "sid": target, "room": room})

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        super().disconnect_sockets(opts, close)
        if opts.local:
            return
        target = self._one_remote_sid(opts, "disconnecting sockets")
        if target is not None:
            self._publish({"method": "disconnect", "sid": target})

    def _one_remote_sid(self, opts: BroadcastOptions, what: str) -> str | None:
        """The sid an operation names, when it names exactly one that is not on this server."""
        if len(opts.rooms) == 1 and not opts.except_rooms:
            (name,) = opts.rooms
            return None if self._is_sid(name) else name
        self.factory.warn_once(what + " other than one sid", "applied on this server only")
        return None

    async def server_side_emit(self, args: list[Any]) -> None:
        self.factory.warn_once("server_side_emit", "no other server receives it")

    async def server_side_emit_with_ack(self, args: list[Any], timeout: float | None = None) -> list[Any]:
        self.factory.warn_once("server_side_emit", "no other server receives it")
        return []

    # ------------------------------------------------------------- incoming

    def handle(self, method: str, message: dict[str, Any]) -> None:
        if method == "emit":
            self._on_emit(message)
        elif method == "callback":
            self._on_callback(message)
        elif method == "disconnect":
            socket = self.namespace.sockets.get(str(message.get("sid")))
            if socket is not None:
                socket.disconnect_from_server()
        elif method in ("enter_room", "leave_room"):
            sid, room = message.get("sid"), message.get("room")
            if isinstance(sid, str) and isinstance(room, str) and sid in self.namespace.sockets:
                if method == "enter_room":
                    super().add_all(sid, (room,))
                elif room != sid:
                    super().delete(sid, room)
        elif method == "close_room":
            room = message.get("room")
            if isinstance(room, str):
                super().del_sockets(BroadcastOptions(rooms=frozenset((room,))), (room,))

    def _on_emit(self, message: dict[str, Any]) -> None:
        event = message.get("event")
        if not isinstance(event, str):
            raise ValueError("emit without an event name")
        args = emit_args(message)
        opts = BroadcastOptions(rooms=_rooms_of(message.get("room")), except_rooms=_rooms_of(message.get("skip_sid")))
        callback = message.get("callback")
        if isinstance(callback, list) and len(callback) == 3:
            origin = message.get("host_id")
            sid, namespace, ack_id = callback
            Adapter.broadcast_with_ack(self, Packet(EVENT, self.namespace.name, [event, *args]), opts,
                                       _no_count, CallbackAck(self._answer_to(origin, sid, namespace, ack_id)))
            return
        Adapter.broadcast(self, Packet(EVENT, self.namespace.name, [event, *args]), opts)

    def _answer_to(self, host_id: Any, sid: Any, namespace: Any, ack_id: Any) -> Callable[..., None]:
        def answer(*args: Any) -> None:
            if not self._closed:
                self._publish({"method": "callback", "host_id": host_id, "sid": sid, "namespace": namespace,
                               "id": ack_id, "args": list(args)})
        return answer

    def _on_callback(self, message: dict[str, Any]) -> None:
        ack_id, args = message.get("id"), message.get("args")
        pending = self._remote_acks.get(ack_id) if isinstance(ack_id, int) else None
        if pending is None or pending[0] != message.get("sid") or not isinstance(args, list):
            self.factory.stats["callbacks_unmatched"] += 1  # late (expired) or not ours
            return
        del self._remote_acks[ack_id]  # type: ignore[arg-type]
        if pending[2] is not None:
            pending[2].cancel()
        pending[1](args)
