"""One server's two connections to Redis, shared by the adapters of all its namespaces.

* The **subscriber** is one redis-py ``Connection`` (RESP2) owned by a supervisor task: it connects,
  (re)subscribes every channel and pattern the adapters asked for, reads messages and hands each to
  its adapter. When the connection fails (or Redis stops answering the PINGs sent on a quiet
  connection), it is closed and a new one is made after a backoff with jitter, forever, until
  :meth:`RedisLink.close`. Each channel is subscribed exactly once per link: the Node peers count
  the servers of a namespace with ``PUBSUB NUMSUB``.
* The **publisher** is a queue drained by one task in order, in pipelines, through a small
  connection pool (which also serves ``PUBSUB NUMSUB``). A message it cannot hand to Redis is
  counted and logged (``messages_lost``): nothing is dropped silently. While Redis is known to be
  away, messages are dropped at once (still counted and logged) instead of piling up; a new attempt
  is made after a short, growing delay, and at once when the subscriber is back.

Nothing here ever raises into the server: failures become log lines, counters and the
:attr:`RedisLink.healthy` flag.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from ._resp import LossLog, RespReader, safe_url
from .errors import RedisUnavailableError
from .requests import bounded

__all__ = ["Handler", "LossLog", "RedisLink", "RespReader", "bounded", "safe_url"]

Handler = Callable[[bytes, bytes], None]
"""Called with ``(channel, payload)`` for each message of a subscription."""

_SUBSCRIBE = {b"subscribe": "sub", b"psubscribe": "psub", b"ssubscribe": "ssub"}
_UNSUBSCRIBE = {b"unsubscribe": "sub", b"punsubscribe": "psub", b"sunsubscribe": "ssub"}
_COMMANDS = {"sub": ("SUBSCRIBE", "UNSUBSCRIBE"), "psub": ("PSUBSCRIBE", "PUNSUBSCRIBE"),
             "ssub": ("SSUBSCRIBE", "SUNSUBSCRIBE")}
_FAILURES = (RedisError, OSError, asyncio.TimeoutError, ConnectionError, EOFError)


class _Outgoing:
    __slots__ = ("channel", "command", "on_result", "payload")

    def __init__(self, command: str, channel: bytes, payload: bytes,
                 on_result: Callable[[int], None] | None) -> None:
        self.command = command
        self.channel = channel
        self.payload = payload
        self.on_result = on_result


class RedisLink:
    """A publisher and a supervised subscriber on one Redis server (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        logger: logging.Logger,
        stats: Counter[str],
        connect_timeout: float = 2.0,
        command_timeout: float = 3.0,
        reconnect_min_delay: float = 0.1,
        reconnect_max_delay: float = 5.0,
        health_check_interval: float = 5.0,
        max_queue: int = 100_000,
        max_queue_bytes: int = 64 << 20,
        max_batch: int = 256,
        redis_options: dict[str, Any] | None = None,
    ) -> None:
        self.url = url
        self.log = logger
        self.stats = stats
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.reconnect_min_delay = reconnect_min_delay
        self.reconnect_max_delay = reconnect_max_delay
        self.health_check_interval = health_check_interval
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        self.max_batch = max_batch
        common: dict[str, Any] = {
            "socket_connect_timeout": connect_timeout,
            "retry": Retry(NoBackoff(), 0),  # the link decides when to try again, not redis-py
            **(redis_options or {}),
            "protocol": 2,
        }
        self._pub_pool = ConnectionPool.from_url(url, socket_timeout=command_timeout, **common)
        self._sub_pool = ConnectionPool.from_url(url, socket_timeout=None, **common)
        self._redis = Redis(connection_pool=self._pub_pool)
        # subscriptions: (kind, name) -> handler; kind is "sub", "psub" or "ssub"
        self._desired: dict[tuple[str, bytes], Handler] = {}
        self._sent: set[tuple[str, bytes]] = set()
        self._confirmed: set[tuple[str, bytes]] = set()
        self._refused: set[tuple[str, bytes]] = set()
        self._conn: AbstractConnection | None = None
        self._connected = False
        self._ready_once = False
        self._down_since: float | None = None
        self._attempts = 0
        self._last_rx = 0.0
        self._ping_sent_at: float | None = None
        self._dirty: asyncio.Event | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._queue: deque[_Outgoing] = deque()
        self._queued_bytes = 0
        self._pub_wake: asyncio.Event | None = None
        self._pub_ok = True
        self._pub_failures = 0
        self._pub_retry_at = 0.0
        self._closing = False
        self._probe: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.lost = LossLog(logger, stats, "messages_lost", "not published to Redis (local clients still got them)")
        self.on_reconnect: list[Callable[[], None]] = []
        self._waiters: list[asyncio.Future[None]] = []

    # ------------------------------------------------------------------ state

    @property
    def subscriber_ready(self) -> bool:
        """Connected, with every requested subscription confirmed by Redis."""
        if not self._connected:
            return False
        confirmed = self._confirmed
        refused = self._refused
        return all(key in confirmed or key in refused for key in self._desired)

    @property
    def healthy(self) -> bool:
        """The subscriber is ready and the last publish went through."""
        return self.subscriber_ready and self._pub_ok

    def ensure_running(self) -> bool:
        """Start the tasks (needs a running event loop); False when there is none yet."""
        if self._closing:
            return False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        if self._loop is None:
            self._loop = loop
            self._dirty = asyncio.Event()
            self._pub_wake = asyncio.Event()
        elif self._loop is not loop:
            raise RuntimeError("a RedisAdapter link is used from two event loops; create one adapter per loop")
        if self._supervisor is None:
            self._supervisor = loop.create_task(self._supervise(), name="sioserver-redis-subscriber")
        if self._publisher is None:
            self._publisher = loop.create_task(self._publish_loop(), name="sioserver-redis-publisher")
        return True

    async def wait_ready(self, timeout: float) -> bool:
        """Wait until :attr:`healthy` (True): every subscription asked for so far is confirmed by Redis
        and publishing works; False after ``timeout`` seconds."""
        self.ensure_running()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.healthy:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait((waiter,), timeout=remaining)
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        return True

    def _changed(self) -> None:
        """The state behind :attr:`healthy` changed: wake whoever waits for it."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # ---------------------------------------------------------- subscriptions

    def subscribe(self, kind: str, name: bytes, handler: Handler) -> None:
        self._desired[(kind, name)] = handler
        if self._dirty is not None:
            self._dirty.set()

    def unsubscribe(self, kind: str, name: bytes) -> None:
        if self._desired.pop((kind, name), None) is not None and self._dirty is not None:
            self._dirty.set()

    @property
    def subscription_count(self) -> int:
        return len(self._desired)

    # ---------------------------------------------------------------- publish

    def publish(self, channel: bytes, payload: bytes, *, sharded: bool = False,
                on_result: Callable[[int], None] | None = None) -> None:
        """Queue a PUBLISH (SPUBLISH when ``sharded``); ``on_result(receivers)`` once Redis answers."""
        message = _Outgoing("SPUBLISH" if sharded else "PUBLISH", channel, payload, on_result)
        if not self.ensure_running():
            self.lost.add(1, "the adapter is closed" if self._closing else "no running event loop")
            return
        if len(self._queue) >= self.max_queue or self._queued_bytes + len(payload) > self.max_queue_bytes:
            self.lost.add(1, f"the publish queue is full ({len(self._queue)} messages, {self._queued_bytes} bytes "
                             f"waiting for Redis; max_queue={self.max_queue}, max_queue_bytes={self.max_queue_bytes})")
            return
        self._queue.append(message)
        self._queued_bytes += len(payload)
        assert self._pub_wake is not None
        self._pub_wake.set()

    async def _publish_loop(self) -> None:
        assert self._pub_wake is not None
        wake = self._pub_wake
        queue = self._queue
        loop = asyncio.get_running_loop()
        while True:
            if not queue:
                wake.clear()
                await wake.wait()
                continue
            batch = [queue.popleft() for _ in range(min(len(queue), self.max_batch))]
            self._queued_bytes -= sum(len(m.payload) for m in batch)
            if not self._pub_ok and loop.time() < self._pub_retry_at:
                self.lost.add(len(batch), "Redis is unreachable")
                continue
            try:
                async with asyncio.timeout(self.command_timeout + 1):
                    results = await self._send(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: the batch is not known to be published
                self._pub_ok = False
                self._pub_failures += 1
                delay = min(2.0, 0.05 * 2 ** min(self._pub_failures, 6))
                self._pub_retry_at = loop.time() + delay * random.uniform(0.5, 1.0)
                self.stats["publish_errors"] += 1
                self.lost.add(len(batch), f"{type(exc).__name__}: {exc}")
                continue
            if not self._pub_ok:
                self.log.warning("redis adapter: publishing to %s again", safe_url(self.url))
                self._pub_ok = True
                self._changed()
            if self.lost.started is not None:
                self.lost.resolved()
            self._pub_failures = 0
            self.stats["published"] += len(batch)
            for message, result in zip(batch, results, strict=False):
                if isinstance(result, BaseException):
                    self.stats["publish_errors"] += 1
                    self.lost.add(1, f"Redis refused {message.command}: {result}")
                elif message.on_result is not None and isinstance(result, int):
                    try:
                        message.on_result(result)
                    except Exception:
                        self.log.exception("redis adapter: delivery callback failed")

    async def _send(self, batch: list[_Outgoing]) -> list[Any]:
        pipe = self._redis.pipeline(transaction=False)
        for message in batch:
            pipe.execute_command(message.command, message.channel, message.payload)
        return list(await pipe.execute(raise_on_error=False))

    async def numsub(self, channel: bytes, *, sharded: bool = False) -> int:
        """``PUBSUB NUMSUB`` (``SHARDNUMSUB``) of one channel; :class:`RedisUnavailableError` on failure."""
        self.ensure_running()
        sub = "SHARDNUMSUB" if sharded else "NUMSUB"
        try:
            command = self._redis.execute_command("PUBSUB", sub, channel)  # type: ignore[no-untyped-call]
            reply = await bounded(command, self.command_timeout + 1)
        except _FAILURES as exc:
            raise RedisUnavailableError(f"PUBSUB {sub} failed: {type(exc).__name__}: {exc}") from exc
        return _numsub_count(reply)

    # ------------------------------------------------------------- subscriber

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        last_warning = 0.0
        while not self._closing:
            conn: AbstractConnection = self._sub_pool.make_connection()  # type: ignore[no-untyped-call]
            self._attempts += 1
            try:
                async with asyncio.timeout(self.connect_timeout + 1):
                    await conn.connect()  # type: ignore[no-untyped-call]
                self._conn = conn
                self._connected = True
                self._sent = set()
                self._confirmed = set()
                self._refused = set()
                self._last_rx = loop.time()
                self._ping_sent_at = None
                await self._session(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                now = loop.time()
                if self._down_since is None:
                    self._down_since = now
                    last_warning = now
                    self.stats["subscriber_disconnects"] += 1
                    verb = "lost" if self._ready_once else "could not open"
                    self.log.warning("redis adapter: %s the subscriber connection to %s (%s: %s); "
                                     "reconnecting with backoff", verb, safe_url(self.url),
                                     type(exc).__name__, exc)
                elif now - last_warning >= 30:
                    last_warning = now
                    self.log.warning("redis adapter: still no Redis at %s after %.0fs and %d attempts (%s: %s)",
                                     safe_url(self.url), now - self._down_since, self._attempts,
                                     type(exc).__name__, exc)
                else:
                    self.log.debug("redis adapter: reconnect attempt %d failed: %r", self._attempts, exc)
            finally:
                self._conn = None
                self._connected = False
                self._confirmed = set()
                with contextlib.suppress(Exception):
                    await conn.disconnect(nowait=True)
            if self._closing:
                return
            failed = max(self._attempts - 1, 0)
            delay = min(self.reconnect_max_delay, self.reconnect_min_delay * 2 ** min(failed, 16))
            await asyncio.sleep(random.uniform(delay / 2, delay))

    async def _session(self, conn: AbstractConnection) -> None:
        assert self._dirty is not None
        self._dirty.set()
        reader = asyncio.ensure_future(self._read(conn))
        writer = asyncio.ensure_future(self._write(conn))
        try:
            done, _ = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, writer):
                task.cancel()
            await asyncio.gather(reader, writer, return_exceptions=True)
        for task in done:
            exc = task.exception()
            if exc is not None:
                raise exc
        raise ConnectionError("the subscriber connection ended")

    async def _write(self, conn: AbstractConnection) -> None:
        """Sends subscription changes as they come, and a PING when the connection is quiet."""
        assert self._dirty is not None
        dirty = self._dirty
        loop = asyncio.get_running_loop()
        interval = self.health_check_interval
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval / 2 if interval > 0 else None):
                    await dirty.wait()
            dirty.clear()
            await self._sync(conn)
            if interval <= 0:
                continue
            now = loop.time()
            pinged = self._ping_sent_at
            if pinged is not None and self._last_rx < pinged and now - pinged >= interval:
                raise ConnectionError(f"Redis did not answer a PING within {interval:g}s")
            if now - self._last_rx >= interval and (pinged is None or self._last_rx >= pinged):
                self._ping_sent_at = now
                await conn.send_command("PING", check_health=False)

    async def _sync(self, conn: AbstractConnection) -> None:
        want = set(self._desired)
        add = want - self._sent
        drop = self._sent - want
        for kind in ("psub", "sub", "ssub"):
            subscribe, unsubscribe = _COMMANDS[kind]
            names = sorted(name for k, name in add if k == kind)
            gone = sorted(name for k, name in drop if k == kind)
            if kind == "ssub":  # one per command: shard channels of one command must share a slot
                for name in names:
                    await conn.send_command(subscribe, name, check_health=False)
                for name in gone:
                    await conn.send_command(unsubscribe, name, check_health=False)
            else:
                if names:
                    await conn.send_command(subscribe, *names, check_health=False)
                if gone:
                    await conn.send_command(unsubscribe, *gone, check_health=False)
        self._sent = want

    async def _replies(self, conn: AbstractConnection) -> AsyncIterator[Any]:
        """The subscriber connection's replies. Once redis-py has connected it (AUTH, TLS, SELECT...),
        its stream is read directly: redis-py's pure-Python parser costs ~50 µs a message, this one
        a few, and every server reads every broadcast of the cluster."""
        stream = getattr(conn, "_reader", None)
        if isinstance(stream, asyncio.StreamReader):
            reader = RespReader(stream)
            while True:
                for reply in await reader.read():
                    yield reply
        while True:  # another redis-py layout: its own parser
            try:
                yield await conn.read_response()
            except ResponseError as exc:
                yield exc

    async def _read(self, conn: AbstractConnection) -> None:
        loop = asyncio.get_running_loop()
        desired = self._desired
        stats = self.stats
        async for reply in self._replies(conn):
            self._last_rx = loop.time()
            if isinstance(reply, ResponseError):  # e.g. SSUBSCRIBE on a Redis older than 7
                self.stats["redis_errors"] += 1
                self.log.error("redis adapter: Redis answered an error: %s", reply)
                self._refuse_pending()
                continue
            if not isinstance(reply, list) or not reply:
                continue  # "PONG" outside subscribed mode
            kind = reply[0]
            handler: Handler | None
            if kind == b"message":
                handler = desired.get(("sub", reply[1]))
                channel, payload = reply[1], reply[2]
            elif kind == b"pmessage":
                handler = desired.get(("psub", reply[1]))
                channel, payload = reply[2], reply[3]
            elif kind == b"smessage":
                handler = desired.get(("ssub", reply[1]))
                channel, payload = reply[1], reply[2]
            else:
                self._control(reply)
                continue
            stats["received"] += 1
            if handler is None:
                continue  # unsubscribed meanwhile
            try:
                handler(channel, payload)
            except Exception:
                stats["handler_errors"] += 1
                self.log.exception("redis adapter: handling a message from %r failed", channel)

    def _control(self, reply: list[Any]) -> None:
        kind = reply[0]
        sub = _SUBSCRIBE.get(kind)
        if sub is not None:
            self._confirmed.add((sub, reply[1]))
            if self.subscriber_ready:
                self._became_ready()
            self._changed()
            return
        unsub = _UNSUBSCRIBE.get(kind)
        if unsub is not None:
            self._confirmed.discard((unsub, reply[1]))

    def _refuse_pending(self) -> None:
        # an error answers one subscription command we cannot tell apart: stop waiting for the
        # unconfirmed ones so that health reflects the connection, and say so once
        for key in self._sent - self._confirmed:
            self._refused.add(key)
        if self.subscriber_ready:
            self._became_ready()
        self._changed()

    def _became_ready(self) -> None:
        if self._down_since is not None and self._loop is not None:
            elapsed = self._loop.time() - self._down_since
            self.stats["reconnects"] += 1
            self.log.warning("redis adapter: subscriber connected to %s again after %.1fs (%d attempts); "
                             "%d subscriptions restored", safe_url(self.url), elapsed, self._attempts,
                             len(self._confirmed))
        elif not self._ready_once:
            self.log.info("redis adapter: subscribed to %s (%d subscriptions)", safe_url(self.url),
                          len(self._confirmed))
        self._down_since = None
        self._attempts = 0
        self._ready_once = True
        self._pub_retry_at = 0.0  # Redis is back: let the publisher try at once
        if not self._pub_ok and self._loop is not None and not self._closing:
            self._probe = self._loop.create_task(self._probe_publisher())
        for callback in list(self.on_reconnect):
            try:
                callback()
            except Exception:
                self.log.exception("redis adapter: reconnect callback failed")

    async def _probe_publisher(self) -> None:
        """After a reconnect, check the publishing side too, so that :attr:`healthy` does not wait for
        the next message to be published."""
        try:
            await bounded(self._redis.ping(), self.command_timeout)
        except Exception as exc:
            self.log.debug("redis adapter: publisher probe failed: %r", exc)
            return
        if not self._pub_ok:
            self._pub_ok = True
            self._pub_failures = 0
            self.log.warning("redis adapter: publishing to %s again", safe_url(self.url))
            self.lost.resolved()
            self._changed()

    # ------------------------------------------------------------------ close

    async def close(self, flush_timeout: float = 1.0) -> None:
        """Publish what is queued (for up to ``flush_timeout`` seconds), then close both connections."""
        if self._closing:
            return
        if self._publisher is not None and self._queue and self._pub_ok:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + flush_timeout
            while self._queue and loop.time() < deadline:
                await asyncio.sleep(0.01)
        self._closing = True
        tasks = [t for t in (self._supervisor, self._publisher, self._probe) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._queue:
            self.lost.add(len(self._queue), "the adapter closed before they could be published")
            self._queue.clear()
            self._queued_bytes = 0
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)
        with contextlib.suppress(Exception):
            await self._redis.aclose()
        with contextlib.suppress(Exception):
            await self._pub_pool.disconnect()
        with contextlib.suppress(Exception):
            await self._sub_pool.disconnect()


def _numsub_count(reply: Any) -> int:
    """The count in a PUBSUB NUMSUB reply, whatever shape redis-py gives it."""
    if isinstance(reply, dict):
        return int(next(iter(reply.values()), 0))
    if isinstance(reply, (list, tuple)) and reply:
        first = reply[0]
        if isinstance(first, (list, tuple)):
            return int(first[1])
        if len(reply) >= 2:
            return int(reply[1])
    return 0
