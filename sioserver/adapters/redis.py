"""The Redis adapter: sioserver processes, and Node socket.io servers, as one cluster.

::

    sio = sioserver.AsyncServer(adapter=sioserver.RedisAdapter("redis://localhost:6379/0"))

``RedisAdapter(...)`` is a factory: the server calls it once per namespace, and the adapters it makes
for one server share one pair of Redis connections (a publisher and a supervised subscriber, see
:mod:`sioserver.adapters._link`).

Wire format: that of @socket.io/redis-adapter 8.x, byte for byte, so Node servers using it (and
@socket.io/redis-emitter) can share the cluster:

* classic (:mod:`sioserver.adapters.redis_classic`): ``PUBLISH``/``PSUBSCRIBE``, broadcasts on
  ``<key>#<nsp>#[<room>#]``, requests and answers on ``<key>-request#<nsp>#`` /
  ``<key>-response#<nsp>#``, servers counted with ``PUBSUB NUMSUB``.
* ``sharded=True`` (:mod:`sioserver.adapters.redis_sharded`): the format of ``createShardedAdapter``
  (Redis 7 sharded Pub/Sub, ``SSUBSCRIBE``/``SPUBLISH``), which is socket.io-adapter's cluster
  protocol (:mod:`sioserver.adapters.cluster`) on one channel per namespace, one response channel
  per server and (``subscription_mode="dynamic"``, the default) one channel per public room. That
  format has no "all rooms" request, so :meth:`all_rooms` raises there.

Where it connects (:mod:`sioserver.adapters._target`): one Redis (``redis://``, ``rediss://``,
``unix://``), the master of a Sentinel service (``redis+sentinel://h1:26379,h2:26380/mymaster/0``),
or a Redis Cluster (``redis+cluster://h1:7000,h2:7001``, sharded Pub/Sub only: one link per master,
:mod:`sioserver.adapters._shards`).

Losing Redis never crashes or blocks the server: local delivery always happens; a message waits in a
bounded queue (count, bytes, ``max_queue_age``) until Redis answers again, and is flushed as soon as it
does; what passes a bound is counted (``stats["messages_lost"]``) and logged; a batch in flight when
Redis failed is counted (``stats["messages_uncertain"]``); each other server a message missed (PUBLISH
answered fewer receivers than servers seen moments before) is counted (``stats["messages_short"]``)
and logged; cluster
requests (fetch_sockets, server_side_emit_with_ack, all_rooms, broadcasts with acks) are answered by
this server alone while Redis is away, and logged (``stats["degraded"]``). :attr:`RedisAdapter.healthy`
tells whether the subscriber is connected and subscribed and the last publish went through.
"""

from __future__ import annotations

import logging
import weakref
from collections import Counter
from typing import Any

from ..server.protocols import AdapterNamespace
from ._life import Members
from ._link import Link
from ._shards import make_link
from .cluster import socket_details
from .redis_classic import RedisNamespaceAdapter
from .redis_common import DEFAULT_PUBLISH_MAX_BYTES
from .redis_sharded import ShardedRedisNamespaceAdapter

__all__ = ["DEFAULT_PUBLISH_MAX_BYTES", "RedisAdapter", "RedisNamespaceAdapter", "ShardedRedisNamespaceAdapter",
           "socket_details"]

log = logging.getLogger("sioserver.redis")

RedisNamespaceAdapters = RedisNamespaceAdapter | ShardedRedisNamespaceAdapter
_SUBSCRIPTION_MODES = ("static", "dynamic", "dynamic-private")


