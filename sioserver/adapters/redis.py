"""The Redis adapter: sioserver processes, and Node socket.io servers, as one cluster.

::

    sio = sioserver.AsyncServer(adapter=sioserver.RedisAdapter("redis://localhost:6379/0"))

``RedisAdapter(...)`` is a factory: the server calls it once per namespace, and the adapters it makes
for one server share one pair of Redis connections (a publisher and a supervised subscriber, see
:mod:`sioserver.adapters._link`).

Wire format: that of @socket.io/redis-adapter 8.x, byte for byte, so Node servers using it (and
@socket.io/redis-emitter) can share the cluster:

* Broadcasts go to ``<key>#<nsp>#``, or ``<key>#<nsp>#<room>#`` when exactly one room is targeted,
  as msgpack ``[uid, {"type": 2, "data": [event, *args], "nsp": nsp}, {"rooms", "except", "flags"}]``.
  Every server ``PSUBSCRIBE``\\ s ``<key>#<nsp>#*`` and drops its own messages, those of other
  namespaces, and room messages for rooms it does not hold.
* Requests go to ``<key>-request#<nsp>#``; answers to ``<key>-response#<nsp>#`` (or, with
  ``publish_on_specific_response_channel``, to ``<key>-response#<nsp>#<uid>#``, which every server
  also subscribes to). JSON, except BROADCAST (with acks) and BROADCAST_ACK, which are msgpack.
* The number of servers in a namespace is ``PUBSUB NUMSUB <key>-request#<nsp>#``; a request waits for
  that many answers, minus one. So each server subscribes to it exactly once, and answers every
  request it gets (a server-side event nobody handles is answered ``null``), or Node peers time out.

With ``sharded=True`` the adapter speaks the format of ``createShardedAdapter`` (Redis 7 sharded
Pub/Sub, ``SSUBSCRIBE``/``SPUBLISH``): one channel ``<key>#<nsp>#`` for everything, a response
channel ``<key>#<nsp>#<uid>#`` per server, and (``subscription_mode="dynamic"``, the default) one
channel per public room, ``<key>#<nsp>#<room>#``. The server count is ``PUBSUB SHARDNUMSUB``. That
format has no "all rooms" request, so :meth:`all_rooms` raises there. Redis Cluster is not supported
(one Redis server, or a proxy in front of a cluster).

Losing Redis never crashes or blocks the server: local delivery always happens; a message that cannot
be published is counted (``stats["messages_lost"]``) and logged; a message that reached fewer servers
than were subscribed moments before is counted (``stats["messages_short"]``) and logged; cluster
requests (fetch_sockets, server_side_emit_with_ack, all_rooms, broadcasts with acks) are answered by
this server alone while Redis is away, and logged (``stats["degraded"]``). :attr:`RedisAdapter.healthy`
tells whether the subscriber is connected and subscribed and the last publish went through.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from ..proto.socketio import EVENT, Packet
from ..server.adapter import Adapter, BroadcastOptions
from ._link import LossLog, RedisLink, bounded
from ._wire import (
    MessageType,
    RequestType,
    decode,
    glob_escape,
    has_binary,
    json_bytes,
    new_id,
    options_from_wire,
    pack,
    wire_flags,
    wire_options,
)
from .errors import AdapterError, ClusterTimeoutError, MessageTooLargeError, RedisUnavailableError

if TYPE_CHECKING:
    from ..server.namespace import Namespace
    from ..server.server import AsyncServer
    from ..server.socket import Socket

__all__ = ["DEFAULT_PUBLISH_MAX_BYTES", "RedisAdapter", "RedisNamespaceAdapter", "ShardedRedisNamespaceAdapter"]

log = logging.getLogger("sioserver.redis")

#: Redis disconnects a subscriber whose output buffer passes 32 MB (8 MB for a minute) by default:
#: a few large messages in a row would cut every server off. 1 MiB leaves a wide margin.
DEFAULT_PUBLISH_MAX_BYTES = 1 << 20
_SUBSCRIPTION_MODES = ("static", "dynamic", "dynamic-private")


class RedisAdapter:
    """A factory of Redis adapters, one per namespace: ``AsyncServer(adapter=RedisAdapter(url))``.

    Options:

    ``url``
        ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` for TLS, ``unix://path``.
    ``key``
        The channel prefix (``socket.io``): the Node adapter's ``key`` option, or ``channelPrefix``
        of ``createShardedAdapter``. The emitters of the cluster must use the same.
    ``request_timeout``
        Seconds to wait for every server to answer a request (fetch_sockets, all_rooms,
        server_side_emit_with_ack). 5, as the Node adapter's ``requestsTimeout``.
    ``publish_max_bytes``
        The largest message published, encoded. Larger broadcasts raise
        :class:`~sioserver.adapters.MessageTooLargeError` before anything is sent, even locally.
    ``sharded``, ``subscription_mode``
        Use Redis 7 sharded Pub/Sub, as ``createShardedAdapter`` (``"static"``, ``"dynamic"`` or
        ``"dynamic-private"``, as its option of the same name).
    ``publish_on_specific_response_channel``
        Answer requests on the requester's own response channel (the Node option of that name).
    ``connect_timeout``, ``command_timeout``
        Seconds for a TCP connect to Redis, and for a command (PUBLISH pipeline, PUBSUB NUMSUB).
    ``reconnect_min_delay``, ``reconnect_max_delay``
        The subscriber's backoff between reconnects (doubling, with jitter).
    ``health_check_interval``
        Seconds of silence on the subscriber connection before a PING; no answer within as long
        again and the connection is replaced. 0 turns it off.
    ``max_queue``, ``max_queue_bytes``
        How many messages (and bytes) may wait for Redis; beyond, messages are dropped (counted and
        logged). While Redis is known to be away nothing waits: messages are dropped at once.
    ``delivery_window``
        How long (s) the number of subscribers seen on a channel is remembered, to tell when a
        message reached fewer servers than the cluster had (servers reconnecting after an outage).
    ``redis_options``
        More keyword arguments for redis-py's connection pool (``ssl_ca_certs``, ``username``...).
    ``logger``
        A ``logging.Logger`` (default ``sioserver.redis``).

    Attributes: :attr:`healthy`, and :attr:`stats`, a ``Counter`` shared by every adapter made here:
    ``published``, ``received`` (messages), ``messages_lost`` (not published: Redis away, queue
    full), ``messages_short`` (published, but to fewer servers than were subscribed moments before),
    ``publish_errors``, ``too_large``, ``malformed``, ``handler_errors``, ``redis_errors``,
    ``subscriber_disconnects``, ``reconnects``, ``request_timeouts``, ``degraded`` (cluster requests
    answered by this server alone). Each adapter (``sio._namespaces[nsp].adapter``) has ``healthy``
    and ``stats`` too.
    """

    def __init__(
        self,
        url: str = "redis://localhost:6379/0",
        *,
        key: str = "socket.io",
        request_timeout: float = 5.0,
        publish_max_bytes: int = DEFAULT_PUBLISH_MAX_BYTES,
        sharded: bool = False,
        subscription_mode: str = "dynamic",
        publish_on_specific_response_channel: bool = False,
        connect_timeout: float = 2.0,
        command_timeout: float = 3.0,
        reconnect_min_delay: float = 0.1,
        reconnect_max_delay: float = 5.0,
        health_check_interval: float = 5.0,
        max_queue: int = 100_000,
        max_queue_bytes: int = 64 << 20,
        delivery_window: float = 15.0,
        redis_options: dict[str, Any] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        if not isinstance(url, str) or "://" not in url:
            raise ValueError(f"RedisAdapter needs a redis:// URL, not {url!r}")
        if subscription_mode not in _SUBSCRIPTION_MODES:
            raise ValueError(f"subscription_mode must be one of {_SUBSCRIPTION_MODES}, not {subscription_mode!r}")
        if min(request_timeout, publish_max_bytes, max_queue, max_queue_bytes) <= 0:
            raise ValueError("request_timeout, publish_max_bytes, max_queue and max_queue_bytes must be positive")
        if not 0 < reconnect_min_delay <= reconnect_max_delay:
            raise ValueError("need 0 < reconnect_min_delay <= reconnect_max_delay")
        self.url = url
        self.key = key
        self.request_timeout = float(request_timeout)
        self.publish_max_bytes = int(publish_max_bytes)
        self.sharded = bool(sharded)
        self.subscription_mode = subscription_mode
        self.publish_on_specific_response_channel = bool(publish_on_specific_response_channel)
        self.delivery_window = float(delivery_window)
        self.logger = logger or log
        self.stats: Counter[str] = Counter()
        self._link_options: dict[str, Any] = {
            "connect_timeout": connect_timeout,
            "command_timeout": command_timeout,
            "reconnect_min_delay": reconnect_min_delay,
            "reconnect_max_delay": reconnect_max_delay,
            "health_check_interval": health_check_interval,
            "max_queue": max_queue,
            "max_queue_bytes": max_queue_bytes,
            "redis_options": dict(redis_options or {}),
        }
        # one link (pair of connections) per server: NUMSUB counts connections, so two servers in
        # one process sharing a subscriber connection would count as one
        self._links: weakref.WeakKeyDictionary[AsyncServer, RedisLink] = weakref.WeakKeyDictionary()
        self._members: dict[RedisLink, set[_RedisAdapterBase]] = {}

    def __repr__(self) -> str:
        mode = "sharded" if self.sharded else "classic"
        return f"<RedisAdapter {mode} key={self.key!r} healthy={self.healthy}>"

    def __call__(self, namespace: Namespace) -> Adapter:
        link = self._links.get(namespace.server)
        if link is None or link._closing:
            link = RedisLink(self.url, logger=self.logger, stats=self.stats, **self._link_options)
            self._links[namespace.server] = link
            self._members[link] = set()
        cls: type[_RedisAdapterBase] = ShardedRedisNamespaceAdapter if self.sharded else RedisNamespaceAdapter
        adapter = cls(namespace, self, link)
        self._members[link].add(adapter)
        return adapter

    @property
    def adapters(self) -> list[_RedisAdapterBase]:
        """The live namespace adapters made by this factory."""
        return [a for members in self._members.values() for a in members]

    @property
    def healthy(self) -> bool:
        """Every server's link is subscribed and publishing (False before the first namespace exists)."""
        links = list(self._members)
        return bool(links) and all(link.healthy for link in links)

    async def wait_ready(self, timeout: float = 5.0) -> bool:
        """Start the adapters made so far and wait until :attr:`healthy` (False after ``timeout`` s)."""
        for adapter in self.adapters:
            adapter._start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for link in list(self._members):
            if not await link.wait_ready(max(deadline - loop.time(), 0)):
                return False
        return True

    async def close(self) -> None:
        """Close every adapter and connection (the server's shutdown does this for its namespaces)."""
        for adapter in self.adapters:
            await adapter.close()
        for link in list(self._members):
            await link.close()
        self._members.clear()

    async def _release(self, adapter: _RedisAdapterBase) -> None:
        members = self._members.get(adapter.link)
        if members is None:
            return
        members.discard(adapter)
        if not members:
            del self._members[adapter.link]
            await adapter.link.close()


class _Request:
    """A request waiting for ``expected`` answers."""

    __slots__ = ("expected", "future", "kind", "received", "results")

    def __init__(self, kind: str, expected: int, results: Any, future: asyncio.Future[None]) -> None:
        self.kind = kind
        self.expected = expected
        self.results = results
        self.future = future
        self.received = 0

    def add(self, value: Any) -> None:
        kind = self.kind
        if kind == "sockets":
            if isinstance(value, list):
                self.results.extend(s for s in value if isinstance(s, dict))
        elif kind == "rooms":
            if isinstance(value, list):
                self.results.update(r if isinstance(r, str) else str(r) for r in value)
        else:  # "answers"
            self.results.append(value)
        self.received += 1
        if self.received >= self.expected and not self.future.done():
            self.future.set_result(None)


class _AckRequest:
    __slots__ = ("ack", "client_count")

    def __init__(self, client_count: Callable[[int], None], ack: Callable[[list[Any]], None]) -> None:
        self.client_count = client_count
        self.ack = ack


def socket_details(socket: Socket) -> dict[str, Any]:
    """A local socket as fetch_sockets() answers send it: ``{"id", "handshake", "rooms", "data"}``."""
    sid = socket.sid
    return {
        "id": sid,
        "handshake": socket.handshake,
        "rooms": [sid, *sorted(r for r in socket.rooms if r != sid)],
        "data": socket.session,
    }


class _RedisAdapterBase(Adapter):
    """What the classic and the sharded wire formats share: local parts, requests, accounting."""

    sharded: ClassVar[bool] = False

    def __init__(self, namespace: Namespace, factory: RedisAdapter, link: RedisLink) -> None:
        super().__init__(namespace)
        self.factory = factory
        self.link = link
        self.stats = factory.stats
        self.log = factory.logger
        self.uid = secrets.token_hex(8) if self.sharded else new_id(6)
        self._requests: dict[str, _Request] = {}
        self._ack_requests: dict[str, _AckRequest] = {}
        self._started = False
        self._closed = False
        self._seen: dict[str, tuple[int, float]] = {}
        self._short = LossLog(self.log, self.stats, "messages_short",
                              f"in {namespace.name} reached fewer servers than were subscribed moments before "
                              f"(those were probably reconnecting to Redis)")
        self._degraded_logged = 0.0
        self._track_broadcast = self._tracker("broadcast")
        self._track_request = self._tracker("request")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.namespace.name} uid={self.uid}>"

    # ------------------------------------------------------------ lifecycle

    @property
    def healthy(self) -> bool:
        """This server's link to Redis is subscribed and publishing."""
        return self.link.healthy

    def _start(self) -> None:
        """Subscribe (once, and only inside a running event loop)."""
        if self._started or self._closed:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self._started = True
        self._subscribe()
        self.link.ensure_running()

    async def init(self) -> None:
        self._start()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._started:
            self._unsubscribe()
        for request in self._requests.values():
            if not request.future.done():
                request.future.set_exception(AdapterError(f"the adapter of {self.namespace.name} closed"))
        self._ack_requests.clear()
        await self.factory._release(self)

    def _subscribe(self) -> None:
        raise NotImplementedError

    def _unsubscribe(self) -> None:
        raise NotImplementedError

    # ---------------------------------------------------------- publishing

    def _check_size(self, what: str, payload: bytes) -> None:
        if len(payload) > self.factory.publish_max_bytes:
            self.stats["too_large"] += 1
            raise MessageTooLargeError(what, len(payload), self.factory.publish_max_bytes)

    def _fit(self, what: str, payload: bytes, fallback: Callable[[], bytes]) -> bytes:
        """An answer must go out, or a peer waits for it until its timeout: too large -> ``fallback()``."""
        if len(payload) <= self.factory.publish_max_bytes:
            return payload
        self.stats["too_large"] += 1
        self.log.error("redis adapter: %s is %d bytes, over publish_max_bytes=%d: an empty answer is sent instead",
                       what, len(payload), self.factory.publish_max_bytes)
        return fallback()

    def _publish(self, channel: bytes, payload: bytes, track: Callable[[int], None] | None = None) -> None:
        self.link.publish(channel, payload, sharded=self.sharded, on_result=track)

    def _tracker(self, key: str) -> Callable[[int], None]:
        """Compares how many subscribers a message reached with the most seen on that channel lately."""
        window = self.factory.delivery_window

        def observed(receivers: int) -> None:
            now = time.monotonic()
            best = self._seen.get(key)
            if best is None or receivers >= best[0] or now - best[1] > window:
                self._seen[key] = (receivers, now)
                if best is not None and receivers >= best[0]:
                    self._short.resolved()
                return
            self._short.add(1, f"one reached {receivers} of the {best[0]} subscribers seen in the last {window:g}s")

        return observed

    def _degraded(self, what: str, reason: str) -> None:
        self.stats["degraded"] += 1
        now = time.monotonic()
        if now - self._degraded_logged >= 5.0:
            self._degraded_logged = now
            self.log.warning("redis adapter: %s in %s answered by this server only: %s",
                             what, self.namespace.name, reason)

    # ------------------------------------------------------------- requests

    async def _numsub(self) -> int:
        raise NotImplementedError

    async def server_count(self) -> int:
        """Servers subscribed to this namespace, this one included (1 while Redis is away)."""
        self._start()
        if not self.link.subscriber_ready:
            return 1
        try:
            count = await self._numsub()
        except RedisUnavailableError as exc:
            self.log.warning("redis adapter: cannot count the servers of %s: %s", self.namespace.name, exc)
            return 1
        self._track_request(count)
        return max(count, 1)

    async def _servers(self, what: str) -> int:
        """How many servers a request of this server goes to (1 and a log line while Redis is away)."""
        self._start()
        if not self.link.healthy:
            self._degraded(what, "Redis is unreachable")
            return 1
        try:
            count = await self._numsub()
        except RedisUnavailableError as exc:
            self._degraded(what, str(exc))
            return 1
        self._track_request(count)
        return max(count, 1)

    async def _ask(self, kind: str, what: str, expected: int, results: Any,
                   build: Callable[[str], bytes], channel: bytes, timeout: float | None = None) -> Any:
        """Publish a request and wait for ``expected`` answers; :class:`ClusterTimeoutError` if they do not come."""
        request_id = secrets.token_hex(8) if self.sharded else new_id(6)
        payload = build(request_id)
        self._check_size(what, payload)
        request = _Request(kind, expected, results, asyncio.get_running_loop().create_future())
        self._requests[request_id] = request
        try:
            self._publish(channel, payload, self._track_request)
            try:
                await bounded(asyncio.shield(request.future),
                              timeout if timeout is not None else self.factory.request_timeout)
            except TimeoutError:
                self.stats["request_timeouts"] += 1
                raise ClusterTimeoutError(what, expected + 1, request.received + 1, request.results) from None
            return request.results
        finally:
            self._requests.pop(request_id, None)

    def _answered(self, request_id: Any, value: Any) -> None:
        request = self._requests.get(request_id) if isinstance(request_id, str) else None
        if request is not None:
            request.add(value)

    def _register_ack(self, request_id: str, timeout: float, client_count: Callable[[int], None],
                      ack: Callable[[list[Any]], None]) -> None:
        self._ack_requests[request_id] = _AckRequest(client_count, ack)
        # nobody tells when every client has answered: forget the request after its timeout
        asyncio.get_running_loop().call_later(timeout + 1, self._ack_requests.pop, request_id, None)

    def _ack_count(self, request_id: Any, count: Any) -> None:
        ack_request = self._ack_requests.get(request_id) if isinstance(request_id, str) else None
        if ack_request is not None and isinstance(count, int):
            ack_request.client_count(count)

    def _ack_answer(self, request_id: Any, answer: Any) -> None:
        ack_request = self._ack_requests.get(request_id) if isinstance(request_id, str) else None
        if ack_request is not None:
            ack_request.ack([answer])

    # -------------------------------------------------- serving other servers

    def _local_details(self, opts: BroadcastOptions) -> list[dict[str, Any]]:
        return [socket_details(s) for s in self._sockets(opts)]

    def _run_server_event(self, data: Any, respond: Callable[[Any], None] | None) -> None:
        """A server-side event from another server: the handler runs; its return value is the answer."""
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            self.stats["malformed"] += 1
            if respond is not None:
                respond(None)
            return
        server = self.namespace.server
        name = self.namespace.name

        async def run() -> None:
            answer = None
            try:
                answer = await server._server_event(name, list(data))
            except Exception:
                self.log.exception("server-side event %r in %s: the handler failed", data[0], name)
            if respond is not None:
                respond(answer)

        server.start_background_task(run)

    def _broadcast_for(self, packet: Any, opts: BroadcastOptions, count: Callable[[int], None],
                       ack: Callable[[Any], None]) -> None:
        """Another server's broadcast with acks: deliver here, report the count, then each answer."""
        data = packet.get("data") if isinstance(packet, dict) else None
        if not isinstance(data, list) or not data:
            self.stats["malformed"] += 1
            count(0)
            return
        timeout = opts.timeout if opts.timeout is not None else self.namespace.server.ack_timeout
        Adapter.broadcast_with_ack(self, Packet(EVENT, self.namespace.name, data), opts.but(timeout=timeout),
                                   count, lambda answer: ack(answer[0] if answer else None))

    def _local_broadcast(self, data: Any, opts: BroadcastOptions) -> None:
        if not isinstance(data, list) or not data:
            self.stats["malformed"] += 1
            return
        Adapter.broadcast(self, Packet(EVENT, self.namespace.name, data), opts)

    # ---------------------------------------------------------- interface

    async def all_rooms(self) -> set[str]:
        raise NotImplementedError


class RedisNamespaceAdapter(_RedisAdapterBase):
    """One namespace on the classic wire format of @socket.io/redis-adapter 8.x."""

    def __init__(self, namespace: Namespace, factory: RedisAdapter, link: RedisLink) -> None:
        super().__init__(namespace, factory, link)
        key, nsp = factory.key, namespace.name
        self.channel = f"{key}#{nsp}#".encode()
        self.request_channel = f"{key}-request#{nsp}#".encode()
        self.response_channel = f"{key}-response#{nsp}#".encode()
        self.specific_response_channel = self.response_channel + self.uid.encode() + b"#"
        self.pattern = (glob_escape(f"{key}#{nsp}#") + "*").encode()

    def _subscribe(self) -> None:
        link = self.link
        link.subscribe("psub", self.pattern, self._on_broadcast)
        link.subscribe("sub", self.request_channel, self._on_request)
        link.subscribe("sub", self.response_channel, self._on_response)
        link.subscribe("sub", self.specific_response_channel, self._on_response)

    def _unsubscribe(self) -> None:
        link = self.link
        link.unsubscribe("psub", self.pattern)
        for channel in (self.request_channel, self.response_channel, self.specific_response_channel):
            link.unsubscribe("sub", channel)

    async def _numsub(self) -> int:
        return await self.link.numsub(self.request_channel)

    # ------------------------------------------------------------ outgoing

    def broadcast(self, packet: Packet, opts: BroadcastOptions) -> int:
        if opts.local:
            return super().broadcast(packet, opts)
        self._start()
        nsp = self.namespace.name
        wire_packet = {"type": 2, "data": packet.data, "nsp": nsp}
        payload = pack([self.uid, wire_packet, wire_options(opts, wire_flags(opts))])
        self._check_size(f"a broadcast of {packet.data[0]!r} in {nsp}", payload)
        count = super().broadcast(packet, opts)
        channel = self.channel
        if len(opts.rooms) == 1:
            (room,) = opts.rooms
            channel += room.encode() + b"#"
        self._publish(channel, payload, self._track_broadcast)
        return count

    def broadcast_with_ack(self, packet: Packet, opts: BroadcastOptions, client_count: Callable[[int], None],
                           ack: Callable[[list[Any]], None]) -> None:
        if opts.local:
            super().broadcast_with_ack(packet, opts, client_count, ack)
            return
        self._start()
        nsp = self.namespace.name
        timeout = opts.timeout if opts.timeout is not None else self.namespace.server.ack_timeout
        request_id = new_id(6)
        payload = pack({
            "uid": self.uid,
            "requestId": request_id,
            "type": int(RequestType.BROADCAST),
            "packet": {"type": 2, "data": packet.data, "nsp": nsp},
            "opts": wire_options(opts, wire_flags(opts, timeout)),
        })
        self._check_size(f"a broadcast with acks of {packet.data[0]!r} in {nsp}", payload)
        self._register_ack(request_id, timeout, client_count, ack)
        try:
            super().broadcast_with_ack(packet, opts, client_count, ack)
        except BaseException:
            self._ack_requests.pop(request_id, None)
            raise
        self._publish(self.request_channel, payload, self._track_request)

    def _apply_everywhere(self, what: str, request: dict[str, Any]) -> bytes:
        payload = json_bytes(request)
        self._check_size(what, payload)
        return payload

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        if opts.local:
            super().add_sockets(opts, rooms)
            return
        self._start()
        payload = self._apply_everywhere("sockets_join()", {
            "uid": self.uid, "type": int(RequestType.REMOTE_JOIN), "opts": wire_options(opts), "rooms": rooms})
        super().add_sockets(opts, rooms)
        self._publish(self.request_channel, payload, self._track_request)

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        if opts.local:
            super().del_sockets(opts, rooms)
            return
        self._start()
        payload = self._apply_everywhere("sockets_leave()", {
            "uid": self.uid, "type": int(RequestType.REMOTE_LEAVE), "opts": wire_options(opts), "rooms": rooms})
        super().del_sockets(opts, rooms)
        self._publish(self.request_channel, payload, self._track_request)

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        if opts.local:
            super().disconnect_sockets(opts, close)
            return
        self._start()
        payload = self._apply_everywhere("disconnect_sockets()", {
            "uid": self.uid, "type": int(RequestType.REMOTE_DISCONNECT), "opts": wire_options(opts),
            "close": bool(close)})
        super().disconnect_sockets(opts, close)
        self._publish(self.request_channel, payload, self._track_request)

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[Any]:
        local: list[Any] = await super().fetch_sockets(opts)
        if opts.local:
            return local
        servers = await self._servers("fetch_sockets()")
        if servers <= 1:
            return local

        def build(request_id: str) -> bytes:
            return json_bytes({"uid": self.uid, "requestId": request_id, "type": int(RequestType.REMOTE_FETCH),
                               "opts": wire_options(opts)})

        remote: list[Any] = await self._ask("sockets", "fetch_sockets()", servers - 1, [], build,
                                            self.request_channel)
        return local + remote

    async def all_rooms(self) -> set[str]:
        rooms = set(self.rooms)
        servers = await self._servers("all_rooms()")
        if servers <= 1:
            return rooms

        def build(request_id: str) -> bytes:
            return json_bytes({"uid": self.uid, "requestId": request_id, "type": int(RequestType.ALL_ROOMS)})

        result: set[str] = await self._ask("rooms", "all_rooms()", servers - 1, rooms, build, self.request_channel)
        return result

    async def server_side_emit(self, args: list[Any]) -> None:
        self._start()
        payload = json_bytes({"uid": self.uid, "type": int(RequestType.SERVER_SIDE_EMIT), "data": args})
        self._check_size(f"server_side_emit({args[0]!r})", payload)
        self._publish(self.request_channel, payload, self._track_request)

    async def server_side_emit_with_ack(self, args: list[Any], timeout: float | None = None) -> list[Any]:
        servers = await self._servers(f"server_side_emit_with_ack({args[0]!r})")
        if servers <= 1:
            return []

        def build(request_id: str) -> bytes:
            return json_bytes({"uid": self.uid, "requestId": request_id, "type": int(RequestType.SERVER_SIDE_EMIT),
                               "data": args})

        answers: list[Any] = await self._ask("answers", f"server_side_emit_with_ack({args[0]!r})", servers - 1, [],
                                             build, self.request_channel, timeout)
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
        self._local_broadcast(packet.get("data"), options_from_wire(raw_opts))

    def _respond(self, request: dict[str, Any], payload: bytes) -> None:
        channel = self.response_channel
        uid = request.get("uid")
        if self.factory.publish_on_specific_response_channel and isinstance(uid, str):
            channel += uid.encode() + b"#"
        self._publish(channel, payload)

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
        mine = uid == self.uid or request_id in self._requests
        if kind == RequestType.SOCKETS:
            if mine:
                return
            rooms = request.get("rooms")
            sids = self.sockets(rooms if isinstance(rooms, list) else ())
            self._respond(request, self._fit("a SOCKETS answer", json_bytes({"requestId": request_id,
                                                                            "sockets": list(sids)}),
                                             lambda: json_bytes({"requestId": request_id, "sockets": []})))
        elif kind == RequestType.ALL_ROOMS:
            if mine:
                return
            self._respond(request, self._fit("an ALL_ROOMS answer",
                                             json_bytes({"requestId": request_id, "rooms": list(self.rooms)}),
                                             lambda: json_bytes({"requestId": request_id, "rooms": []})))
        elif kind in (RequestType.REMOTE_JOIN, RequestType.REMOTE_LEAVE, RequestType.REMOTE_DISCONNECT):
            if uid == self.uid:
                return  # applied here when it was sent
            self._remote_change(kind, request)
        elif kind == RequestType.REMOTE_FETCH:
            if mine:
                return
            details = self._local_details(options_from_wire(request.get("opts")))
            self._respond(request, self._fit("a fetch_sockets() answer",
                                             json_bytes({"requestId": request_id, "sockets": details}, lenient=True),
                                             lambda: json_bytes({"requestId": request_id, "sockets": []})))
        elif kind == RequestType.SERVER_SIDE_EMIT:
            if uid == self.uid:
                return
            respond = None
            if request_id is not None:
                def respond(answer: Any) -> None:
                    payload = self._fit("a server-side event answer",
                                        json_bytes({"type": int(RequestType.SERVER_SIDE_EMIT), "requestId": request_id,
                                                    "data": answer}, lenient=True),
                                        lambda: json_bytes({"type": int(RequestType.SERVER_SIDE_EMIT),
                                                            "requestId": request_id, "data": None}))
                    self._publish(self.response_channel, payload)  # always the common channel, as Node does
            self._run_server_event(request.get("data"), respond)
        elif kind == RequestType.BROADCAST:
            if mine or request_id in self._ack_requests:
                return

            def count(n: int) -> None:
                self._respond(request, json_bytes({"type": int(RequestType.BROADCAST_CLIENT_COUNT),
                                                   "requestId": request_id, "clientCount": n}))

            def ack(answer: Any) -> None:
                def message(value: Any) -> bytes:
                    return pack({"type": int(RequestType.BROADCAST_ACK), "requestId": request_id, "packet": value})
                self._respond(request, self._fit("a client's ack", message(answer), lambda: message(None)))

            self._broadcast_for(request.get("packet"), options_from_wire(request.get("opts")), count, ack)

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
        if request_id in self._ack_requests:
            kind = response.get("type")
            if kind == RequestType.BROADCAST_CLIENT_COUNT:
                self._ack_count(request_id, response.get("clientCount"))
            elif kind == RequestType.BROADCAST_ACK:
                self._ack_answer(request_id, response.get("packet"))
            return
        request = self._requests.get(request_id) if isinstance(request_id, str) else None
        if request is None:
            return
        if request.kind == "sockets":
            self._answered(request_id, response.get("sockets"))
        elif request.kind == "rooms":
            self._answered(request_id, response.get("rooms"))
        else:
            self._answered(request_id, response.get("data"))


_MAY_HOLD_BINARY = frozenset({MessageType.BROADCAST, MessageType.BROADCAST_ACK, MessageType.FETCH_SOCKETS_RESPONSE,
                              MessageType.SERVER_SIDE_EMIT, MessageType.SERVER_SIDE_EMIT_RESPONSE})


class ShardedRedisNamespaceAdapter(_RedisAdapterBase):
    """One namespace on the wire format of ``createShardedAdapter`` (socket.io-adapter's ClusterAdapter)."""

    sharded = True

    def __init__(self, namespace: Namespace, factory: RedisAdapter, link: RedisLink) -> None:
        super().__init__(namespace, factory, link)
        self.channel = f"{factory.key}#{namespace.name}#".encode()
        self.response_channel = self.channel + self.uid.encode() + b"#"
        self.mode = factory.subscription_mode
        self._room_channels: set[str] = set()

    # -------------------------------------------------------- subscriptions

    def _subscribe(self) -> None:
        self.link.subscribe("ssub", self.channel, self._on_message)
        self.link.subscribe("ssub", self.response_channel, self._on_message)
        for room in list(self.rooms):
            self._room_created(room)

    def _unsubscribe(self) -> None:
        self.link.unsubscribe("ssub", self.channel)
        self.link.unsubscribe("ssub", self.response_channel)
        for room in list(self._room_channels):
            self.link.unsubscribe("ssub", self._room_channel(room))
        self._room_channels.clear()

    def _room_channel(self, room: str) -> bytes:
        return self.channel + room.encode() + b"#"

    def _room_created(self, room: str) -> None:
        if not self._started or self.mode == "static" or room in self._room_channels:
            return
        if self.mode == "dynamic" and room in self.sids:
            return  # a socket's own room: broadcasts to it use the main channel
        self._room_channels.add(room)
        self.link.subscribe("ssub", self._room_channel(room), self._on_message)

    def _room_deleted(self, room: str) -> None:
        if room in self._room_channels:
            self._room_channels.discard(room)
            self.link.unsubscribe("ssub", self._room_channel(room))

    def add_all(self, sid: str, rooms: Iterable[str]) -> None:
        rooms = tuple(rooms)
        new = [room for room in rooms if room not in self.rooms]
        super().add_all(sid, rooms)
        for room in new:
            self._room_created(room)

    def delete(self, sid: str, room: str) -> None:
        super().delete(sid, room)
        if room not in self.rooms:
            self._room_deleted(room)

    def delete_all(self, sid: str) -> None:
        joined = tuple(self.sids.get(sid, ()))
        super().delete_all(sid)
        for room in joined:
            if room not in self.rooms:
                self._room_deleted(room)

    async def _numsub(self) -> int:
        return await self.link.numsub(self.channel, sharded=True)

    # ------------------------------------------------------------ encoding

    def _encode(self, kind: MessageType, data: dict[str, Any], lenient: bool = False) -> bytes:
        message = {"type": int(kind), "data": data, "uid": self.uid, "nsp": self.namespace.name}
        if kind in _MAY_HOLD_BINARY and has_binary(data):
            return pack(message)
        return json_bytes(message, lenient=lenient)

    def _send(self, kind: MessageType, data: dict[str, Any], what: str, channel: bytes | None = None) -> None:
        payload = self._encode(kind, data)
        self._check_size(what, payload)
        self._publish(channel or self.channel, payload, self._track_request if channel is None else None)

    def _reply(self, requester: Any, kind: MessageType, data: dict[str, Any], empty: dict[str, Any],
               what: str) -> None:
        if not isinstance(requester, str):
            return
        payload = self._fit(what, self._encode(kind, data, lenient=True), lambda: self._encode(kind, empty))
        self._publish(self.channel + requester.encode() + b"#", payload)

    def _uses_room_channel(self, opts: BroadcastOptions) -> bytes | None:
        if len(opts.rooms) != 1 or self.mode == "static":
            return None
        (room,) = opts.rooms
        if self.mode == "dynamic" and len(room) == 20:  # looks like a socket id: the main channel
            return None
        return self._room_channel(room)

    # ------------------------------------------------------------ outgoing

    def broadcast(self, packet: Packet, opts: BroadcastOptions) -> int:
        if opts.local:
            return super().broadcast(packet, opts)
        self._start()
        what = f"a broadcast of {packet.data[0]!r} in {self.namespace.name}"
        payload = self._encode(MessageType.BROADCAST, {"packet": {"type": 2, "data": packet.data},
                                                       "opts": wire_options(opts, wire_flags(opts))})
        self._check_size(what, payload)
        count = super().broadcast(packet, opts)
        room_channel = self._uses_room_channel(opts)
        if room_channel is None:
            self._publish(self.channel, payload, self._track_broadcast)
        else:
            self._publish(room_channel, payload)  # its subscribers are the servers holding the room
        return count

    def broadcast_with_ack(self, packet: Packet, opts: BroadcastOptions, client_count: Callable[[int], None],
                           ack: Callable[[list[Any]], None]) -> None:
        if opts.local:
            super().broadcast_with_ack(packet, opts, client_count, ack)
            return
        self._start()
        timeout = opts.timeout if opts.timeout is not None else self.namespace.server.ack_timeout
        request_id = secrets.token_hex(8)
        payload = self._encode(MessageType.BROADCAST, {"packet": {"type": 2, "data": packet.data},
                                                       "requestId": request_id,
                                                       "opts": wire_options(opts, wire_flags(opts, timeout))})
        self._check_size(f"a broadcast with acks of {packet.data[0]!r} in {self.namespace.name}", payload)
        self._register_ack(request_id, timeout, client_count, ack)
        try:
            super().broadcast_with_ack(packet, opts, client_count, ack)
        except BaseException:
            self._ack_requests.pop(request_id, None)
            raise
        self._publish(self.channel, payload, self._track_broadcast)

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        if not opts.local:
            self._start()
            self._send(MessageType.SOCKETS_JOIN, {"opts": wire_options(opts, wire_flags(opts)), "rooms": rooms},
                       "sockets_join()")
        super().add_sockets(opts, rooms)

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        if not opts.local:
            self._start()
            self._send(MessageType.SOCKETS_LEAVE, {"opts": wire_options(opts, wire_flags(opts)), "rooms": rooms},
                       "sockets_leave()")
        super().del_sockets(opts, rooms)

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        if not opts.local:
            self._start()
            self._send(MessageType.DISCONNECT_SOCKETS, {"opts": wire_options(opts, wire_flags(opts)),
                                                        "close": bool(close)}, "disconnect_sockets()")
        super().disconnect_sockets(opts, close)

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[Any]:
        local: list[Any] = await super().fetch_sockets(opts)
        if opts.local:
            return local
        servers = await self._servers("fetch_sockets()")
        if servers <= 1:
            return local

        def build(request_id: str) -> bytes:
            return self._encode(MessageType.FETCH_SOCKETS, {"opts": wire_options(opts, wire_flags(opts)),
                                                            "requestId": request_id})

        remote: list[Any] = await self._ask("sockets", "fetch_sockets()", servers - 1, [], build, self.channel)
        return local + remote

    async def all_rooms(self) -> set[str]:
        raise AdapterError("all_rooms() has no request in the sharded wire format (createShardedAdapter); "
                           "use the classic RedisAdapter, or fetch_sockets()")

    async def server_side_emit(self, args: list[Any]) -> None:
        self._start()
        self._send(MessageType.SERVER_SIDE_EMIT, {"packet": args}, f"server_side_emit({args[0]!r})")

    async def server_side_emit_with_ack(self, args: list[Any], timeout: float | None = None) -> list[Any]:
        what = f"server_side_emit_with_ack({args[0]!r})"
        servers = await self._servers(what)
        if servers <= 1:
            return []

        def build(request_id: str) -> bytes:
            return self._encode(MessageType.SERVER_SIDE_EMIT, {"requestId": request_id, "packet": args})

        answers: list[Any] = await self._ask("answers", what, servers - 1, [], build, self.channel, timeout)
        return answers

    # ------------------------------------------------------------ incoming

    def _on_message(self, channel: bytes, data: bytes) -> None:
        try:
            message = decode(data)
        except ValueError:
            self.stats["malformed"] += 1
            return
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
            opts = options_from_wire(body.get("opts"))
            if request_id is None:
                self._local_broadcast(packet.get("data") if isinstance(packet, dict) else None, opts)
                return

            def count(n: int) -> None:
                self._reply(sender, MessageType.BROADCAST_CLIENT_COUNT, {"requestId": request_id, "clientCount": n},
                            {"requestId": request_id, "clientCount": n}, "a client count")

            def ack(answer: Any) -> None:
                self._reply(sender, MessageType.BROADCAST_ACK, {"requestId": request_id, "packet": answer},
                            {"requestId": request_id, "packet": None}, "a client's ack")

            self._broadcast_for(packet, opts, count, ack)
        elif kind in (MessageType.SOCKETS_JOIN, MessageType.SOCKETS_LEAVE):
            rooms = body.get("rooms")
            names = [r for r in rooms if isinstance(r, str)] if isinstance(rooms, list) else []
            opts = options_from_wire(body.get("opts"))
            if kind == MessageType.SOCKETS_JOIN:
                Adapter.add_sockets(self, opts, names)
            else:
                Adapter.del_sockets(self, opts, names)
        elif kind == MessageType.DISCONNECT_SOCKETS:
            Adapter.disconnect_sockets(self, options_from_wire(body.get("opts")), bool(body.get("close")))
        elif kind == MessageType.FETCH_SOCKETS:
            details = self._local_details(options_from_wire(body.get("opts")))
            self._reply(sender, MessageType.FETCH_SOCKETS_RESPONSE, {"requestId": request_id, "sockets": details},
                        {"requestId": request_id, "sockets": []}, "a fetch_sockets() answer")
        elif kind == MessageType.SERVER_SIDE_EMIT:
            respond = None
            if request_id is not None:
                def respond(answer: Any) -> None:
                    self._reply(sender, MessageType.SERVER_SIDE_EMIT_RESPONSE,
                                {"requestId": request_id, "packet": answer}, {"requestId": request_id, "packet": None},
                                "a server-side event answer")
            self._run_server_event(body.get("packet"), respond)
        elif kind == MessageType.FETCH_SOCKETS_RESPONSE:
            self._answered(request_id, body.get("sockets"))
        elif kind == MessageType.SERVER_SIDE_EMIT_RESPONSE:
            self._answered(request_id, body.get("packet"))
        elif kind == MessageType.BROADCAST_CLIENT_COUNT:
            self._ack_count(request_id, body.get("clientCount"))
        elif kind == MessageType.BROADCAST_ACK:
            self._ack_answer(request_id, body.get("packet"))
