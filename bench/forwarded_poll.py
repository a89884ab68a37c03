#!/usr/bin/env python3
"""The cost of a forwarded poll under ``--workers``: one Socket.IO polling echo (POST ``42N["echo",..]``, then
the GET that takes the ack) sent to the session's own worker, and the same sent to another worker, which
forwards both requests to the owner over its Unix socket.

    .venv/bin/python bench/forwarded_poll.py [--rounds 2000]

Both go through the workers' Unix-socket HTTP doors (``http-<i>.sock``), one connection per request, so the
only difference is the hop: the figure is the forwarder's added latency per echo (two requests).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "tests" / "deploy"


async def request(path: Path, method: str, target: str, body: bytes = b"") -> bytes:
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(f"{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
                 f"Connection: close\r\n\r\n".encode() + body)
    answer = await reader.read()
    writer.close()
    head, _, rest = answer.partition(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n")[0]:
        raise RuntimeError(answer[:200])
    return rest


async def session(door: Path) -> str:
    first = await request(door, "GET", "/socket.io/?EIO=4&transport=polling")
    sid = re.search(rb'"sid":"([^"]+)"', first).group(1).decode()  # type: ignore[union-attr]
    await request(door, "POST", f"/socket.io/?EIO=4&transport=polling&sid={sid}", b"40")
    await request(door, "GET", f"/socket.io/?EIO=4&transport=polling&sid={sid}")  # 40{sid}
    return sid


async def echoes(door: Path, sid: str, rounds: int) -> list[float]:
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2000)
    asyncio.run(main(parser.parse_args().rounds))
