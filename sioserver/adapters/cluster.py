"""The cluster protocol of socket.io-adapter 2.5 (``ClusterAdapter``), over any transport.

Each server of a namespace runs one adapter; they talk in *messages* (``{"type", "data", "uid",
"nsp"}``, :class:`MessageType`) published to every other server, and *responses* published to the one
that asked. This module holds everything about them but the carrying: request types, correlation ids,
expected-response counting, deadlines, heartbeats, the broadcast/ack fan-in, and serving the requests
of other servers. A transport (:class:`ClusterTransport`) only moves messages, so the same protocol
runs over Redis sharded Pub/Sub (:mod:`sioserver.adapters.redis_sharded`), Redis Streams
(``@socket.io/redis-streams-adapter``), or the local sockets between the workers of one machine.

Two ways of counting servers, as in Node:

* :class:`ClusterAdapter`: the transport counts them (``PUBSUB SHARDNUMSUB``); a request waits for
  that many answers, minus one.
* :class:`ClusterAdapterWithHeartbeat`: every server publishes a heartbeat (``INITIAL_HEARTBEAT`` when
  it starts, ``HEARTBEAT`` when it has sent nothing for ``heartbeat_interval``, ``ADAPTER_CLOSE``
  when it stops); the servers are those heard from within ``heartbeat_timeout``. A request waits for
  an answer from each of them, and stops waiting for one that goes away.

Writing a transport::

    class MyTransport:
        healthy = True
        def start(self, node): ...                 # deliver: node.on_message(message, offset)
        def publish(self, message): ...            # to every other server of the namespace
        def publish_response(self, requester, response): ...   # to the server ``requester``
        async def server_count(self): ...          # only for ClusterAdapter
        async def close(self): ...

    sio = sioserver.AsyncServer(adapter=lambda nsp: ClusterAdapterWithHeartbeat(nsp, MyTransport()))
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable
from enum import IntEnum
from typing import Any, Protocol

from ..proto.socketio import EVENT, Packet
from ..server.adapter import Adapter, BroadcastOptions
from ..server.protocols import AckHandler, AdapterNamespace, Recipient, ServerEventResponder
from ._wire import EMITTER_UID, options_from_wire, wire_flags, wire_options
from .errors import AdapterError, MessageTooLargeError
from .requests import AckRequests, RelayAck, RequestKind, Requests

__all__ = [
    "ClusterAdapter",
    "ClusterAdapterBase",
    "ClusterAdapterWithHeartbeat",
    "ClusterMessage",
    "ClusterNode",
    "ClusterTransport",
    "MessageType",
    "Offset",
    "socket_details",
]

log = logging.getLogger("sioserver.cluster")

ClusterMessage = dict[str, Any]
"""``{"type": MessageType, "data": {...}, "uid": sender, "nsp": namespace}`` (no ``data`` for heartbeats)."""

Offset = str
"""Where a transport that keeps messages (Redis Streams) stored one: the id a client resumes from."""


class MessageType(IntEnum):
    """The ``type`` of a cluster message (socket.io-adapter's ``MessageType``)."""

    INITIAL_HEARTBEAT = 1
    HEARTBEAT = 2
    BROADCAST = 3
    SOCKETS_JOIN = 4
    SOCKETS_LEAVE = 5
    DISCONNECT_SOCKETS = 6
    FETCH_SOCKETS = 7
    FETCH_SOCKETS_RESPONSE = 8
    SERVER_SIDE_EMIT = 9
    SERVER_SIDE_EMIT_RESPONSE = 10
    BROADCAST_CLIENT_COUNT = 11
    BROADCAST_ACK = 12
    ADAPTER_CLOSE = 13


RESPONSE_TYPES = frozenset({MessageType.FETCH_SOCKETS_RESPONSE, MessageType.SERVER_SIDE_EMIT_RESPONSE,
                            MessageType.BROADCAST_CLIENT_COUNT, MessageType.BROADCAST_ACK})
MAY_HOLD_BINARY = frozenset({MessageType.BROADCAST, MessageType.BROADCAST_ACK, MessageType.FETCH_SOCKETS_RESPONSE,
                             MessageType.SERVER_SIDE_EMIT, MessageType.SERVER_SIDE_EMIT_RESPONSE})
"""The types whose ``data`` may carry bytes (the Node transports then switch to msgpack)."""


class ClusterNode(Protocol):
    """What a transport delivers to (a :class:`ClusterAdapter`)."""

    @property
    def uid(self) -> str: ...

    def on_message(self, message: ClusterMessage, offset: Offset | None = None) -> None:
        """A message (or a response) from the cluster; one's own and other namespaces' are ignored."""

    def on_response(self, response: ClusterMessage) -> None:
        """A response to a request of this server."""


class ClusterTransport(Protocol):
    """What carries the messages of one namespace between the servers (see the module docstring).

    ``publish`` and ``publish_response`` never block: they encode and queue. They raise
    :class:`~sioserver.adapters.MessageTooLargeError` (nothing sent) over the transport's size cap,
    ``publish`` also ``TypeError``/``ValueError`` for a value it cannot encode; ``publish_response``
    encodes leniently (what cannot be encoded becomes ``null``): an answer must go out, or the asker
    waits for it until its deadline. Failures to deliver later are the transport's to count and log.
    """

    @property
    def healthy(self) -> bool:
        """Connected and delivering (False: requests are answered by this server alone)."""

    def start(self, node: ClusterNode) -> None:
        """Start delivering messages to ``node`` (called once, inside the running event loop)."""

    def publish(self, message: ClusterMessage) -> asyncio.Future[Offset] | None:
        """Send to every other server of the namespace. A transport that stores messages (Redis
        Streams) returns a future of the offset the message got (a future, not a coroutine: callers
        that do not need the offset drop it); a plain Pub/Sub one returns None."""

    def publish_response(self, requester: str, response: ClusterMessage) -> None:
        """Send to the server whose uid is ``requester``."""

    async def server_count(self) -> int:
        """The servers of the namespace, this one included; :class:`AdapterError` when it cannot tell.
        (Heartbeat adapters count for themselves and never call it.)"""

    async def close(self) -> None:
        """Stop delivering and release what the transport holds for this namespace."""


def socket_details(socket: Recipient) -> dict[str, Any]:
    """A local socket as fetch_sockets() answers carry it: ``{"id", "handshake", "rooms", "data"}``."""
    sid = socket.sid
    return {
        "id": sid,
        "handshake": socket.handshake,
        "rooms": [sid, *sorted(r for r in socket.rooms if r != sid)],
        "data": socket.session,
    }


def _strings(value: Any) -> list[str]:
    return [r for r in value if isinstance(r, str)] if isinstance(value, list) else []


class ClusterAdapterBase(Adapter):
    """What every cluster adapter shares, whatever its wire: open requests, broadcasts with acks,
    serving other servers' requests from this server's sockets, and the "answered by this server
    alone" accounting. The classic Redis adapter builds on it too."""

    def __init__(self, namespace: AdapterNamespace, *, uid: str, request_timeout: float = 5.0,
                 new_id: Callable[[], str] | None = None, stats: Counter[str] | None = None,
                 logger: logging.Logger | None = None) -> None:
        super().__init__(namespace)
        self.uid = uid
        self.request_timeout = float(request_timeout)
        self.stats: Counter[str] = Counter() if stats is None else stats
        self.log = logger or log
        self.new_id = new_id or (lambda: secrets.token_hex(8))
        self.requests = Requests(self.new_id, self.stats)
        self.ack_requests = AckRequests()
        self._degraded_logged = 0.0

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.namespace.name} uid={self.uid}>"

    def ack_deadline(self, opts: BroadcastOptions) -> float:
        return opts.timeout if opts.timeout is not None else self.namespace.ack_timeout

    def degraded(self, what: str, reason: str) -> None:
        """A cluster request answered by this server alone: counted, and logged at most every 5 s."""
        self.stats["degraded"] += 1
        now = time.monotonic()
        if now - self._degraded_logged >= 5.0:
            self._degraded_logged = now
            self.log.warning("cluster adapter: %s in %s answered by this server only: %s",
                             what, self.namespace.name, reason)

    def fail_requests(self) -> None:
        self.requests.close(f"the adapter of {self.namespace.name} closed")
        self.ack_requests.clear()

    # -------------------------------------------------- serving other servers

    def local_details(self, opts: BroadcastOptions) -> list[dict[str, Any]]:
        return [socket_details(s) for s in self._sockets(opts)]

    def serve_server_event(self, data: Any, respond: ServerEventResponder | None) -> None:
        """A server-side event from another server: the handler runs; its return value is the answer."""
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            self.stats["malformed"] += 1
            if respond is not None:
                respond(None)
            return
        self.namespace.server_side_event(list(data), respond)

    def serve_broadcast(self, data: Any, opts: BroadcastOptions) -> None:
        """Another server's broadcast: to the sockets of this one."""
        if not isinstance(data, list) or not data:
            self.stats["malformed"] += 1
            return
        Adapter.broadcast(self, Packet(EVENT, self.namespace.name, data), opts)

    def serve_broadcast_with_ack(self, data: Any, opts: BroadcastOptions, count: Callable[[int], None],
                                 relay: Callable[[Any], None]) -> None:
        """Another server's broadcast with acks: deliver here, report the count, then relay each answer."""
        if not isinstance(data, list) or not data:
            self.stats["malformed"] += 1
            count(0)
            return
        Adapter.broadcast_with_ack(self, Packet(EVENT, self.namespace.name, data),
                                   opts.but(timeout=self.ack_deadline(opts)), count, RelayAck(relay))

    def serve_rooms_change(self, kind: MessageType, opts: BroadcastOptions, rooms: list[str], close: bool) -> None:
        if kind == MessageType.SOCKETS_JOIN:
            Adapter.add_sockets(self, opts, rooms)
        elif kind == MessageType.SOCKETS_LEAVE:
            Adapter.del_sockets(self, opts, rooms)
        else:
            Adapter.disconnect_sockets(self, opts, close)


