"""Harness of the Socket.IO interop tests: sio_test_server.py subprocesses and the Node scenario runner.

A plain module (not the conftest) so the test modules can import it by a name no other directory uses.
No ``__init__.py`` in this directory (tests/interop has none either): a package named ``socketio`` on ``sys.path``
would shadow python-socketio, the second peer of test_socketio_python.py.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests._support import node
from tests._support.procs import Process, flags, start_or_fail

#: What sio_test_server.py's ``binary-emit`` sends (its SERVER_BINARY), as a client decodes it: bytes.
SERVER_BINARY: dict[str, Any] = {
    "bytes": b"\x00\x01\x02\xfe\xff",
    "nested": [b"xyz", {"deep": bytes(range(256))}],
    "empty": b"",
    "text": "not binary",
}

HERE = Path(__file__).resolve().parent
SERVER_SCRIPT = HERE / "sio_test_server.py"
SCENARIOS_SCRIPT = HERE / "sio_client_scenarios.mjs"


class SioServer(Process):
    """A running sio_test_server.py subprocess."""

    def __init__(self, argv: list[str], *, options: dict[str, Any], log_path: Path) -> None:
        super().__init__(argv, log_path=log_path, name="sio_test_server.py")
        self.options = options


class ServerPool:
    """Starts sio_test_server.py processes: ``shared(**options)`` reuses one per set of options, ``fresh(...)``
    always starts a new one (for scenarios that kill or stop it). Everything is stopped by ``close()``."""

    def __init__(self, logdir: Path, front: str = "aiohttp") -> None:
        self.logdir = logdir
        #: how the servers serve: ``aiohttp`` attach, or ``sioserver.ASGIApp`` under an ASGI server
        #: (``uvicorn``, ``uvicorn-wsproto``, ``hypercorn``: tests/_support/asgi.py)
        self.front = front
        self.started: list[SioServer] = []
        self._shared: dict[str, SioServer] = {}

    def shared(self, **options: Any) -> SioServer:
        key = json.dumps(options, sort_keys=True)
        server = self._shared.get(key)
        if server is None or not server.alive:
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
        given = {"ping_interval": ping_interval, "ping_timeout": ping_timeout, "connect_timeout": connect_timeout}
        options: dict[str, Any] = {"serializer": serializer, "transports": transports, "front": self.front}
        options.update((k, v) for k, v in given.items() if v is not None)
        argv = [sys.executable, str(SERVER_SCRIPT), "--port", "0", *flags(**options)]
        server = SioServer(argv, options=options, log_path=self.logdir / f"sio-server-{len(self.started)}.log")
        self.started.append(server)
        return start_or_fail(server)

    def close(self) -> None:
        for server in self.started:
            server.stop()


# ---------------------------------------------------------------------------------------------- node


@dataclass
class NodeRun:
    """One sio_client_scenarios.mjs process: one parsed JSON result per scenario."""

    process: node.NodeRun
    results: dict[str, dict[str, Any]]

    def context(self) -> str:
        return self.process.context()


def run_node_scenarios(
    server: SioServer,
    scenarios: list[str],
    *,
    parser: str = "default",
    scenario_timeout_s: float = 10.0,
    pass_pid: bool = False,
) -> NodeRun:
    """Runs ``scenarios`` in sequence in one Node process against ``server``; fails the test if Node hangs past
    its own watchdog or a scenario printed no result. Needs the ``interop_node_modules`` fixture."""
    args = [server.url, ",".join(scenarios), "--parser", parser, "--timeout-ms", str(int(scenario_timeout_s * 1000))]
    if pass_pid:
        args += ["--server-pid", str(server.pid)]
    limit = scenario_timeout_s * len(scenarios) + 15
    done = node.run(SCENARIOS_SCRIPT, *args, timeout=limit, context=server.context())
    results = {str(out.get("scenario")): out for out in done.results()}
    missing = [s for s in scenarios if s not in results]
    if missing:
        pytest.fail(f"node printed no result for {missing}\n{done.context()}\n{server.context()}", pytrace=False)
    return NodeRun(done, results)
