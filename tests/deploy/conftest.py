"""The cluster of scripts/cluster.py (redis-server, sioserver workers, nginx in front), for the deployment
tests. The workers are the chat demo (it serves socket.io-client's bundle from ``browser_node_modules``);
the test's Node client comes from ``interop_node_modules`` (both in tests/conftest.py)."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._support import tools
from tests._support.procs import ROOT, Process, start_or_fail


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