class ClusterAdapter(ClusterAdapterBase):
    """A namespace's adapter speaking socket.io-adapter's ClusterAdapter protocol over ``transport``.

    The transport counts the servers (:meth:`ClusterTransport.server_count`); see
    :class:`ClusterAdapterWithHeartbeat` for transports that cannot.
    """

    def __init__(self, namespace: AdapterNamespace, transport: ClusterTransport, *, uid: str | None = None,
                 request_timeout: float = 5.0, stats: Counter[str] | None = None,
                 logger: logging.Logger | None = None) -> None:
        super().__init__(namespace, uid=uid or secrets.token_hex(8), request_timeout=request_timeout,
                         stats=stats, logger=logger)
        self.transport = transport
        self._started = False
        self._closed = False

    # ------------------------------------------------------------ lifecycle

    @property
    def healthy(self) -> bool:
        return self.transport.healthy

    def start(self) -> None:
        """Start the transport (once, and only inside a running event loop)."""
        if self._started or self._closed:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self._started = True
        self.transport.start(self)

    async def init(self) -> None:
        self.start()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.fail_requests()
        await self.transport.close()

    # ----------------------------------------------------------- publishing

    def message(self, kind: MessageType, data: dict[str, Any] | None = None) -> ClusterMessage:
        message: ClusterMessage = {"type": int(kind)}
        if data is not None:
            message["data"] = data
        message["uid"] = self.uid
        message["nsp"] = self.namespace.name
        return message

    def publish(self, kind: MessageType, data: dict[str, Any] | None = None) -> asyncio.Future[Offset] | None:
        self.start()
        return self.transport.publish(self.message(kind, data))

    def publish_response(self, requester: Any, kind: MessageType, data: dict[str, Any],
                         empty: dict[str, Any], what: str) -> None:
        """Answer ``requester``; an answer over the size cap goes out as ``empty`` (the asker must
        not wait for it until its deadline)."""
        if not isinstance(requester, str):
            return
        try:
            self.transport.publish_response(requester, self.message(kind, data))
        except MessageTooLargeError as exc:
            self.log.error("cluster adapter: %s in %s: %s; an empty answer is sent instead",
                           what, self.namespace.name, exc)
            self.transport.publish_response(requester, self.message(kind, empty))

    async def server_count(self) -> int:
        """Servers of this namespace, this one included (1 when the transport cannot tell)."""
        self.start()
        try:
            return max(await self.transport.server_count(), 1)
        except AdapterError as exc:
            self.log.warning("cluster adapter: cannot count the servers of %s: %s", self.namespace.name, exc)
            return 1

    async def others(self, what: str) -> list[str] | int:
        """Whom a request goes to: how many other servers (or, with heartbeats, their uids)."""
        self.start()
        if not self.transport.healthy:
            self.degraded(what, "the cluster transport is down")
            return 0
        try:
            count = await self.transport.server_count()
        except AdapterError as exc:
            self.degraded(what, str(exc))
            return 0
        return max(count - 1, 0)

    async def ask(self, kind: RequestKind, what: str, results: Any,
                  build: Callable[[str], tuple[MessageType, dict[str, Any]]],
                  timeout: float | None = None) -> Any:
        others = await self.others(what)

        def send(request_id: str) -> None:
            message_type, data = build(request_id)
            self.publish(message_type, data)

        deadline = timeout if timeout is not None else self.request_timeout
        if isinstance(others, int):
            return await self.requests.ask(kind, what, results, send, deadline, expected=others)
        return await self.requests.ask(kind, what, results, send, deadline, missing=others)

    # ------------------------------------------------------------ outgoing

    def broadcast(self, packet: Packet, opts: BroadcastOptions) -> int:
        if not opts.local:
            self.publish(MessageType.BROADCAST, {"packet": {"type": 2, "data": packet.data},
                                                 "opts": wire_options(opts, wire_flags(opts))})
        return super().broadcast(packet, opts)

    def broadcast_with_ack(self, packet: Packet, opts: BroadcastOptions, client_count: Callable[[int], None],
                           ack: AckHandler) -> None:
        if opts.local:
            super().broadcast_with_ack(packet, opts, client_count, ack)
            return
        timeout = self.ack_deadline(opts)
        request_id = self.new_id()
        self.ack_requests.open(request_id, timeout, client_count, ack)
        try:
            self.publish(MessageType.BROADCAST, {"packet": {"type": 2, "data": packet.data}, "requestId": request_id,
                                                 "opts": wire_options(opts, wire_flags(opts, timeout))})
            super().broadcast_with_ack(packet, opts, client_count, ack)
        except BaseException:
            self.ack_requests.discard(request_id)
            raise

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        if not opts.local:
            self.publish(MessageType.SOCKETS_JOIN, {"opts": wire_options(opts, wire_flags(opts)), "rooms": rooms})
        super().add_sockets(opts, rooms)

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        if not opts.local:
            self.publish(MessageType.SOCKETS_LEAVE, {"opts": wire_options(opts, wire_flags(opts)), "rooms": rooms})
        super().del_sockets(opts, rooms)

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        if not opts.local:
            self.publish(MessageType.DISCONNECT_SOCKETS, {"opts": wire_options(opts, wire_flags(opts)),
                                                          "close": bool(close)})
        super().disconnect_sockets(opts, close)

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[Any]:
        local: list[Any] = await super().fetch_sockets(opts)
        if opts.local:
            return local
        remote: list[Any] = await self.ask("sockets", "fetch_sockets()", [], lambda request_id: (
            MessageType.FETCH_SOCKETS, {"opts": wire_options(opts, wire_flags(opts)), "requestId": request_id}))
        return local + remote

    async def all_rooms(self) -> set[str]:
        raise AdapterError("all_rooms() has no request in socket.io-adapter's ClusterAdapter protocol; "
                           "use fetch_sockets()")

    async def server_side_emit(self, args: list[Any]) -> None:
        self.publish(MessageType.SERVER_SIDE_EMIT, {"packet": args})

    async def server_side_emit_with_ack(self, args: list[Any], timeout: float | None = None) -> list[Any]:
        answers: list[Any] = await self.ask("answers", f"server_side_emit_with_ack({args[0]!r})", [],
                                            lambda request_id: (MessageType.SERVER_SIDE_EMIT,
                                                                {"requestId": request_id, "packet": args}),
                                            timeout)
        return answers

    # ------------------------------------------------------------ incoming

    def on_message(self, message: ClusterMessage, offset: Offset | None = None) -> None:
        if not isinstance(message, dict):
            self.stats["malformed"] += 1
            return
        sender = message.get("uid")
        if sender == self.uid or message.get("nsp") != self.namespace.name:
            return
        kind = message.get("type")
        body = message.get("data")
        if not isinstance(body, dict):
            body = {}
        request_id = body.get("requestId")
        if kind == MessageType.BROADCAST:
            packet = body.get("packet")
            data = packet.get("data") if isinstance(packet, dict) else None
            opts = options_from_wire(body.get("opts"))
            if request_id is None:
                self.deliver_broadcast(data, opts, offset)
                return

            def count(n: int) -> None:
                done = {"requestId": request_id, "clientCount": n}
                self.publish_response(sender, MessageType.BROADCAST_CLIENT_COUNT, done, done, "a client count")

            def relay(answer: Any) -> None:
                self.publish_response(sender, MessageType.BROADCAST_ACK, {"requestId": request_id, "packet": answer},
                                      {"requestId": request_id, "packet": None}, "a client's ack")

            self.serve_broadcast_with_ack(data, opts, count, relay)
        elif kind in (MessageType.SOCKETS_JOIN, MessageType.SOCKETS_LEAVE, MessageType.DISCONNECT_SOCKETS):
            self.serve_rooms_change(MessageType(kind), options_from_wire(body.get("opts")),
                                    _strings(body.get("rooms")), bool(body.get("close")))
        elif kind == MessageType.FETCH_SOCKETS:
            details = self.local_details(options_from_wire(body.get("opts")))
            self.publish_response(sender, MessageType.FETCH_SOCKETS_RESPONSE,
                                  {"requestId": request_id, "sockets": details},
                                  {"requestId": request_id, "sockets": []}, "a fetch_sockets() answer")
        elif kind == MessageType.SERVER_SIDE_EMIT:
            respond = None
            if request_id is not None:
                def respond(answer: Any) -> None:
                    self.publish_response(sender, MessageType.SERVER_SIDE_EMIT_RESPONSE,
                                          {"requestId": request_id, "packet": answer},
                                          {"requestId": request_id, "packet": None}, "a server-side event answer")
            self.serve_server_event(body.get("packet"), respond)
        elif kind in RESPONSE_TYPES:
            # a transport may not tell messages from responses (one stream for both): as Node does
            self.on_response(message)

    def deliver_broadcast(self, data: Any, opts: BroadcastOptions, offset: Offset | None) -> None:
        """Another server's broadcast, to this server's sockets (``offset``: where the transport stored it,
        for connection state recovery)."""
        self.serve_broadcast(data, opts)

    def on_response(self, response: ClusterMessage) -> None:
        body = response.get("data")
        if not isinstance(body, dict):
            return
        kind = response.get("type")
        request_id = body.get("requestId")
        sender = response.get("uid")
        if kind == MessageType.FETCH_SOCKETS_RESPONSE:
            self.requests.answered(request_id, body.get("sockets"), sender)
        elif kind == MessageType.SERVER_SIDE_EMIT_RESPONSE:
            self.requests.answered(request_id, body.get("packet"), sender)
        elif kind == MessageType.BROADCAST_CLIENT_COUNT:
            self.ack_requests.count(request_id, body.get("clientCount"))
        elif kind == MessageType.BROADCAST_ACK:
            self.ack_requests.answer(request_id, body.get("packet"))


