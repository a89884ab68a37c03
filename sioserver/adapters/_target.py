"""Where the Redis adapters connect: one server, a Sentinel-watched master, or the nodes of a Redis Cluster.

URLs:

* ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS), ``unix://path``: one server.
* ``redis+sentinel://[[user]:password@]h1:26379,h2:26380/mymaster[/db]``: the master of the service
  ``mymaster`` as the sentinels tell it, asked again on every (re)connect; a server that does not say
  ``ROLE master`` is refused (a failover in progress), so a connection always ends on the master.
* ``redis+cluster://[[user]:password@]h1:7000[,h2:7001]``: a Redis Cluster; the nodes given are seeds
  for ``CLUSTER SLOTS``. Only the sharded adapter uses it (shard channels live on their slot's master).

An :class:`Endpoint` opens a connection ready for commands (redis-py does the handshake: AUTH, SELECT,
TLS), which the link then reads and writes itself (:mod:`sioserver.adapters._resp`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection, Connection, ConnectionPool
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import ResponseError

from ._resp import RespReader, encode_command, safe_url

__all__ = ["ClusterSeeds", "Endpoint", "NodeEndpoint", "SentinelEndpoint", "SingleEndpoint", "call",
           "client_for", "cluster_slots", "key_slot", "parse_target"]

_HOSTS = re.compile(r"^(?P<scheme>[a-z+]+)://(?:(?P<auth>[^@/]*)@)?(?P<hosts>[^/?#]*)(?P<path>/[^?#]*)?$")


async def call(conn: AbstractConnection, *args: Any, timeout: float) -> Any:
    """One command on a connection nothing else reads: its reply (errors returned, not raised)."""
    reader = reader_of(conn)
    async with asyncio.timeout(timeout):
        await conn.send_packed_command(encode_command(*args), check_health=False)
        return (await reader.read_n(1))[0]


def reader_of(conn: AbstractConnection) -> RespReader:
    """The link's own RESP reader on a connection redis-py has opened (its stream, read directly)."""
    stream = getattr(conn, "_reader", None)
    if not isinstance(stream, asyncio.StreamReader):  # pragma: no cover - a redis-py without _reader
        raise RuntimeError("this redis-py keeps no asyncio.StreamReader on its connections")
    reader: RespReader | None = getattr(conn, "_sioserver_reader", None)
    if reader is None:
        reader = RespReader(stream)
        conn._sioserver_reader = reader  # type: ignore[attr-defined]
    return reader


class Endpoint:
    """Opens connections to one Redis role (see the module docstring)."""

    description = ""

    async def open(self, timeout: float) -> AbstractConnection:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


class SingleEndpoint(Endpoint):
    """One server, by redis-py URL."""

    def __init__(self, url: str, options: dict[str, Any]) -> None:
        self.description = safe_url(url)
        self._pool = ConnectionPool.from_url(url, **options)

    async def open(self, timeout: float) -> AbstractConnection:
        conn: AbstractConnection = self._pool.make_connection()  # type: ignore[no-untyped-call,unused-ignore]
        try:
            async with asyncio.timeout(timeout):
                await conn.connect()  # type: ignore[no-untyped-call,unused-ignore]
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)
            raise
        return conn

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self._pool.disconnect()


class NodeEndpoint(Endpoint):
    """One host:port with the URL's credentials (a Cluster node, a master named by Sentinel)."""

    def __init__(self, host: str, port: int, options: dict[str, Any]) -> None:
        self.host = host
        self.port = port
        self.options = options
        self.description = f"{host}:{port}"

    async def open(self, timeout: float) -> AbstractConnection:
        conn = Connection(host=self.host, port=self.port, **self.options)
        try:
            async with asyncio.timeout(timeout):
                await conn.connect()  # type: ignore[no-untyped-call,unused-ignore]
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)
            raise
        return conn


class SentinelEndpoint(Endpoint):
    """The master of a service, as the first sentinel that answers names it; checked with ``ROLE``."""

    def __init__(self, sentinels: list[tuple[str, int]], service: str, options: dict[str, Any],
                 sentinel_options: dict[str, Any]) -> None:
        self.sentinels = list(sentinels)
        self.service = service
        self.options = options
        self.sentinel_options = sentinel_options
        self._sentinels_text = ",".join(f"{h}:{p}" for h, p in sentinels)
        self.description = f"master {service!r} of sentinels {self._sentinels_text}"
        self.master: tuple[str, int] | None = None

    async def resolve(self, timeout: float) -> tuple[str, int]:
        errors = []
        for host, port in self.sentinels:
            conn = Connection(host=host, port=port, **self.sentinel_options)
            try:
                async with asyncio.timeout(timeout):
                    await conn.connect()  # type: ignore[no-untyped-call,unused-ignore]
                reply = await call(conn, "SENTINEL", "get-master-addr-by-name", self.service, timeout=timeout)
            except Exception as exc:
                errors.append(f"{host}:{port}: {type(exc).__name__}: {exc}")
                continue
            finally:
                with contextlib.suppress(Exception):
                    await conn.disconnect(nowait=True)
            if isinstance(reply, list) and len(reply) == 2:
                # the sentinel that answered first is asked first next time
                self.sentinels.remove((host, port))
                self.sentinels.insert(0, (host, port))
                return reply[0].decode(), int(reply[1])
            errors.append(f"{host}:{port}: no master {self.service!r} ({reply!r})")
        raise ConnectionError("no sentinel named the master: " + "; ".join(errors))

    async def open(self, timeout: float) -> AbstractConnection:
        host, port = await self.resolve(timeout)
        conn = await NodeEndpoint(host, port, self.options).open(timeout)
        try:
            role = await call(conn, "ROLE", timeout=timeout)
        except BaseException:
            await conn.disconnect(nowait=True)
            raise
        if not (isinstance(role, list) and role and role[0] == b"master"):
            await conn.disconnect(nowait=True)
            raise ConnectionError(f"{host}:{port}, named master of {self.service!r}, is not a master (yet): {role!r}")
        if self.master != (host, port):  # the logs name the master each connection reached
            self.master = (host, port)
            self.description = f"master {self.service!r} (at {host}:{port}) of sentinels {self._sentinels_text}"
        return conn


