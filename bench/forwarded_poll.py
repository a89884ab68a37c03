#!/usr/bin/env python3
"""The cost of a forwarded poll under ``--workers``: one Socket.IO polling echo (POST ``42N["echo",..]``, then
the GET that takes the ack) sent to the session's own worker, and the same sent to another worker, which
forwards both requests to the owner over its Unix socket.

    .venv/bin/python bench/forwarded_poll.py [--rounds 2000]

Both go through the workers' Unix-socket HTTP doors (``http-<i>.sock``), one connection per request, so the
only difference is the hop: the figure is the forwarder's added latency per echo (two requests).

    .venv/bin/python bench/forwarded_poll.py --nginx [--rounds 2000]

Across processes instead: a redis-server on a free port, three separate ``python -m sioserver`` processes
sharing a RedisAdapter, and two nginx (Debian's) in front of the same three: one sticky (``ip_hash``, every
request of the session reaches its owner) and one round-robin (each request to the next process: two of three
are forwarded to the owner over TCP, the node found through Redis). The same echo through each, interleaved,
one TCP connection per request to nginx (as the sticky test's nginx does, nginx opens one per request to the
upstream too).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "tests" / "deploy"


ROOT = APP.parent.parent
Door = Path | tuple[str, int]


async def request(path: Door, method: str, target: str, body: bytes = b"") -> bytes:
    if isinstance(path, Path):
        reader, writer = await asyncio.open_unix_connection(str(path))
    else:
        reader, writer = await asyncio.open_connection(*path)
    writer.write(f"{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
                 f"Connection: close\r\n\r\n".encode() + body)
    answer = await reader.read()
    writer.close()
    head, _, rest = answer.partition(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n")[0]:
        raise RuntimeError(answer[:200])
    return rest


async def session(door: Door) -> str:
    first = await request(door, "GET", "/socket.io/?EIO=4&transport=polling")
    sid = re.search(rb'"sid":"([^"]+)"', first).group(1).decode()  # type: ignore[union-attr]
    await request(door, "POST", f"/socket.io/?EIO=4&transport=polling&sid={sid}", b"40")
    await request(door, "GET", f"/socket.io/?EIO=4&transport=polling&sid={sid}")  # 40{sid}
    return sid


async def echoes(door: Door, sid: str, rounds: int) -> list[float]:
    times = []
    target = f"/socket.io/?EIO=4&transport=polling&sid={sid}"
    for i in range(rounds):
        t = time.perf_counter()
        await request(door, "POST", target, f'42{i}["echo","hi"]'.encode())
        got = await request(door, "GET", target)
        assert got.startswith(f"43{i}".encode()), got
        times.append(time.perf_counter() - t)
    return times


async def main(rounds: int) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "sioserver", "workers_app:sio", "--workers", "2", "--port", "0",
                             "--log-level", "INFO"], cwd=APP, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        directory = None
        assert proc.stdout is not None
        for line in proc.stdout:
            m = re.search(r"workers' sockets are in (\S+)", line)
            if m:
                directory = Path(m.group(1))
                break
        assert directory is not None
        owner, other = directory / "http-0.sock", directory / "http-1.sock"
        sid = await session(owner)
        assert sid.startswith("0.")
        await echoes(owner, sid, 200)
        await echoes(other, sid, 200)  # warm both
        direct: list[float] = []
        forwarded: list[float] = []
        for _ in range(5):  # interleaved
            direct += await echoes(owner, sid, rounds // 5)
            forwarded += await echoes(other, sid, rounds // 5)
        d, f = statistics.median(direct) * 1e6, statistics.median(forwarded) * 1e6
        print(f"polling echo at the owner: {d:.0f} us median; through another worker: {f:.0f} us median "
              f"(+{f - d:.0f} us per echo, {rounds} echoes each, 2 requests per echo)")
    finally:
        proc.terminate()
        proc.wait(10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"{what} did not listen on {port}")


async def nginx_main(rounds: int) -> None:
    spec = importlib.util.spec_from_file_location("cluster_script", ROOT / "scripts" / "cluster.py")
    assert spec is not None and spec.loader is not None
    cluster = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cluster)
    nginx = cluster.ensure("nginx", "nginx")
    workdir = Path(tempfile.mkdtemp(prefix="sioserver-fwdbench-"))
    procs: list[subprocess.Popen[str]] = []
    try:
        redis_port = _free_port()
        procs.append(subprocess.Popen([cluster.ensure("redis-server", "redis-server"), "--port", str(redis_port),
                                       "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                                      stdout=subprocess.DEVNULL, text=True))
        _wait_port(redis_port, procs[-1], "redis-server")
        env = dict(os.environ, WORKERS_TEST_REDIS=f"redis://127.0.0.1:{redis_port}/0")
        ports = []
        for _ in range(3):
            proc = subprocess.Popen([sys.executable, "-m", "sioserver", "workers_app:sio", "--port", "0",
                                     "--log-level", "WARNING"], cwd=APP, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            procs.append(proc)
            assert proc.stdout is not None
            for line in proc.stdout:
                m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
                if m:
                    ports.append(int(m.group(1)))
                    break
        assert len(ports) == 3, ports
        fronts: dict[str, tuple[str, int]] = {}
        for balance in ("ip_hash", "round-robin"):
            port = _free_port()
            (workdir / balance).mkdir()
            conf = cluster.nginx_conf(workdir / balance, ports, "127.0.0.1", port, balance)
            procs.append(subprocess.Popen([nginx, "-p", str(workdir / balance), "-c", str(conf), "-g", "daemon off;"],
                                          text=True))
            _wait_port(port, procs[-1], f"nginx {balance}")
            fronts[balance] = ("127.0.0.1", port)
        sticky, rr = fronts["ip_hash"], fronts["round-robin"]
        sid_sticky = await session(sticky)
        sid_rr = await session(rr)
        await echoes(sticky, sid_sticky, 200)
        await echoes(rr, sid_rr, 200)  # warm both
        times: dict[str, list[float]] = {"ip_hash": [], "round-robin": []}
        for _ in range(5):  # interleaved
            times["ip_hash"] += await echoes(sticky, sid_sticky, rounds // 5)
            times["round-robin"] += await echoes(rr, sid_rr, rounds // 5)
        s_med, r_med = (statistics.median(times[k]) * 1e6 for k in ("ip_hash", "round-robin"))
        s_p90, r_p90 = (statistics.quantiles(times[k], n=10)[-1] * 1e6 for k in ("ip_hash", "round-robin"))
        print(f"polling echo through nginx over 3 processes sharing a RedisAdapter: sticky (ip_hash) {s_med:.0f} us "
              f"median (p90 {s_p90:.0f}); round-robin {r_med:.0f} us median (p90 {r_p90:.0f}): +{r_med - s_med:.0f} us "
              f"per echo, 2 requests per echo of which 4/3 forwarded on average; {rounds} echoes each")
    finally:
        cluster.stop(procs, workdir, 10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--nginx", action="store_true",
                        help="three processes behind nginx: round-robin against ip_hash")
    args = parser.parse_args()
    asyncio.run(nginx_main(args.rounds) if args.nginx else main(args.rounds))
