"""Fixtures for sioclient's tests: sioserver in process, the Node reference server (socket.io 4.8) and
server processes that can be killed and restarted on the same port.

``clients/python`` goes on sys.path here: sioclient is a package of its own beside sioserver (it
imports sioserver's protocol cores), not part of the sioserver distribution.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "clients" / "python"))

from tests._support import node  # noqa: E402
from tests._support.procs import Process, python_env  # noqa: E402
from tests.clients import sio_app  # noqa: E402

NODE_SERVER = HERE / "node_sio_server.cjs"
READY_TIMEOUT = 15.0


class ServerProcess:
    """A test server in a subprocess (``node`` or ``sioserver``) on a fixed port: start, kill, restart."""

    def __init__(self, kind: str, port: int, options: dict[str, Any], logdir: Path) -> None:
        self.kind = kind
        self.port = port
        self.options = options
        self.logdir = logdir
        self.proc: Process | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        opts = self.options
        if self.kind == "node":
            args = ["--port", str(self.port)]
            if opts.get("serializer") == "msgpack":
                args += ["--parser", "msgpack"]
            if "ping_interval" in opts:
                args += ["--ping-interval", str(int(opts["ping_interval"] * 1000))]
            if "ping_timeout" in opts:
                args += ["--ping-timeout", str(int(opts["ping_timeout"] * 1000))]
            return list(node.argv(NODE_SERVER, *args))
        argv = [sys.executable, str(HERE / "sio_app.py"), "--port", str(self.port)]
        argv += ["--serializer", opts.get("serializer", "default")]
        if "ping_interval" in opts:
            argv += ["--ping-interval", str(opts["ping_interval"])]
        if "ping_timeout" in opts:
            argv += ["--ping-timeout", str(opts["ping_timeout"])]
        return argv

    def start(self) -> float:
        """Start and wait for READY (the first start picks a free port, a restart takes the same one);
        returns the monotonic time it was ready."""
        env = python_env(NODE_PATH=str(node.INTEROP / "node_modules"))
        self.proc = Process(self.argv(), log_path=self.logdir / f"{self.kind}-{self.port}-{self.starts}.log",
                            env=env, name=f"{self.kind} server")
        self.starts += 1
        self.proc.start(READY_TIMEOUT)
        self.port = self.proc.port
        return time.monotonic()

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logdir.glob(f"{self.kind}-*.log")))

    def kill(self, sig: int = signal.SIGKILL) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.stop(sig)


ProcessFactory = Callable[..., ServerProcess]


@pytest.fixture
def server_process(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ProcessFactory]:
    """``server_process("node" | "sioserver", **options)`` -> a started ServerProcess; all killed at teardown."""
    started: list[ServerProcess] = []

    def start(kind: str, **options: Any) -> ServerProcess:
        if kind == "node":
            request.getfixturevalue("interop_node_modules")
        proc = ServerProcess(kind, 0, options, tmp_path)
        started.append(proc)
        proc.start()
        return proc

    yield start
    for proc in started:
        proc.kill()


@pytest.fixture(scope="session")
def node_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., str]]:
    """``node_url(serializer="default"|"msgpack")``: the URL of a Node server shared by the session."""
    request.getfixturevalue("interop_node_modules")
    servers: dict[str, ServerProcess] = {}
    logdir = tmp_path_factory.mktemp("node-sio")

    def get(serializer: str = "default") -> str:
        if serializer not in servers:
            proc = ServerProcess("node", 0, {"serializer": serializer}, logdir)
            proc.start()
            servers[serializer] = proc
        return servers[serializer].url

    yield get
    for proc in servers.values():
        proc.kill()


SioFactory = Callable[..., Awaitable[str]]


@pytest.fixture
async def sio_url() -> AsyncIterator[SioFactory]:
    """``await sio_url(**AsyncServer options)``: an in-process sioserver app; returns its URL."""
    servers: list[TestServer] = []

    async def start(**options: Any) -> str:
        app, _ = sio_app.make_app(**options)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return f"http://127.0.0.1:{server.port}"

    yield start
    for server in servers:
        await server.close()


@pytest.fixture(params=["sioserver", "node"])
async def server(request: pytest.FixtureRequest, sio_url: SioFactory) -> Callable[..., Awaitable[str]]:
    """Both servers: ``await server(serializer=...)`` -> URL (sioserver in process, or the shared Node one)."""
    kind = request.param

    async def get(serializer: str = "default") -> str:
        if kind == "sioserver":
            return await sio_url(serializer=serializer)
        factory: Callable[..., str] = request.getfixturevalue("node_url")
        return factory(serializer)

    get.kind = kind  # type: ignore[attr-defined]
    return get
