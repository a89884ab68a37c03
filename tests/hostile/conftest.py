"""Servers under attack: ``python -m sioserver tests.hostile.app:sio`` subprocesses, one per
configuration and front (sioserver's own HTTP/1.1 front, "run", and aiohttp attach), started on first use, checked before every test (and restarted if a previous case
left them dead or wedged), killed at the end of the session."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests._support.ports import free_port
from tests._support.procs import Process
from tests._support.wait import wait_until, wait_until_sync

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


#: the fronts every server fixture runs on: ``sioserver.run``'s own HTTP/1.1 front and aiohttp attach
FRONTS = ("run", "aiohttp")


class ServerProcess:
    """One server subprocess and what the tests ask it."""

    def __init__(self, name: str, options: dict[str, Any] | None = None, features: list[str] | None = None,
                 env: dict[str, str] | None = None, front: str = "run") -> None:
        self.name = name
        self.front = front
        self.env = env or {}
        self.options, self.features = CONFIGS.get(name, ({}, []))
        if options is not None:
            self.options = options
        if features is not None:
            self.features = features
        self.proc: Process | None = None
        self.port = 0
        self.log_path = Path(tempfile.gettempdir()) / f"sioserver-hostile-{name}-{front}-{os.getpid()}.log"
        self.restarts = 0
        self.log_mark = 0

    # ---------------------------------------------------------------- process

    def start(self) -> None:
        env = {**os.environ, "HOSTILE_OPTIONS": json.dumps(self.options),
               "HOSTILE_FEATURES": ",".join(self.features), "PYTHONUNBUFFERED": "1",
               "HOSTILE_PARENT": str(os.getpid()), **self.env}
        for _attempt in range(3):  # a free port can be taken by someone else before the server binds it
            self.port = free_port()
            front = ["--asgi", "tests.hostile.app:debug_app"] if self.front == "run" else ["--front", "aiohttp"]
            self.proc = Process([sys.executable, "-m", "sioserver", "tests.hostile.app:sio", "--port", str(self.port),
                                 *front], log_path=self.log_path, env=env, cwd=ROOT, ready=None,
                                name=f"hostile {self.name} ({self.front})")
            self.proc.start()
            proc = self.proc
            with contextlib.suppress(AssertionError):
                wait_until_sync(lambda p=proc: not p.alive or self._ping_sync(), timeout=10, what="the debug route")
            if proc.alive and self._ping_sync():
                return
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
        if proc is not None:
            proc.stop(signal.SIGINT, timeout=3)

    def ensure(self) -> None:
        """Started, alive and answering; restarted otherwise (a case before may have killed it)."""
        if self.proc is not None and self.proc.alive and self._ping_sync():
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
        return self.proc is not None and self.proc.alive

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
        seen: dict[str, Any] = {}

        async def gone() -> dict[str, Any] | None:
            seen.update(await self.session(sid))
            return dict(seen) if ((not seen["exists"]) if forgotten else seen["closed"]) else None

        return await wait_until(gone, timeout=timeout, interval=0.05, what=lambda: f"session {sid} still there: {seen}")

    async def get_parked(self, sid: str, timeout: float = 2.0) -> None:
        """Wait until a long-poll GET of session ``sid`` is parked on the server."""
        async def parked() -> bool:
            return bool((await self.session(sid)).get("get_parked"))

        await wait_until(parked, timeout=timeout, interval=0.01, what=f"no GET of session {sid} parked")

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
        records: list[dict[str, Any]] = []

        async def enough() -> bool:
            records[:] = await self.logs()
            return len([r for r in records if rx.search(f"{r['logger']}: {r['message']}")]) >= count

        with contextlib.suppress(AssertionError):  # too few is reported below, with the records
            await wait_until(enough, timeout=timeout, interval=0.05, what="")
        hits = [r for r in records if rx.search(f"{r['logger']}: {r['message']}")]
        if hits and len(hits) == count:
            # a duplicate would come right behind: one more round trip through the server's loop lets it show
            await self.state()
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
        seen: dict[str, Any] = {}

        async def check() -> dict[str, Any] | None:
            seen.clear()
            seen.update(await self.state())
            return dict(seen) if predicate(seen) else None

        return await wait_until(check, timeout=timeout, interval=0.05,
                                what=lambda: f"waiting for {what or predicate}: {json.dumps(seen)[:2000]}")

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
        self.running: dict[tuple[str, str], ServerProcess] = {}

    def get(self, name: str, front: str = "run") -> ServerProcess:
        server = self.running.get((name, front))
        if server is None:
            server = self.running[name, front] = ServerProcess(name, front=front)
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
    @pytest.fixture(params=FRONTS)
    async def fixture(servers: Servers, request: pytest.FixtureRequest) -> AsyncIterator[ServerProcess]:
        server = servers.get(name, request.param)
        await server.mark_logs()
        yield server

    return fixture


srv = _server_fixture("main")
fast_srv = _server_fixture("fast")
slow_srv = _server_fixture("slow")
drop_srv = _server_fixture("drop")
deflate_srv = _server_fixture("deflate")
msgpack_srv = _server_fixture("msgpack")
