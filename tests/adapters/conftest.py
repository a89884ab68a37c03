"""Fixtures for the adapter tests: a real redis-server of their own, cluster nodes in subprocesses, clients.

* ``redis_server`` (module scope, tests/conftest.py): ``redis-server`` on a free port, no persistence,
  killable and restartable on the same port (``kill()``, ``start()``). Never the Redis on 6379.
* ``cluster`` (module scope): ``cluster.start(("py", "A"), ("js", "N"), redis=url)`` starts
  ``cluster_node.py`` (sioserver) and ``cluster_node.cjs`` (Node socket.io + @socket.io/redis-adapter)
  processes in parallel; each prints ``READY <port>``; their output goes to a log file (``.log()``).
* ``peers`` (function scope): ``await peers.connect("a1", node, rooms=["r1"])`` gives a python-socketio
  client that records every event, answers ``survey`` with ``{"from": name}``, and drives its
  server with ``await peer.do(op, spec)``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import socketio  # type: ignore[import-untyped]
from aiohttp import web

import sioserver
from tests._support import node, serving
from tests._support.procs import Process, start_all
from tests._support.redis import RedisServer
from tests._support.wait import wait_until

HERE = Path(__file__).resolve().parent
PY_NODE = HERE / "cluster_node.py"
JS_NODE = HERE / "cluster_node.cjs"
READY_TIMEOUT = 20.0


# ------------------------------------------------------------------------------------------- nodes


class ClusterNode(Process):
    """A running cluster_node.py / cluster_node.cjs process."""

    def __init__(self, kind: str, name: str, argv: list[str], log_path: Path, env: dict[str, str]) -> None:
        super().__init__(argv, log_path=log_path, env=env, name=name)
        self.kind = kind

    def log(self) -> str:
        return self.output()

    def __repr__(self) -> str:
        return f"<{self.kind} node {self.name} :{self.port if self.match else '?'}>"


class Cluster:
    """Starts cluster nodes (in parallel) and stops them all at teardown."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.nodes: list[ClusterNode] = []

    def start(self, *specs: tuple[str, str], redis: str, key: str = "socket.io", sharded: bool = False,
              timeout: float | None = None, extra: tuple[str, ...] = ()) -> list[ClusterNode]:
        """``extra``: more arguments for every node (``--streams``: the Redis Streams adapters)."""
        started = []
        for kind, name in specs:
            if kind == "py":
                argv = [sys.executable, str(PY_NODE), "--port", "0", "--redis", redis, "--name", name, "--key", key]
                if timeout is not None:
                    argv += ["--timeout", str(timeout)]
                env = dict(os.environ)
            else:
                argv = list(node.argv(JS_NODE, "--redis", redis, "--name", name, "--key", key))
                env = {**os.environ, "NODE_PATH": str(node.INTEROP / "node_modules")}
            if sharded:
                argv.append("--sharded")
            argv.extend(extra)
            log_path = self.logdir / f"{kind}-{name}-{len(self.nodes)}.log"
            node_ = ClusterNode(kind, name, argv, log_path, env)
            self.nodes.append(node_)
            started.append(node_)
        start_all(started, READY_TIMEOUT)
        return started

    def stop_all(self) -> None:
        for node_ in self.nodes:
            node_.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    yield c
    c.stop_all()


# ------------------------------------------------------------------------------------------- peers


class Peer:
    """A python-socketio client that records what it receives."""

    def __init__(self, name: str, node: ClusterNode) -> None:
        self.name = name
        self.node = node
        self.events: list[tuple[str, list[Any]]] = []
        self.disconnects = 0
        self.sio = socketio.AsyncClient(reconnection=False)
        self.sio.on("*", self._on_any)
        self.sio.on("disconnect", self._on_disconnect)

    def __repr__(self) -> str:
        return f"<Peer {self.name} on {self.node.name}>"

    async def _on_any(self, event: str, *args: Any) -> Any:
        self.events.append((event, list(args)))
        if event == "survey":
            return {"from": self.name}
        return None

    async def _on_disconnect(self, *args: Any) -> None:
        self.disconnects += 1

    @property
    def sid(self) -> str:
        sid = self.sio.get_sid("/")
        assert sid is not None
        return str(sid)

    def got(self, event: str) -> list[list[Any]]:
        return [args for e, args in self.events if e == event]

    def clear(self) -> None:
        self.events.clear()

    async def wait_for(self, event: str, count: int = 1, timeout: float = 5.0) -> list[list[Any]]:
        await wait_until(lambda: len(self.got(event)) >= count, timeout=timeout,
                         what=lambda: f"{self}: {len(self.got(event))} of {count} {event!r}; got {self.events[-10:]}"
                         f"\n--- {self.node} log ---\n{self.node.log()[-3000:]}")
        return self.got(event)

    async def wait_disconnected(self, timeout: float = 5.0) -> None:
        await wait_until(lambda: not self.sio.connected, timeout=timeout, what=f"{self} is still connected")

    async def do(self, op: str, spec: dict[str, Any] | None = None, timeout: float = 15.0) -> Any:
        result = await self.sio.call("do", (op, spec or {}), timeout=timeout)
        if isinstance(result, dict) and set(result) == {"error"}:
            raise AssertionError(f"{self.node} failed {op} {spec}: {result['error']}\n{self.node.log()[-3000:]}")
        return result


