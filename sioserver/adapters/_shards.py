"""A Redis Cluster under the sharded adapter: one link per master, each shard channel on its slot's master.

``redis+cluster://h1:7000,h2:7001`` names seeds. The slot map comes from ``CLUSTER SLOTS`` (asked of
the known nodes first, then the seeds); every master gets a :class:`~sioserver.adapters._link.RedisLink`
of its own (a publisher and a subscriber, with the reconnects, the bounded queue and the counters of
one Redis), and a channel is ``SSUBSCRIBE``\\ d and ``SPUBLISH``\\ ed on the master of its slot
(CRC16 of the channel name, ``{hash tags}`` respected), as Node's sharded adapter over ioredis does.

The map is asked for again when a node answers ``MOVED`` (the message is published again on the
master named, nothing is lost), when Redis unsubscribes a shard channel by itself (its slot moved),
when a subscription is refused, and every second while some master is unreachable (a failover may
have promoted a replica elsewhere). A master that restarts keeps its queue meanwhile, as one Redis does.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import random
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from redis.exceptions import ResponseError

from ._life import running_loop
from ._link import Handler, Link, RedisLink
from ._publisher import Outgoing
from ._resp import LossLog
from ._target import ClusterSeeds, NodeEndpoint, cluster_slots, common_options, key_slot, parse_target
from .errors import RedisUnavailableError

__all__ = ["ClusterLink", "make_link"]

Address = tuple[str, int]


def make_link(url: str, *, logger: logging.Logger, stats: Counter[str], sharded: bool, **options: Any) -> Link:
    """A :class:`RedisLink`, or for a ``redis+cluster://`` URL a :class:`ClusterLink`."""
    if url.split("://", 1)[0].lower() == "redis+cluster":
        if not sharded:
            raise ValueError("a redis+cluster:// URL needs sharded Pub/Sub (RedisAdapter(url, sharded=True)): "
                             "PUBSUB NUMSUB counts the subscribers of one node only")
        return ClusterLink(url, logger=logger, stats=stats, **options)
    return RedisLink(url, logger=logger, stats=stats, **options)


