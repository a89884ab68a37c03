"""Fixtures for sioclient's tests: sioserver in process, the Node reference server (socket.io 4.8) and
server processes that can be killed and restarted on the same port.

``clients/python`` goes on sys.path here: sioclient is a package of its own beside sioserver (it
imports sioserver's protocol cores), not part of the sioserver distribution.
"""

from __future__ import annotations

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
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "clients" / "python"))

from tests.clients import sio_app  # noqa: E402
from tests.interop.conftest import node_modules  # noqa: E402, F401 - the fixture: npm ci when stale

NODE_SERVER = HERE / "node_sio_server.cjs"
READY_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """A test server in a subprocess (``node`` or ``sioserver``) on a fixed port: start, kill, restart."""

    def __init__(self, kind: str, port: int, options: dict[str, Any], logdir: Path, modules: Path | None):
        self.kind = kind
        self.port = port
        self.options = options
        self.logdir = logdir
        self.node_modules = modules
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        opts = self.options
        if self.kind == "node":
            node = shutil.which("node")
            assert node is not None, "node is not on PATH"
            argv = [node, str(NODE_SERVER), "--port", str(self.port)]
            if opts.get("serializer") == "msgpack":
                argv += ["--parser", "msgpack"]
            if "ping_interval" in opts:
                argv += ["--ping-interval", str(int(opts["ping_interval"] * 1000))]
            if "ping_timeout" in opts:
                argv += ["--ping-timeout", str(int(opts["ping_timeout"] * 1000))]
            return argv
        argv = [sys.executable, str(HERE / "sio_app.py"), "--port", str(self.port)]
        argv += ["--serializer", opts.get("serializer", "default")]
        if "ping_interval" in opts:
            argv += ["--ping-interval", str(opts["ping_interval"])]
        if "ping_timeout" in opts:
            argv += ["--ping-timeout", str(opts["ping_timeout"])]
        return argv

    def start(self) -> float:
        """Start and wait for READY; returns the monotonic time it was ready."""
        env = dict(os.environ)
        if self.node_modules is not None:
            env["NODE_PATH"] = str(self.node_modules)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
        log = (self.logdir / f"{self.kind}-{self.port}-{self.starts}.log").open("wb")
        self.starts += 1
        self.proc = subprocess.Popen(self.argv(), stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, env=env)
        log.close()
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                buf += chunk
                m = re.search(rb"^READY (\d+)\s*$", buf, re.MULTILINE)
                if m:
                    self.port = int(m.group(1))
                    return time.monotonic()
            elif self.proc.poll() is not None:
                break
        self.kill()
        raise RuntimeError(f"{self.kind} server did not start: {buf!r}\n{self.log_text()}")

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logdir.glob(f"{self.kind}-*.log")))

    def kill(self, sig: int = signal.SIGKILL) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()


ProcessFactory = Callable[..., ServerProcess]


@pytest.fixture
def server_process(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ProcessFactory]:
    """``server_process("node" | "sioserver", **options)`` -> a started ServerProcess; all killed at teardown."""
    started: list[ServerProcess] = []

    def start(kind: str, **options: Any) -> ServerProcess:
        modules = request.getfixturevalue("node_modules") if kind == "node" else None
        proc = ServerProcess(kind, 0, options, tmp_path, modules)
        started.append(proc)
        proc.start()
        return proc

    yield start
    for proc in started:
        proc.kill()


@pytest.fixture(scope="session")
def node_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., str]]:
    """``node_url(serializer="default"|"msgpack")``: the URL of a Node server shared by the session."""
    modules: Path = request.getfixturevalue("node_modules")
    servers: dict[str, ServerProcess] = {}
    logdir = tmp_path_factory.mktemp("node-sio")

    def get(serializer: str = "default") -> str:
        if serializer not in servers:
            proc = ServerProcess("node", 0, {"serializer": serializer}, logdir, modules)
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
