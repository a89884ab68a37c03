"""The browser chat demo (clients/browser) in real headless Chromium.

demo.py runs on a free port; tests/browser/chat_driver.mjs drives Debian's Chromium through
playwright-core (from clients/browser/node_modules) with two pages: Alice on the default transports
(polling, then the upgrade to websocket) and Bob on ``?transports=polling``. They chat both ways
(Alice's message carries HTML that must show as text), Bob's typing shows on Alice's page, then
Alice's connection drops and her page reconnects. Screenshots land in tests/browser/artifacts/.

Chromium missing is a failure, not a skip: ``./scripts/test.sh`` installs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CLIENT = ROOT / "clients" / "browser"
DEMO = CLIENT / "demo.py"
DRIVER = HERE / "chat_driver.mjs"
ARTIFACTS = HERE / "artifacts"
READY = re.compile(r"^sioserver demo on (http://\S+)$", re.MULTILINE)


def find_chromium() -> str:
    """Debian's Chromium; its absence fails the test (the test command installs it)."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(path, os.X_OK):
        pytest.fail(
            "Chromium is not installed: the browser tests need Debian's chromium (/usr/bin/chromium). "
            "Run ./scripts/test.sh (it installs it) or `apt-get install -y chromium`.",
            pytrace=False,
        )
    return path


def _node_modules_fresh() -> bool:
    """npm ci writes node_modules/.package-lock.json; its versions match the lockfile when up to date."""
    try:
        want = json.loads((CLIENT / "package-lock.json").read_text())["packages"]
        have = json.loads((CLIENT / "node_modules" / ".package-lock.json").read_text())["packages"]
    except (OSError, ValueError, KeyError):
        return False
    return {k: v.get("version") for k, v in want.items() if k} == {k: v.get("version") for k, v in have.items() if k}


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """clients/browser/node_modules (socket.io-client's bundle, playwright-core), npm ci'd when missing or stale."""
    if not _node_modules_fresh():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is not on PATH: the browser tests need Node 18+ and npm", pytrace=False)
        proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=CLIENT, capture_output=True, text=True,
                              timeout=600, check=False)
        if proc.returncode != 0 or not _node_modules_fresh():
            pytest.fail(f"npm ci in {CLIENT} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}",
                        pytrace=False)
    return CLIENT / "node_modules"


@dataclass
class Demo:
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def run_demo(tmp_path: Path) -> Iterator[Demo]:
    """clients/browser/demo.py on a free port (``--port 0``), its stdout in a file."""
    log_path = tmp_path / "demo.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-u", str(DEMO), "--host", "127.0.0.1", "--port", "0"],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT)
    try:
        deadline = time.monotonic() + 15
        match = None
        while match is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            match = READY.search(log_path.read_text(errors="replace"))
        if match is None:
            pytest.fail(f"demo.py did not start (exit {proc.poll()}):\n{log_path.read_text(errors='replace')}",
                        pytrace=False)
        yield Demo(match.group(1), proc, log_path)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def _message(page: dict[str, Any], sender: str, own: bool) -> dict[str, Any]:
    found: list[dict[str, Any]] = [m for m in page["messages"] if m["from"] == sender and m["own"] is own]
    assert found, f"no {'own' if own else 'received'} message from {sender}: {page['messages']}"
    return found[0]


def test_two_browsers_chat_over_websocket_and_polling(node_modules: Path, tmp_path: Path) -> None:
    chromium = find_chromium()
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: the browser test drives Chromium with playwright-core", pytrace=False)
    for old in ARTIFACTS.glob("chat-*.png"):
        old.unlink()

    with run_demo(tmp_path) as demo:
        proc = subprocess.run([node, str(DRIVER), demo.url, str(ARTIFACTS)], capture_output=True, text=True,
                              timeout=90, check=False, env={**os.environ, "CHROMIUM": chromium})
    demo_log = demo.log()  # stopped (SIGTERM) by now
    lines = proc.stdout.strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, ValueError):
        pytest.fail(f"the driver printed no result (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}\n"
                    f"--- demo.py ---\n{demo_log}", pytrace=False)
    if not result.get("ok"):
        pytest.fail(f"browser step {result.get('step')!r} failed: {result.get('error')}\n"
                    f"page log: {json.dumps(result.get('log'), indent=1)}\n"
                    f"alice: {json.dumps(result.get('alice'))}\nbob: {json.dumps(result.get('bob'))}\n"
                    f"stderr: {proc.stderr}\n--- demo.py ---\n{demo_log}", pytrace=False)

    alice, bob, said = result["alice"], result["bob"], result["expected"]

    # transports: the default client upgraded to websocket, the polling-only one never did
    assert (alice["engineTransport"], alice["shownTransport"]) == ("websocket", "websocket")
    assert (bob["engineTransport"], bob["shownTransport"]) == ("polling", "polling")
    for page in (alice, bob):
        assert page["status"] == "connected"
        assert page["online"] == "2"
        assert page["names"] == "Here: Alice, Bob"

    # both ways, each sender's message acked as delivered
    for page, me, other in ((alice, "Alice", "Bob"), (bob, "Bob", "Alice")):
        mine = _message(page, me, own=True)
        assert mine["text"] == said[me.lower()]
        assert mine["status"] == "delivered"
        assert mine["meta"].startswith("✓ delivered")
        assert _message(page, other, own=False)["text"] == said[other.lower()]
    # the HTML in Alice's message is text on both pages: no element inside any bubble, no script ran
    assert all(m["bubbleChildren"] == 0 for m in alice["messages"] + bob["messages"])
    assert not alice["alerted"] and not bob["alerted"]
    assert (alice["scripts"], bob["scripts"]) == (2, 2)

    assert result["typingShown"] == "Bob is typing…"

    # the reconnect: Alice's page showed the state, Bob saw her leave and come back, and her new
    # connection receives broadcasts (no duplicates from the history her join ack replays)
    assert result["aliceStates"][0] == "connected" and "reconnecting" in result["aliceStates"]
    assert result["aliceStates"][-1] == "connected"
    assert "1" in result["bobCounts"] and result["bobCounts"][-1] == "2"
    assert [m["text"] for m in alice["messages"]] == [said["alice"], said["bob"], said["afterReconnect"]]
    assert result["log"] == [], f"browser console errors / failed requests: {result['log']}"

    for name in ("alice", "bob", "alice-after-reconnect", "bob-after-reconnect"):
        shot = ARTIFACTS / f"chat-{name}.png"
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", shot

    log = demo_log
    assert "chat #1 from 'Alice'" in log and "chat #2 from 'Bob'" in log, log
    assert "Traceback" not in log and " ERROR " not in log, log
    assert demo.proc.returncode == 0 and "shutting down" in log, f"exit {demo.proc.returncode}:\n{log}"