class ClusterLink:
    """The :class:`~sioserver.adapters._link.Link` of one server on a Redis Cluster (see the module docstring)."""

    def __init__(self, url: str, *, logger: logging.Logger, stats: Counter[str], connect_timeout: float = 2.0,
                 command_timeout: float = 3.0, redis_options: dict[str, Any] | None = None,
                 max_queue: int = 100_000, max_queue_age: float = 10.0, **link_options: Any) -> None:
        target = parse_target(url, common_options(connect_timeout, redis_options))
        if not isinstance(target, ClusterSeeds):
            raise ValueError(f"not a redis+cluster:// URL: {url!r}")
        self.url = url
        self.seeds = target
        self.log = logger
        self.stats = stats
        self.command_timeout = command_timeout
        self.max_queue = max_queue
        self.max_queue_age = max_queue_age
        self._link_options = {"connect_timeout": connect_timeout, "command_timeout": command_timeout,
                              "max_queue": max_queue, "max_queue_age": max_queue_age, **link_options}
        self.lost = LossLog(logger, stats, "messages_lost", "not published to Redis (local clients still got them)")
        self._ranges: list[tuple[int, int, str, int]] = []
        self._starts: list[int] = []
        self._nodes: dict[Address, RedisLink] = {}
        self._desired: dict[tuple[str, bytes], Handler] = {}
        self._placed: dict[tuple[str, bytes], Address] = {}
        self._pending: deque[Outgoing] = deque()  # published before the first slot map
        self._census: tuple[bytes, bool] | None = None
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._refresh = asyncio.Event()
        self._mapped = asyncio.Event()
        self._resend: set[tuple[str, bytes]] = set()

    def __repr__(self) -> str:
        return f"<ClusterLink {self.seeds.description} masters={sorted(self._nodes)}>"

    # ------------------------------------------------------------------ state

    @property
    def healthy(self) -> bool:
        return self._mapped.is_set() and bool(self._nodes) and all(n.healthy for n in self._nodes.values())

    @property
    def subscriber_ready(self) -> bool:
        return self._mapped.is_set() and all(n.subscriber_ready for n in self._nodes.values())

    @property
    def subscriber_connected(self) -> bool:
        return self._mapped.is_set() and all(n.subscriber.connected for n in self._nodes.values())

    @property
    def queued(self) -> int:
        return len(self._pending) + sum(n.queued for n in self._nodes.values())

    @property
    def subscription_count(self) -> int:
        return len(self._desired)

    @property
    def masters(self) -> list[Address]:
        return sorted(self._nodes)

    def ensure_running(self) -> bool:
        if self._closing:
            return False
        loop = running_loop(self._loop, "a RedisAdapter link")
        if loop is None:
            return False
        self._loop = loop
        if self._task is None:
            self._task = loop.create_task(self._keep_map(), name="sioserver-redis-cluster-slots")
        for node in self._nodes.values():
            node.ensure_running()
        return True

    async def wait_ready(self, timeout: float) -> bool:
        self.ensure_running()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.healthy:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            if not self._mapped.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await self._mapped.wait()
                continue
            for node in list(self._nodes.values()):
                if not await node.wait_ready(max(deadline - loop.time(), 0)):
                    return False
        return True

    # --------------------------------------------------------------- slot map

    def owner(self, name: bytes) -> Address | None:
        """The master serving the slot of ``name`` (None before the first slot map, or if none does)."""
        slot = key_slot(name)
        i = bisect.bisect_right(self._starts, slot) - 1
        if i < 0:
            return None
        first, last, host, port = self._ranges[i]
        return (host, port) if first <= slot <= last else None

    async def _keep_map(self) -> None:
        failures = 0
        while not self._closing:
            try:
                ranges = await cluster_slots(self.seeds, list(self._nodes), self.command_timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                if failures == 1 or failures % 50 == 0:
                    self.log.warning("redis adapter: cannot read the slots of %s (%s); trying again",
                                     self.seeds.description, exc)
                await asyncio.sleep(random.uniform(0.15, 0.2))
                continue
            failures = 0
            self._apply(ranges)
            self._refresh.clear()
            # asked again on demand (MOVED...), at most every 50 ms; every second while a master is away
            await asyncio.sleep(0.05)
            interval = 1.0 if not self.healthy else 30.0
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._refresh.wait()

    def refresh(self) -> None:
        """Ask the cluster for its slot map again (soon)."""
        self._refresh.set()

    def _apply(self, ranges: list[tuple[int, int, str, int]]) -> None:
        changed = ranges != self._ranges
        self._ranges = ranges
        self._starts = [r[0] for r in ranges]
        masters = {(host, port) for _, _, host, port in ranges}
        for address in sorted(masters - set(self._nodes)):
            self._nodes[address] = self._node_link(address)
        if changed:
            self.log.info("redis adapter: %s has %d masters: %s", self.seeds.description, len(masters),
                          ", ".join(f"{h}:{p}" for h, p in sorted(masters)))
        for key, handler in self._desired.items():
            self._place(key, handler)
        resend, self._resend = self._resend, set()
        for key in resend:
            placed = self._placed.get(key)
            if placed is not None and placed in self._nodes:
                self._nodes[placed].subscriber.forget_sent(*key)
        if self._census is not None:
            self._census_to_owner()
        for address in sorted(set(self._nodes) - masters):  # no longer a master: its queue goes elsewhere
            node = self._nodes.pop(address)
            for message in node.publisher.take_all():
                self._route(message)
            if self._loop is not None:
                self._loop.create_task(node.close(flush_timeout=0))
        first = not self._mapped.is_set()
        self._mapped.set()
        if first:
            pending, self._pending = self._pending, deque()
            for message in pending:
                self._route(message)

    def _node_link(self, address: Address) -> RedisLink:
        host, port = address
        link = RedisLink(f"redis://{host}:{port}", logger=self.log, stats=self.stats, lost=self.lost,
                         endpoint=NodeEndpoint(host, port, self.seeds.options), on_refused=self._refused,
                         on_sub_error=lambda error: self._sub_error(address, error), on_revoked=self._revoked,
                         **self._link_options)
        if self._loop is not None and not self._closing:
            link.ensure_running()
        return link

    def _place(self, key: tuple[str, bytes], handler: Handler) -> None:
        address = self.owner(key[1])
        current = self._placed.get(key)
        if address is None or address == current:
            if current is not None and current in self._nodes:
                self._nodes[current].subscribe(key[0], key[1], handler)
            return
        if current is not None and current in self._nodes:
            self._nodes[current].unsubscribe(*key)
        self._placed[key] = address
        self._nodes[address].subscribe(key[0], key[1], handler)

    # ------------------------------------------------------------- the hooks

    def _refused(self, message: Outgoing, error: ResponseError) -> bool:
        text = str(error)
        if text.startswith(("MOVED ", "ASK ")):
            self.stats["moved"] += 1
            _, slot, where = text.split(" ", 2)
            host, _, port = where.rpartition(":")
            self._move_slot(int(slot), host, int(port))
            self.refresh()
            self._route(message)
            return True
        if text.startswith(("CLUSTERDOWN", "TRYAGAIN")):
            self.refresh()
            self._route(message)
            return True
        return False

    def _move_slot(self, slot: int, host: str, port: int) -> None:
        """Until the next slot map: the slot is served at ``host:port``."""
        ranges = []
        for first, last, h, p in self._ranges:
            if first <= slot <= last:
                if first < slot:
                    ranges.append((first, slot - 1, h, p))
                if slot < last:
                    ranges.append((slot + 1, last, h, p))
            else:
                ranges.append((first, last, h, p))
        ranges.append((slot, slot, host, port))
        ranges.sort()
        address = (host, port)
        if address not in self._nodes:
            self._nodes[address] = self._node_link(address)
        self._ranges = ranges
        self._starts = [r[0] for r in ranges]

    def _sub_error(self, address: Address, error: ResponseError) -> bool:
        text = str(error)
        if not text.startswith(("MOVED ", "ASK ", "CLUSTERDOWN", "TRYAGAIN")):
            return False
        self.log.info("redis adapter: a subscription on %s:%d was answered %s; reading the slot map again",
                      *address, text)
        node = self._nodes.get(address)
        if node is not None:  # send again whatever that node has not confirmed, once the map is known
            sub = node.subscriber
            self._resend |= {key for key in sub.desired if key not in sub.confirmed}
        self.refresh()
        return True

    def _revoked(self, kind: str, name: bytes) -> None:
        self.log.info("redis adapter: Redis unsubscribed %r (its slot moved); reading the slot map again", name)
        self._resend.add((kind, name))
        self.refresh()

    # ---------------------------------------------------------- subscriptions

    def subscribe(self, kind: str, name: bytes, handler: Handler) -> None:
        if kind != "ssub":
            raise ValueError("a Redis Cluster link carries shard channels only (the sharded adapter)")
        self._desired[(kind, name)] = handler
        if self._mapped.is_set():
            self._place((kind, name), handler)

    def unsubscribe(self, kind: str, name: bytes) -> None:
        self._desired.pop((kind, name), None)
        address = self._placed.pop((kind, name), None)
        if address is not None and address in self._nodes:
            self._nodes[address].unsubscribe(kind, name)

    def set_census(self, channel: bytes, sharded: bool) -> bool:
        if self._census is None:
            self._census = (channel, sharded)
            self._census_to_owner()
        return self._census == (channel, sharded)

    def _census_to_owner(self) -> None:
        assert self._census is not None
        address = self.owner(self._census[0])
        for where, node in self._nodes.items():
            node._census = self._census if where == address else None

    def note_servers(self, count: int) -> None:
        if self._census is not None:
            address = self.owner(self._census[0])
            if address is not None and address in self._nodes:
                self._nodes[address].note_servers(count)

    # ---------------------------------------------------------------- publish

    def publish(self, channel: bytes, payload: bytes, *, sharded: bool = False,
                on_result: Callable[[int, bool], None] | None = None) -> None:
        if not self.ensure_running():
            self.lost.add(1, "the adapter is closed" if self._closing else "no running event loop")
            return
        assert self._loop is not None
        self._route(Outgoing("SPUBLISH", channel, payload, on_result, self._loop.time()))

    def _route(self, message: Outgoing) -> None:
        address = self.owner(message.channel) if self._mapped.is_set() else None
        node = self._nodes.get(address) if address is not None else None
        if node is not None:
            node.requeue(message)
            return
        if self._mapped.is_set():
            self.refresh()
        if len(self._pending) >= self.max_queue:
            self.lost.add(1, f"the cluster's slot map is not known yet and {len(self._pending)} messages wait")
            return
        self._pending.append(message)

    async def numsub(self, channel: bytes, *, sharded: bool = False) -> int:
        address = self.owner(channel) if self._mapped.is_set() else None
        node = self._nodes.get(address) if address is not None else None
        if node is None:
            raise RedisUnavailableError(f"no master serves the slot of {channel!r} yet")
        return await node.numsub(channel, sharded=True)

    # ------------------------------------------------------------------ close

    async def close(self, flush_timeout: float = 1.0) -> None:
        if self._closing:
            return
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._pending:
            self.lost.add(len(self._pending), "the adapter closed before the cluster's slot map was known")
            self._pending.clear()
        await asyncio.gather(*(node.close(flush_timeout) for node in list(self._nodes.values())),
                             return_exceptions=True)
