from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

INTEROP = Path(__file__).resolve().parents[1] / "interop"


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """The Node peers (tests/interop/package.json), installed by npm ci when missing."""
    modules = INTEROP / "node_modules"
    if not (modules / "socket.io-client").is_dir():
        run = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=INTEROP, capture_output=True, text=True,
                             check=False)
        if run.returncode != 0:
            pytest.fail(f"npm ci failed in {INTEROP}:\n{run.stdout}\n{run.stderr}")
    return modules
