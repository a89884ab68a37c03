"""The official Admin UI's own build (``ui/dist`` of @socket.io/admin-ui 0.5.1) against sioserver.

The build is served by a local static server; headless Chromium loads it and logs in (a wrong
password first, which it must refuse), then its Servers and Sockets pages must list the servers and
the sockets that socket.io-client connected: one sioserver process, then two sharing a real
redis-server (the UI is connected to the first only). Screenshots: tests/browser/artifacts/admin-*.png.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._support import node, tools
from tests._support.procs import Process, start_or_fail
from tests._support.redis import RedisServer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
APP = HERE / "admin_app.py"
DRIVER = HERE / "admin_ui_driver.mjs"
ARTIFACTS = HERE / "artifacts"
UI_DIST = ROOT / "tests" / "interop" / "node_modules" / "@socket.io" / "admin-ui" / "ui" / "dist"
PASSWORD = "correct-horse"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def ui_url(interop_node_modules: Path) -> Iterator[str]:
    """The UI's static build on a free port."""
    assert (UI_DIST / "index.html").is_file(), f"no Admin UI build in {UI_DIST}"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(UI_DIST)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@contextlib.contextmanager
def app_process(tmp_path: Path, ui_url: str, server_id: str, redis: str | None = None) -> Iterator[Process]:
    argv = [sys.executable, "-u", str(APP), "--ui-origin", ui_url, "--password", PASSWORD, "--server-id", server_id]
    if redis:
        argv += ["--redis", redis]
    proc = start_or_fail(Process(argv, log_path=tmp_path / f"{server_id}.log", cwd=ROOT, name=server_id))
    try:
        yield proc
    finally:
        proc.stop(timeout=10)


def drive(ui_url: str, servers: list[Process], name: str) -> dict[str, Any]:
    for old in ARTIFACTS.glob(f"{name}-*.png"):
        old.unlink()
    targets = [{"url": proc.url, "id": proc.name} for proc in servers]
    logs = "\n".join(proc.context() for proc in servers)
    run = node.run(DRIVER, ui_url, json.dumps(targets), str(ARTIFACTS), name, PASSWORD, timeout=120,
                   env={**os.environ, "CHROMIUM": tools.chromium()}, context=logs)
    found = run.results()
    if not found:
        pytest.fail(f"the driver printed no result\n{run.context()}\n{logs}", pytrace=False)
    result = found[-1]
    if not result.get("ok"):
        pytest.fail(f"browser step {result.get('step')!r} failed: {result.get('error')}\n"
                    f"page log: {result.get('log')}\n{run.context()}\n{logs}", pytrace=False)
    for shot in ("refused", "servers", "sockets", "dashboard"):
        assert (ARTIFACTS / f"{name}-{shot}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return result


def check(result: dict[str, Any], server_ids: list[str]) -> None:
    assert result["refusedShown"]
    servers_text = result["serversText"]
    for server_id in server_ids:
        assert server_id in servers_text
    sockets_text = result["socketsText"]
    assert len(result["clients"]) == 2 * len(server_ids)
    for client in result["clients"]:
        assert client["id"] in sockets_text
    # every socket is shown on websocket (the "/" clients upgraded before the UI looked)
    for client in result["clients"]:
        assert client["row"] == f"{client['id']} 127.0.0.1 WebSocket", client
    assert result["log"] == [], result["log"]


def test_admin_ui_shows_one_server_and_its_sockets(ui_url: str, browser_node_modules: Path, tmp_path: Path) -> None:
    with app_process(tmp_path, ui_url, "solo-node") as solo:
        result = drive(ui_url, [solo], "admin-solo")
    check(result, ["solo-node"])


def test_admin_ui_shows_both_nodes_of_a_redis_cluster(ui_url: str, browser_node_modules: Path, redis_binary: str,
                                                      tmp_path: Path) -> None:
    redis = RedisServer(redis_binary, tmp_path)
    redis.start()
    try:
        with app_process(tmp_path, ui_url, "node-a", redis.url) as node_a, \
                app_process(tmp_path, ui_url, "node-b", redis.url) as node_b:
            result = drive(ui_url, [node_a, node_b], "admin-redis")
    finally:
        redis.stop()
    check(result, ["node-a", "node-b"])
