"""``python -m sioserver app:sio --workers 3`` on one port, no Redis: the official socket.io-client 4.8
(20 polling-only clients, 20 with the default transports) gets every chat exactly once, whichever worker
each request lands on (the kernel spreads connections over the workers' SO_REUSEPORT sockets: a
session's requests reach other workers and are forwarded to its owner). A killed worker is replaced and
its clients reconnect; SIGTERM drains every worker and the supervisor exits 0."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests._support import node
from tests._support.procs import Process, start_or_fail
from tests._support.redis import RedisServer

pytestmark = pytest.mark.interop

HERE = Path(__file__).parent
READY = re.compile(r"sioserver listening on http://127\.0\.0\.1:(\d+) \((\d+) workers")


def children(pid: int) -> set[int]:
    return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


@pytest.fixture
def workers(interop_node_modules: Path, tmp_path: Path) -> Iterator[Process]:
    proc = Process([sys.executable, "-m", "sioserver", "workers_app:sio", "--workers", "3", "--port", "0"],
                   log_path=tmp_path / "workers.log", cwd=HERE, ready=READY, new_session=True, name="workers")
    start_or_fail(proc, timeout=30)
    try:
        yield proc
    finally:
        proc.stop(timeout=10)


def test_clients_of_three_workers_get_every_chat_once_and_survive_a_killed_worker(workers: Process) -> None:
    before = children(workers.pid)
    assert len(before) == 3
    run = node.run(HERE / "workers_clients.mjs", workers.url, "20", "20", "2", "kill", timeout=90,
                   context=workers.context())
    result = run.last()
    assert result["ok"], (result, run.context(), workers.context())
    figures = result["figures"]
    assert figures["upgraded"] == 20 and figures["polling_stayed"] == 20
    assert figures["worker_pids"] == 3, figures  # the clients' sessions live on all three workers
    assert figures["census"]["sockets"] == 40  # fetch_sockets() spans the workers
    assert len(figures["census"]["others"]) == 2  # server_side_emit_with_ack() is answered by the other two
    assert figures["census"]["worker"] in {"0", "1", "2"}  # SIOSERVER_WORKER
    victim = figures["victim"]
    assert re.search(rf"worker \d \(pid {victim}\) died \(signal SIGKILL\); starting a new one", workers.output())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(children(workers.pid)) != 3:
        time.sleep(0.05)
    now = children(workers.pid)
    assert len(now) == 3 and victim not in now and len(now & before) == 2
    print("workers:", json.dumps(figures))


def test_sigterm_drains_every_worker(workers: Process) -> None:
    pids = children(workers.pid)
    peer = subprocess.Popen(node.argv(HERE / "workers_clients.mjs", workers.url, "5", "5", "1", "hold"),
                            stdout=subprocess.PIPE, text=True, cwd=HERE)
    try:
        assert peer.stdout is not None
        assert json.loads(peer.stdout.readline()) == {"holding": True}
        started = time.monotonic()
        os.kill(workers.pid, signal.SIGTERM)
        assert workers.wait_exit(15) == 0, workers.context()
        drained = time.monotonic() - started
        result = json.loads(peer.stdout.readline())
        assert peer.wait(20) == 0, result
    finally:
        if peer.poll() is None:
            peer.kill()
    assert result["ok"], result
    # the sessions were ended by the server, with its close packet (polling) or a WebSocket close
    assert set(result["figures"]["reasons"]) <= {"io server disconnect", "transport close"}, result
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    assert workers.output().count("shutting down") == 3
    assert len(re.findall(r"worker \d: \d+ requests forwarded", workers.output())) == 3
    assert drained < 5.0, drained
    print(f"drained 10 clients and 3 workers in {drained:.2f} s: {result['figures']['reasons']}")
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{workers.url}/socket.io/?EIO=4&transport=polling", timeout=2)


def test_an_unknown_sid_of_an_absent_worker_gets_the_reference_400_and_says_who_owns_it(workers: Process) -> None:
    request = urllib.request.Request(f"{workers.url}/socket.io/?EIO=4&transport=polling&sid=7.abcdefghij")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 400
    assert json.loads(caught.value.read()) == {"code": 1, "message": "Session ID unknown"}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "belongs to node 7" not in workers.output():
        time.sleep(0.05)
    assert "sid '7.abcdefghij' belongs to node 7, which this node cannot reach: the load balancer is not sticky" \
        in workers.output()


@pytest.mark.parametrize("manager", [False, True], ids=["RedisAdapter", "AsyncRedisManager"])
def test_an_app_with_a_redis_adapter_keeps_it_under_workers(interop_node_modules: Path, redis_server: RedisServer,
                                                             tmp_path: Path, manager: bool) -> None:
    env = dict(os.environ, WORKERS_TEST_REDIS=redis_server.url, WORKERS_TEST_MANAGER="1" if manager else "")
    proc = Process([sys.executable, "-m", "sioserver", "workers_app:sio", "--workers", "2", "--port", "0"],
                   log_path=tmp_path / "workers.log", cwd=HERE, ready=READY, new_session=True, name="workers",
                   env=env)
    start_or_fail(proc, timeout=30)
    try:
        run = node.run(HERE / "workers_clients.mjs", proc.url, "5", "5", "1", "nokill", timeout=60,
                       context=proc.context())
        result = run.last()
        assert result["ok"], (result, run.context(), proc.context())
        assert result["figures"]["worker_pids"] == 2  # the chats crossed between the workers through Redis
        if not manager:  # python-socketio's format has no cluster requests (answered locally, with a warning)
            assert result["figures"]["census"]["sockets"] == 10
            assert len(result["figures"]["census"]["others"]) == 1
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait_exit(15) == 0, proc.context()
        # the broadcasts and cluster requests went through Redis: the local link carried nothing
        assert re.findall(r"worker \d: \d+ requests forwarded .*; (\d+) cluster messages", proc.output()) == ["0", "0"]
    finally:
        proc.stop(timeout=10)


def _door_request(door: Path, method: str, target: str, body: bytes = b"",
                  headers: tuple[tuple[str, str], ...] = ()) -> tuple[int, dict[str, str], bytes]:
    """One request to a worker's Unix-socket HTTP door (``http-<i>.sock``)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(door))
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers)
        sock.sendall(f"{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}"
                     f"Connection: close\r\n\r\n".encode() + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, rest = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), fields, rest


