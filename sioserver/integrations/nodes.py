"""No sticky sessions across machines: the nodes of a Redis-backed cluster forward each other's requests.

When the server's adapter is a Redis one (``RedisAdapter`` with any of its URLs, ``RedisStreamsAdapter``,
``AsyncRedisManager``) and it is served by ``sioserver.run`` / ``python -m sioserver`` (the HTTP/1.1
front), each process is a node with an id of its own (8 hex digits; ``<id>-<i>`` for worker ``i`` of
``--workers``). Its sids start with ``"<node>."``, and it registers in Redis where it takes forwarded
requests (:mod:`sioserver.adapters.registry`):

* a single process: its listening address, or ``advertise="host[:port]"`` (``--advertise``,
  ``SIOSERVER_ADVERTISE``) when others reach it by another name (a container's, behind NAT). Bound to
  ``0.0.0.0`` / ``::`` with no ``advertise``: the machine's primary IP address;
* a worker of ``--workers``: a private TCP door of its own (the port is shared by the workers and the
  kernel picks which one a connection reaches), on the same host, port chosen by the system; the
  advertised host, if any, is the machine's. The workers of one machine still forward to each other
  over their Unix sockets.

A request for another node's sid is forwarded there (:mod:`.forward`) and the answer relayed: polling
requests (a parked GET parks at the owner) and WebSocket upgrades alike. An id that Redis does not know
(a node that is gone, or a crafted sid) is never connected to; an owner that cannot be reached, or Redis
away, gets the reference's 400 "Session ID unknown" and the engine's log line naming the node.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from pathlib import Path
from typing import Any

from ..adapters.registry import NodeRegistry, registry_for
from .forward import Door, Forwarder, http_socket

__all__ = ["ClusterNode", "advertise_host", "cluster_node", "new_node_id", "primary_ip"]

log = logging.getLogger("sioserver")

ADVERTISE_ENV = "SIOSERVER_ADVERTISE"


def new_node_id() -> str:
    return secrets.token_hex(4)


def primary_ip() -> str:
    """The address this machine's default route leaves from (no packet is sent); 127.0.0.1 without one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only the route is looked up
            return str(probe.getsockname()[0])
    except OSError:
        return "127.0.0.1"


def advertise_host(bound: str) -> str:
    """The host other nodes reach a node bound to ``bound`` by."""
    return primary_ip() if bound in ("", "0.0.0.0", "::") else bound


def _split(advertise: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]:port`` -> (host, port or None)."""
    text = advertise.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port)
    return text, None


def _shown(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class ClusterNode:
    """One node of the cluster: its id in the sids it hands out, its registration, its forwarder.

    ``local=(directory, index, count)``: a worker of ``--workers`` (the others of its machine are reached
    over their Unix sockets, and it serves a private TCP door for the other machines'); ``advertise``: see
    the module docstring."""

    def __init__(self, engine: Any, registry: NodeRegistry, node_id: str, *, advertise: str | None = None,
                 local: tuple[str | Path, int, int] | None = None) -> None:
        self.engine = engine
        self.registry = registry
        self.node_id = node_id
        self.advertise = advertise or None
        self.local = local
        self.door: tuple[str, int] | None = None  # the address registered
        self.remote = 0  # requests sent to a TCP door (another process's or machine's, not a local worker's)
        self._private: socket.socket | None = None

    def prepare(self, host: str) -> list[socket.socket]:
        """Before listening: the sids name this node; a worker's private door (listening on ``host``, the
        one the server binds)."""
        self.engine.sid_prefix = self.node_id + "."
        if self.local is None:
            return []
        info = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(info[0], socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(info[4])
        sock.listen(1024)
        sock.setblocking(False)
        self._private = sock
        return [sock]

    async def start(self, addresses: list[tuple[str, int]]) -> None:
        """Once listening: register where this node takes forwarded requests, and forward others' sids."""
        bound_host, bound_port = addresses[0] if addresses else ("127.0.0.1", 0)
        if self._private is not None:
            bound_host, bound_port = self._private.getsockname()[:2]
        host, port = _split(self.advertise) if self.advertise else (advertise_host(bound_host), None)
        if self._private is not None or port is None:
            port = bound_port
        if host in ("", "0.0.0.0", "::"):
            host = advertise_host(host)
        self.door = (host, port)
        self.engine.forward = Forwarder(self.engine, self.owner, self.lost).forward
        await self.registry.register(self.node_id, _shown(host, port))
        log.info("node %s: sids start %r; other nodes forward its sessions' requests to %s (registered in Redis)",
                 self.node_id, self.engine.sid_prefix, _shown(host, port))

    async def owner(self, sid: str) -> Door:
        node = sid.partition(".")[0]
        if self.local is not None:
            directory, index, count = self.local
            machine, dash, worker = node.rpartition("-")
            if dash and machine == self.node_id.rpartition("-")[0] and worker.isdigit():
                if int(worker) >= count or int(worker) == index:
                    raise ConnectionRefusedError(f"no worker {worker} on this machine")
                return http_socket(directory, int(worker))
        address = await self.registry.resolve(node)  # RegistryUnavailableError: a ConnectionError
        if address is None:
            raise ConnectionRefusedError(f"node {node!r} is not registered in Redis (gone, or never was)")
        if address == self.door:
            raise ConnectionRefusedError(f"node {node!r} is registered at this node's own address (a stale entry)")
        self.remote += 1
        return address

    def lost(self, sid: str, door: Door) -> None:
        if isinstance(door, tuple):
            self.registry.forget(sid.partition(".")[0])

    async def close(self) -> None:
        log.info("node %s: %d requests forwarded to their sessions' nodes (%d over TCP)", self.node_id,
                 self.engine.stats["forwarded"], self.remote)
        await self.registry.close()
        if self._private is not None:
            self._private.close()


def cluster_node(sio: Any, engine: Any, advertise: str | None = None, *, node_id: str | None = None,
                 local: tuple[str | Path, int, int] | None = None) -> ClusterNode | None:
    """The node ``sio`` is, when its adapter is a Redis one; None otherwise."""
    registry = registry_for(getattr(sio, "adapter_factory", None))
    if registry is None:
        return None
    advertise = advertise if advertise is not None else os.environ.get(ADVERTISE_ENV)
    return ClusterNode(engine, registry, node_id or new_node_id(), advertise=advertise, local=local)