class RedisAdapter:
    """A factory of Redis adapters, one per namespace: ``AsyncServer(adapter=RedisAdapter(url))``.

    Options:

    ``url``
        ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` for TLS, ``unix://path``;
        ``redis+sentinel://[[user]:password@]h1:26379[,h2:26380]/<service>[/db]`` (the master the
        sentinels name, asked again at every reconnect, checked with ``ROLE``);
        ``redis+cluster://[[user]:password@]h1:7000[,h2:7001]`` (a Redis Cluster: ``sharded`` is then
        the default and the only choice).
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
        ``"dynamic-private"``, as its option of the same name). Default: True for ``redis+cluster://``.
    ``publish_on_specific_response_channel``
        Answer requests on the requester's own response channel (the Node option of that name).
    ``connect_timeout``, ``command_timeout``
        Seconds for a TCP connect to Redis, and for a command (PUBLISH pipeline, PUBSUB NUMSUB).
    ``reconnect_min_delay``, ``reconnect_max_delay``
        After a dropped connection the first reconnect is immediate; then one after
        ``reconnect_min_delay`` (0.05 s), doubling up to ``reconnect_max_delay`` (0.2 s; the publisher
        probes every 0.1 s at most), with jitter, so that delivery resumes within one delay of Redis
        answering again.
    ``health_check_interval``
        Seconds of silence on the subscriber connection before a PING; no answer within as long
        again and the connection is replaced. 0 turns it off.
    ``max_queue``, ``max_queue_bytes``, ``max_queue_age``
        How many messages (100 000), bytes (64 MiB) and seconds (10) a message may wait for Redis;
        beyond, it is dropped, counted in ``messages_lost`` and logged. Within them nothing is dropped:
        a timeout or a lost connection leaves the queue as it is, and it is flushed the moment Redis
        answers a probe (after this server's subscriber and, for up to ``resume_hold`` seconds (0.5),
        the other servers' are subscribed again, so that they get it).
    ``delivery_window``
        How long (s) the number of subscribers seen on a channel is remembered, to tell when a
        message reached fewer servers than the cluster had (servers reconnecting after an outage).
    ``redis_options``
        More keyword arguments for redis-py's connection pool (``ssl_ca_certs``, ``username``...).
    ``logger``
        A ``logging.Logger`` (default ``sioserver.redis``).

    Attributes: :attr:`healthy`, and :attr:`stats`, a ``Counter`` shared by every adapter made here:
    ``published``, ``received`` (messages), ``messages_lost`` (not published: queue full, or older
    than ``max_queue_age``, or refused), ``messages_uncertain`` (in flight when Redis failed: may or
    may not have been published; not sent again), ``messages_short`` (one per other server a
    published message missed: fewer receivers than servers seen within ``delivery_window``, this
    server's own subscriber not counted),
    ``publish_errors``, ``too_large``, ``malformed``, ``handler_errors``, ``redis_errors``,
    ``subscriber_disconnects``, ``reconnects``, ``request_timeouts``, ``degraded`` (cluster requests
    answered by this server alone). Each adapter (``sio.adapter(nsp)``) has ``healthy`` and ``stats``
    too.
    """

    def __init__(
        self,
        url: str = "redis://localhost:6379/0",
        *,
        key: str = "socket.io",
        request_timeout: float = 5.0,
        publish_max_bytes: int = DEFAULT_PUBLISH_MAX_BYTES,
        sharded: bool | None = None,
        subscription_mode: str = "dynamic",
        publish_on_specific_response_channel: bool = False,
        connect_timeout: float = 2.0,
        command_timeout: float = 3.0,
        reconnect_min_delay: float = 0.05,
        reconnect_max_delay: float = 0.2,
        health_check_interval: float = 5.0,
        max_queue: int = 100_000,
        max_queue_bytes: int = 64 << 20,
        max_queue_age: float = 10.0,
        resume_hold: float = 0.5,
        delivery_window: float = 15.0,
        redis_options: dict[str, Any] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        if not isinstance(url, str) or "://" not in url:
            raise ValueError(f"RedisAdapter needs a redis:// URL, not {url!r}")
        if subscription_mode not in _SUBSCRIPTION_MODES:
            raise ValueError(f"subscription_mode must be one of {_SUBSCRIPTION_MODES}, not {subscription_mode!r}")
        if min(request_timeout, publish_max_bytes, max_queue, max_queue_bytes, max_queue_age) <= 0:
            raise ValueError("request_timeout, publish_max_bytes, max_queue, max_queue_bytes and max_queue_age "
                             "must be positive")
        cluster = url.split("://", 1)[0].lower() == "redis+cluster"
        if sharded is None:
            sharded = cluster
        elif cluster and not sharded:
            raise ValueError("a redis+cluster:// URL needs sharded Pub/Sub (sharded=True): PUBSUB NUMSUB counts "
                             "the subscribers of one node only")
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
            "max_queue_age": max_queue_age,
            "resume_hold": resume_hold,
            "census_window": float(delivery_window),
            "redis_options": dict(redis_options or {}),
        }
        # one link (pair of connections) per server: NUMSUB counts connections, so two servers in
        # one process sharing a subscriber connection would count as one
        self._links: weakref.WeakKeyDictionary[object, Link] = weakref.WeakKeyDictionary()
        self._members: Members[Link, RedisNamespaceAdapters] = Members()

    def __repr__(self) -> str:
        mode = "sharded" if self.sharded else "classic"
        return f"<RedisAdapter {mode} key={self.key!r} healthy={self.healthy}>"

    def __call__(self, namespace: AdapterNamespace) -> RedisNamespaceAdapters:
        link = self._links.get(namespace.server)
        if link is None or link._closing:
            link = make_link(self.url, logger=self.logger, stats=self.stats, sharded=self.sharded,
                             **self._link_options)
            self._links[namespace.server] = link
        adapter: RedisNamespaceAdapters
        if self.sharded:
            adapter = ShardedRedisNamespaceAdapter(namespace, self, link)
        else:
            adapter = RedisNamespaceAdapter(namespace, self, link)
        self._members.add(link, adapter)
        return adapter

    @property
    def adapters(self) -> list[RedisNamespaceAdapters]:
        """The live namespace adapters made by this factory."""
        return self._members.adapters

    @property
    def healthy(self) -> bool:
        """Every server's link is subscribed and publishing (False before the first namespace exists)."""
        return self._members.healthy

    async def wait_ready(self, timeout: float = 5.0) -> bool:
        """Start the adapters made so far and wait until :attr:`healthy` (False after ``timeout`` s)."""
        return await self._members.wait_ready(timeout)

    async def close(self) -> None:
        """Close every adapter and connection (the server's shutdown does this for its namespaces)."""
        await self._members.close()

    async def _release(self, adapter: RedisNamespaceAdapters) -> None:
        await self._members.release(adapter.link, adapter)
