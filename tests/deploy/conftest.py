"""The cluster of scripts/cluster.py (redis-server, sioserver workers, nginx in front), for the deployment
tests; and :func:`start_nodes`: separate sioserver processes sharing a RedisAdapter behind nginx
round-robin (or sticky), for the tests without stickiness. The workers are the chat demo (it serves socket.io-client's bundle from ``browser_node_modules``);
the test's Node client comes from ``interop_node_modules`` (both in tests/conftest.py)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests._support import tools
from tests._support.ports import accepts, free_port
from tests._support.procs import ROOT, Process, start_all, start_or_fail
from tests._support.redis import RedisServer
from tests._support.wait import wait_until_sync

HERE = Path(__file__).parent


@pytest.fixture
def cluster(interop_node_modules: Path, browser_node_modules: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """scripts/cluster.py with three workers; its ``READY {json}`` line (``url``, ``workers``, ``redis``)."""
    tools.nginx()
    tools.redis_server()
    proc = Process([sys.executable, str(ROOT / "scripts" / "cluster.py"), "--port", "0", "--workers", "3"],
                   log_path=tmp_path / "cluster.log", ready=re.compile(r"^READY (\{.*\})\s*$"), new_session=True)
    start_or_fail(proc, timeout=60)
    try:
        yield json.loads(proc.match.group(1) if proc.match else "{}")
    finally:
        proc.stop(timeout=15)


def cluster_script() -> Any:
    """scripts/cluster.py as a module (its nginx.conf)."""
    spec = importlib.util.spec_from_file_location("sioserver_cluster_script", ROOT / "scripts" / "cluster.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


NODE_READY = re.compile(r"sioserver listening on http://127\.0\.0\.1:(\d+)")


@dataclass
class Nodes:
    """Separate ``python -m sioserver workers_app:sio`` processes sharing a RedisAdapter, nginx in front."""

    url: str  # nginx's
    nodes: list[Process]
    nginx: Process

    def stop_nodes(self) -> str:
        """SIGTERM every node (their shutdown log lines come then); their output, all together."""
        for proc in self.nodes:
            proc.stop(timeout=15)
        return "\n".join(proc.output() for proc in self.nodes)


def start_nodes(redis_url: str, tmp_path: Path, count: int = 3, balance: str = "round-robin",
                extra_env: dict[str, str] | None = None, workers: int | None = None) -> Nodes:
    """``count`` processes (each a supervisor of ``workers`` when given: as many machines) and nginx."""
    nginx_binary = tools.nginx()
    env = dict(os.environ, WORKERS_TEST_REDIS=redis_url, WORKERS_TEST_MANAGER="", **(extra_env or {}))
    more = ["--workers", str(workers)] if workers else []
    nodes = [Process([sys.executable, "-m", "sioserver", "workers_app:sio", "--port", "0", *more], cwd=HERE, env=env,
                     log_path=tmp_path / f"node-{i}.log", ready=NODE_READY, new_session=True, name=f"node-{i}")
             for i in range(count)]
    start_all(nodes, timeout=30)
    workdir = tmp_path / "nginx"
    workdir.mkdir(exist_ok=True)
    port = free_port()
    conf = cluster_script().nginx_conf(workdir, [p.port for p in nodes], "127.0.0.1", port, balance)
    nginx = Process([nginx_binary, "-p", str(workdir), "-c", str(conf), "-g", "daemon off;"],
                    log_path=tmp_path / "nginx.log", ready=None, name="nginx")
    nginx.start()
    try:
        wait_until_sync(lambda: accepts(port) or not nginx.alive, timeout=15, what="nginx listening")
        assert nginx.alive, nginx.context()
    except BaseException:
        nginx.stop()
        for proc in nodes:
            proc.stop()
        raise
    return Nodes(f"http://127.0.0.1:{port}", nodes, nginx)


@pytest.fixture
def round_robin(interop_node_modules: Path, redis_server: RedisServer, tmp_path: Path) -> Iterator[Nodes]:
    """Three nodes sharing a RedisAdapter behind nginx round-robin (no ip_hash, no cookie)."""
    topology = start_nodes(redis_server.url, tmp_path)
    try:
        yield topology
    finally:
        topology.nginx.stop()
        for proc in topology.nodes:
            proc.stop(timeout=15)
