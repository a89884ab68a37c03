"""A fast subset of Autobahn|Testsuite's fuzzingserver against sioclient's WebSocket layer.

The full run (all 517 cases, about 15 minutes) is ``scripts/autobahn-client.sh``. wstest comes from
``scripts/install-autobahn.sh`` (``./scripts/test.sh`` runs it); without it the test fails under ``CI=true``
and is skipped elsewhere.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests._support import tools
from tests._support.ports import accepts, free_port
from tests._support.wait import wait_until
from tests.clients.autobahn_driver import run

ROOT = Path(__file__).resolve().parents[2]
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
async def test_fuzzingserver_subset(tmp_path: Path, record_property: pytest.RecordProperty) -> None:
    wstest = tools.wstest()
    port = free_port()
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
        [wstest, "-m", "fuzzingserver", "-s", str(spec), "-u", "0"],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        await wait_until(lambda: proc.poll() is not None or accepts(port), timeout=20,
                         what=lambda: f"wstest listening on {port}\n{(tmp_path / 'wstest.log').read_text()}")
        assert proc.poll() is None, (tmp_path / "wstest.log").read_text()
        count = await run(f"ws://127.0.0.1:{port}", "sioclient-pytest")
    finally:
        proc.terminate()
        proc.wait(10)
    summary = subprocess.run([sys.executable, str(ROOT / "scripts" / "autobahn_summary.py"), str(tmp_path / "index.json")],
                             capture_output=True, text=True, check=False).stdout.strip().splitlines()
    record_property("summary", f"Autobahn fuzzingserver (client side, fast set): {summary[-1] if summary else '?'}")
    index = json.loads((tmp_path / "index.json").read_text())["sioclient-pytest"]
    assert len(index) == count > 70
    bad = {
        case: (r["behavior"], r["behaviorClose"])
        for case, r in index.items()
        if r["behavior"] not in ("OK", "INFORMATIONAL") or r["behaviorClose"] not in ("OK", "INFORMATIONAL")
    }
    assert not bad, bad
