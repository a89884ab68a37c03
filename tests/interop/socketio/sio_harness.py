"""Harness of the Socket.IO interop tests: sio_test_server.py subprocesses and the Node scenario runner.

A plain module (not the conftest) so the test modules can import it by a name no other directory uses.
No ``__init__.py`` in this directory (tests/interop has none either): a package named ``socketio`` on ``sys.path``
would shadow python-socketio, the second peer of test_socketio_python.py.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
SERVER_SCRIPT = HERE / "sio_test_server.py"
SCENARIOS_SCRIPT = HERE / "sio_client_scenarios.mjs"
READY_TIMEOUT = 20.0


@dataclass
class SioServer:
    """A running sio_test_server.py subprocess."""

    url: str
    port: int
    argv: list[str]
    proc: subprocess.Popen[bytes]
    stderr_path: Path
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def context(self, limit: int = 6000) -> str:
        """How the server was started and what it logged, for failure messages."""
        log = self.stderr()
        if len(log) > limit:
            log = "[…]\n" + log[-limit:]
        return f"server: {' '.join(self.argv)}\n--- server stderr ---\n{log}"

    def wait_exit(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if self.wait_exit(3) is None:
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


class ServerPool:
    """Starts sio_test_server.py processes: ``shared(**options)`` reuses one per set of options, ``fresh(...)``
    always starts a new one (for scenarios that kill or stop it). Everything is stopped by ``close()``."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.started: list[SioServer] = []
        self._shared: dict[str, SioServer] = {}

    def shared(self, **options: Any) -> SioServer:
        key = json.dumps(options, sort_keys=True)
        server = self._shared.get(key)
        if server is None or server.proc.poll() is not None:
            server = self._shared[key] = self.fresh(**options)
        return server

    def fresh(
        self,
        *,
        serializer: str = "default",
        transports: str = "polling,websocket",
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
        connect_timeout: float | None = None,
    ) -> SioServer:
        argv = [
            sys.executable,
            str(SERVER_SCRIPT),
            "--port",
            "0",
            "--serializer",
            serializer,
            "--transports",
            transports,
        ]
        options: dict[str, Any] = {"serializer": serializer, "transports": transports}
        if ping_interval is not None:
            argv += ["--ping-interval", str(ping_interval)]
            options["ping_interval"] = ping_interval
        if ping_timeout is not None:
            argv += ["--ping-timeout", str(ping_timeout)]
            options["ping_timeout"] = ping_timeout
        if connect_timeout is not None:
            argv += ["--connect-timeout", str(connect_timeout)]
            options["connect_timeout"] = connect_timeout
        stderr_path = self.logdir / f"sio-server-{len(self.started)}.stderr"
        with stderr_path.open("wb") as err:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
        port = _read_ready(proc, time.monotonic() + READY_TIMEOUT)
        server = SioServer(f"http://127.0.0.1:{port}", port or 0, argv, proc, stderr_path, options)
        self.started.append(server)
        if port is None:
            server.stop()
            pytest.fail(
                f"sio_test_server.py did not print READY within {READY_TIMEOUT} s (exit {proc.returncode})\n"
                f"{server.context()}",
                pytrace=False,
            )
        return server

    def close(self) -> None:
        for server in self.started:
            server.stop()


# ---------------------------------------------------------------------------------------------- node


@dataclass
class NodeRun:
    """One sio_client_scenarios.mjs process: one parsed JSON result per scenario."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    results: dict[str, dict[str, Any]]

    def context(self, limit: int = 3000) -> str:
        return f"node: {' '.join(self.argv)} (exit {self.returncode})\n--- node stderr ---\n{self.stderr[-limit:]}"


def run_node_scenarios(
    node_modules: Path,
    server: SioServer,
    scenarios: list[str],
    *,
    parser: str = "default",
    scenario_timeout_s: float = 10.0,
    pass_pid: bool = False,
) -> NodeRun:
    """Runs ``scenarios`` in sequence in one Node process against ``server``; fails the test if Node hangs past
    its own watchdog or a scenario printed no result."""
    assert node_modules.is_dir()
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: the interop tests need Node 18+", pytrace=False)
    argv = [
        node,
        str(SCENARIOS_SCRIPT),
        server.url,
        ",".join(scenarios),
        "--parser",
        parser,
        "--timeout-ms",
        str(int(scenario_timeout_s * 1000)),
    ]
    if pass_pid:
        argv += ["--server-pid", str(server.pid)]
    limit = scenario_timeout_s * len(scenarios) + 15
    try:
        # Node resolves packages upward from the script: tests/interop/node_modules
        proc = subprocess.run(argv, cwd=HERE, capture_output=True, text=True, timeout=limit, check=False)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"node scenarios {scenarios} hung past {limit} s\n{e}\n{server.context()}", pytrace=False)
    results: dict[str, dict[str, Any]] = {}
    for line in proc.stdout.splitlines():
        if line.strip():
            try:
                out = json.loads(line)
            except ValueError:
                continue
            results[str(out.get("scenario"))] = out
    run = NodeRun(argv, proc.returncode, proc.stdout, proc.stderr, results)
    missing = [s for s in scenarios if s not in results]
    if missing:
        pytest.fail(
            f"node printed no result for {missing}\n--- stdout ---\n{proc.stdout[-4000:]}\n"
            f"{run.context()}\n{server.context()}",
            pytrace=False,
        )
    return run
