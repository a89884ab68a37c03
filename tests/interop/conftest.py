"""Fixtures for the interop tests: Engine.IO echo servers in subprocesses and the Node scenario runner
(``interop_node_modules``, npm ci of this folder, is declared in tests/conftest.py).

The implementation under test comes from ``SIOSERVER_INTEROP_IMPL`` (``sioserver``, the default, or
``python-engineio``, the reference the harness itself is validated against).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests._support import node
from tests._support.procs import Process, flags, start_or_fail

HERE = Path(__file__).resolve().parent
ECHO_SERVER = HERE / "eio_echo_server.py"
SCENARIOS = HERE / "eio_client_scenarios.mjs"
IMPLS = ("sioserver", "python-engineio")


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


# ---------------------------------------------------------------------------------------------- servers


class EchoServer(Process):
    """A running eio_echo_server.py subprocess (``.url`` is ``http://127.0.0.1:<port>``)."""

    def __init__(self, argv: list[str], *, impl: str, options: dict[str, Any], log_path: Path) -> None:
        super().__init__(argv, log_path=log_path, name=f"eio_echo_server.py ({impl})")
        self.impl = impl
        self.options = options


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
        given = {"ping_interval": ping_interval, "ping_timeout": ping_timeout,
                 "max_http_buffer_size": max_http_buffer_size}
        options: dict[str, Any] = {"transports": transports}
        options.update((k, v) for k, v in given.items() if v is not None)
        argv = [sys.executable, str(ECHO_SERVER), "--port", "0", "--impl", impl, *flags(**options, verbose=verbose)]
        server = EchoServer(argv, impl=impl, options=options, log_path=logdir / f"server-{len(started)}.log")
        started.append(server)
        return start_or_fail(server)

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
def node_scenario(interop_node_modules: Path) -> NodeScenarioRunner:
    """``node_scenario(server, "upgrade")`` runs one scenario of eio_client_scenarios.mjs against ``server``
    and returns its parsed JSON result (failing the test if it hangs or prints no JSON)."""

    def run(server: EchoServer, scenario: str, *, timeout_s: float = 20.0, extra: list[str] | None = None) -> NodeRun:
        done = node.run(SCENARIOS, server.url, scenario, "--timeout-ms", str(int(timeout_s * 1000)), *(extra or []),
                        timeout=timeout_s + 10, context=server.context())
        results = done.results()
        if not results:
            pytest.fail(f"node scenario {scenario!r} printed no JSON result\n{done.context()}\n{server.context()}",
                        pytrace=False)
        return NodeRun(scenario, done.returncode, done.stdout, done.stderr, results[-1])

    return run
