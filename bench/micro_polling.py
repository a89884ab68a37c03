#!/usr/bin/env python3
"""The server's own CPU per long-polling echo, without sockets (scenario E's work, the kernel left out).

    .venv/bin/python bench/micro_polling.py             # sioserver.run's HTTP/1.1 front, on uvloop
    .venv/bin/python bench/micro_polling.py --profile   # cProfile of the loop, top 30 by own time
    .venv/bin/python bench/micro_polling.py --headers loadgen   # the requests as scenario E sends them

Two connections of one client, as a browser holds them: one keeps a GET parked, the other POSTs
``42N["echo",{...}]``; the ack wakes the parked GET, which is answered, and the client parks the next
GET. The HTTP requests are fed to the connections' ``data_received`` and the responses go to transports
that only record them, so the figure is CPU time and holds on a busy machine (as bench/micro.py).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import statistics
import sys
import time
from typing import Any

import uvloop

import sioserver
from sioserver.integrations.http1.connection import HttpConnection
from sioserver.integrations.http1.server import Http1Server


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.out: list[bytes] = []

    def write(self, data: Any) -> None:
        self.out.append(bytes(data))

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name in ("peername", "sockname") else default

    def is_closing(self) -> bool:
        return False

    def is_reading(self) -> bool:
        return True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass


#: the header lines beyond Host: "browser" (a few more, as a browser's XHR), or "loadgen" (none: what
#: bench/loadgen.mjs sends in scenario E)
HEADERS = {"browser": "User-Agent: node\r\nAccept: */*\r\nConnection: keep-alive\r\n", "loadgen": ""}
EXTRA = HEADERS["browser"]


def request(method: str, query: str, body: bytes = b"") -> bytes:
    head = (f"{method} /socket.io/?EIO=4&transport=polling{query} HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
            + EXTRA)
    if method == "POST":
        head += f"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def body_of(response: bytes) -> bytes:
    return response.split(b"\r\n\r\n", 1)[1]


async def turns(n: int = 3) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def bench(rounds: int, profile: cProfile.Profile | None) -> float:
    sio = sioserver.AsyncServer()

    @sio.on("echo")
    async def echo(sid: str, *data: Any) -> Any:
        return data

    server = Http1Server(sio.eio)
    getter, poster = HttpConnection(server), HttpConnection(server)
    gt, pt = RecordingTransport(), RecordingTransport()
    getter.connection_made(gt)
    poster.connection_made(pt)
    getter.data_received(request("GET", ""))
    await turns()
    sid = json.loads(body_of(gt.out.pop())[1:])["sid"]
    q = f"&sid={sid}"
    poster.data_received(request("POST", q, b"40"))
    await turns()
    pt.out.clear()
    getter.data_received(request("GET", q))
    await turns()
    assert body_of(gt.out.pop()).startswith(b"40"), "connected"
    gets = request("GET", q)
    posts = [request("POST", q, f'42{i}["echo",{{"text":"hello world","n":12345,"ok":true}}]'.encode())
             for i in range(1, 101)]
    if profile is not None:
        profile.enable()
    t0 = time.process_time()
    for r in range(rounds):
        getter.data_received(gets)  # parks
        poster.data_received(posts[r % 100])
        await turns(2)
    await turns(2)  # the front writes a turn's responses at the end of the turn
    elapsed = time.process_time() - t0
    if profile is not None:
        profile.disable()
    answers = [body_of(x) for x in gt.out]
    assert len(answers) == rounds and all(a.startswith(b"43") for a in answers), (len(answers), answers[:3])
    assert len(pt.out) == rounds and all(body_of(x) == b"ok" for x in pt.out)
    return elapsed / rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=20_000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--headers", choices=sorted(HEADERS), default="browser",
                        help="the requests' other header lines (loadgen: as scenario E's generator)")
    args = parser.parse_args()
    global EXTRA
    EXTRA = HEADERS[args.headers]
    runner = uvloop.run if args.loop == "uvloop" else asyncio.run
    if args.profile:
        profile = cProfile.Profile()
        runner(bench(args.rounds, profile))
        pstats.Stats(profile).sort_stats("tottime").print_stats(30)
        return
    figures = [runner(bench(args.rounds, None)) for _ in range(args.repeats)]
    print(f"sioserver {sioserver.__file__}", file=sys.stderr)
    print(f"polling echo (POST + parked GET answered): {statistics.median(figures) * 1e6:6.2f} us per echo "
          f"(min {min(figures) * 1e6:.2f})")


if __name__ == "__main__":
    main()
