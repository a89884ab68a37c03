"""The publishing half of a link: a bounded queue drained in order, in pipelines, by one task.

* **Nothing is dropped on a single failure.** A message waits in the queue until Redis takes it, within
  bounds: ``max_queue`` messages, ``max_queue_bytes`` bytes and ``max_queue_age`` seconds. What passes a
  bound is counted (``messages_lost``) and logged, never silently dropped.
* **Recovery at Redis's speed.** After a failure the connection is reopened at once, then after
  ``retry_delays`` (50 ms, then every 100 ms at most, with jitter): a connect and a ``PING``. The moment Redis
  answers, the queue is flushed, after the link's *gate* (its own subscriber back, the other servers
  resubscribed, see :mod:`sioserver.adapters._link`), which is bounded in time.
* **A batch whose fate is unknown** (Redis stopped answering, or the connection broke, after it was
  written) is not sent again, since it may have arrived: it is counted as ``messages_uncertain`` and
  logged. A batch that could not be written stays queued.
* A tracked message (a broadcast or a request) that reached **no** subscriber while other servers are
  known (their subscribers were dropped with ours) is published once more after the gate: nobody can
  get it twice. Only the last messages of a batch are, so that the order holds (``republished``).
* Queries (``PUBSUB NUMSUB``) go through the same connection, ahead of the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ResponseError

from ._resp import LossLog, encode_command, retry_delay
from ._target import Endpoint, call, reader_of

__all__ = ["Outgoing", "Publisher"]

Query = Callable[..., Awaitable[Any]]
Gate = Callable[[Query], Awaitable[None]]


class Outgoing:
    """One message to publish: ``on_result(receivers, own)`` once Redis has answered (``own``: this
    server's own subscriber was subscribed the whole time, so ``receivers`` counts it)."""

    __slots__ = ("channel", "command", "on_result", "payload", "queued_at", "retried")

    def __init__(self, command: str, channel: bytes, payload: bytes,
                 on_result: Callable[[int, bool], None] | None, queued_at: float) -> None:
        self.command = command
        self.channel = channel
        self.payload = payload
        self.on_result = on_result
        self.queued_at = queued_at
        self.retried = False


class Publisher:
    """See the module docstring."""

    def __init__(self, endpoint: Endpoint, *, logger: logging.Logger, stats: Counter[str], lost: LossLog,
                 connect_timeout: float, command_timeout: float, retry_delays: tuple[float, float],
                 max_queue: int, max_queue_bytes: int, max_queue_age: float, max_batch: int = 256,
                 on_state: Callable[[], None] = lambda: None,
                 on_answer: Callable[[], None] = lambda: None,
                 own_token: Callable[[], int | None] = lambda: None,
                 expect_others: Callable[[], bool] = lambda: False,
                 on_refused: Callable[[Outgoing, ResponseError], bool] | None = None) -> None:
        self.endpoint = endpoint
        self.log = logger
        self.stats = stats
        self.lost = lost
        self.uncertain = LossLog(logger, stats, "messages_uncertain",
                                 "of a batch in flight when Redis failed: they may or may not have been published")
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.retry_delays = retry_delays
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        self.max_queue_age = max_queue_age
        self.max_batch = max_batch
        self.on_state = on_state
        self.on_answer = on_answer
        self.own_token = own_token
        self.expect_others = expect_others
        self.on_refused = on_refused
        self.gate: Gate | None = None
        self.queue: deque[Outgoing] = deque()
        self.queued_bytes = 0
        self.ok = False  # connected, and the last attempt went through
        self.hold = False  # run the gate before the next batch
        self._queries: deque[tuple[tuple[Any, ...], asyncio.Future[Any]]] = deque()
        self._conn: AbstractConnection | None = None
        self._wake = asyncio.Event()
        self._retry = asyncio.Event()
        self._down_since: float | None = None
        self._up_once = False
        self._failures = 0
        self._last_error = ""

    # ------------------------------------------------------------------ queue

    def put(self, message: Outgoing) -> None:
        if len(self.queue) >= self.max_queue or self.queued_bytes + len(message.payload) > self.max_queue_bytes:
            self.lost.add(1, f"the publish queue is full ({len(self.queue)} messages, {self.queued_bytes} bytes "
                             f"waiting for Redis; max_queue={self.max_queue}, max_queue_bytes={self.max_queue_bytes})")
            return
        self.queue.append(message)
        self.queued_bytes += len(message.payload)
        self._wake.set()

    def take_all(self) -> list[Outgoing]:
        """Empty the queue (its messages are published elsewhere: a Cluster slot moved)."""
        taken = list(self.queue)
        self.queue.clear()
        self.queued_bytes = 0
        return taken

    def _pop(self, count: int) -> None:
        for _ in range(count):
            self.queued_bytes -= len(self.queue.popleft().payload)

    def _expire(self, now: float) -> None:
        queue = self.queue
        expired = 0
        while queue and now - queue[0].queued_at > self.max_queue_age:
            self.queued_bytes -= len(queue.popleft().payload)
            expired += 1
        if expired:
            self.lost.add(expired, f"waited more than max_queue_age={self.max_queue_age:g}s for Redis "
                                   f"({self._last_error or 'Redis is unreachable'})")

    def wake(self) -> None:
        """Try at once (the subscriber just reached Redis, or the gate may open)."""
        self._wake.set()
        self._retry.set()

    async def query(self, *args: Any) -> Any:
        """A command on the publishing connection, ahead of the queue (ConnectionError when it fails)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queries.append((args, future))
        self._wake.set()
        return await future

    # ------------------------------------------------------------------- loop

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        wake = self._wake
        while True:
            if not self.queue and not self._queries and self.ok:
                wake.clear()
                await wake.wait()
                continue
            if self._conn is None:
                try:
                    conn = await self.endpoint.open(self.connect_timeout + 1)
                    try:
                        pong = await call(conn, "PING", timeout=self.command_timeout)
                    except BaseException:
                        await conn.disconnect(nowait=True)
                        raise
                    if isinstance(pong, ResponseError):
                        await conn.disconnect(nowait=True)
                        raise ConnectionError(f"PING: {pong}")
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self._failed(exc)
                    self._fail_queries(exc)
                    self._expire(loop.time())
                    await self._pause()
                    continue
                self._conn = conn
                if self._failures:
                    self.on_answer()  # Redis is back: the subscriber need not wait for its own next attempt
            if self._queries:
                await self._run_queries()
                continue
            if self.hold and self.gate is not None:
                self.hold = False
                with contextlib.suppress(ConnectionError):
                    await self.gate(self._direct)
                if self._conn is None:
                    continue
            self.hold = False
            self._expire(loop.time())
            if not self.queue:
                self._recovered(0)
                continue
            await self._send_batch()

    async def _pause(self) -> None:
        delay = retry_delay(self._failures, self.retry_delays)
        if delay <= 0:
            return
        self._retry.clear()  # new messages do not cut the pause short; the subscriber reaching Redis does
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(random.uniform(0.8, 1.0) * delay):
                await self._retry.wait()

    async def _direct(self, *args: Any) -> Any:
        """A command on the connection, for the gate (ConnectionError and the connection closed on failure)."""
        conn = self._conn
        if conn is None:
            raise ConnectionError("no publishing connection")
        try:
            return await call(conn, *args, timeout=self.command_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._drop_connection()
            self._failed(exc)
            raise ConnectionError(str(exc)) from exc

    @staticmethod
    def _stale(conn: AbstractConnection) -> bool:
        return getattr(conn, "_reader", None) is None or reader_of(conn).at_eof()

    async def _run_queries(self) -> None:
        while self._queries and self._conn is not None:
            if self._stale(self._conn):
                await self._drop_connection()  # closed while idle: the queries wait for the next one
                return
            args, future = self._queries.popleft()
            if future.done():
                continue
            try:
                reply = await self._direct(*args)
            except ConnectionError as exc:
                future.set_exception(exc)
                self._fail_queries(exc)
                return
            future.set_result(reply)

    def _fail_queries(self, exc: BaseException) -> None:
        while self._queries:
            _, future = self._queries.popleft()
            if not future.done():
                future.set_exception(ConnectionError(f"{type(exc).__name__}: {exc}"))

    async def _send_batch(self) -> None:
        conn = self._conn
        assert conn is not None
        queue = self.queue
        batch = [queue[i] for i in range(min(len(queue), self.max_batch))]
        if self._stale(conn):
            await self._drop_connection()  # Redis closed it while it was idle: reopen, nothing was sent
            return
        own = self.own_token()
        data = b"".join(encode_command(m.command, m.channel, m.payload) for m in batch)
        try:
            await conn.send_packed_command(data, check_health=False)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # not written: the batch stays queued for the next connection
            await self._drop_connection()
            self._failed(exc)
            return
        try:
            async with asyncio.timeout(self.command_timeout):
                replies = await reader_of(conn).read_n(len(batch))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if isinstance(exc, TimeoutError):
                exc = TimeoutError(f"Redis did not answer within command_timeout={self.command_timeout:g}s")
            await self._drop_connection()
            self._pop(len(batch))
            self.uncertain.add(len(batch), f"{type(exc).__name__}: {exc}")
            self._failed(exc)
            return
        self._pop(len(batch))
        self._recovered(len(batch))
        # the batch's last messages reached no subscriber at all while other servers exist (their
        # subscribers were dropped a moment ago, with ours): published again, once, after the gate,
        # since nobody can get them twice; only a trailing run, so that nothing is reordered
        again = 0
        if self.expect_others():
            for message, reply in zip(reversed(batch), reversed(replies), strict=True):
                if type(reply) is not int or reply != 0 or message.on_result is None or message.retried:
                    break
                again += 1
        if again:
            batch, retried = batch[:len(batch) - again], batch[len(batch) - again:]
            replies = replies[:len(batch)]
            for message in reversed(retried):
                message.retried = True
                self.queue.appendleft(message)
                self.queued_bytes += len(message.payload)
            self.stats["republished"] += again
            self.hold = True
        self.stats["published"] += len(batch)
        own_now = self.own_token()
        own_all = own is not None and own == own_now
        for message, reply in zip(batch, replies, strict=True):
            if isinstance(reply, ResponseError):
                if self.on_refused is not None and self.on_refused(message, reply):
                    continue  # re-routed (a Cluster MOVED)
                self.stats["publish_errors"] += 1
                self.stats["published"] -= 1
                self.lost.add(1, f"Redis refused {message.command}: {reply}")
            elif message.on_result is not None and isinstance(reply, int):
                try:
                    message.on_result(reply, own_all)
                except Exception:
                    self.log.exception("redis adapter: delivery callback failed")

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)

    # ------------------------------------------------------------------ state

    def _failed(self, exc: BaseException) -> None:
        self._failures += 1
        self._last_error = f"{type(exc).__name__}: {exc or 'no answer in time'}"
        self.hold = True
        if self.ok or self._down_since is None:
            self.ok = False
            self._down_since = asyncio.get_running_loop().time()
            self.stats["publish_errors"] += 1
            self.log.warning("redis adapter: cannot publish to %s (%s); %d message(s) queued, trying again at once",
                             self.endpoint.description, self._last_error, len(self.queue))
            self.on_state()
        else:
            self.log.debug("redis adapter: publisher attempt %d failed: %s", self._failures, self._last_error)

    def _recovered(self, sent: int) -> None:
        self._failures = 0
        if self.lost.started is not None and not self.queue:
            self.lost.resolved()
        if self.uncertain.started is not None:
            self.uncertain.resolved()
        if self.ok:
            return
        self.ok = True
        down_since, self._down_since = self._down_since, None
        self._last_error = ""
        first, self._up_once = not self._up_once, True
        if first and down_since is None:
            self.on_state()
            return
        elapsed = asyncio.get_running_loop().time() - (down_since or 0.0)
        self.log.warning("redis adapter: publishing to %s again after %.2fs (%d queued message(s) in the first "
                         "batch, %d more queued)", self.endpoint.description, elapsed, sent, len(self.queue))
        self.on_state()

    async def close(self, flush_timeout: float) -> None:
        """Publish what is queued for up to ``flush_timeout`` seconds; count the rest as lost."""
        if self.queue and self.ok:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + flush_timeout
            while self.queue and loop.time() < deadline:
                await asyncio.sleep(0.01)

    async def closed(self) -> None:
        """After the task is cancelled: the rest of the queue is lost; the connection closed."""
        if self.queue:
            self.lost.add(len(self.queue), "the adapter closed before they could be published")
            self.queue.clear()
            self.queued_bytes = 0
        self._fail_queries(ConnectionError("the adapter is closed"))
        await self._drop_connection()
