"""Three sioserver workers behind nginx (Debian's) with sticky sessions, fanned out through Redis.

The official socket.io-client, through nginx, with ``transports: ["polling"]`` and with the default
transports (which must upgrade), receives the broadcasts sent from every worker exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.interop


@pytest.fixture
def cluster(node_modules: Any) -> Iterator[dict[str, Any]]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "cluster.py"), "--port", "0", "--workers", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY "):
        proc.kill()
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"cluster.py did not start: {line!r}\n{err}")
    try:
        yield json.loads(line[len("READY "):])
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_clients_through_nginx_get_broadcasts_from_every_worker(cluster: dict[str, Any]) -> None:
    run = subprocess.run(
        ["node", str(Path(__file__).with_name("cluster_clients.mjs")), cluster["url"], *cluster["workers"]],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert run.stdout.strip(), run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["ok"], result
    assert result["checks"] == {
        "upgraded": True,
        "polling_stayed": True,
        "polling_got_each_once": True,
        "upgrading_got_each_once": True,
    }
