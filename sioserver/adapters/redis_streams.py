"""The Redis Streams adapter: the wire of ``@socket.io/redis-streams-adapter`` 0.3, so sioserver processes
and Node socket.io servers using that package share one cluster.

::

    sio = sioserver.AsyncServer(adapter=sioserver.RedisStreamsAdapter("redis://localhost:6379/0"))

It is socket.io-adapter's cluster protocol (:class:`~sioserver.adapters.cluster.ClusterAdapter`) over
two Redis carriers, as the Node package splits them:

* **The stream** ``<stream_name>`` (one for every namespace): broadcasts without acks, ``socketsJoin``,
  ``socketsLeave``, ``disconnectSockets``. Each message is one entry added with ``XADD <stream> MAXLEN ~
  <max_len> *`` with the fields ``uid`` (the sending server), ``nsp``, ``type`` (the
  :class:`~sioserver.adapters.MessageType`, as a decimal string) and ``data``: ``JSON.stringify`` of the
  message's data, or, when the data of a broadcast or an answer holds binary, the base64 of its msgpack.
  Every server reads the stream with ``XREAD BLOCK``. The entry id is the broadcast's *offset*, what a
  client of connection state recovery resumes from.
* **Pub/Sub**, for what is useless to keep: requests (``fetchSockets``, ``serverSideEmit``, broadcasts
  with acks) are msgpack messages ``PUBLISH``\\ ed on ``<channel_prefix>#<nsp>#``; answers go to the
  asker's own ``<channel_prefix>#<nsp>#<uid>#``. The servers of a namespace are counted with
  ``PUBSUB NUMSUB <channel_prefix>#<nsp>#``.

Sessions of connection state recovery are kept in Redis under ``<session_key_prefix><pid>`` (base64 of
msgpack, ``SET .. PX <max_disconnection_duration>``), taken back with ``GET``+``DEL``, and the packets a
client missed are read again from the stream (``XRANGE`` from its offset), so it recovers on any server.

Losing Redis never crashes or blocks the server: local delivery always happens (with recovery on, once
Redis gave the entry its id, or failed to); what waits for Redis is held, bounded, and written once it
answers; what cannot be written is counted (``stats["messages_lost"]``) and logged; the reader
reconnects with backoff and resumes after the last entry it read; requests are answered by this server alone meanwhile
(``stats["degraded"]``). :attr:`RedisStreamsAdapter.healthy` tells whether every server's reader,
writer and subscriber are connected.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import weakref
from collections import Counter
from typing import Any

from ..proto.socketio import EVENT, Packet
from ..server.adapter import Adapter, BroadcastOptions
from ..server.protocols import AdapterNamespace
from ..server.recovery import PersistedSession, RestoredSession, offset_wanted, reaches, with_offset
from ._life import Members
from ._link import RedisLink
from ._streams import StreamLink
from ._streams_wire import (
    RESTORE_MAX_XRANGE_CALLS,
    RESTORE_XRANGE_COUNT,
    decode_entry,
    decode_session,
    encode_entry,
    entry_size,
    id_key,
    is_ephemeral,
    is_offset,
    message_label,
    next_offset,
    pack_lenient,
)
from ._wire import options_from_wire, pack, unpack, wire_flags, wire_options
from .cluster import ClusterAdapter, ClusterMessage, ClusterNode, MessageType, Offset
from .errors import AdapterError, MessageTooLargeError
from .redis_common import DEFAULT_PUBLISH_MAX_BYTES

__all__ = ["RedisStreamsAdapter", "RedisStreamsNamespaceAdapter", "StreamsTransport", "decode_entry",
           "encode_entry"]

log = logging.getLogger("sioserver.redis")

REPLAYED_MEMORY = 30.0  # seconds a restored socket is shielded from live copies of what was replayed to it


# ------------------------------------------------------------------------------------- transport


class _Server:
    """What the namespaces of one server share: the Pub/Sub link, the stream link, who gets what."""

    def __init__(self, factory: RedisStreamsAdapter) -> None:
        self.link = RedisLink(factory.url, logger=factory.logger, stats=factory.stats, **factory._link_options)
        self.stream = StreamLink(factory.url, factory.stream_name, logger=factory.logger, stats=factory.stats,
                                 **factory._stream_options)
        self.transports: dict[str, StreamsTransport] = {}
        self.stream.on_entry = self.on_entry

    @property
    def healthy(self) -> bool:
        return self.link.healthy and self.stream.healthy

    def on_entry(self, entry_id: str, fields: dict[str, str]) -> None:
        nsp = fields.get("nsp")
        if not nsp:
            return
        transport = self.transports.get(nsp)
        if transport is not None:
            transport.on_entry(entry_id, fields)

    async def wait_ready(self, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if not await self.link.wait_ready(timeout):
            return False
        return await self.stream.wait_ready(max(deadline - loop.time(), 0))

    async def close(self) -> None:
        await self.stream.close()
        await self.link.close()


class StreamsTransport:
    """The :class:`~sioserver.adapters.cluster.ClusterTransport` of one namespace (see the module docstring)."""

    def __init__(self, factory: RedisStreamsAdapter, server: _Server, namespace: str) -> None:
        self.server = server
        self.link = server.link
        self.stream = server.stream
        self.namespace = namespace
        self.stats = factory.stats
        self.log = factory.logger
        self.max_bytes = factory.publish_max_bytes
        self.channel = f"{factory.channel_prefix}#{namespace}#".encode()
        self.private_channel = b""
        self._census = False
        self.node: ClusterNode | None = None

    @property
    def healthy(self) -> bool:
        return self.server.healthy

    def start(self, node: ClusterNode) -> None:
        self.node = node
        self.private_channel = self.channel + node.uid.encode() + b"#"
        self.server.transports[self.namespace] = self
        self.link.subscribe("sub", self.channel, self._on_pubsub)
        self.link.subscribe("sub", self.private_channel, self._on_pubsub)
        # one subscriber per server on the namespace channel: the link's gate counts them after a fault
        self._census = self.link.set_census(self.channel, False)
        self.link.ensure_running()
        self.stream.ensure_running()

    async def close(self) -> None:
        if self.node is not None:
            self.link.unsubscribe("sub", self.channel)
            self.link.unsubscribe("sub", self.private_channel)
            if self.server.transports.get(self.namespace) is self:
                del self.server.transports[self.namespace]
        self.node = None

    # ---------------------------------------------------------------- receiving

    def on_entry(self, entry_id: str, fields: dict[str, str]) -> None:
        try:
            message = decode_entry(fields)
        except ValueError as exc:
            self.stats["malformed"] += 1
            self.log.debug("redis streams adapter: entry %s is not a message: %s", entry_id, exc)
            return
        if self.node is not None:
            self.node.on_message(message, entry_id)

    def _on_pubsub(self, channel: bytes, payload: bytes) -> None:
        try:
            message = unpack(payload)
        except ValueError:
            self.stats["malformed"] += 1
            return
        if not isinstance(message, dict):
            self.stats["malformed"] += 1
            return
        if self.node is not None:
            self.node.on_message(message)

    # ------------------------------------------------------------------ sending

    def _check(self, message: ClusterMessage, size: int) -> None:
        if size > self.max_bytes:
            self.stats["too_large"] += 1
            raise MessageTooLargeError(message_label(message), size, self.max_bytes)

    def publish(self, message: ClusterMessage) -> asyncio.Future[Offset] | None:
        if is_ephemeral(message):
            payload = pack(message)
            self._check(message, len(payload))
            self.link.publish(self.channel, payload)
            return None
        fields = encode_entry(message)
        self._check(message, entry_size(fields))
        return self.stream.add(fields)

    def publish_response(self, requester: str, response: ClusterMessage) -> None:
        payload = pack_lenient(response)
        self._check(response, len(payload))
        self.link.publish(self.channel + requester.encode() + b"#", payload)

    async def server_count(self) -> int:
        if not self.link.subscriber_ready:
            return 1
        try:
            count = await self.link.numsub(self.channel)
        except AdapterError:
            # after a Redis restart the pooled connection may be one Redis closed: the next is new
            count = await self.link.numsub(self.channel)
        if self._census:
            self.link.note_servers(count)
        return count


# --------------------------------------------------------------------------------------- adapters


class RedisStreamsNamespaceAdapter(ClusterAdapter):
    """One namespace on the wire of ``@socket.io/redis-streams-adapter``.

    With connection state recovery on (``AsyncServer(connection_state_recovery=...)``), a broadcast's
    offset is its entry id: this server's own broadcasts reach its clients once Redis gave them one (at
    once, without offset, when Redis could not take them), other servers' as they are read. Sessions
    are kept in Redis, and a restored session's missed packets are read again from the stream.
    """

    def __init__(self, namespace: AdapterNamespace, factory: RedisStreamsAdapter, server: _Server) -> None:
        self.factory = factory
        self.server = server
        self.link = server  # what the metrics count queues by: one per server, shared by its namespaces
        self.streams_transport = StreamsTransport(factory, server, namespace.name)
        super().__init__(namespace, self.streams_transport, request_timeout=factory.request_timeout,
                         stats=factory.stats, logger=factory.logger)
        # restored sid -> (the last entry replayed to it, when): live copies of those are not sent again
        self._replayed: dict[str, tuple[tuple[int, int], float]] = {}
        self._writes: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------ broadcasts with offsets

    def broadcast(self, packet: Packet, opts: BroadcastOptions) -> int:
        if opts.local or self.namespace.recovery is None:
            return super().broadcast(packet, opts)
        future = self.publish(MessageType.BROADCAST, {"packet": {"type": 2, "data": packet.data},
                                                      "opts": wire_options(opts, wire_flags(opts))})
        if future is None:
            return Adapter.broadcast(self, packet, opts)
        wanted = offset_wanted(packet, opts)

        def written(done: asyncio.Future[Offset]) -> None:
            if done.cancelled() or done.exception() is not None:
                Adapter.broadcast(self, packet, opts)  # not in the stream: no offset, local clients still get it
                return
            offset = done.result()
            Adapter.broadcast(self, with_offset(packet, offset) if wanted else packet, self._unreplayed(opts, offset))

        future.add_done_callback(written)
        return 0  # delivered once the stream answers

    def deliver_broadcast(self, data: Any, opts: BroadcastOptions, offset: Offset | None) -> None:
        if offset is not None and self.namespace.recovery is not None and isinstance(data, list) and data:
            opts = self._unreplayed(opts, offset)
            if offset_wanted(Packet(EVENT, self.namespace.name, data), opts):
                data = [*data, offset]
        self.serve_broadcast(data, opts)

    def _unreplayed(self, opts: BroadcastOptions, offset: Offset) -> BroadcastOptions:
        """``opts`` less the restored sockets that got the entry ``offset`` in their replay."""
        replayed = self._replayed
        if not replayed:
            return opts
        now = asyncio.get_running_loop().time()
        key = id_key(offset)
        skip = set()
        for sid, (last, at) in list(replayed.items()):
            if now - at > REPLAYED_MEMORY:
                del replayed[sid]
            elif key <= last:
                skip.add(sid)
        return opts.but(except_rooms=opts.except_rooms | skip) if skip else opts

    # ------------------------------------------------------------ connection state recovery

    def session_key(self, pid: str) -> str:
        return self.factory.session_key_prefix + pid

    def persist_session(self, session: PersistedSession) -> None:
        """``SET <session_key_prefix><pid> <base64 msgpack {sid, pid, rooms, data}> PX <window>``, queued."""
        recovery = self.namespace.recovery
        if recovery is None:
            return
        value = {"sid": session.sid, "pid": session.pid, "rooms": list(session.rooms), "data": session.data}
        encoded = base64.b64encode(pack_lenient(value)).decode("ascii")
        ttl_ms = round(recovery.max_disconnection_duration * 1000)
        task = asyncio.get_running_loop().create_task(self._store(session.pid, encoded, ttl_ms))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _store(self, pid: str, encoded: str, ttl_ms: int) -> None:
        try:
            await self.server.stream.set_px(self.session_key(pid), encoded, ttl_ms)
        except AdapterError as exc:
            self.stats["sessions_lost"] += 1
            self.log.warning("redis streams adapter: a session of %s was not kept (%s): that client cannot "
                             "recover", self.namespace.name, exc)
            return
        self.stats["sessions_persisted"] += 1

    async def restore_session(self, pid: str, offset: str) -> RestoredSession | None:
        """The session under ``pid`` (taken: ``GET`` + ``DEL``) and the broadcasts of this namespace after
        ``offset`` that reach its rooms, read from the stream; None when either is gone."""
        if self.namespace.recovery is None or not is_offset(offset):
            return None
        stream = self.server.stream
        raw, found = await asyncio.gather(stream.get_del(self.session_key(pid)), stream.xrange(offset, offset))
        session = decode_session(raw, pid)
        if session is None or not found:
            self.stats["sessions_refused"] += 1
            return None
        sid, rooms, data = session
        name = self.namespace.name
        missed: list[list[Any]] = []
        last = offset
        for _ in range(RESTORE_MAX_XRANGE_CALLS):
            entries = await stream.xrange(next_offset(last), "+", RESTORE_XRANGE_COUNT)
            if not entries:
                # nothing after ``last`` in the stream; what the reader handed out meanwhile (to the sockets
                # present, not this one) is read again; past that, the reader delivers to this socket live
                if stream.last_id is None or id_key(stream.last_id) <= id_key(last):
                    break
                continue
            for entry_id, fields in entries:
                last = entry_id
                if fields.get("nsp") != name or fields.get("type") != "3":
                    continue
                try:
                    body = decode_entry(fields).get("data")
                except ValueError:
                    continue
                if not isinstance(body, dict):
                    continue
                packet = body.get("packet")
                event = packet.get("data") if isinstance(packet, dict) else None
                if isinstance(event, list) and event and reaches(rooms, options_from_wire(body.get("opts"))):
                    missed.append([*event, entry_id])
        self._replayed[sid] = (id_key(last), asyncio.get_running_loop().time())
        self.stats["sessions_restored"] += 1
        self.stats["missed_packets"] += len(missed)
        return RestoredSession(sid, pid, rooms, data, missed)

    @property
    def queued(self) -> int:
        """Messages waiting for Redis (stream entries and Pub/Sub messages)."""
        return self.server.stream.queued + self.server.link.queued

    async def wait_ready(self, timeout: float = 5.0) -> bool:
        """Subscribe and place the reader; wait until both work (False after ``timeout`` seconds)."""
        self.start()
        return await self.server.wait_ready(timeout)

    async def close(self) -> None:
        if self._closed:
            return
        if self._writes:  # sessions persisted by the shutdown itself: written before the link goes
            await asyncio.wait(list(self._writes), timeout=self.server.stream.command_timeout + 1)
        await super().close()
        await self.factory._release(self)


class RedisStreamsAdapter:
    """A factory of Redis Streams adapters, one per namespace: ``AsyncServer(adapter=RedisStreamsAdapter(url))``.

    Options (the Node package's names in brackets):

    ``url``
        ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` for TLS, ``unix://path``.
    ``stream_name`` [streamName]
        The stream every namespace's messages go through (``socket.io``).
    ``max_len`` [maxLen]
        The stream is trimmed to about this many entries (``MAXLEN ~``; 10,000): how far back a
        recovering client can be served.
    ``read_count`` [readCount]
        Entries fetched per ``XREAD`` (100).
    ``session_key_prefix`` [sessionKeyPrefix]
        Where recovery sessions are kept (``sio:session:``).
    ``channel_prefix`` [channelPrefix]
        The prefix of the Pub/Sub channels of requests and answers (``socket.io``).
    ``block_time`` [blockTimeInMs, in seconds here]
        How long one ``XREAD`` blocks (5 s); a dead connection is noticed within that and ``command_timeout``.
    ``request_timeout``
        Seconds to wait for every server to answer a request (5).
    ``publish_max_bytes``
        The largest message written or published, encoded; larger raise
        :class:`~sioserver.adapters.MessageTooLargeError` before anything is sent, even locally.
    ``connect_timeout``, ``command_timeout``, ``reconnect_min_delay``, ``reconnect_max_delay``,
    ``health_check_interval``, ``max_queue``, ``max_queue_age``, ``redis_options``, ``logger``
        As :class:`~sioserver.RedisAdapter`'s: after a fault, what waits for Redis is held (at most
        ``max_queue`` messages, none older than ``max_queue_age`` seconds) and written once it answers.

    Attributes: :attr:`healthy`, and :attr:`stats`, a ``Counter`` shared by every adapter made here:
    ``published``, ``received``, ``messages_lost``, ``publish_errors``, ``too_large``, ``malformed``,
    ``handler_errors``, ``reader_disconnects``, ``subscriber_disconnects``, ``reconnects``,
    ``request_timeouts``, ``degraded``; with connection state recovery ``sessions_persisted``,
    ``sessions_lost``, ``sessions_restored``, ``sessions_refused``, ``missed_packets``.
    """

    def __init__(
        self,
        url: str = "redis://localhost:6379/0",
        *,
        stream_name: str = "socket.io",
        max_len: int = 10_000,
        read_count: int = 100,
        session_key_prefix: str = "sio:session:",
        channel_prefix: str = "socket.io",
        block_time: float = 5.0,
        request_timeout: float = 5.0,
        publish_max_bytes: int = DEFAULT_PUBLISH_MAX_BYTES,
        connect_timeout: float = 2.0,
        command_timeout: float = 3.0,
        reconnect_min_delay: float = 0.05,
        reconnect_max_delay: float = 0.2,
        health_check_interval: float = 5.0,
        max_queue: int = 100_000,
        max_queue_age: float = 10.0,
        redis_options: dict[str, Any] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        if not isinstance(url, str) or "://" not in url:
            raise ValueError(f"RedisStreamsAdapter needs a redis:// URL, not {url!r}")
        if min(max_len, read_count, request_timeout, publish_max_bytes, max_queue, block_time) <= 0:
            raise ValueError("max_len, read_count, block_time, request_timeout, publish_max_bytes and max_queue "
                             "must be positive")
        if not 0 < reconnect_min_delay <= reconnect_max_delay:
            raise ValueError("need 0 < reconnect_min_delay <= reconnect_max_delay")
        self.url = url
        self.stream_name = stream_name
        self.max_len = int(max_len)
        self.read_count = int(read_count)
        self.session_key_prefix = session_key_prefix
        self.channel_prefix = channel_prefix
        self.request_timeout = float(request_timeout)
        self.publish_max_bytes = int(publish_max_bytes)
        self.logger = logger or log
        self.stats: Counter[str] = Counter()
        options = dict(redis_options or {})
        self._link_options: dict[str, Any] = {
            "connect_timeout": connect_timeout, "command_timeout": command_timeout,
            "reconnect_min_delay": reconnect_min_delay, "reconnect_max_delay": reconnect_max_delay,
            "health_check_interval": health_check_interval, "max_queue": max_queue,
            "max_queue_age": max_queue_age, "redis_options": options,
        }
        self._stream_options: dict[str, Any] = {
            "max_len": self.max_len, "read_count": self.read_count, "block_time": float(block_time),
            "connect_timeout": connect_timeout, "command_timeout": command_timeout,
            "reconnect_min_delay": reconnect_min_delay, "reconnect_max_delay": reconnect_max_delay,
            "max_queue": max_queue, "max_queue_age": max_queue_age, "redis_options": options,
        }
        # one set of connections per server: NUMSUB counts subscriber connections
        self._servers: weakref.WeakKeyDictionary[object, _Server] = weakref.WeakKeyDictionary()
        self._live: Members[_Server, RedisStreamsNamespaceAdapter] = Members()

    def __repr__(self) -> str:
        return f"<RedisStreamsAdapter stream={self.stream_name!r} healthy={self.healthy}>"

    def __call__(self, namespace: AdapterNamespace) -> RedisStreamsNamespaceAdapter:
        server = self._servers.get(namespace.server)
        if server is None or server not in self._live:
            server = _Server(self)
            self._servers[namespace.server] = server
        adapter = RedisStreamsNamespaceAdapter(namespace, self, server)
        self._live.add(server, adapter)
        return adapter

    @property
    def adapters(self) -> list[RedisStreamsNamespaceAdapter]:
        return self._live.adapters

    @property
    def healthy(self) -> bool:
        """Every server's subscriber, stream reader and writer work (False before the first namespace)."""
        return self._live.healthy

    async def wait_ready(self, timeout: float = 5.0) -> bool:
        """Start the adapters made so far and wait until :attr:`healthy` (False after ``timeout`` s)."""
        return await self._live.wait_ready(timeout)

    async def close(self) -> None:
        """Close every adapter and connection (the server's shutdown does this for its namespaces)."""
        await self._live.close()

    async def _release(self, adapter: RedisStreamsNamespaceAdapter) -> None:
        await self._live.release(adapter.server, adapter)
