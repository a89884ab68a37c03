"""Fixtures for the adapter tests: a real redis-server of their own, cluster nodes in subprocesses, clients.

* ``redis_server`` (module scope): ``redis-server`` on a free port, no persistence, killable and
  restartable on the same port (``kill()``, ``start()``). Never the Redis on 6379. When
  ``redis-server`` is missing it is installed with ``apt-get install -y redis-server``.
* ``cluster`` (module scope): ``cluster.start(("py", "A"), ("js", "N"), redis=url)`` starts
  ``cluster_node.py`` (sioserver) and ``cluster_node.cjs`` (Node socket.io + @socket.io/redis-adapter)
  processes in parallel; each prints ``READY <port>``; their stderr goes to a log file (``.log()``).
* ``peers`` (function scope): ``await peers.connect("a1", node, rooms=["r1"])`` gives a python-socketio
  client that records every event, answers ``survey`` with ``{"from": name}``, and drives its
  server with ``await peer.do(op, spec)``.
"""

from __future__ import annotations

import asyncio
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import socketio  # type: ignore[import-untyped]
from aiohttp import web

import sioserver

HERE = Path(__file__).resolve().parent
PY_NODE = HERE / "cluster_node.py"
JS_NODE = HERE / "cluster_node.cjs"
INTEROP = HERE.parent / "interop"
READY_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------------------- redis


@pytest.fixture(scope="session")
def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update"], capture_output=True, check=False, env=env, timeout=300)
        proc = subprocess.run(["apt-get", "install", "-y", "redis-server"], capture_output=True, text=True,
                              check=False, env=env, timeout=600)
        found = shutil.which("redis-server")
        if found is None:
            pytest.fail(f"redis-server is missing and apt-get could not install it:\n{proc.stderr[-2000:]}",
                        pytrace=False)
    return found


class RedisServer:
    """A redis-server of the tests' own, on a free port: kill() and start() again on the same port."""

    def __init__(self, binary: str, logdir: Path) -> None:
        self.binary = binary
        self.port = free_port()
        self.logdir = logdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        log = self.logdir / f"redis-{self.port}-{self.starts}.log"
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--protected-mode", "no", "--daemonize", "no", "--logfile", str(log)]
        deadline = time.monotonic() + timeout
        while True:  # the port may take a moment to be free again after a kill
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self.ping():
                    return
                time.sleep(0.02)
            if time.monotonic() >= deadline:
                self.kill()
                raise RuntimeError(f"redis-server on port {self.port} did not start; see {log}")
            time.sleep(0.1)

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: Redis dies as in a crash (connections reset, nothing saved)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="module")
def redis_server(redis_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(redis_binary, tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


# ------------------------------------------------------------------------------------------- nodes

NODE_PACKAGES = ("socket.io", "socket.io-client", "@socket.io/redis-adapter", "@socket.io/redis-emitter", "redis")


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """tests/interop/node_modules (pinned by tests/interop/package.json), ``npm ci`` when a package is missing."""
    modules = INTEROP / "node_modules"
    if not all((modules / name / "package.json").is_file() for name in NODE_PACKAGES):
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is not on PATH: the Node peers need Node 18+ and npm", pytrace=False)
        proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=INTEROP, capture_output=True, text=True,
                              timeout=600, check=False)
        if proc.returncode != 0:
            pytest.fail(f"npm ci in {INTEROP} failed:\n{proc.stdout}\n{proc.stderr}", pytrace=False)
    return modules



@dataclass
class ClusterNode:
    """A running cluster_node.py / cluster_node.cjs process."""

    kind: str
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes]
    log_path: Path
    port: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __repr__(self) -> str:
        return f"<{self.kind} node {self.name} :{self.port}>"


def _read_ready(proc: subprocess.Popen[bytes], deadline: float) -> int | None:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                return None
            buf += chunk
            m = re.search(rb"^READY (\d+)\s*$", buf, re.MULTILINE)
            if m:
                return int(m.group(1))
        elif proc.poll() is not None:
            return None
    return None


class Cluster:
    """Starts cluster nodes (in parallel) and stops them all at teardown."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.nodes: list[ClusterNode] = []

    def start(self, *specs: tuple[str, str], redis: str, key: str = "socket.io", sharded: bool = False,
              timeout: float | None = None) -> list[ClusterNode]:
        started = []
        for kind, name in specs:
            if kind == "py":
                argv = [sys.executable, str(PY_NODE), "--port", "0", "--redis", redis, "--name", name, "--key", key]
                if timeout is not None:
                    argv += ["--timeout", str(timeout)]
                env = dict(os.environ)
            else:
                node = shutil.which("node")
                if node is None:
                    pytest.fail("node is not on PATH", pytrace=False)
                argv = [node, str(JS_NODE), "--redis", redis, "--name", name, "--key", key]
                env = {**os.environ, "NODE_PATH": str(INTEROP / "node_modules")}
            if sharded:
                argv.append("--sharded")
            log_path = self.logdir / f"{kind}-{name}-{len(self.nodes)}.log"
            with log_path.open("wb") as err:
                proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, env=env)
            node_ = ClusterNode(kind, name, argv, proc, log_path)
            self.nodes.append(node_)
            started.append(node_)
        deadline = time.monotonic() + READY_TIMEOUT
        for node_ in started:
            port = _read_ready(node_.proc, deadline)
            if port is None:
                pytest.fail(f"{node_} did not print READY (exit {node_.proc.poll()}):\n{node_.log()[-4000:]}",
                            pytrace=False)
            node_.port = port
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
        deadline = time.monotonic() + timeout
        while len(self.got(event)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self}: {len(self.got(event))} of {count} {event!r} after {timeout}s; "
                                     f"got {self.events[-10:]}\n--- {self.node} log ---\n{self.node.log()[-3000:]}")
            await asyncio.sleep(0.01)
        return self.got(event)

    async def wait_disconnected(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self.sio.connected:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self} is still connected after {timeout}s")
            await asyncio.sleep(0.01)

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
        deadline = time.monotonic() + timeout
        while True:
            for i, (channel, data) in enumerate(self.messages):
                if channel.startswith(prefix):
                    del self.messages[i]
                    return channel, data
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing published on {prefix!r}; saw {self.messages}")
            await asyncio.sleep(0.01)

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
    runners: list[web.AppRunner] = []
    servers: list[sioserver.AsyncServer] = []

    async def make(**adapter_options: Any) -> tuple[sioserver.AsyncServer, sioserver.RedisAdapter, str]:
        factory = sioserver.RedisAdapter(redis_server.url, **adapter_options)
        sio = sioserver.AsyncServer(adapter=factory)
        app = web.Application()
        sio.attach(app)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        servers.append(sio)
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        sio._cluster_namespace("/")
        assert await factory.wait_ready(5)
        return sio, factory, f"http://127.0.0.1:{port}"

    yield make
    for sio in servers:
        await sio.shutdown()
    for runner in runners:
        await runner.cleanup()
