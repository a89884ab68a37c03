"""Autobahn|Testsuite's fuzzingclient against sioserver's WebSocket layer (scripts/autobahn.sh, the fast set).

The full run (all 517 cases, permessage-deflate included, ~8 minutes) is ``./scripts/autobahn.sh``.
wstest comes from ``scripts/install-autobahn.sh`` (``./scripts/test.sh`` runs it); without it the test fails
under ``CI=true`` and is skipped elsewhere.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests._support import tools

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = re.compile(r"autobahn: (\d+) ok, (\d+) non-strict, (\d+) failed, (\d+) unimplemented of (\d+)")


@pytest.mark.slow
@pytest.mark.parametrize("front", ["aiohttp", "run"])  # aiohttp's upgrade, sioserver.run's own front
def test_autobahn_fast_set(tmp_path: Path, record_property: pytest.RecordProperty, front: str) -> None:
    tools.wstest()
    env = {**os.environ, "AUTOBAHN_FAST": "1", "AUTOBAHN_OUTDIR": str(tmp_path / "reports"),
           "WS_ECHO_ARGS": f"--front {front}"}
    proc = subprocess.run(
        [str(ROOT / "scripts" / "autobahn.sh")], env=env, capture_output=True, text=True, timeout=900, check=False
    )
    output = proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    match = SUMMARY.fullmatch(lines[-1]) if lines else None
    assert match, output
    record_property("summary", f"Autobahn fuzzingclient (server side, fast set, {front} front): {lines[-1]}")
    ok, non_strict, failed, unimplemented, total = map(int, match.groups())
    assert failed == 0, output
    assert non_strict == 0, output
    assert unimplemented == 0, output
    assert total == 247 and ok == 244, output  # the other 3 are INFORMATIONAL (7.1.6, 7.13.1, 7.13.2)
    assert proc.returncode == 0, output
