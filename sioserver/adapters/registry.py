"""Where the nodes of a Redis-backed cluster take forwarded requests: ``sioserver:node:<id>`` -> ``host:port``.

A node whose adapter is a Redis one (:class:`~sioserver.adapters.RedisAdapter`, its Sentinel and Cluster
URLs, :class:`~sioserver.adapters.RedisStreamsAdapter`, :class:`~sioserver.adapters.AsyncRedisManager`)
names itself in the sids it hands out (``"<id>.<random>"``) and registers here the address where it
serves requests for its sessions: a key with a TTL (``ttl``, 15 s), set again every ``refresh`` seconds
(5), so a node that died without a word is forgotten within ``ttl``. Another node that gets a request for
one of those sids asks :meth:`NodeRegistry.resolve` where to forward it.

Only an id of the form nodes make (:data:`NODE_ID`) is ever looked up, and only an address found here is
ever connected to: a crafted sid names no host. Answers are cached (``cache``, 10 s; a missing id
``miss_cache``, 1 s), so a flood of unknown sids does not become a flood of Redis commands. Redis being
away never raises anything but :class:`RegistryUnavailableError` (a ``ConnectionError``) from
:meth:`resolve`; registering keeps retrying in the background and logs once per outage.

Layering: this module knows Redis and nothing of HTTP; ``sioserver.integrations`` decides what to
register and forwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import Counter
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ._resp import safe_url
from ._target import ClusterSeeds, client_for, parse_target

__all__ = ["NODE_ID", "NodeRegistry", "RegistryUnavailableError", "registry_for"]

log = logging.getLogger("sioserver.redis")

#: the node ids nodes make: 8 hex digits, and ``-<worker>`` for a worker of ``--workers``
NODE_ID = re.compile(r"[0-9a-f]{8}(?:-[0-9]{1,3})?")
_ADDRESS = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]{1,5})")
_MAX_CACHED = 4096
# deletes the key only while it still names this node (a successor's registration is left alone)
_DELETE_OWN = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class RegistryUnavailableError(ConnectionError):
    """Redis did not answer a lookup: the request cannot be forwarded now."""


def parse_address(text: str) -> tuple[str, int] | None:
    """``host:port`` (``[v6]:port``) -> (host, port); None for anything else."""
    match = _ADDRESS.fullmatch(text)
    if match is None or not 0 < int(match["port"]) < 65536:
        return None
    return match["host"].strip("[]"), int(match["port"])


class NodeRegistry:
    """The ``sioserver:node:*`` keys of one Redis (see the module docstring).

    ``stats``: ``registered``, ``refresh_errors``, ``lookups`` (asked of Redis), ``lookup_errors``,
    ``unknown`` (ids not registered), ``refused_ids`` (ids of a form no node makes: never looked up).
    """

    def __init__(self, url: str, *, redis_options: dict[str, Any] | None = None, prefix: str = "sioserver:node:",
                 ttl: float = 15.0, refresh: float = 5.0, cache: float = 10.0, miss_cache: float = 1.0,
                 timeout: float = 1.0, logger: logging.Logger | None = None) -> None:
        if not 0 < refresh < ttl:
            raise ValueError("need 0 < refresh < ttl")
        self.url = url
        self.prefix = prefix
        self.ttl = float(ttl)
        self.refresh = float(refresh)
        self.cache = float(cache)
        self.miss_cache = float(miss_cache)
        self.timeout = float(timeout)
        self.logger = logger or log
        self.stats: Counter[str] = Counter()
        self._options = dict(redis_options or {})
        self._client: Redis | RedisCluster | None = None
        self._cached: dict[str, tuple[str | None, float]] = {}  # id -> (address or None, until)
        self._asking: dict[str, asyncio.Task[str | None]] = {}  # lookups in flight
        self._own: tuple[str, str] | None = None  # (id, address) registered by this node
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self.registered = asyncio.Event()  # set once the key was written (again after every success)

    def __repr__(self) -> str:
        return f"<NodeRegistry {safe_url(self.url)} own={self._own}>"

    def _redis(self) -> Redis | RedisCluster:
        if self._client is None:
            options = {**self._options, "socket_timeout": self.timeout, "socket_connect_timeout": self.timeout,
                       "retry": Retry(NoBackoff(), 0)}
            target = parse_target(self.url, {}) if self.url.split("://", 1)[0].lower() == "redis+cluster" else None
            if isinstance(target, ClusterSeeds):
                nodes = [ClusterNode(host, port) for host, port in target.seeds]
                options.pop("retry")
                self._client = RedisCluster(startup_nodes=nodes, **{**target.options, **options})
            else:
                self._client = client_for(self.url, options, "NodeRegistry")
        return self._client

    # ------------------------------------------------------------------ this node

    async def register(self, node_id: str, address: str) -> None:
        """Name ``address`` (``host:port``) as ``node_id``'s, now and every ``refresh`` seconds until
        :meth:`close`. Redis away: logged, retried every second, never raised."""
        if NODE_ID.fullmatch(node_id) is None or parse_address(address) is None:
            raise ValueError(f"cannot register node {node_id!r} at {address!r}")
        self._own = (node_id, address)
        await self._write()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._keep())

    async def _write(self) -> bool:
        assert self._own is not None
        node_id, address = self._own
        try:
            await asyncio.wait_for(self._redis().set(self.prefix + node_id, address, px=int(self.ttl * 1000)),
                                   self.timeout)
        except Exception as exc:
            self.stats["refresh_errors"] += 1
            self.registered.clear()
            if not self._failing:
                self._failing = True
                self.logger.warning("node %s: cannot register its address %s in Redis (%s: %s): other nodes cannot "
                                    "forward to it until Redis answers; retrying", node_id, address,
                                    exc.__class__.__name__, exc)
            return False
        self.stats["registered"] += 1
        if self._failing:
            self._failing = False
            self.logger.info("node %s: registered its address %s in Redis again", node_id, address)
        self.registered.set()
        return True

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(1.0 if self._failing else self.refresh)
            await self._write()

    async def close(self) -> None:
        """Stop refreshing, delete this node's key (if it is still this node's), close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._own is not None and self._client is not None:
            node_id, address = self._own
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._client.eval(_DELETE_OWN, 1, self.prefix + node_id, address),
                                       self.timeout)
        self._own = None
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
            self._client = None

    # ------------------------------------------------------------------ other nodes

    async def resolve(self, node_id: str) -> tuple[str, int] | None:
        """Where ``node_id`` takes forwarded requests; None when no node of that id is registered (or the
        id is not one a node makes). :class:`RegistryUnavailableError` when Redis does not answer."""
        if NODE_ID.fullmatch(node_id) is None:
            self.stats["refused_ids"] += 1
            return None
        now = time.monotonic()
        hit = self._cached.get(node_id)
        if hit is not None and hit[1] > now:
            return parse_address(hit[0]) if hit[0] is not None else None
        asking = self._asking.get(node_id)
        if asking is None:  # one GET per id at a time: the requests that come meanwhile share its answer
            asking = self._asking[node_id] = asyncio.get_running_loop().create_task(self._lookup(node_id, now))
            asking.add_done_callback(lambda done: self._asked(node_id, done))
        text = await asyncio.shield(asking)  # a request that goes away does not cancel the others' lookup
        return parse_address(text) if text is not None else None

    def _asked(self, node_id: str, done: asyncio.Task[str | None]) -> None:
        self._asking.pop(node_id, None)
        if not done.cancelled():
            done.exception()  # retrieved, even when every request that waited for it went away

    async def _lookup(self, node_id: str, now: float) -> str | None:
        self.stats["lookups"] += 1
        try:
            value = await asyncio.wait_for(self._redis().get(self.prefix + node_id), self.timeout)
        except Exception as exc:
            self.stats["lookup_errors"] += 1
            raise RegistryUnavailableError(f"Redis did not say where node {node_id!r} is "
                                           f"({exc.__class__.__name__}: {exc})") from exc
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        address = text if isinstance(text, str) and parse_address(text) is not None else None
        if len(self._cached) >= _MAX_CACHED:
            self._cached = {k: v for k, v in self._cached.items() if v[1] > now}
            if len(self._cached) >= _MAX_CACHED:
                self._cached.clear()
        if address is None:
            self.stats["unknown"] += 1
        self._cached[node_id] = (address, now + (self.cache if address is not None else self.miss_cache))
        return address

    def forget(self, node_id: str) -> None:
        """Drop a cached address (its node did not answer there)."""
        self._cached.pop(node_id, None)


def registry_for(adapter_factory: Any, **options: Any) -> NodeRegistry | None:
    """A registry on the Redis of a server's adapter factory (``AsyncServer(adapter=...)``); None when the
    adapter is not a Redis one."""
    url = getattr(adapter_factory, "url", None)
    if not isinstance(url, str) or url.split("://", 1)[0].lower() not in (
            "redis", "rediss", "unix", "redis+sentinel", "redis+cluster"):
        return None
    redis_options = getattr(adapter_factory, "redis_options", None)
    if redis_options is None:
        redis_options = getattr(adapter_factory, "_link_options", {}).get("redis_options")
    return NodeRegistry(url, redis_options=dict(redis_options or {}), **options)
