"""The sharded Redis adapter: socket.io-adapter's cluster protocol over Redis 7 sharded Pub/Sub.

The wire of ``createShardedAdapter`` (@socket.io/redis-adapter 8.x): every message of a namespace goes
to ``<key>#<nsp>#`` (``SPUBLISH``), the answers to a server to ``<key>#<nsp>#<uid>#``; with
``subscription_mode="dynamic"`` (the default) a broadcast to exactly one public room goes to that
room's own channel ``<key>#<nsp>#<room>#``, which only the servers holding the room subscribe to
(``"dynamic-private"``: private rooms too; ``"static"``: no room channels). A message is JSON, or
msgpack when its data holds binary. The servers of a namespace are ``PUBSUB SHARDNUMSUB <key>#<nsp>#``.

The protocol itself (requests, answers, acks) is :class:`~sioserver.adapters.cluster.ClusterAdapter`;
this module is its transport.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..server.protocols import AdapterNamespace
from ._link import Link
from ._wire import decode, has_binary, json_bytes, pack
from .cluster import MAY_HOLD_BINARY, ClusterAdapter, ClusterMessage, ClusterNode, MessageType
from .errors import AdapterError
from .redis_common import RedisEndpoint

if TYPE_CHECKING:
    from .redis import RedisAdapter

__all__ = ["ShardedRedisNamespaceAdapter", "ShardedRedisTransport"]


class ShardedRedisTransport:
    """The :class:`~sioserver.adapters.cluster.ClusterTransport` of one namespace on sharded Pub/Sub."""

    def __init__(self, factory: RedisAdapter, link: Link, namespace: str) -> None:
        self.endpoint = RedisEndpoint(factory, link, namespace, sharded=True)
        self.link = link
        self.mode = factory.subscription_mode
        self.channel = f"{factory.key}#{namespace}#".encode()
        self.response_channel = b""
        self.node: ClusterNode | None = None
        self.room_channels: set[str] = set()

    @property
    def healthy(self) -> bool:
        return self.link.healthy

    def room_channel(self, room: str) -> bytes:
        return self.channel + room.encode() + b"#"

    # ---------------------------------------------------------- subscriptions

    def start(self, node: ClusterNode) -> None:
        self.node = node
        self.response_channel = self.room_channel(node.uid)
        self.link.subscribe("ssub", self.channel, self._on_message)
        self.link.subscribe("ssub", self.response_channel, self._on_message)
        self.endpoint.census(self.channel)
        self.link.ensure_running()

    async def close(self) -> None:
        if self.node is not None:
            self.link.unsubscribe("ssub", self.channel)
            self.link.unsubscribe("ssub", self.response_channel)
            for room in list(self.room_channels):
                self.link.unsubscribe("ssub", self.room_channel(room))
        self.room_channels.clear()
        self.node = None

    def room_created(self, room: str, private: bool) -> None:
        if self.node is None or self.mode == "static" or room in self.room_channels:
            return
        if self.mode == "dynamic" and private:
            return  # a socket's own room: broadcasts to it use the main channel
        self.room_channels.add(room)
        self.link.subscribe("ssub", self.room_channel(room), self._on_message)

    def room_deleted(self, room: str) -> None:
        if room in self.room_channels:
            self.room_channels.discard(room)
            self.link.unsubscribe("ssub", self.room_channel(room))

    def _on_message(self, channel: bytes, data: bytes) -> None:
        try:
            message = decode(data)
        except ValueError:
            self.endpoint.stats["malformed"] += 1
            return
        if not isinstance(message, dict):
            self.endpoint.stats["malformed"] += 1
            return
        if self.node is not None:
            self.node.on_message(message)

    # ---------------------------------------------------------------- sending

    def _encode(self, message: ClusterMessage, lenient: bool = False) -> bytes:
        if message.get("type") in MAY_HOLD_BINARY and has_binary(message.get("data")):
            return pack(message)
        return json_bytes(message, lenient=lenient)

    def _broadcast_channel(self, message: ClusterMessage) -> bytes | None:
        """The room channel of a broadcast to exactly one public room (dynamic modes), else None."""
        if message.get("type") != MessageType.BROADCAST or self.mode == "static":
            return None
        data = message.get("data") or {}
        if "requestId" in data:
            return None
        rooms = (data.get("opts") or {}).get("rooms")
        if not isinstance(rooms, list) or len(rooms) != 1:
            return None
        room = rooms[0]
        if self.mode == "dynamic" and len(room) == 20:  # looks like a socket id: the main channel
            return None
        return self.room_channel(room)

    def publish(self, message: ClusterMessage) -> None:
        payload = self._encode(message)
        self.endpoint.check_size(_what(message), payload)
        room_channel = self._broadcast_channel(message)
        if room_channel is not None:
            self.endpoint.publish(room_channel, payload)  # its subscribers are the servers holding the room
        elif message.get("type") == MessageType.BROADCAST:
            self.endpoint.publish(self.channel, payload, self.endpoint.track_broadcast)
        else:
            self.endpoint.publish(self.channel, payload, self.endpoint.track_request)

    def publish_response(self, requester: str, response: ClusterMessage) -> None:
        payload = self._encode(response, lenient=True)
        self.endpoint.check_size(_what(response), payload)
        self.endpoint.publish(self.room_channel(requester), payload)

    async def server_count(self) -> int:
        if not self.link.subscriber_connected:  # a room channel being subscribed does not change the count
            return 1
        return await self.endpoint.numsub(self.channel)


def _what(message: ClusterMessage) -> str:
    try:
        kind = MessageType(message["type"]).name
    except (KeyError, ValueError):
        kind = str(message.get("type"))
    return f"a {kind} message in {message.get('nsp')}"


class ShardedRedisNamespaceAdapter(ClusterAdapter):
    """One namespace on the wire format of ``createShardedAdapter`` (socket.io-adapter's ClusterAdapter)."""

    sharded = True

    def __init__(self, namespace: AdapterNamespace, factory: RedisAdapter, link: Link) -> None:
        self.factory = factory
        self.link = link
        self.sharded_transport = ShardedRedisTransport(factory, link, namespace.name)
        super().__init__(namespace, self.sharded_transport, request_timeout=factory.request_timeout,
                         stats=factory.stats, logger=factory.logger)

    @property
    def queued(self) -> int:
        """Messages of this server waiting for Redis (every namespace of the server's link)."""
        return self.link.queued

    @property
    def channel(self) -> bytes:
        return self.sharded_transport.channel

    def start(self) -> None:
        was_started = self._started
        super().start()
        if self._started and not was_started:
            for room in list(self.rooms):
                self.sharded_transport.room_created(room, room in self.sids)

    async def close(self) -> None:
        if self._closed:
            return
        await super().close()
        await self.factory._release(self)

    async def wait_ready(self, timeout: float = 5.0) -> bool:
        """Subscribe, and wait until Redis has confirmed every subscription of this server (room
        channels included) and publishing works (False after ``timeout`` seconds)."""
        self.start()
        return await self.link.wait_ready(timeout)

    # rooms: in the dynamic modes, a room channel is subscribed while this server holds the room

    def add_all(self, sid: str, rooms: Iterable[str]) -> None:
        rooms = tuple(rooms)
        new = [room for room in rooms if room not in self.rooms]
        super().add_all(sid, rooms)
        for room in new:
            self.sharded_transport.room_created(room, room in self.sids)

    def delete(self, sid: str, room: str) -> None:
        super().delete(sid, room)
        if room not in self.rooms:
            self.sharded_transport.room_deleted(room)

    def delete_all(self, sid: str) -> None:
        joined = tuple(self.sids.get(sid, ()))
        super().delete_all(sid)
        for room in joined:
            if room not in self.rooms:
                self.sharded_transport.room_deleted(room)

    async def all_rooms(self) -> set[str]:
        raise AdapterError("all_rooms() has no request in the sharded wire format (createShardedAdapter); "
                           "use the classic RedisAdapter, or fetch_sockets()")

