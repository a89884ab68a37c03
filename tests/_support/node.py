"""Node peers: the ``node_modules`` folders the tests use (one fixture each, in tests/conftest.py) and a
runner for Node scripts that print JSON results.

The folders, each pinned by its package-lock.json:

- ``tests/interop``: socket.io 4.8, socket.io-client, engine.io-client, the msgpack parser, the Redis
  adapter and emitter (interop, adapters, clients, deploy);
- ``clients/browser``: socket.io-client's browser bundle and playwright-core (browser);
- ``bench``: ws and socket.io for the benchmark (bench).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from . import tools

ROOT = Path(__file__).resolve().parents[2]
INTEROP = ROOT / "tests" / "interop"
BROWSER = ROOT / "clients" / "browser"
BENCH = ROOT / "bench"


def _versions(lockfile: Path) -> dict[str, Any] | None:
    try:
        packages = json.loads(lockfile.read_text())["packages"]
    except (OSError, ValueError, KeyError):
        return None
    return {name: entry.get("version") for name, entry in packages.items() if name}


def fresh(folder: Path) -> bool:
    """npm ci writes node_modules/.package-lock.json: its versions equal the lockfile's when up to date."""
    want = _versions(folder / "package-lock.json")
    return want is not None and want == _versions(folder / "node_modules" / ".package-lock.json")


def install(folder: Path) -> Path:
    """``folder/node_modules``, installed by ``npm ci`` when missing or stale; an npm failure fails the test."""
    if not fresh(folder):
        npm = tools.npm()
        proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=folder,
                              capture_output=True, text=True, timeout=900, check=False)
        if proc.returncode != 0 or not fresh(folder):
            pytest.fail(f"npm ci in {folder} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}",
                        pytrace=False)
    tools.node()
    return folder / "node_modules"


@dataclass
class NodeRun:
    """One finished Node script: its output and the JSON objects it printed, one a line."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    def results(self) -> list[dict[str, Any]]:
        out = []
        for line in self.stdout.splitlines():
            if line.strip().startswith("{"):
                try:
                    value = json.loads(line)
                except ValueError:
                    continue
                if isinstance(value, dict):
                    out.append(value)
        return out

    def last(self) -> dict[str, Any]:
        """The last JSON line; fails the test when there is none."""
        found = self.results()
        if not found:
            pytest.fail(f"node printed no JSON result\n{self.context()}", pytrace=False)
        return found[-1]

    def context(self, limit: int = 4000) -> str:
        return (f"node: {' '.join(self.argv)} (exit {self.returncode})\n--- stdout ---\n{self.stdout[-limit:]}\n"
                f"--- stderr ---\n{self.stderr[-limit:]}")


def run(script: Path, *args: str, timeout: float, cwd: Path | None = None,
        env: Mapping[str, str] | None = None, context: str = "") -> NodeRun:
    """Runs ``node script args...`` to its end; a hang past ``timeout`` fails the test (with ``context``,
    e.g. the server's log). Node resolves packages upward from the script's folder, or through NODE_PATH."""
    argv = [tools.node(), str(script), *args]
    try:
        proc = subprocess.run(argv, cwd=cwd or script.parent, capture_output=True, text=True, timeout=timeout,
                              env=None if env is None else dict(env), check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"node {script.name} hung past {timeout} s\n{exc}\n{context}", pytrace=False)
    return NodeRun(argv, proc.returncode, proc.stdout, proc.stderr)


def argv(script: Path, *args: str) -> Sequence[str]:
    """The command line of a long-running Node peer (a server), for ``procs.Process``."""
    return [tools.node(), str(script), *args]
