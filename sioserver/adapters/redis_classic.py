"""The classic Redis adapter: the wire of @socket.io/redis-adapter 8.x on plain Pub/Sub.

* Broadcasts go to ``<key>#<nsp>#``, or ``<key>#<nsp>#<room>#`` when exactly one room is targeted,
  as msgpack ``[uid, {"type": 2, "data": [event, *args], "nsp": nsp}, {"rooms", "except", "flags"}]``.
  Every server ``PSUBSCRIBE``\\ s ``<key>#<nsp>#*`` and drops its own messages, those of other
  namespaces, and room messages for rooms it does not hold (without decoding them).
* Requests go to ``<key>-request#<nsp>#``; answers to ``<key>-response#<nsp>#`` (or, with
  ``publish_on_specific_response_channel``, to ``<key>-response#<nsp>#<uid>#``, which every server
  also subscribes to). JSON, except BROADCAST (with acks) and BROADCAST_ACK, which are msgpack.
* The number of servers in a namespace is ``PUBSUB NUMSUB <key>-request#<nsp>#``; a request waits for
  that many answers, minus one. So each server subscribes to it exactly once, and answers every
  request it gets (a server-side event nobody handles is answered ``null``), or Node peers time out.

Correlation, counting, deadlines and the ack fan-in are :mod:`sioserver.adapters.requests`'; serving
other servers is :class:`~sioserver.adapters.cluster.ClusterAdapterBase`'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..proto.socketio import Packet
from ..server.adapter import Adapter, BroadcastOptions
from ..server.protocols import AckHandler, AdapterNamespace
from ._link import Link
from ._wire import (
    RequestType,
    decode,
    glob_escape,
    json_bytes,
    new_id,
    options_from_wire,
    pack,
    wire_flags,
    wire_options,
)
from .cluster import ClusterAdapterBase
from .errors import RedisUnavailableError
from .redis_common import RedisEndpoint
from .requests import RequestKind

if TYPE_CHECKING:
    from .redis import RedisAdapter

__all__ = ["RedisNamespaceAdapter"]


class RedisNamespaceAdapter(ClusterAdapterBase):
    """One namespace on the classic wire format of @socket.io/redis-adapter 8.x."""

    sharded = False

    def __init__(self, namespace: AdapterNamespace, factory: RedisAdapter, link: Link) -> None:
        super().__init__(namespace, uid=new_id(6), request_timeout=factory.request_timeout,
                         new_id=lambda: new_id(6), stats=factory.stats, logger=factory.logger)
        self.factory = factory
        self.link = link
        self.endpoint = RedisEndpoint(factory, link, namespace.name, sharded=False)
        key, nsp = factory.key, namespace.name
        self.channel = f"{key}#{nsp}#".encode()
        self.request_channel = f"{key}-request#{nsp}#".encode()
        self.response_channel = f"{key}-response#{nsp}#".encode()
        self.pattern = (glob_escape(f"{key}#{nsp}#") + "*").encode()
        self._started = False
        self._closed = False

    # ------------------------------------------------------------ lifecycle

    @property
    def healthy(self) -> bool:
        """This server's link to Redis is subscribed and publishing."""
        return self.link.healthy

    @property
    def queued(self) -> int:
        """Messages of this server waiting for Redis (every namespace of the server's link)."""
        return self.link.queued

    @property
    def specific_response_channel(self) -> bytes:
        return self.response_channel + self.uid.encode() + b"#"

    def start(self) -> None:
        """Subscribe (once, and only inside a running event loop)."""
        if self._started or self._closed:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self._started = True
        link = self.link
        link.subscribe("psub", self.pattern, self._on_broadcast)
        link.subscribe("sub", self.request_channel, self._on_request)
        link.subscribe("sub", self.response_channel, self._on_response)
        link.subscribe("sub", self.specific_response_channel, self._on_response)
        self.endpoint.census(self.request_channel)
        link.ensure_running()

    async def init(self) -> None:
        self.start()

    async def wait_ready(self, timeout: float = 5.0) -> bool:
        """Subscribe, and wait until Redis has confirmed every subscription of this server and
        publishing works (False after ``timeout`` seconds)."""
        self.start()
        return await self.link.wait_ready(timeout)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._started:
            link = self.link
            link.unsubscribe("psub", self.pattern)
            for channel in (self.request_channel, self.response_channel, self.specific_response_channel):
                link.unsubscribe("sub", channel)
        self.fail_requests()
        await self.factory._release(self)

    # ------------------------------------------------------------- requests

    async def server_count(self) -> int:
        """Servers subscribed to this namespace, this one included (1 while Redis is away)."""
        self.start()
        if not self.link.subscriber_ready:
            return 1
        try:
            count = await self.endpoint.numsub(self.request_channel)
        except RedisUnavailableError as exc:
            self.log.warning("redis adapter: cannot count the servers of %s: %s", self.namespace.name, exc)
            return 1
        return max(count, 1)

    async def _others(self, what: str) -> int:
        """How many other servers a request goes to (0 and a log line while Redis is away)."""
        self.start()
        if not self.link.healthy:
            self.degraded(what, "Redis is unreachable")
            return 0
        try:
            count = await self.endpoint.numsub(self.request_channel)
        except RedisUnavailableError as exc:
            self.degraded(what, str(exc))
            return 0
        return max(count - 1, 0)

    async def _ask(self, kind: RequestKind, what: str, results: Any, build: Callable[[str], dict[str, Any]],
                   timeout: float | None = None) -> Any:
        others = await self._others(what)

        def send(request_id: str) -> None:
            payload = json_bytes(build(request_id))
            self.endpoint.check_size(what, payload)
            self.endpoint.publish(self.request_channel, payload, self.endpoint.track_request)

        return await self.requests.ask(kind, what, results, send,
                                       timeout if timeout is not None else self.request_timeout, expected=others)

    def _request(self, what: str, request: dict[str, Any]) -> bytes:
        payload = json_bytes(request)
        self.endpoint.check_size(what, payload)
        return payload

    # ------------------------------------------------------------ outgoing

    def broadcast(self, packet: Packet, opts: BroadcastOptions) -> int:
        if opts.local:
            return super().broadcast(packet, opts)
        self.start()
        nsp = self.namespace.name
        wire_packet = {"type": 2, "data": packet.data, "nsp": nsp}
        payload = pack([self.uid, wire_packet, wire_options(opts, wire_flags(opts))])
        self.endpoint.check_size(f"a broadcast of {packet.data[0]!r} in {nsp}", payload)
        count = super().broadcast(packet, opts)
        channel = self.channel
        if len(opts.rooms) == 1:
            (room,) = opts.rooms
            channel += room.encode() + b"#"
        self.endpoint.publish(channel, payload, self.endpoint.track_broadcast)
        return count

    def broadcast_with_ack(self, packet: Packet, opts: BroadcastOptions, client_count: Callable[[int], None],
                           ack: AckHandler) -> None:
        if opts.local:
            super().broadcast_with_ack(packet, opts, client_count, ack)
            return
        self.start()
        nsp = self.namespace.name
        timeout = self.ack_deadline(opts)
        request_id = self.new_id()
        payload = pack({
            "uid": self.uid,
            "requestId": request_id,
            "type": int(RequestType.BROADCAST),
            "packet": {"type": 2, "data": packet.data, "nsp": nsp},
            "opts": wire_options(opts, wire_flags(opts, timeout)),
        })
        self.endpoint.check_size(f"a broadcast with acks of {packet.data[0]!r} in {nsp}", payload)
        self.ack_requests.open(request_id, timeout, client_count, ack)
        try:
            super().broadcast_with_ack(packet, opts, client_count, ack)
        except BaseException:
            self.ack_requests.discard(request_id)
            raise
        self.endpoint.publish(self.request_channel, payload, self.endpoint.track_request)

    def _everywhere(self, opts: BroadcastOptions, what: str, kind: RequestType, extra: dict[str, Any],
                    apply: Callable[[], None]) -> None:
        """A change of rooms or connections: applied here, and published to the other servers."""
        if opts.local:
            apply()
            return
        self.start()
        payload = self._request(what, {"uid": self.uid, "type": int(kind), "opts": wire_options(opts), **extra})
        apply()
        self.endpoint.publish(self.request_channel, payload, self.endpoint.track_request)

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        self._everywhere(opts, "sockets_join()", RequestType.REMOTE_JOIN, {"rooms": rooms},
                         lambda: Adapter.add_sockets(self, opts, rooms))

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        self._everywhere(opts, "sockets_leave()", RequestType.REMOTE_LEAVE, {"rooms": rooms},
                         lambda: Adapter.del_sockets(self, opts, rooms))

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        self._everywhere(opts, "disconnect_sockets()", RequestType.REMOTE_DISCONNECT, {"close": bool(close)},
                         lambda: Adapter.disconnect_sockets(self, opts, close))

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[Any]:
        local: list[Any] = await super().fetch_sockets(opts)
        if opts.local:
            return local
        remote: list[Any] = await self._ask("sockets", "fetch_sockets()", [], lambda request_id: {
            "uid": self.uid, "requestId": request_id, "type": int(RequestType.REMOTE_FETCH),
            "opts": wire_options(opts)})
        return local + remote

    async def all_rooms(self) -> set[str]:
        result: set[str] = await self._ask("rooms", "all_rooms()", set(self.rooms), lambda request_id: {
            "uid": self.uid, "requestId": request_id, "type": int(RequestType.ALL_ROOMS)})
        return result

    async def server_side_emit(self, args: list[Any]) -> None:
        self.start()
        payload = self._request(f"server_side_emit({args[0]!r})",
                                {"uid": self.uid, "type": int(RequestType.SERVER_SIDE_EMIT), "data": args})
        self.endpoint.publish(self.request_channel, payload, self.endpoint.track_request)

    async def server_side_emit_with_ack(self, args: list[Any], timeout: float | None = None) -> list[Any]:
        answers: list[Any] = await self._ask("answers", f"server_side_emit_with_ack({args[0]!r})", [],
                                             lambda request_id: {"uid": self.uid, "requestId": request_id,
                                                                 "type": int(RequestType.SERVER_SIDE_EMIT),
                                                                 "data": args}, timeout)
        return answers

    # ------------------------------------------------------------ incoming

    def _on_broadcast(self, channel: bytes, data: bytes) -> None:
        prefix = self.channel
        if not channel.startswith(prefix):
            return
        room = channel[len(prefix):-1]
        if room and room.decode("utf-8", "replace") not in self.rooms:
            return  # a room this server does not hold: not even decoded
        try:
            message = decode(data)
            uid, packet, raw_opts = message
        except (ValueError, TypeError):
            self.stats["malformed"] += 1
            return
        if uid == self.uid or not isinstance(packet, dict):
            return
        if packet.get("nsp", "/") != self.namespace.name:
            return
        self.serve_broadcast(packet.get("data"), options_from_wire(raw_opts))

    def _respond(self, request: dict[str, Any], payload: bytes) -> None:
        channel = self.response_channel
        uid = request.get("uid")
        if self.factory.publish_on_specific_response_channel and isinstance(uid, str):
            channel += uid.encode() + b"#"
        self.endpoint.publish(channel, payload)

    def _answer(self, request: dict[str, Any], what: str, answer: dict[str, Any], empty: dict[str, Any]) -> None:
        self._respond(request, self.endpoint.fit(what, json_bytes(answer, lenient=True), lambda: json_bytes(empty)))

    def _on_request(self, channel: bytes, data: bytes) -> None:
        try:
            request = decode(data)
        except ValueError:
            self.stats["malformed"] += 1
            return
        if not isinstance(request, dict):
            self.stats["malformed"] += 1
            return
        kind = request.get("type")
        uid = request.get("uid")
        request_id = request.get("requestId")
        mine = uid == self.uid or request_id in self.requests
        if kind == RequestType.SOCKETS:
            if mine:
                return
            rooms = request.get("rooms")
            sids = self.sockets(rooms if isinstance(rooms, list) else ())
            self._answer(request, "a SOCKETS answer", {"requestId": request_id, "sockets": list(sids)},
                         {"requestId": request_id, "sockets": []})
        elif kind == RequestType.ALL_ROOMS:
            if mine:
                return
            self._answer(request, "an ALL_ROOMS answer", {"requestId": request_id, "rooms": list(self.rooms)},
                         {"requestId": request_id, "rooms": []})
        elif kind in (RequestType.REMOTE_JOIN, RequestType.REMOTE_LEAVE, RequestType.REMOTE_DISCONNECT):
            if uid == self.uid:
                return  # applied here when it was sent
            self._remote_change(kind, request)
        elif kind == RequestType.REMOTE_FETCH:
            if mine:
                return
            details = self.local_details(options_from_wire(request.get("opts")))
            self._answer(request, "a fetch_sockets() answer", {"requestId": request_id, "sockets": details},
                         {"requestId": request_id, "sockets": []})
        elif kind == RequestType.SERVER_SIDE_EMIT:
            if uid == self.uid:
                return
            respond = None
            if request_id is not None:
                def respond(answer: Any) -> None:
                    kind = int(RequestType.SERVER_SIDE_EMIT)
                    payload = self.endpoint.fit(
                        "a server-side event answer",
                        json_bytes({"type": kind, "requestId": request_id, "data": answer}, lenient=True),
                        lambda: json_bytes({"type": kind, "requestId": request_id, "data": None}))
                    self.endpoint.publish(self.response_channel, payload)  # always the common channel, as Node does
            self.serve_server_event(request.get("data"), respond)
        elif kind == RequestType.BROADCAST:
            if mine or request_id in self.ack_requests:
                return

            def count(n: int) -> None:
                self._respond(request, json_bytes({"type": int(RequestType.BROADCAST_CLIENT_COUNT),
                                                   "requestId": request_id, "clientCount": n}))

            def relay(answer: Any) -> None:
                def message(value: Any) -> bytes:
                    return pack({"type": int(RequestType.BROADCAST_ACK), "requestId": request_id, "packet": value})
                self._respond(request, self.endpoint.fit("a client's ack", message(answer), lambda: message(None)))

            packet = request.get("packet")
            self.serve_broadcast_with_ack(packet.get("data") if isinstance(packet, dict) else None,
                                          options_from_wire(request.get("opts")), count, relay)

    def _remote_change(self, kind: int, request: dict[str, Any]) -> None:
        raw_opts = request.get("opts")
        if raw_opts is not None:
            opts = options_from_wire(raw_opts)
            rooms = request.get("rooms")
            names = [r for r in rooms if isinstance(r, str)] if isinstance(rooms, list) else []
            if kind == RequestType.REMOTE_JOIN:
                Adapter.add_sockets(self, opts, names)
            elif kind == RequestType.REMOTE_LEAVE:
                Adapter.del_sockets(self, opts, names)
            else:
                Adapter.disconnect_sockets(self, opts, bool(request.get("close")))
            return
        # the one-socket form of older adapters (remoteJoin / remoteLeave / remoteDisconnect)
        socket = self.namespace.sockets.get(request.get("sid"))  # type: ignore[arg-type]
        if socket is None:
            return
        room = request.get("room")
        if kind == RequestType.REMOTE_JOIN and isinstance(room, str):
            Adapter.add_all(self, socket.sid, (room,))
        elif kind == RequestType.REMOTE_LEAVE and isinstance(room, str):
            Adapter.delete(self, socket.sid, room)
        elif kind == RequestType.REMOTE_DISCONNECT:
            socket.disconnect_from_server(bool(request.get("close")))
        self._respond(request, json_bytes({"requestId": request.get("requestId")}))

    def _on_response(self, channel: bytes, data: bytes) -> None:
        try:
            response = decode(data)
        except ValueError:
            self.stats["malformed"] += 1
            return
        if not isinstance(response, dict):
            return
        request_id = response.get("requestId")
        if request_id in self.ack_requests:
            kind = response.get("type")
            if kind == RequestType.BROADCAST_CLIENT_COUNT:
                self.ack_requests.count(request_id, response.get("clientCount"))
            elif kind == RequestType.BROADCAST_ACK:
                self.ack_requests.answer(request_id, response.get("packet"))
            return
        kind_of = self.requests.kind_of(request_id)
        if kind_of == "sockets":
            self.requests.answered(request_id, response.get("sockets"))
        elif kind_of == "rooms":
            self.requests.answered(request_id, response.get("rooms"))
        elif kind_of == "answers":
            self.requests.answered(request_id, response.get("data"))