def test_a_parked_get_sent_to_another_worker_parks_at_the_owner_and_keeps_its_gzip(workers: Process) -> None:
    match = re.search(r"workers' sockets are in (\S+)", workers.output())
    assert match, workers.context()
    doors = [Path(match.group(1)) / f"http-{i}.sock" for i in range(3)]
    status, _, body = _door_request(doors[0], "GET", "/socket.io/?EIO=4&transport=polling")
    sid = json.loads(body[1:])["sid"]
    assert status == 200 and sid.startswith("0.")
    target = f"/socket.io/?EIO=4&transport=polling&sid={sid}"
    assert _door_request(doors[1], "POST", target, b"40")[0] == 200  # forwarded to worker 0
    assert _door_request(doors[2], "GET", target)[2].startswith(b"40")
    with ThreadPoolExecutor(1) as pool:
        parked = pool.submit(_door_request, doors[1], "GET", target, b"", (("Accept-Encoding", "gzip"),))
        time.sleep(0.3)  # not a signal: the GET must still be parked after it (asserted below)
        assert not parked.done()
        big = "y" * 50_000
        assert _door_request(doors[2], "POST", target, f'421["echo","{big}"]'.encode())[0] == 200
        status, fields, body = parked.result(timeout=10)
    assert status == 200 and fields.get("content-encoding") == "gzip", fields
    assert gzip.decompress(body) == f'431["{big}"]'.encode()


