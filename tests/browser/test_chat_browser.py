"""The browser chat demo (clients/browser) in real headless Chromium.

demo.py runs on a free port; tests/browser/chat_driver.mjs drives Debian's Chromium through
playwright-core (from clients/browser/node_modules) with two pages: Alice on the default transports
(polling, then the upgrade to websocket) and Bob on ``?transports=polling``. They chat both ways
(Alice's message carries HTML that must show as text), Bob's typing shows on Alice's page, then
Alice's connection drops and her page reconnects. Screenshots land in tests/browser/artifacts/.

Chromium missing fails the test under ``CI=true`` (``./scripts/test.sh`` installs it) and skips it elsewhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._support import node, tools
from tests._support.procs import Process, start_or_fail

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CLIENT = ROOT / "clients" / "browser"
DEMO = CLIENT / "demo.py"
DRIVER = HERE / "chat_driver.mjs"
ARTIFACTS = HERE / "artifacts"
READY = re.compile(r"^sioserver demo on (http://\S+)$", re.MULTILINE)


@contextlib.contextmanager
def run_demo(tmp_path: Path, front: str = "run") -> Iterator[Process]:
    """clients/browser/demo.py on a free port (``--port 0``) behind ``front``; ``.match[1]`` is its URL.
    ``fastapi:SERVER`` is the FastAPI app with ASGIApp under that ASGI server."""
    front, _, asgi_server = front.partition(":")
    extra = ["--asgi-server", asgi_server] if asgi_server else []
    demo = Process([sys.executable, "-u", str(DEMO), "--host", "127.0.0.1", "--port", "0", "--front", front, *extra],
                   log_path=tmp_path / "demo.log", cwd=ROOT, ready=READY)
    start_or_fail(demo, timeout=15)
    try:
        yield demo
    finally:
        demo.stop(timeout=10)


def _message(page: dict[str, Any], sender: str, own: bool) -> dict[str, Any]:
    found: list[dict[str, Any]] = [m for m in page["messages"] if m["from"] == sender and m["own"] is own]
    assert found, f"no {'own' if own else 'received'} message from {sender}: {page['messages']}"
    return found[0]


# sioserver.run's own HTTP/1.1 front, aiohttp, and a FastAPI app serving the page beside ASGIApp under uvicorn
# (its websockets and wsproto implementations) and hypercorn
@pytest.mark.parametrize("front", ["run", "aiohttp", "fastapi:uvicorn", "fastapi:uvicorn-wsproto", "fastapi:hypercorn"])
def test_two_browsers_chat_over_websocket_and_polling(browser_node_modules: Path, tmp_path: Path,
                                                      front: str) -> None:
    chromium = tools.chromium()
    for old in ARTIFACTS.glob("chat-*.png"):
        old.unlink()

    with run_demo(tmp_path, front) as demo:
        assert demo.match is not None
        proc = node.run(DRIVER, demo.match.group(1), str(ARTIFACTS), timeout=90, context=demo.context(),
                        env={**os.environ, "CHROMIUM": chromium})
    demo_log = demo.output()  # stopped (SIGTERM) by now
    found = proc.results()
    if not found:
        pytest.fail(f"the driver printed no result\n{proc.context()}\n--- demo.py ---\n{demo_log}", pytrace=False)
    result = found[-1]
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
    # uvicorn ends a graceful shutdown by raising the signal again with its default action (exit -15)
    clean = (0, -15) if front.startswith("fastapi:uvicorn") else (0,)
    assert demo.returncode in clean and "shutting down" in log, f"exit {demo.returncode}:\n{log}"
