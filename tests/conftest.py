"""Fixtures every suite may use; the code behind them is in tests/_support.

One fixture per ``node_modules`` folder (each ``npm ci``'d when missing or stale), the redis-server
binary, and a redis-server of the tests' own per module.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._support import node, tools
from tests._support.redis import RedisServer


@pytest.fixture(scope="session")
def interop_node_modules() -> Path:
    """tests/interop/node_modules: socket.io, socket.io-client, engine.io-client, the Redis adapter and emitter."""
    return node.install(node.INTEROP)


@pytest.fixture(scope="session")
def browser_node_modules() -> Path:
    """clients/browser/node_modules: socket.io-client's browser bundle and playwright-core."""
    return node.install(node.BROWSER)


@pytest.fixture(scope="session")
def bench_node_modules() -> Path:
    """bench/node_modules: ws and socket.io for the benchmark."""
    return node.install(node.BENCH)


@pytest.fixture(scope="session")
def redis_binary() -> str:
    return tools.redis_server()


@pytest.fixture(scope="module")
def redis_server(redis_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of the module's own on a free port (``kill()`` and ``start()`` it to test faults)."""
    server = RedisServer(redis_binary, tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


# ------------------------------------------------------------------------------------------ summary lines


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The lines tests recorded with ``record_property("summary", line)`` (the Autobahn results), at the end
    of the run, so that the figure a conformance test checked is seen, not only its pass."""
    lines = [
        str(value)
        for report in terminalreporter.getreports("passed") + terminalreporter.getreports("failed")
        for name, value in getattr(report, "user_properties", [])
        if name == "summary"
    ]
    if lines:
        terminalreporter.section("summary lines")
        for line in lines:
            terminalreporter.line(line)
