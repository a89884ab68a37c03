"""A fast subset of Autobahn|Testsuite's fuzzingserver against sioclient's WebSocket layer.

The full run (all 517 cases, about 15 minutes) is ``scripts/autobahn-client.sh``.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.clients.autobahn_driver import run

ROOT = Path(__file__).resolve().parents[2]
WSTEST = ROOT / ".tools" / "bin" / "wstest"
# 1.*: text and binary of every length class; 2.*: pings and pongs; 3.*, 4.*: reserved bits and opcodes
# fail the connection; 5.*: fragmentation with control frames in between; 6.*: UTF-8, validated as it
# arrives, failing fast (6.4.1 takes 1 s); 7.*: closing handshake and close codes; 12.*, 13.*:
# permessage-deflate with its parameters.
CASES = [
    "1.1.*",
    "1.2.1",
    "1.2.8",
    "2.*",
    "3.*",
    "4.*",
    "5.1",
    "5.2",
    "5.3",
    "5.6",
    "5.9",
    "5.15",
    "5.16",
    "5.18",
    "6.1.*",
    "6.3.*",
    "6.4.1",
    "6.12.1",
    "7.1.*",
    "7.3.*",
    "7.5.1",
    "7.9.*",
    "10.1.1",
    "12.1.5",
    "13.3.1",
    "13.5.2",
]


@pytest.mark.slow
async def test_fuzzingserver_subset(tmp_path: Path) -> None:
    if not os.access(WSTEST, os.X_OK):
        pytest.skip("wstest not installed: scripts/autobahn-client.sh installs it")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "url": f"ws://127.0.0.1:{port}",
                "outdir": str(tmp_path),
                "cases": CASES,
                "exclude-cases": [],
                "exclude-agent-cases": {},
            }
        )
    )
    log = (tmp_path / "wstest.log").open("wb")
    proc = subprocess.Popen(
        [str(WSTEST), "-m", "fuzzingserver", "-s", str(spec), "-u", "0"],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "wstest.log").read_text()
                await asyncio.sleep(0.05)
        count = await run(f"ws://127.0.0.1:{port}", "sioclient-pytest")
    finally:
        proc.terminate()
        proc.wait(10)
    index = json.loads((tmp_path / "index.json").read_text())["sioclient-pytest"]
    assert len(index) == count > 70
    bad = {
        case: (r["behavior"], r["behaviorClose"])
        for case, r in index.items()
        if r["behavior"] not in ("OK", "INFORMATIONAL") or r["behaviorClose"] not in ("OK", "INFORMATIONAL")
    }
    assert not bad, bad
