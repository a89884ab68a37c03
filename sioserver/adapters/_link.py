"""One server's two connections to one Redis, shared by the adapters of all its namespaces.

* The **subscriber** (:mod:`sioserver.adapters._subscriber`) is one connection owned by a supervisor
  task: it (re)subscribes every channel and pattern the adapters asked for, at once after a drop.
* The **publisher** (:mod:`sioserver.adapters._publisher`) is a bounded queue (by count, bytes and
  age) drained in order, in pipelines, by one task on its own connection. A message it cannot hand to
  Redis within the bounds is counted (``messages_lost``) and logged; a batch whose fate is unknown
  after a failure is counted as ``messages_uncertain``. Nothing is dropped silently.
* **The gate.** After a fault (the publisher failed, or this server's own subscriber dropped), the
  queue is flushed only once this server's subscriber is subscribed again and the census channel of
  its first namespace counts as many subscribers as there were servers before (``PUBSUB NUMSUB``),
  or after ``resume_hold`` seconds, whichever comes first: the other servers, which lost their
  subscriber connections at the same moment, get what was queued instead of missing it.

Where the connections go (one server, the master named by Sentinel) is :mod:`sioserver.adapters._target`;
a Redis Cluster has one such link per master (:mod:`sioserver.adapters._shards`). Nothing here ever
raises into the server: failures become log lines, counters and the :attr:`RedisLink.healthy` flag.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

from redis.exceptions import ResponseError

from ._life import Changes, running_loop, until
from ._publisher import Outgoing, Publisher, Query
from ._resp import LossLog, RespReader, safe_url
from ._subscriber import Handler, Subscriber
from ._target import ClusterSeeds, Endpoint, common_options, parse_target
from .errors import RedisUnavailableError
from .requests import bounded

__all__ = ["Handler", "Link", "LossLog", "RedisLink", "RespReader", "bounded", "numsub_count", "safe_url"]


class Link(Protocol):
    """What the adapters use of a link: a :class:`RedisLink`, or a Cluster's :class:`~._shards.ClusterLink`."""

    url: str
    _closing: bool

    @property
    def healthy(self) -> bool: ...
    @property
    def subscriber_ready(self) -> bool: ...
    @property
    def subscriber_connected(self) -> bool: ...
    @property
    def queued(self) -> int: ...
    @property
    def subscription_count(self) -> int: ...
    def ensure_running(self) -> bool: ...
    async def wait_ready(self, timeout: float) -> bool: ...
    def subscribe(self, kind: str, name: bytes, handler: Handler) -> None: ...
    def unsubscribe(self, kind: str, name: bytes) -> None: ...
    def set_census(self, channel: bytes, sharded: bool) -> bool: ...
    def note_servers(self, count: int) -> None: ...
    def publish(self, channel: bytes, payload: bytes, *, sharded: bool = False,
                on_result: Callable[[int, bool], None] | None = None) -> None: ...
    async def numsub(self, channel: bytes, *, sharded: bool = False) -> int: ...
    async def close(self, flush_timeout: float = 1.0) -> None: ...