class Peers:
    def __init__(self) -> None:
        self.all: list[Peer] = []

    async def connect(self, name: str, node: ClusterNode, rooms: list[str] | tuple[str, ...] = ()) -> Peer:
        peer = Peer(name, node)
        await peer.sio.connect(node.url, auth={"name": name, "rooms": list(rooms)}, transports=["websocket"],
                               wait_timeout=10)
        self.all.append(peer)
        return peer

    def clear(self) -> None:
        for peer in self.all:
            peer.clear()

    async def close(self) -> None:
        await asyncio.gather(*(p.sio.disconnect() for p in self.all if p.sio.connected), return_exceptions=True)


@pytest.fixture
async def peers() -> AsyncIterator[Peers]:
    p = Peers()
    yield p
    await p.close()


async def settle(seconds: float = 0.3) -> None:
    """Give stray (duplicate) deliveries the time to show up."""
    await asyncio.sleep(seconds)


# ---------------------------------------------------------------------------------- in-process


class Wire:
    """A hand-written peer in the test: sees every message of the key, can answer and publish."""

    def __init__(self, url: str) -> None:
        self.redis = aioredis.from_url(url, protocol=2)
        self.pubsub = self.redis.pubsub()
        self.messages: list[tuple[str, bytes]] = []
        self.answer: Callable[[str, bytes], Awaitable[None]] | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.pubsub.psubscribe("socket.io#*")
        # counted by PUBSUB NUMSUB as one more server, so the adapter sends its requests
        await self.pubsub.subscribe("socket.io-request#/#", "socket.io-response#/#")
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            msg = await self.pubsub.get_message(timeout=1.0)
            if msg is None or msg["type"] not in ("message", "pmessage"):
                continue
            channel = msg["channel"].decode()
            self.messages.append((channel, msg["data"]))
            if self.answer is not None and channel.startswith("socket.io-request#"):
                await self.answer(channel, msg["data"])

    async def next(self, prefix: str, timeout: float = 3.0) -> tuple[str, bytes]:
        def first() -> tuple[str, bytes] | None:
            for i, (channel, data) in enumerate(self.messages):
                if channel.startswith(prefix):
                    del self.messages[i]
                    return channel, data
            return None

        return await wait_until(first, timeout=timeout,
                                what=lambda: f"nothing published on {prefix!r}; saw {self.messages}")

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        await self.pubsub.aclose()
        await self.redis.aclose()


@pytest.fixture
async def wire(redis_server: RedisServer) -> AsyncIterator[Wire]:
    w = Wire(redis_server.url)
    await w.start()
    yield w
    await w.close()


@pytest.fixture
async def local_sio(redis_server: RedisServer) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """An in-process sioserver with a RedisAdapter, served over HTTP; returns (sio, factory, url)."""
    runners: list[serving.AppServer] = []
    servers: list[sioserver.AsyncServer] = []

    async def make(**adapter_options: Any) -> tuple[sioserver.AsyncServer, sioserver.RedisAdapter, str]:
        factory = sioserver.RedisAdapter(redis_server.url, **adapter_options)
        sio = sioserver.AsyncServer(adapter=factory)
        app = web.Application()
        sio.attach(app)
        runner = await serving.start(app)
        runners.append(runner)
        servers.append(sio)
        sio._cluster_namespace("/")
        assert await factory.wait_ready(5)
        return sio, factory, runner.url

    yield make
    for sio in servers:
        await sio.shutdown()
    for runner in runners:
        await runner.close()
