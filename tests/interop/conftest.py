"""Fixtures for the interop tests: the Node peers (npm ci) and Engine.IO echo servers in subprocesses.

The implementation under test comes from ``SIOSERVER_INTEROP_IMPL`` (``sioserver``, the default, or
``python-engineio``, the reference the harness itself is validated against).
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
ECHO_SERVER = HERE / "eio_echo_server.py"
SCENARIOS = HERE / "eio_client_scenarios.mjs"
NODE_MODULES = HERE / "node_modules"
LOCKFILE = HERE / "package-lock.json"
IMPLS = ("sioserver", "python-engineio")
READY_TIMEOUT = 20.0


def interop_impl() -> str:
    impl = os.environ.get("SIOSERVER_INTEROP_IMPL", "sioserver").strip() or "sioserver"
    if impl not in IMPLS:
        raise pytest.UsageError(f"SIOSERVER_INTEROP_IMPL={impl!r}: expected one of {IMPLS}")
    return impl


@pytest.fixture(scope="session")
def impl() -> str:
    """The Engine.IO server implementation under test."""
    return interop_impl()


def pytest_report_header(config: pytest.Config) -> str:
    return f"interop impl (SIOSERVER_INTEROP_IMPL): {os.environ.get('SIOSERVER_INTEROP_IMPL', 'sioserver')}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).resolve().parent == HERE:
            item.add_marker(pytest.mark.interop)


# ---------------------------------------------------------------------------------------------- npm


def _node_modules_fresh() -> bool:
    """npm ci writes node_modules/.package-lock.json; it matches the lockfile's packages when up to date."""
    hidden = NODE_MODULES / ".package-lock.json"
    if not hidden.is_file() or not LOCKFILE.is_file():
        return False
    try:
        want = json.loads(LOCKFILE.read_text())["packages"]
        have = json.loads(hidden.read_text())["packages"]
    except (OSError, ValueError, KeyError):
        return False
    want_versions = {k: v.get("version") for k, v in want.items() if k}
    have_versions = {k: v.get("version") for k, v in have.items() if k}
    return want_versions == have_versions


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """tests/interop/node_modules, installed by ``npm ci`` when missing or stale; an npm failure fails."""
    if not _node_modules_fresh():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is not on PATH: the interop tests need Node 18+ and npm", pytrace=False)
        proc = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if proc.returncode != 0 or not _node_modules_fresh():
            pytest.fail(
                f"npm ci in {HERE} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}",
                pytrace=False,
            )
    return NODE_MODULES


# ---------------------------------------------------------------------------------------------- servers


@dataclass
class EchoServer:
    """A running eio_echo_server.py subprocess."""

    url: str
    port: int
    impl: str
    argv: list[str]
    proc: subprocess.Popen[bytes]
    stderr_path: Path
    options: dict[str, Any] = field(default_factory=dict)

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def context(self, limit: int = 6000) -> str:
        """Everything worth attaching to a failure: how the server was started and what it logged."""
        log = self.stderr()
        if len(log) > limit:
            log = "[…]\n" + log[-limit:]
        return f"server ({self.impl}): {' '.join(self.argv)}\n--- server stderr ---\n{log}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=3)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _read_ready(proc: subprocess.Popen[bytes], deadline: float) -> int | None:
    """Reads stdout until ``READY <port>``; None if the process exits or the deadline passes."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
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


EchoServerFactory = Callable[..., EchoServer]


@pytest.fixture
def eio_server(impl: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EchoServerFactory]:
    """Factory: ``eio_server(ping_interval=0.3, max_http_buffer_size=1000, transports="polling,websocket")``
    starts an echo server on a free port and returns it (``.url`` is ``http://127.0.0.1:<port>``); every
    server started is stopped at teardown."""
    started: list[EchoServer] = []
    logdir = tmp_path_factory.mktemp("eio-server")

    def start(
        *,
        transports: str = "polling,websocket",
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
        max_http_buffer_size: int | None = None,
        verbose: bool = False,
    ) -> EchoServer:
        argv = [sys.executable, str(ECHO_SERVER), "--port", "0", "--impl", impl, "--transports", transports]
        options: dict[str, Any] = {"transports": transports}
        if ping_interval is not None:
            argv += ["--ping-interval", str(ping_interval)]
            options["ping_interval"] = ping_interval
        if ping_timeout is not None:
            argv += ["--ping-timeout", str(ping_timeout)]
            options["ping_timeout"] = ping_timeout
        if max_http_buffer_size is not None:
            argv += ["--max-http-buffer-size", str(max_http_buffer_size)]
            options["max_http_buffer_size"] = max_http_buffer_size
        if verbose:
            argv.append("--verbose")
        stderr_path = logdir / f"server-{len(started)}.stderr"
        with stderr_path.open("wb") as err:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
        port = _read_ready(proc, time.monotonic() + READY_TIMEOUT)
        server = EchoServer(
            url=f"http://127.0.0.1:{port}",
            port=port or 0,
            impl=impl,
            argv=argv,
            proc=proc,
            stderr_path=stderr_path,
            options=options,
        )
        started.append(server)
        if port is None:
            server.stop()
            pytest.fail(
                f"echo server did not print READY within {READY_TIMEOUT} s "
                f"(exit code {proc.returncode})\n{server.context()}",
                pytrace=False,
            )
        return server

    yield start
    for server in started:
        server.stop()


# ---------------------------------------------------------------------------------------------- node


@dataclass
class NodeRun:
    """The outcome of one eio_client_scenarios.mjs run."""

    scenario: str
    returncode: int
    stdout: str
    stderr: str
    result: dict[str, Any]

    @property
    def failures(self) -> list[dict[str, Any]]:
        return list(self.result.get("failures", []))

    @property
    def cases(self) -> dict[str, Any]:
        return dict(self.result.get("cases", {}))


NodeScenarioRunner = Callable[..., NodeRun]


@pytest.fixture
def node_scenario(node_modules: Path) -> NodeScenarioRunner:
    """``node_scenario(server, "upgrade")`` runs one scenario of eio_client_scenarios.mjs against ``server``
    and returns its parsed JSON result (failing the test if it hangs or prints no JSON)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: the interop tests need Node 18+", pytrace=False)

    def run(server: EchoServer, scenario: str, *, timeout_s: float = 20.0, extra: list[str] | None = None) -> NodeRun:
        return _run_node_scenario(node, server, scenario, timeout_s=timeout_s, extra=extra)

    return run


def _run_node_scenario(
    node: str, server: EchoServer, scenario: str, *, timeout_s: float, extra: list[str] | None
) -> NodeRun:
    argv = [
        node,
        str(SCENARIOS),
        server.url,
        scenario,
        "--timeout-ms",
        str(int(timeout_s * 1000)),
        *(extra or []),
    ]
    try:
        proc = subprocess.run(argv, cwd=HERE, capture_output=True, text=True, timeout=timeout_s + 10, check=False)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"node scenario {scenario!r} hung past its watchdog\n{e}\n{server.context()}", pytrace=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        pytest.fail(
            f"node scenario {scenario!r} printed no JSON result (exit {proc.returncode})\n"
            f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}\n"
            f"{server.context()}",
            pytrace=False,
        )
    return NodeRun(scenario, proc.returncode, proc.stdout, proc.stderr, result)