class RedisLink:
    """A publisher and a supervised subscriber on one Redis (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        logger: logging.Logger,
        stats: Counter[str],
        connect_timeout: float = 2.0,
        command_timeout: float = 3.0,
        reconnect_min_delay: float = 0.05,
        reconnect_max_delay: float = 0.2,
        health_check_interval: float = 5.0,
        max_queue: int = 100_000,
        max_queue_bytes: int = 64 << 20,
        max_queue_age: float = 10.0,
        max_batch: int = 256,
        resume_hold: float = 0.5,
        census_window: float = 15.0,
        redis_options: dict[str, Any] | None = None,
        endpoint: Endpoint | None = None,
        lost: LossLog | None = None,
        on_refused: Callable[[Outgoing, ResponseError], bool] | None = None,
        on_sub_error: Callable[[ResponseError], bool] | None = None,
        on_revoked: Callable[[str, bytes], None] | None = None,
    ) -> None:
        self.url = url
        self.log = logger
        self.stats = stats
        self.command_timeout = command_timeout
        self.resume_hold = resume_hold
        self.census_window = census_window
        if endpoint is None:
            target = parse_target(url, common_options(connect_timeout, redis_options))
            if isinstance(target, ClusterSeeds):
                raise ValueError("a redis+cluster:// URL needs the sharded adapter (RedisAdapter(url, sharded=True))")
            endpoint = target
        self.endpoint = endpoint
        self.lost = lost or LossLog(logger, stats, "messages_lost",
                                    "not published to Redis (local clients still got them)")
        delays = (reconnect_min_delay, max(reconnect_min_delay, reconnect_max_delay))
        self.subscriber = Subscriber(endpoint, logger=logger, stats=stats, connect_timeout=connect_timeout,
                                     retry_delays=delays, health_check_interval=health_check_interval,
                                     on_ready=self._sub_ready, on_drop=self._sub_dropped, on_changed=self._changed,
                                     on_error=on_sub_error, on_revoked=on_revoked)
        self.publisher = Publisher(endpoint, logger=logger, stats=stats, lost=self.lost,
                                   connect_timeout=connect_timeout, command_timeout=command_timeout,
                                   retry_delays=(reconnect_min_delay, min(0.1, delays[1])), max_queue=max_queue,
                                   max_queue_bytes=max_queue_bytes, max_queue_age=max_queue_age, max_batch=max_batch,
                                   on_state=self._changed, on_answer=self.subscriber.wake,
                                   own_token=lambda: self.subscriber.own_token,
                                   expect_others=self._expect_others,
                                   on_refused=on_refused)
        self.publisher.gate = self._gate
        self._census: tuple[bytes, bool] | None = None
        self._peak: tuple[int, float] = (0, 0.0)
        self._supervisor: asyncio.Task[None] | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.on_reconnect: list[Callable[[], None]] = []
        self._changes = Changes()

    # ------------------------------------------------------------------ state

    @property
    def subscriber_ready(self) -> bool:
        """Connected, with every requested subscription confirmed by Redis."""
        return self.subscriber.ready

    @property
    def subscriber_connected(self) -> bool:
        """Subscribed on the current connection (subscriptions asked for since may still be pending)."""
        return self.subscriber.own_token is not None

    @property
    def healthy(self) -> bool:
        """The subscriber is ready and the last publish went through."""
        return self.subscriber.ready and self.publisher.ok

    @property
    def queued(self) -> int:
        """Messages waiting for Redis."""
        return len(self.publisher.queue)

    def ensure_running(self) -> bool:
        """Start the tasks (needs a running event loop); False when there is none yet."""
        if self._closing:
            return False
        loop = running_loop(self._loop, "a RedisAdapter link")
        if loop is None:
            return False
        self._loop = loop
        if self._supervisor is None:
            self._supervisor = loop.create_task(self.subscriber.run(), name="sioserver-redis-subscriber")
        if self._publisher is None:
            self._publisher = loop.create_task(self.publisher.run(), name="sioserver-redis-publisher")
        return True

    async def wait_ready(self, timeout: float) -> bool:
        """Wait until :attr:`healthy` (True): every subscription asked for so far is confirmed by Redis
        and publishing works; False after ``timeout`` seconds."""
        self.ensure_running()
        return await until(lambda: self.healthy, self._changes, timeout)

    def _changed(self) -> None:
        """The state behind :attr:`healthy` changed: wake whoever waits for it."""
        self._changes.notify()

    def _sub_ready(self) -> None:
        if self._loop is not None:
            self.subscriber.became_ready(self._loop)
        self.publisher.wake()  # Redis answers: the publisher tries at once, and its gate may open
        for callback in list(self.on_reconnect):
            try:
                callback()
            except Exception:
                self.log.exception("redis adapter: reconnect callback failed")

    def _sub_dropped(self) -> None:
        self.publisher.hold = True  # the others' subscribers probably dropped too: let them come back first

    # ---------------------------------------------------------- subscriptions

    def subscribe(self, kind: str, name: bytes, handler: Handler) -> None:
        self.subscriber.subscribe(kind, name, handler)

    def unsubscribe(self, kind: str, name: bytes) -> None:
        self.subscriber.unsubscribe(kind, name)

    @property
    def subscription_count(self) -> int:
        return len(self.subscriber.desired)

    # ----------------------------------------------------------------- census

    def set_census(self, channel: bytes, sharded: bool) -> bool:
        """The channel whose subscribers are the servers (the first namespace's); True if it is this one."""
        if self._census is None:
            self._census = (channel, sharded)
        return self._census == (channel, sharded)

    def note_servers(self, count: int) -> None:
        """A publish on the census namespace reached ``count`` servers, this one included."""
        now = time.monotonic()
        peak, seen = self._peak
        if count >= peak or now - seen > self.census_window:
            self._peak = (count, now)

    def _expect_others(self) -> bool:
        """Other servers were subscribed to the census channel lately."""
        peak, seen = self._peak
        return peak > 1 and time.monotonic() - seen <= self.census_window

    async def _gate(self, query: Query) -> None:
        loop = asyncio.get_running_loop()
        await query("PING")  # Redis answers (ConnectionError if not: the publisher reconnects and comes back)
        deadline = loop.time() + self.resume_hold
        while not self.subscriber.settled and not self._closing:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            await self._changes.wait(remaining)
        census = self._census
        peak, seen = self._peak
        if census is None or peak <= 1 or time.monotonic() - seen > self.census_window:
            return
        channel, sharded = census
        while loop.time() < deadline:
            reply = await query("PUBSUB", "SHARDNUMSUB" if sharded else "NUMSUB", channel)
            if numsub_count(reply) >= peak:
                return
            await asyncio.sleep(0.005)
        self.log.info("redis adapter: publishing again before every server was back (%d expected on %r)",
                      peak, channel)

    # ---------------------------------------------------------------- publish

    def publish(self, channel: bytes, payload: bytes, *, sharded: bool = False,
                on_result: Callable[[int, bool], None] | None = None) -> None:
        """Queue a PUBLISH (SPUBLISH when ``sharded``); ``on_result(receivers, own)`` once Redis answers."""
        if not self.ensure_running():
            self.lost.add(1, "the adapter is closed" if self._closing else "no running event loop")
            return
        assert self._loop is not None
        self.publisher.put(Outgoing("SPUBLISH" if sharded else "PUBLISH", channel, payload, on_result,
                                    self._loop.time()))

    def requeue(self, message: Outgoing) -> None:
        """Publish a message again here, keeping its age (it was refused by another node)."""
        if not self.ensure_running():
            self.lost.add(1, "the adapter is closed")
            return
        self.publisher.put(message)

    async def numsub(self, channel: bytes, *, sharded: bool = False) -> int:
        """``PUBSUB NUMSUB`` (``SHARDNUMSUB``) of one channel; :class:`RedisUnavailableError` on failure."""
        self.ensure_running()
        sub = "SHARDNUMSUB" if sharded else "NUMSUB"
        try:
            reply = await bounded(self.publisher.query("PUBSUB", sub, channel), self.command_timeout + 1)
        except (TimeoutError, ConnectionError, OSError) as exc:
            raise RedisUnavailableError(f"PUBSUB {sub} failed: {type(exc).__name__}: {exc}") from exc
        if isinstance(reply, ResponseError):
            raise RedisUnavailableError(f"PUBSUB {sub} failed: {reply}")
        return numsub_count(reply)

    # ------------------------------------------------------------------ close

    async def close(self, flush_timeout: float = 1.0) -> None:
        """Publish what is queued (for up to ``flush_timeout`` seconds), then close both connections."""
        if self._closing:
            return
        if self._publisher is not None:
            await self.publisher.close(flush_timeout)
        self._closing = True
        tasks = [t for t in (self._supervisor, self._publisher) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.publisher.closed()
        await self.subscriber.close()
        await self.endpoint.aclose()
        self._changed()


def numsub_count(reply: Any) -> int:
    """The count in a PUBSUB NUMSUB reply, whatever shape it has (``[channel, count]`` on the wire)."""
    if isinstance(reply, dict):
        return int(next(iter(reply.values()), 0))
    if isinstance(reply, (list, tuple)) and reply:
        first = reply[0]
        if isinstance(first, (list, tuple)):
            return int(first[1])
        if len(reply) >= 2:
            return int(reply[1])
    return 0
