"""The subscribing half of a link: one connection, owned by a supervisor task, forever until closed.

It connects, (re)subscribes every channel and pattern asked for, reads messages and hands each to its
handler. When the connection fails (or Redis does not answer the PING sent on a quiet connection), a
new one is opened **at once**; only when that fails too does it wait, ``retry_delays`` (50 ms, doubling
up to 200 ms by default, with jitter), so that it is back within a few milliseconds of a dropped connection and
within one delay of Redis answering again. Each channel is subscribed exactly once per link: the Node
peers count the servers of a namespace with ``PUBSUB NUMSUB``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ResponseError

from ._resp import encode_command, retry_delay
from ._target import Endpoint, reader_of

__all__ = ["Handler", "Subscriber"]

Handler = Callable[[bytes, bytes], None]
"""Called with ``(channel, payload)`` for each message of a subscription."""

_SUBSCRIBE = {b"subscribe": "sub", b"psubscribe": "psub", b"ssubscribe": "ssub"}
_UNSUBSCRIBE = {b"unsubscribe": "sub", b"punsubscribe": "psub", b"sunsubscribe": "ssub"}
_COMMANDS = {"sub": ("SUBSCRIBE", "UNSUBSCRIBE"), "psub": ("PSUBSCRIBE", "PUNSUBSCRIBE"),
             "ssub": ("SSUBSCRIBE", "SUNSUBSCRIBE")}


class Subscriber:
    """See the module docstring. ``on_ready()`` when every subscription is confirmed (again),
    ``on_drop()`` when the connection is lost, ``on_error(reply)`` for an error reply (returns True
    when it was handled: a Cluster MOVED), ``on_revoked(kind, name)`` when Redis unsubscribed a
    channel by itself (a Cluster slot moved away)."""

    def __init__(self, endpoint: Endpoint, *, logger: logging.Logger, stats: Counter[str], connect_timeout: float,
                 retry_delays: tuple[float, float], health_check_interval: float,
                 on_ready: Callable[[], None], on_drop: Callable[[], None], on_changed: Callable[[], None],
                 on_error: Callable[[ResponseError], bool] | None = None,
                 on_revoked: Callable[[str, bytes], None] | None = None) -> None:
        self.endpoint = endpoint
        self.log = logger
        self.stats = stats
        self.connect_timeout = connect_timeout
        self.retry_delays = retry_delays
        self.health_check_interval = health_check_interval
        self.on_ready = on_ready
        self.on_drop = on_drop
        self.on_changed = on_changed
        self.on_error = on_error
        self.on_revoked = on_revoked
        # subscriptions: (kind, name) -> handler; kind is "sub", "psub" or "ssub"
        self.desired: dict[tuple[str, bytes], Handler] = {}
        self._sent: set[tuple[str, bytes]] = set()
        self.confirmed: set[tuple[str, bytes]] = set()
        self._refused: set[tuple[str, bytes]] = set()
        self.connected = False
        self.generation = 0  # one more each time every subscription is confirmed on a new connection
        self.ready_once = False
        self._ready_now = False
        self.down_since: float | None = None
        self.attempts = 0
        self._last_rx = 0.0
        self._ping_sent_at: float | None = None
        self._dirty = asyncio.Event()
        self._wake = asyncio.Event()
        self._conn: AbstractConnection | None = None

    @property
    def ready(self) -> bool:
        """Connected, with every requested subscription confirmed by Redis."""
        if not self.connected:
            return False
        confirmed, refused = self.confirmed, self._refused
        return all(key in confirmed or key in refused for key in self.desired)

    def subscribe(self, kind: str, name: bytes, handler: Handler) -> None:
        self.desired[(kind, name)] = handler
        self._dirty.set()

    def unsubscribe(self, kind: str, name: bytes) -> None:
        if self.desired.pop((kind, name), None) is not None:
            self._dirty.set()

    # ------------------------------------------------------------- supervisor

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        last_warning = 0.0
        failures = 0
        while True:
            self.attempts += 1
            conn: AbstractConnection | None = None
            try:
                conn = await self.endpoint.open(self.connect_timeout + 1)
                self._conn = conn
                self.connected = True
                self._sent, self.confirmed, self._refused = set(), set(), set()
                self._ready_now = False
                self._last_rx = loop.time()
                self._ping_sent_at = None
                await self._session(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures = 1 if self._ready_now else failures + 1
                self._ready_now = False
                now = loop.time()
                if self.down_since is None:
                    self.down_since = last_warning = now
                    self.stats["subscriber_disconnects"] += 1
                    verb = "lost" if self.ready_once else "could not open"
                    self.log.warning("redis adapter: %s the subscriber connection to %s (%s: %s); reconnecting",
                                     verb, self.endpoint.description, type(exc).__name__, exc)
                elif now - last_warning >= 30:
                    last_warning = now
                    self.log.warning("redis adapter: still no Redis at %s after %.0fs and %d attempts (%s: %s)",
                                     self.endpoint.description, now - self.down_since, self.attempts,
                                     type(exc).__name__, exc)
                else:
                    self.log.debug("redis adapter: reconnect attempt %d failed: %r", self.attempts, exc)
            finally:
                was_connected = self.connected
                self._conn = None
                self.connected = False
                self.confirmed = set()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.disconnect(nowait=True)
                if was_connected:
                    self.on_drop()
                    self.on_changed()
            # the first attempt after a connection that worked is made at once
            delay = retry_delay(failures, self.retry_delays)
            if delay > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(random.uniform(0.8, 1.0) * delay):
                        await self._wake.wait()

    def wake(self) -> None:
        """Redis answered the publisher: if waiting to reconnect, do it now."""
        self._wake.set()

    async def _session(self, conn: AbstractConnection) -> None:
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
                await conn.send_packed_command(encode_command("PING"), check_health=False)

    async def _sync(self, conn: AbstractConnection) -> None:
        want = set(self.desired)
        add = want - self._sent
        drop = self._sent - want
        out = []
        for kind in ("psub", "sub", "ssub"):
            subscribe, unsubscribe = _COMMANDS[kind]
            names = sorted(name for k, name in add if k == kind)
            gone = sorted(name for k, name in drop if k == kind)
            if kind == "ssub":  # one per command: shard channels of one command must share a slot
                out += [encode_command(subscribe, name) for name in names]
                out += [encode_command(unsubscribe, name) for name in gone]
            else:
                if names:
                    out.append(encode_command(subscribe, *names))
                if gone:
                    out.append(encode_command(unsubscribe, *gone))
        self._sent = want
        if out:
            await conn.send_packed_command(b"".join(out), check_health=False)

    async def _read(self, conn: AbstractConnection) -> None:
        loop = asyncio.get_running_loop()
        desired = self.desired
        stats = self.stats
        reader = reader_of(conn)
        while True:
            for reply in await reader.read():
                self._last_rx = loop.time()
                if isinstance(reply, ResponseError):  # e.g. SSUBSCRIBE on a Redis older than 7, or MOVED
                    if self.on_error is not None and self.on_error(reply):
                        continue
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
            self.confirmed.add((sub, reply[1]))
            self._check_ready()
            self.on_changed()
            return
        unsub = _UNSUBSCRIBE.get(kind)
        if unsub is not None:
            key = (unsub, reply[1])
            self.confirmed.discard(key)
            if key in self._sent and key in self.desired:
                # Redis dropped a subscription we did not give up: a Cluster slot moved to another node
                self._sent.discard(key)
                if self.on_revoked is not None:
                    self.on_revoked(unsub, reply[1])
                else:
                    self._dirty.set()

    def _refuse_pending(self) -> None:
        # an error answers one subscription command we cannot tell apart: stop waiting for the
        # unconfirmed ones so that health reflects the connection, and say so once
        for key in self._sent - self.confirmed:
            self._refused.add(key)
        self._check_ready()
        self.on_changed()

    def forget_sent(self, kind: str, name: bytes) -> None:
        """Send this subscription again (after a MOVED answered it, once the topology is known)."""
        self._sent.discard((kind, name))
        self._dirty.set()

    @property
    def own_token(self) -> int | None:
        """This connection's generation once its first subscriptions were all confirmed, else None."""
        return self.generation if self.connected and self._ready_now else None

    @property
    def settled(self) -> bool:
        """Connected, and subscribed on this connection (or nothing to subscribe here)."""
        return self.connected and (self._ready_now or not self.desired)

    def _check_ready(self) -> None:
        if self._ready_now or not self.ready:
            return
        self._ready_now = True
        self.generation += 1
        self.ready_once = True
        self.on_ready()

    def became_ready(self, loop: asyncio.AbstractEventLoop) -> None:
        """Log the reconnection (called by the link's on_ready)."""
        if self.down_since is not None:
            self.stats["reconnects"] += 1
            self.log.warning("redis adapter: subscriber connected to %s again after %.2fs (%d attempts); "
                             "%d subscriptions restored", self.endpoint.description, loop.time() - self.down_since,
                             self.attempts, len(self.confirmed))
        elif self.generation == 1:
            self.log.info("redis adapter: subscribed to %s (%d subscriptions)", self.endpoint.description,
                          len(self.confirmed))
        self.down_since = None
        self.attempts = 0

    async def close(self) -> None:
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)