class ClusterAdapterWithHeartbeat(ClusterAdapter):
    """A :class:`ClusterAdapter` that counts the servers by their heartbeats (socket.io-adapter's
    ``ClusterAdapterWithHeartbeat``): for transports with no subscriber count, such as Redis Streams
    or the local sockets between workers.

    ``heartbeat_interval``: a server that published nothing for that long sends a ``HEARTBEAT``
    (5 s, as Node). ``heartbeat_timeout``: a server not heard from for that long is gone; requests stop
    waiting for it (10 s).
    """

    def __init__(self, namespace: AdapterNamespace, transport: ClusterTransport, *, uid: str | None = None,
                 request_timeout: float = 5.0, heartbeat_interval: float = 5.0, heartbeat_timeout: float = 10.0,
                 stats: Counter[str] | None = None, logger: logging.Logger | None = None) -> None:
        if not 0 < heartbeat_interval < heartbeat_timeout:
            raise ValueError("need 0 < heartbeat_interval < heartbeat_timeout")
        super().__init__(namespace, transport, uid=uid, request_timeout=request_timeout, stats=stats, logger=logger)
        self.heartbeat_interval = float(heartbeat_interval)
        self.heartbeat_timeout = float(heartbeat_timeout)
        self.nodes: dict[str, float] = {}  # uid -> when last heard from (loop time)
        self._heartbeat: asyncio.TimerHandle | None = None
        self._cleanup: asyncio.TimerHandle | None = None

    def start(self) -> None:
        if self._started or self._closed:
            return
        super().start()
        if self._started:
            self.publish(MessageType.INITIAL_HEARTBEAT)
            self._schedule_cleanup()

    async def close(self) -> None:
        if self._closed:
            return
        if self._started:
            try:
                self.transport.publish(self.message(MessageType.ADAPTER_CLOSE))
            except Exception:
                self.log.exception("cluster adapter: could not announce the close of %s", self.namespace.name)
        for handle in (self._heartbeat, self._cleanup):
            if handle is not None:
                handle.cancel()
        await super().close()

    def publish(self, kind: MessageType, data: dict[str, Any] | None = None) -> asyncio.Future[Offset] | None:
        result = super().publish(kind, data)
        if self._started and not self._closed:
            self._schedule_heartbeat()
        return result

    def _schedule_heartbeat(self) -> None:
        """The next heartbeat goes out ``heartbeat_interval`` after the last message published."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        loop = asyncio.get_running_loop()
        self._heartbeat = loop.call_later(self.heartbeat_interval, self.publish, MessageType.HEARTBEAT)

    def _schedule_cleanup(self) -> None:
        loop = asyncio.get_running_loop()
        self._cleanup = loop.call_later(min(1.0, self.heartbeat_timeout / 4), self._forget_silent)

    def _forget_silent(self) -> None:
        now = asyncio.get_running_loop().time()
        for uid, seen in list(self.nodes.items()):
            if now - seen > self.heartbeat_timeout:
                self.log.info("cluster adapter: server %s of %s is silent for %.1fs: gone",
                              uid, self.namespace.name, now - seen)
                self.node_gone(uid)
        if not self._closed:
            self._schedule_cleanup()

    def node_gone(self, uid: str) -> None:
        self.nodes.pop(uid, None)
        self.requests.node_gone(uid)

    def on_message(self, message: ClusterMessage, offset: Offset | None = None) -> None:
        if not isinstance(message, dict):
            self.stats["malformed"] += 1
            return
        sender = message.get("uid")
        if sender == self.uid or message.get("nsp") != self.namespace.name:
            return
        if isinstance(sender, str) and sender != EMITTER_UID:
            self.nodes[sender] = asyncio.get_running_loop().time()
        kind = message.get("type")
        if kind == MessageType.INITIAL_HEARTBEAT:
            self.publish(MessageType.HEARTBEAT)
        elif kind == MessageType.HEARTBEAT:
            pass
        elif kind == MessageType.ADAPTER_CLOSE:
            if isinstance(sender, str):
                self.node_gone(sender)
        else:
            super().on_message(message, offset)

    async def server_count(self) -> int:
        self.start()
        return 1 + len(self.nodes)

    async def others(self, what: str) -> list[str] | int:
        self.start()
        if not self.transport.healthy:
            self.degraded(what, "the cluster transport is down")
            return 0
        return list(self.nodes)
