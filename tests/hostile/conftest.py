"""Servers under attack: ``python -m sioserver tests.hostile.app:sio`` subprocesses, one per
configuration, started on first use, checked before every test (and restarted if a previous case
left them dead or wedged), killed at the end of the session."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from .helpers import RoundTrip, good_client

ROOT = Path(__file__).resolve().parents[2]

#: name -> (AsyncServer options, app features)
CONFIGS: dict[str, tuple[dict[str, Any], list[str]]] = {
    # the defaults, as shipped
    "main": ({}, []),
    # short timers: heartbeat, upgrade and connect deadlines in about a second
    "fast": ({"ping_interval": 0.5, "ping_timeout": 0.5, "upgrade_timeout": 1.0, "connect_timeout": 1.0}, []),
    # small per-client backlog, both policies
    "slow": ({"max_buffered_bytes": 256 * 1024}, []),
    "drop": ({"max_buffered_bytes": 256 * 1024, "slow_consumer_policy": "drop"}, []),
    # permessage-deflate on
    "deflate": ({"compression": True}, []),
    # every namespace accepted: by option, by a "*" handler, by a regex
    "nsp_option": ({"namespaces": "*"}, []),
    "nsp_catchall": ({}, ["catchall"]),
    "nsp_regex": ({}, ["regex"]),
    "msgpack": ({"serializer": "msgpack"}, []),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """One server subprocess and what the tests ask it."""

    def __init__(self, name: str, options: dict[str, Any] | None = None, features: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.env = env or {}
        self.options, self.features = CONFIGS.get(name, ({}, []))
        if options is not None:
            self.options = options
        if features is not None:
            self.features = features
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log_path = Path(tempfile.gettempdir()) / f"sioserver-hostile-{name}-{os.getpid()}.log"
        self.restarts = 0
        self.log_mark = 0

    # ---------------------------------------------------------------- process

    def start(self) -> None:
        env = {**os.environ, "HOSTILE_OPTIONS": json.dumps(self.options),
               "HOSTILE_FEATURES": ",".join(self.features), "PYTHONUNBUFFERED": "1",
               "HOSTILE_PARENT": str(os.getpid()), **self.env}
        for _attempt in range(3):
            self.port = free_port()
            log = self.log_path.open("ab")
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sioserver", "tests.hostile.app:sio", "--port", str(self.port)],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )
            log.close()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if self._ping_sync():
                    return
                time.sleep(0.05)
            self.stop()
        raise RuntimeError(f"server {self.name} did not start; see {self.log_path}")

    def _ping_sync(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"GET /_debug/state HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                s.settimeout(2)
                return s.recv(12).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def stop(self) -> None:
        proc = self.proc
        self.proc = None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def ensure(self) -> None:
        """Started, alive and answering; restarted otherwise (a case before may have killed it)."""
        if self.proc is not None and self.proc.poll() is None and self._ping_sync():
            return
        if self.proc is not None:
            self.restarts += 1
            self.stop()
        self.start()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # ----------------------------------------------------------------- debug

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _get(self, path: str) -> Any:
        async with aiohttp.ClientSession() as http, http.get(
            self.base + path, timeout=aiohttp.ClientTimeout(total=3)
        ) as resp:
            assert resp.status == 200, resp.status
            return await resp.json()

    async def state(self) -> dict[str, Any]:
        return dict(await self._get("/_debug/state"))

    async def session(self, sid: str) -> dict[str, Any]:
        return dict(await self._get(f"/_debug/session/{sid}"))

    async def session_closed(self, sid: str, timeout: float = 2.0, *, forgotten: bool = False) -> dict[str, Any]:
        """Wait until the Engine.IO session ``sid`` is closed (and gone from the table if ``forgotten``)."""
        deadline = time.monotonic() + timeout
        while True:
            info = await self.session(sid)
            if (not info["exists"]) if forgotten else info["closed"]:
                return info
            if time.monotonic() > deadline:
                raise AssertionError(f"session {sid} still there after {timeout}s: {info}")
            await asyncio.sleep(0.05)

    async def logs(self, since: int | None = None) -> list[dict[str, Any]]:
        return list(await self._get(f"/_debug/logs?since={self.log_mark if since is None else since}"))

    async def mark_logs(self) -> None:
        records = await self.logs(0)
        self.log_mark = records[-1]["seq"] if records else 0

    def rss(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    # ------------------------------------------------------------ assertions

    async def expect_log(self, pattern: str, count: int = 1, *, timeout: float = 1.5,
                         allow_exc: bool = False) -> list[dict[str, Any]]:
        """Exactly ``count`` records since the test began match ``pattern`` (waiting up to
        ``timeout`` for them), and no record reports an exception (a traceback means something
        escaped) unless ``allow_exc``."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            records = await self.logs()
            hits = [r for r in records if rx.search(f"{r['logger']}: {r['message']}")]
            if len(hits) >= count or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        if hits and len(hits) == count:
            await asyncio.sleep(0.05)  # a duplicate would come right behind
            records = await self.logs()
            hits = [r for r in records if rx.search(f"{r['logger']}: {r['message']}")]
        assert len(hits) == count, f"expected {count} log record(s) matching {pattern!r}, got:\n" + _fmt(records)
        if not allow_exc:
            crashes = [r for r in records if r["exc"] or r["level"] in ("ERROR", "CRITICAL")]
            assert not crashes, "exceptions / errors logged:\n" + _fmt(crashes)
        return hits

    async def assert_no_errors(self) -> None:
        records = await self.logs()
        crashes = [r for r in records if r["exc"] or r["level"] in ("ERROR", "CRITICAL")]
        assert not crashes, "exceptions / errors logged:\n" + _fmt(crashes)

    async def assert_healthy(self, transport: str = "websocket", nsp: str = "/") -> RoundTrip:
        """The closing act of every case: the process lives, and a well-behaved client connects
        and gets an ack back within 2 s."""
        assert self.alive(), f"server {self.name} died; see {self.log_path}"
        return await good_client(self.port, transport=transport, nsp=nsp, timeout=2.0)

    async def wait_for(self, predicate: Any, timeout: float = 3.0, what: str = "") -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            state = await self.state()
            if predicate(state):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or predicate}: {json.dumps(state)[:2000]}")
            await asyncio.sleep(0.05)

    async def settle(self, timeout: float = 3.0) -> dict[str, Any]:
        """Wait until no session is open and every namespace is empty (the tables of a quiet server)."""
        def quiet(s: dict[str, Any]) -> bool:
            return s["open_sessions"] == 0 and s["parked"] == 0 and all(
                n["sockets"] == 0 and n["sids"] == 0 and n["rooms"] == 0 and n["acks"] == 0
                for n in s["namespaces"].values())
        return await self.wait_for(quiet, timeout, "quiet tables")


def _fmt(records: list[dict[str, Any]]) -> str:
    return "\n".join(f"  [{r['level']}] {r['logger']}: {r['message'][:300]}"
                     + (f" <{r['exc_type']}>" if r["exc"] else "") for r in records) or "  (none)"


class Servers:
    def __init__(self) -> None:
        self.running: dict[str, ServerProcess] = {}

    def get(self, name: str) -> ServerProcess:
        server = self.running.get(name)
        if server is None:
            server = self.running[name] = ServerProcess(name)
        server.ensure()
        return server

    def stop_all(self) -> None:
        for server in self.running.values():
            server.stop()


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    pool = Servers()
    try:
        yield pool
    finally:
        pool.stop_all()


def _server_fixture(name: str) -> Any:
    @pytest.fixture
    async def fixture(servers: Servers) -> AsyncIterator[ServerProcess]:
        server = servers.get(name)
        await server.mark_logs()
        yield server

    return fixture


srv = _server_fixture("main")
fast_srv = _server_fixture("fast")
slow_srv = _server_fixture("slow")
drop_srv = _server_fixture("drop")
deflate_srv = _server_fixture("deflate")
msgpack_srv = _server_fixture("msgpack")