def test_run_with_workers_and_a_forwarded_poll_after_the_owner_closed_the_kept_connection(tmp_path: Path) -> None:
    proc = Process([sys.executable, "workers_run.py"], log_path=tmp_path / "run.log", cwd=HERE,
                   ready=re.compile(r"sioserver listening on http://127\.0\.0\.1:(\d+) \(2 workers"),
                   new_session=True, name="workers_run")
    start_or_fail(proc, timeout=30)
    try:
        match = re.search(r"workers' sockets are in (\S+)", proc.output())
        assert match, proc.context()
        doors = [Path(match.group(1)) / f"http-{i}.sock" for i in range(2)]
        _, _, body = _door_request(doors[0], "GET", "/socket.io/?EIO=4&transport=polling")
        sid = json.loads(body[1:])["sid"]
        target = f"/socket.io/?EIO=4&transport=polling&sid={sid}"
        assert _door_request(doors[1], "POST", target, b"40")[0] == 200  # worker 1 keeps its connection to 0
        assert _door_request(doors[1], "GET", target)[2].startswith(b"40")
        time.sleep(0.6)  # past the owner's keep-alive (0.3 s): it closes the forwarder's idle connection
        for i in range(3):  # each on a connection to the owner that works
            assert _door_request(doors[1], "POST", target, f'42{i}["echo","x"]'.encode())[0] == 200
            assert _door_request(doors[1], "GET", target)[2] == f'43{i}["x"]'.encode()
    finally:
        proc.stop(timeout=10)


def test_workers_that_cannot_start_make_the_supervisor_give_up(tmp_path: Path) -> None:
    proc = Process([sys.executable, "-m", "sioserver", "workers_app:sio", "--workers", "2", "--port", "0",
                    "--asgi", "broken_asgi:app"], log_path=tmp_path / "broken.log", cwd=HERE, ready=None,
                   new_session=True, name="broken")
    proc.start()
    try:
        assert proc.wait_exit(30) == 1, proc.context()
    finally:
        proc.stop(timeout=10)
    assert "the database is down" in proc.output()
    assert "3 workers died before serving: giving up" in proc.output()
    assert "sioserver listening" not in proc.output()


def _census(door: Path) -> dict[str, Any]:
    """A Socket.IO client of the worker behind ``door`` asks it for the cluster's census."""
    _, _, body = _door_request(door, "GET", "/socket.io/?EIO=4&transport=polling")
    target = f"/socket.io/?EIO=4&transport=polling&sid={json.loads(body[1:])['sid']}"
    _door_request(door, "POST", target, b"40")
    assert _door_request(door, "GET", target)[2].startswith(b"40")
    _door_request(door, "POST", target, b'421["census"]')
    answer = _door_request(door, "GET", target)[2]
    assert answer.startswith(b"431"), answer
    census: dict[str, Any] = json.loads(answer[3:])[0]
    return census


def test_a_replacement_worker_knows_the_others_at_once(workers: Process) -> None:
    match = re.search(r"workers' sockets are in (\S+)", workers.output())
    assert match, workers.context()
    directory = Path(match.group(1))
    victim = min(children(workers.pid))
    os.kill(victim, signal.SIGKILL)
    died = re.compile(rf"worker (\d) \(pid {victim}\) died")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not died.search(workers.output()):
        time.sleep(0.02)
    found = died.search(workers.output())
    assert found, workers.context()
    door = directory / f"http-{found.group(1)}.sock"
    census: dict[str, Any] = {}
    while time.monotonic() < deadline:  # until the new worker serves
        try:
            census = _census(door)
            break
        except OSError:
            time.sleep(0.02)
    started = time.monotonic()
    while len(census.get("others", [])) < 2 and time.monotonic() - started < 1.5:
        census = _census(door)
    took = time.monotonic() - started
    # under the 2 s heartbeat interval: its INITIAL_HEARTBEAT was answered by both others
    assert len(census["others"]) == 2 and victim not in census["others"], (census, took)
    print(f"the replacement worker knew both others {took * 1000:.0f} ms after it served")
