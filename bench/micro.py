#!/usr/bin/env python3
"""The server's own cost per message, without sockets: sioserver's Python path measured alone.

    .venv/bin/python bench/micro.py            # echo-with-ack and broadcast, on uvloop
    .venv/bin/python bench/micro.py --loop asyncio
    .venv/bin/python bench/micro.py --metrics   # with AsyncServer(metrics=True)

A client's frames are fed straight to the connection's ``data_received`` and the server's frames go
to a transport whose ``write`` only counts them, so the figures leave out what the kernel costs (the
send and recv syscalls, about half of scenario B on this machine). They are CPU time, not wall
time, so they hold on a busy machine: use them to see whether a change to the hot path helps before
running the bench.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from typing import Any

import uvloop

import sioserver
from sioserver.engine.session import Session
from sioserver.engine.websocket import WebSocketConnection


class CountingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.bytes = 0

    def write(self, data: Any) -> None:
        self.writes += 1
        self.bytes += len(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default

    def is_closing(self) -> bool:
        return False

    def is_reading(self) -> bool:
        return True


def client_frame(text: str) -> bytes:
    """A masked text frame, as a client sends it."""
    payload = text.encode()
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    n = len(payload)
    header = bytes((0x81, 0x80 | n)) if n < 126 else bytes((0x81, 0xFE)) + n.to_bytes(2, "big")
    return header + key + masked


async def connect(sio: Any, count: int) -> list[tuple[WebSocketConnection, CountingTransport]]:
    engine = sio.eio
    conns = []
    for i in range(count):
        session = Session(engine, f"s{i}", "websocket", {})
        conn = WebSocketConnection(session, engine.ws_config)
        transport = CountingTransport()
        conn.connection_made(transport)
        engine.sessions[session.sid] = session
        await engine.accept(session)
        session.ws = conn
        conn.data_received(client_frame("40"))
        conns.append((conn, transport))
    await asyncio.sleep(0)
    return conns


JSON: dict[str, Any] = {}


async def bench_echo(rounds: int) -> float:
    sio = sioserver.AsyncServer(**JSON)

    @sio.on("echo")
    async def echo(sid: str, *data: Any) -> Any:
        return data

    [(conn, transport)] = await connect(sio, 1)
    frames = [client_frame(f'42{i}["echo",{{"text":"hello world","n":12345,"ok":true}}]') for i in range(1, 101)]
    before = transport.writes
    total = rounds // len(frames) * len(frames)
    t0 = time.process_time()
    for _ in range(rounds // len(frames)):
        for frame in frames:
            conn.data_received(frame)
        await asyncio.sleep(0)  # coroutine handlers may run as tasks, on the next turn of the loop
    for _ in range(10):
        if transport.writes - before >= total:
            break
        await asyncio.sleep(0)
    elapsed = time.process_time() - t0
    assert transport.writes - before == total, "every echo is acked"
    return elapsed / total


async def bench_broadcast(clients: int, burst: int, rounds: int) -> float:
    sio = sioserver.AsyncServer(**JSON)

    @sio.on("bcast")
    async def bcast(sid: str, *data: Any) -> None:
        await sio.emit("bcast", data)

    conns = await connect(sio, clients)
    sender = conns[0][0]
    chunk = b"".join(client_frame(f'42["bcast",{{"seq":{i},"text":"hello everyone"}}]') for i in range(burst))
    t0 = time.process_time()
    for _ in range(rounds):
        sender.data_received(chunk)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    elapsed = time.process_time() - t0
    return elapsed / (rounds * burst * clients)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None, help="a module with dumps/loads for the json= option (orjson)")
    parser.add_argument("--metrics", action="store_true", help="AsyncServer(metrics=True): what the metrics cost")
    args = parser.parse_args()
    if args.metrics:
        JSON["metrics"] = True
    if args.json:
        JSON["json"] = __import__(args.json)
    runner = uvloop.run if args.loop == "uvloop" else asyncio.run

    echo = [runner(bench_echo(50_000)) for _ in range(args.repeats)]
    single = [runner(bench_broadcast(1000, 1, 100)) for _ in range(args.repeats)]
    burst = [runner(bench_broadcast(1000, 50, 4)) for _ in range(args.repeats)]
    print(f"sioserver {sioserver.__file__}", file=sys.stderr)
    print(f"echo with ack:            {statistics.median(echo) * 1e6:6.2f} us per message "
          f"(min {min(echo) * 1e6:.2f})")
    print(f"broadcast, one at a time: {statistics.median(single) * 1e9:6.0f} ns per delivery "
          f"(min {min(single) * 1e9:.0f})")
    print(f"broadcast, bursts of 50:  {statistics.median(burst) * 1e9:6.0f} ns per delivery "
          f"(min {min(burst) * 1e9:.0f})")


if __name__ == "__main__":
    main()