@dataclass
class ClusterSeeds:
    """A ``redis+cluster://`` URL: where to ask for the slots, and the credentials of every node."""

    seeds: list[tuple[str, int]]
    options: dict[str, Any] = field(default_factory=dict)
    description: str = ""


def _hosts(text: str, default_port: int) -> list[tuple[str, int]]:
    hosts = []
    for item in text.split(","):
        part = item.strip()
        if part:
            host, _, port = part.rpartition(":") if ":" in part else (part, "", "")
            hosts.append((host, int(port) if port else default_port))
    if not hosts:
        raise ValueError("no host in the URL")
    return hosts


def parse_target(url: str, options: dict[str, Any]) -> Endpoint | ClusterSeeds:
    """The endpoint (or cluster seeds) of a URL; ``options`` are redis-py connection keywords."""
    scheme = url.split("://", 1)[0].lower()
    if scheme not in ("redis+sentinel", "redis+cluster"):
        return SingleEndpoint(url, options)
    match = _HOSTS.match(url)
    if match is None:
        raise ValueError(f"cannot parse {safe_url(url)!r}")
    node_options = dict(options)
    auth = match["auth"]
    if auth:
        user, sep, password = auth.partition(":")
        if sep:
            node_options.setdefault("username", unquote(user) or None)
            node_options.setdefault("password", unquote(password))
        else:
            node_options.setdefault("password", unquote(user))
    path = [p for p in (match["path"] or "").split("/") if p]
    if scheme == "redis+cluster":
        if path and path != ["0"]:
            raise ValueError("a Redis Cluster has only database 0")
        seeds = _hosts(match["hosts"], 6379)
        return ClusterSeeds(seeds, node_options, "cluster " + ",".join(f"{h}:{p}" for h, p in seeds))
    if not path:
        raise ValueError(f"{safe_url(url)!r}: redis+sentinel:// needs the service name: redis+sentinel://host:26379/mymaster/0")
    service = unquote(path[0])
    if len(path) > 1:
        node_options["db"] = int(path[1])
    sentinel_options = dict(node_options.pop("sentinel_options", None) or {})
    for key in ("socket_connect_timeout", "retry"):
        if key in node_options:
            sentinel_options.setdefault(key, node_options[key])
    return SentinelEndpoint(_hosts(match["hosts"], 26379), service, node_options, sentinel_options)


async def cluster_slots(seeds: ClusterSeeds, known: list[tuple[str, int]],
                        timeout: float) -> list[tuple[int, int, str, int]]:
    """``CLUSTER SLOTS`` from the first node that answers (known nodes first, then the seeds):
    ``[(first_slot, last_slot, master_host, master_port)]``."""
    errors = []
    order = list(dict.fromkeys(known + seeds.seeds))
    random.shuffle(order[:len(known)])
    for host, port in order:
        try:
            conn = await NodeEndpoint(host, port, seeds.options).open(timeout)
        except Exception as exc:
            errors.append(f"{host}:{port}: {type(exc).__name__}: {exc}")
            continue
        try:
            reply = await call(conn, "CLUSTER", "SLOTS", timeout=timeout)
        except Exception as exc:
            errors.append(f"{host}:{port}: {type(exc).__name__}: {exc}")
            continue
        finally:
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)
        if isinstance(reply, ResponseError) or not isinstance(reply, list):
            errors.append(f"{host}:{port}: {reply}")
            continue
        ranges = []
        for entry in reply:
            master = entry[2]
            master_host = master[0].decode() or host
            ranges.append((int(entry[0]), int(entry[1]), master_host, int(master[1])))
        if ranges:
            return sorted(ranges)
        errors.append(f"{host}:{port}: no slot is served")
    raise ConnectionError("no node of the cluster answered CLUSTER SLOTS: " + "; ".join(errors))


def common_options(connect_timeout: float, extra: dict[str, Any] | None) -> dict[str, Any]:
    """redis-py keywords of every connection of a link: the link reads and times out itself."""
    return {"socket_connect_timeout": connect_timeout, "socket_timeout": None,
            "retry": Retry(NoBackoff(), 0), **(extra or {}), "protocol": 2}


def client_for(url: str, options: dict[str, Any], who: str) -> Redis:
    """A redis-py client for one-shot commands (the emitters): one server by URL, or the master of a
    Sentinel service (redis-py's Sentinel pool asks the sentinels again after a connection fails)."""
    target = parse_target(url, options) if url.split("://", 1)[0].lower() != "redis+cluster" else None
    if target is None:
        raise ValueError(f"{who} publishes in the classic wire format, which a Redis Cluster's sharded adapter does "
                         "not read: give it one Redis or a Sentinel URL")
    if isinstance(target, SentinelEndpoint):
        sentinel = Sentinel(target.sentinels, sentinel_kwargs=target.sentinel_options)  # type: ignore[no-untyped-call,unused-ignore]
        client: Redis = sentinel.master_for(target.service, **target.options)
        return client
    return Redis.from_url(url, **options)
