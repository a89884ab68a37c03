"""One server's use of a Redis stream: a supervised ``XREAD BLOCK`` reader and an ordered ``XADD`` writer.

* The **reader** owns one connection. It first learns where the stream ends (``XREVRANGE + - COUNT 1``),
  then loops on ``XREAD BLOCK <block> COUNT <read_count> STREAMS <name> <last id>``, handing each entry
  (``id``, ``{field: value}``) to :attr:`StreamLink.on_entry`. When the connection fails it is replaced
  after a backoff with jitter, forever, and reading resumes after the last id read: entries added
  while it was away are read then (unless Redis itself lost them, as a restart without persistence does).
* The **writer** is a queue drained by one task in pipelines of ``XADD <name> MAXLEN ~ <max_len> *``,
  in order; each entry's future gets the id Redis gave it. After a fault the queue is held (bounded by
  ``max_queue`` entries and ``max_queue_age`` seconds) until Redis answers a PING again, then written
  in order: a restart of Redis loses only the batch in flight when it went (its fate is unknown, so it
  is not written again). An entry that cannot be written is counted and logged (``messages_lost``)
  and its future fails.
* Plain commands (``XRANGE``, ``SET .. PX``, ``GET``+``DEL``) for the sessions of connection state
  recovery go through a small pool.

Nothing here raises into the server but the commands' own calls; failures become log lines, counters
and the :attr:`StreamLink.healthy` flag.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ._life import Changes, running_loop, until
from ._resp import LossLog, safe_url
from .errors import RedisUnavailableError
from .requests import bounded

__all__ = ["Entry", "StreamLink"]

Entry = tuple[str, dict[str, str]]
"""A stream entry: its id and its fields (decoded as UTF-8)."""

_FAILURES = (RedisError, OSError, asyncio.TimeoutError, ConnectionError, EOFError)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)


def entries_of(raw: Any) -> list[Entry]:
    """``[(id, [k, v, ...] | {k: v})...]`` as redis-py returns XRANGE/XREAD entries, decoded."""
    out: list[Entry] = []
    for item in raw or ():
        entry_id, fields = item[0], item[1]
        if isinstance(fields, dict):
            pairs = {_text(k): _text(v) for k, v in fields.items()}
        else:
            pairs = {_text(fields[i]): _text(fields[i + 1]) for i in range(0, len(fields) - 1, 2)}
        out.append((_text(entry_id), pairs))
    return out


class _Pending:
    __slots__ = ("at", "fields", "future")

    def __init__(self, fields: dict[str, str], future: asyncio.Future[str], at: float) -> None:
        self.fields = fields
        self.future = future
        self.at = at


def _retrieved(future: asyncio.Future[str]) -> None:
    """Whoever dropped the future does not get "exception was never retrieved" logged."""
    if not future.cancelled():
        future.exception()


class StreamLink:
    """A reader and a writer on one Redis stream (see the module docstring)."""

    def __init__(
        self,
        url: str,
        stream: str,
        *,
        logger: logging.Logger,
        stats: Counter[str],
        max_len: int = 10_000,
        read_count: int = 100,
        block_time: float = 5.0,
        connect_timeout: float = 2.0,
        command_timeout: float = 3.0,
        reconnect_min_delay: float = 0.05,
        reconnect_max_delay: float = 0.2,
        max_queue: int = 100_000,
        max_queue_age: float = 10.0,
        max_batch: int = 256,
        redis_options: dict[str, Any] | None = None,
    ) -> None:
        self.url = url
        self.stream = stream
        self.log = logger
        self.stats = stats
        self.max_len = max_len
        self.read_count = read_count
        self.block_ms = max(1, round(block_time * 1000))
        self.command_timeout = command_timeout
        self.connect_timeout = connect_timeout
        self.reconnect_min_delay = reconnect_min_delay
        self.reconnect_max_delay = reconnect_max_delay
        self.max_queue = max_queue
        self.max_queue_age = max_queue_age
        self.max_batch = max_batch
        common: dict[str, Any] = {
            "socket_connect_timeout": connect_timeout,
            "retry": Retry(NoBackoff(), 0),  # this module decides when to try again, not redis-py
            **(redis_options or {}),
            "protocol": 2,
        }
        self._pool = ConnectionPool.from_url(url, socket_timeout=command_timeout, **common)
        self._read_pool = ConnectionPool.from_url(url, socket_timeout=block_time + command_timeout + 1,
                                                  max_connections=1, **common)
        self.redis = Redis(connection_pool=self._pool)
        self._reader_client = Redis(connection_pool=self._read_pool)
        #: called with each entry read (its id, its fields), in stream order
        self.on_entry: Callable[[str, dict[str, str]], None] = lambda entry_id, fields: None
        self.last_id: str | None = None
        self._reading = False
        self._write_ok = True
        self._stale = False  # the reader lost its connection: the writer's idle ones may be dead too
        self._probe = False  # Redis answers the reader again: the writer checks it can write
        self._queue: deque[_Pending] = deque()
        self._wake: asyncio.Event | None = None
        self._reader: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changes = Changes()
        self._closing = False
        self.lost = LossLog(logger, stats, "messages_lost", "not added to the Redis stream (local clients still "
                                                            "got them)")

    # ------------------------------------------------------------------ state

    @property
    def reading(self) -> bool:
        """The reader knows its place in the stream and its last XREAD went through."""
        return self._reading

    @property
    def healthy(self) -> bool:
        return self._reading and self._write_ok

    @property
    def queued(self) -> int:
        """Entries waiting to be written."""
        return len(self._queue)

    def ensure_running(self) -> bool:
        if self._closing:
            return False
        loop = running_loop(self._loop, "a RedisStreamsAdapter")
        if loop is None:
            return False
        if self._loop is None:
            self._loop = loop
            self._wake = asyncio.Event()
        if self._reader is None:
            self._reader = loop.create_task(self._read_loop(), name="sioserver-redis-stream-reader")
        if self._writer is None:
            self._writer = loop.create_task(self._write_loop(), name="sioserver-redis-stream-writer")
        return True

    async def wait_ready(self, timeout: float) -> bool:
        """Wait until :attr:`healthy` (the reader placed, the writer not failing); False after ``timeout``."""
        self.ensure_running()
        return await until(lambda: self.healthy, self._changes, timeout)

    def _changed(self) -> None:
        self._changes.notify()

    # ------------------------------------------------------------------ reader

    async def _read_loop(self) -> None:
        loop = asyncio.get_running_loop()
        down_since: float | None = None
        delay = self.reconnect_min_delay
        last_warning = 0.0
        while not self._closing:
            try:
                if self.last_id is None:
                    tail = await self._reader_client.xrevrange(self.stream, "+", "-", count=1)
                    self.last_id = entries_of(tail)[0][0] if tail else "0-0"
                if not self._reading:
                    self._reading = True
                    self._changed()
                reply: Any = await self._reader_client.xread({self.stream: self.last_id}, count=self.read_count,
                                                        block=self.block_ms)
                if down_since is not None:
                    self.log.warning("redis streams adapter: reading %s from %s again after %.1fs",
                                     self.stream, safe_url(self.url), loop.time() - down_since)
                    down_since = None
                    delay = self.reconnect_min_delay
                    self.stats["reconnects"] += 1
                    self._probe = True  # Redis is back: the writer tries again at once
                    if self._wake is not None:
                        self._wake.set()
                for item in reply or ():
                    for entry_id, fields in entries_of(item[1]):
                        self.last_id = entry_id
                        self.stats["received"] += 1
                        try:
                            self.on_entry(entry_id, fields)
                        except Exception:
                            self.stats["handler_errors"] += 1
                            self.log.exception("redis streams adapter: handling entry %s failed", entry_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Redis may be gone: the writer holds its queue until a PING answers (on new connections)
                self._stale = True
                self._write_ok = False
                if self._reading:
                    self._reading = False
                    self._changed()
                now = loop.time()
                if down_since is None:
                    down_since = last_warning = now
                    self.stats["reader_disconnects"] += 1
                    self.log.warning("redis streams adapter: cannot read %s from %s (%s: %s); retrying with backoff",
                                     self.stream, safe_url(self.url), type(exc).__name__, exc)
                elif now - last_warning >= 30:
                    last_warning = now
                    self.log.warning("redis streams adapter: still cannot read %s after %.0fs (%s: %s)",
                                     self.stream, now - down_since, type(exc).__name__, exc)
                with contextlib.suppress(Exception):
                    await self._read_pool.disconnect()
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, self.reconnect_max_delay)

    # ------------------------------------------------------------------ writer

    def add(self, fields: dict[str, str]) -> asyncio.Future[str] | None:
        """Queue an ``XADD``; the future gets the entry's id (fails when it cannot be written). None
        (counted as lost) when the link is closed or there is no running loop."""
        if not self.ensure_running():
            self.lost.add(1, "the adapter is closed" if self._closing else "no running event loop")
            return None
        assert self._loop is not None and self._wake is not None
        future: asyncio.Future[str] = self._loop.create_future()
        future.add_done_callback(_retrieved)
        if len(self._queue) >= self.max_queue:
            self.lost.add(1, f"the write queue is full ({len(self._queue)} entries; max_queue={self.max_queue})")
            future.set_exception(RedisUnavailableError("the write queue is full"))
            return future
        self._queue.append(_Pending(fields, future, self._loop.time()))
        self._wake.set()
        return future

    async def _write_loop(self) -> None:
        assert self._wake is not None
        wake = self._wake
        queue = self._queue
        while True:
            if self._stale:
                self._stale = False
                with contextlib.suppress(Exception):
                    await self._pool.disconnect(inuse_connections=False)
            if not queue:
                if self._probe and not self._write_ok:
                    await self._wait_for_redis()
                wake.clear()
                await wake.wait()
                continue
            if not self._write_ok:
                # after a fault the queue is held (bounded by count and age) until Redis answers again
                await self._wait_for_redis()
                continue
            batch = [queue.popleft() for _ in range(min(len(queue), self.max_batch))]
            try:
                async with asyncio.timeout(self.command_timeout + 1):
                    pipe = self.redis.pipeline(transaction=False)
                    for pending in batch:
                        pipe.xadd(self.stream, pending.fields,  # type: ignore[arg-type]
                                  maxlen=self.max_len, approximate=True)
                    results = list(await pipe.execute(raise_on_error=False))
            except asyncio.CancelledError:
                self._fail(batch, "the adapter closed")
                raise
            except Exception as exc:
                # the batch may or may not be in the stream: not written again (no duplicates), counted
                self._stale = True
                if self._write_ok:
                    self._write_ok = False
                    self._changed()
                self.stats["publish_errors"] += 1
                self._fail(batch, f"{type(exc).__name__}: {exc}")
                continue
            if self.lost.started is not None:
                self.lost.resolved()
            for pending, result in zip(batch, results, strict=False):
                if isinstance(result, BaseException):
                    self.stats["publish_errors"] += 1
                    self._fail([pending], f"Redis refused XADD: {result}")
                else:
                    self.stats["published"] += 1
                    if not pending.future.done():
                        pending.future.set_result(_text(result))

    async def _wait_for_redis(self) -> None:
        """PING (backoff with jitter) until Redis answers; meanwhile what waited longer than
        ``max_queue_age`` fails. Returns at once when the reader says Redis is back (``_probe``)."""
        loop = asyncio.get_running_loop()
        delay = self.reconnect_min_delay
        while not self._write_ok and not self._closing:
            now = loop.time()
            expired = []
            while self._queue and now - self._queue[0].at > self.max_queue_age:
                expired.append(self._queue.popleft())
            if expired:
                self._fail(expired, f"Redis did not answer for {self.max_queue_age:g}s (max_queue_age)")
            try:
                await bounded(self.redis.ping(), self.command_timeout + 1)
            except asyncio.CancelledError:
                raise
            except Exception:
                with contextlib.suppress(Exception):
                    await self._pool.disconnect(inuse_connections=False)
                if not self._queue and not self._probe:
                    return  # nothing held, nobody waiting: the next write or reconnect tries again
                self._probe = False
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, self.reconnect_max_delay)
                continue
            self._writing_again()

    def _writing_again(self) -> None:
        self.log.warning("redis streams adapter: writing to %s again (%d entries held meanwhile)",
                         self.stream, len(self._queue))
        self._write_ok = True
        self._probe = False
        self._changed()

    def _fail(self, batch: list[_Pending], reason: str) -> None:
        self.lost.add(len(batch), reason)
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(RedisUnavailableError(reason))

    # ------------------------------------------------------------------ commands

    async def _command(self, what: str, call: Any) -> Any:
        self.ensure_running()
        try:
            return await bounded(call, self.command_timeout + 1)
        except _FAILURES as exc:
            raise RedisUnavailableError(f"{what} failed: {type(exc).__name__}: {exc}") from exc

    async def xrange(self, start: str, end: str, count: int | None = None) -> list[Entry]:
        raw = await self._command("XRANGE", self.redis.xrange(self.stream, start, end, count=count))
        return entries_of(raw)

    async def set_px(self, key: str, value: str, ttl_ms: int) -> None:
        await self._command("SET", self.redis.set(key, value, px=max(1, ttl_ms)))

    async def get_del(self, key: str) -> str | None:
        """``MULTI GET DEL EXEC`` (as the Node adapter does: GETDEL needs Redis 6.2)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.get(key)
        pipe.delete(key)
        results = await self._command("GET+DEL", pipe.execute())
        value = results[0] if results else None
        return None if value is None else _text(value)

    # ------------------------------------------------------------------ close

    async def close(self, flush_timeout: float = 1.0) -> None:
        """Write what is queued (for up to ``flush_timeout`` seconds), then stop both tasks."""
        if self._closing:
            return
        if self._writer is not None and self._queue and self._write_ok:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + flush_timeout
            while self._queue and loop.time() < deadline:
                await asyncio.sleep(0.01)
        self._closing = True
        self._reading = False
        tasks = [t for t in (self._reader, self._writer) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._queue:
            self._fail(list(self._queue), "the adapter closed before they could be written")
            self._queue.clear()
        for client in (self.redis, self._reader_client):
            with contextlib.suppress(Exception):
                await client.aclose()
        for pool in (self._pool, self._read_pool):
            with contextlib.suppress(Exception):
                await pool.disconnect()
        self._changed()
