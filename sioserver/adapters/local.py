"""The cluster transport between the workers of one machine (``--workers N``): Unix sockets, no Redis.

Every worker listens on ``<dir>/node-<index>.sock`` (``dir`` is the supervisor's private temporary
directory, mode 0700) and connects to the others' sockets when it first publishes to them. A frame is
a 4-byte big-endian length, then msgpack ``[sender_index, message]`` (the cluster message of
:mod:`sioserver.adapters.cluster`, as the Redis adapter carries it). One :class:`LocalLink` per worker
carries every namespace; :class:`LocalTransport` is the :class:`~sioserver.adapters.cluster.ClusterTransport`
of one namespace over it. Responses go to the worker the requester's uid was last heard from (to all of
them while it is unknown). When a worker's connection to this one ends, its adapters are forgotten at
once (requests stop waiting for them), not after the heartbeat timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
from collections import Counter
from pathlib import Path
from typing import Any

from ._wire import pack, unpack
from .cluster import ClusterAdapterWithHeartbeat, ClusterMessage, ClusterNode

__all__ = ["LocalLink", "LocalTransport", "local_adapter"]

log = logging.getLogger("sioserver.cluster")

_LEN = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024
MAX_QUEUED = 100_000  # frames waiting for a peer's connection; past it, counted as lost


def node_socket(directory: str | Path, index: int) -> Path:
    return Path(directory) / f"node-{index}.sock"


class _Peer:
    """The connection to one other worker (outgoing): frames are queued while it connects."""

    def __init__(self, link: LocalLink, index: int) -> None:
        self.link = link
        self.index = index
        self.writer: asyncio.StreamWriter | None = None
        self.queue: list[bytes] = []
        self.connecting: asyncio.Task[None] | None = None

    def send(self, frame: bytes) -> None:
        writer = self.writer
        if writer is not None and not writer.is_closing():
            writer.write(frame)
            return
        if len(self.queue) >= MAX_QUEUED:
            self.link.stats["lost"] += 1
            return
        self.queue.append(frame)
        if self.connecting is None:
            self.connecting = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        try:
            _, writer = await asyncio.open_unix_connection(str(node_socket(self.link.directory, self.index)))
        except OSError as exc:  # not started yet, or restarting: what was queued for it is lost
            self.link.stats["lost"] += len(self.queue)
            log.debug("local cluster: worker %d not reachable: %s", self.index, exc)
            self.queue.clear()
            self.connecting = None
            return
        self.writer = writer
        queued, self.queue = self.queue, []
        writer.writelines(queued)
        self.connecting = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.connecting is not None:
            self.connecting.cancel()


class LocalLink:
    """This worker's end of the local cluster: its listening socket and its connections to the others."""

    def __init__(self, directory: str | Path, index: int, count: int) -> None:
        self.directory = Path(directory)
        self.index = index
        self.count = count
        self.nodes: dict[str, ClusterNode] = {}  # namespace -> its adapter
        self.peers = {i: _Peer(self, i) for i in range(count) if i != index}
        self.where: dict[str, int] = {}  # adapter uid -> worker index it was heard from
        self.stats: Counter[str] = Counter()
        self._server: asyncio.AbstractServer | None = None
        self._inbound: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        path = node_socket(self.directory, self.index)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # the socket of the worker this one replaces
        self._server = await asyncio.start_unix_server(self._serve, str(path))
        os.chmod(path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for peer in self.peers.values():
            peer.close()
        for writer in list(self._inbound):  # their readers end (EOF), as when a worker dies
            writer.close()

    def send(self, message: ClusterMessage, to: int | None = None) -> None:
        body = pack([self.index, message])
        frame = _LEN.pack(len(body)) + body
        if to is not None and to in self.peers:
            self.peers[to].send(frame)
            return
        for peer in self.peers.values():
            peer.send(frame)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._inbound.add(writer)
        heard: set[str] = set()
        try:
            while True:
                head = await reader.readexactly(4)
                (size,) = _LEN.unpack(head)
                if size > MAX_FRAME:
                    log.error("local cluster: a frame of %d bytes: connection dropped", size)
                    return
                sender, message = unpack(await reader.readexactly(size))
                self.stats["received"] += 1
                if not isinstance(message, dict):
                    continue
                uid = message.get("uid")
                if isinstance(uid, str):
                    self.where[uid] = sender
                    heard.add(uid)
                node = self.nodes.get(message.get("nsp"))  # type: ignore[arg-type]
                if node is not None:
                    try:
                        node.on_message(message)
                    except Exception:
                        log.exception("local cluster: a message from worker %s failed", sender)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            self._inbound.discard(writer)
            writer.close()
            for uid in heard:  # that worker stopped (or restarts): its requests are not waited for
                self.where.pop(uid, None)
                for node in self.nodes.values():
                    gone = getattr(node, "node_gone", None)
                    if gone is not None:
                        gone(uid)


class LocalTransport:
    """The :class:`~sioserver.adapters.cluster.ClusterTransport` of one namespace over a :class:`LocalLink`."""

    healthy = True

    def __init__(self, link: LocalLink, namespace: str) -> None:
        self.link = link
        self.namespace = namespace

    def start(self, node: ClusterNode) -> None:
        self.link.nodes[self.namespace] = node

    def publish(self, message: ClusterMessage) -> None:
        self.link.send(message)

    def publish_response(self, requester: str, response: ClusterMessage) -> None:
        self.link.send(response, self.link.where.get(requester))

    async def server_count(self) -> int:  # pragma: no cover - the heartbeat adapter counts
        return self.link.count

    async def close(self) -> None:
        if self.link.nodes.get(self.namespace) is not None:
            del self.link.nodes[self.namespace]


def local_adapter(link: LocalLink) -> Any:
    """The ``adapter=`` factory of the workers: a heartbeat cluster adapter per namespace over ``link``."""

    def factory(namespace: Any) -> ClusterAdapterWithHeartbeat:
        return ClusterAdapterWithHeartbeat(namespace, LocalTransport(link, namespace.name),
                                           heartbeat_interval=2.0, heartbeat_timeout=5.0)

    return factory
