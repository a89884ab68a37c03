"""Slow consumers at scale: N clients stop reading while the server sends M broadcasts.

    .venv/bin/python -m tests.hostile.scale [--slow 1000] [--broadcasts 10000] [--size 1024]
        [--max-buffered 262144] [--policy disconnect|drop] [--rate 2000]

The server is a ``python -m sioserver`` process with ``max_buffered_bytes`` and
``slow_consumer_policy`` as given. The slow clients connect (4 KiB receive buffers), join, then never
read again; five good clients read everything; one of them asks the server to ``blast`` M
broadcasts of ``size`` bytes (the server yields to its loop after each, as a real app would).

Checked and reported: the server's RSS growth over its level with every client connected, against
the bound ``slow * (max_buffered_bytes + one frame)``; the policy's effect (every slow client
disconnected, or dropping and still connected); every broadcast received by every good client; the
good clients' latency (p50 / p99 / max, server send time to client receive time).
``test_scale.py`` runs it when SIOSERVER_SLOW=1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from .conftest import ServerProcess
from .helpers import RawWS


@dataclass
class Result:
    slow: int
    broadcasts: int
    size: int
    max_buffered: int
    policy: str
    rate: float
    rss_idle: int = 0
    rss_connected: int = 0
    rss_peak: int = 0
    rss_end: int = 0
    bound: int = 0
    blast_seconds: float = 0.0
    good_received: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    open_sessions_after: int = 0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")

    def report(self) -> str:
        growth = self.rss_peak - self.rss_connected
        return "\n".join([
            f"slow clients {self.slow}, broadcasts {self.broadcasts} x {self.size} B at "
            f"{f'{self.rate:.0f}/s' if self.rate else 'full speed'}, "
            f"max_buffered_bytes {self.max_buffered}, policy {self.policy!r}",
            f"server RSS: idle {self.rss_idle / 1e6:.1f} MB, all connected {self.rss_connected / 1e6:.1f} MB, "
            f"peak {self.rss_peak / 1e6:.1f} MB, end {self.rss_end / 1e6:.1f} MB",
            f"RSS growth during the blast {growth / 1e6:.1f} MB; bound slow x (max_buffered_bytes + frame) = "
            f"{self.bound / 1e6:.1f} MB -> {'within' if growth <= self.bound else 'OVER'}",
            f"blast took {self.blast_seconds:.1f} s; good clients received {self.good_received} of {self.broadcasts}",
            f"good clients' latency: p50 {self.percentile(0.5) * 1000:.1f} ms, p99 {self.percentile(0.99) * 1000:.1f} ms,"
            f" max {max(self.latencies, default=float('nan')) * 1000:.1f} ms",
            f"slow consumer stats: {json.dumps({k: v for k, v in self.stats.items() if 'slow' in k})}, "
            f"open sessions after: {self.open_sessions_after}",
        ])


class Good:
    """A good client that keeps up: reads in large chunks and parses frames from its buffer."""

    def __init__(self, ws: RawWS) -> None:
        self.ws = ws
        self.count = 0
        self.latencies: list[float] = []
        self.acks: asyncio.Queue[str] = asyncio.Queue()
        self.closed: str | None = None
        self.task = asyncio.ensure_future(self.run())

    async def run(self) -> None:
        buf = bytearray()
        reader = self.ws.reader
        while True:
            data = await reader.read(1 << 20)
            if not data:
                self.closed = "EOF"
                return
            now = time.time()
            buf += data
            pos, end = 0, len(buf)
            while end - pos >= 2:
                opcode, n, head = buf[pos] & 0x0F, buf[pos + 1] & 0x7F, 2
                if n == 126:
                    if end - pos < 4:
                        break
                    n, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
                elif n == 127:
                    if end - pos < 10:
                        break
                    n, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
                if end - pos < head + n:
                    break
                payload = bytes(buf[pos + head : pos + head + n])
                pos += head + n
                if opcode == 0x8:
                    self.closed = f"close frame {payload[:2].hex()}"
                    return
                if payload.startswith(b'42["blast",'):
                    _, _, sent, _ = json.loads(payload[2:])
                    self.latencies.append(now - sent)
                    self.count += 1
                elif payload == b"2":
                    self.ws.send_text("3")
                elif payload == b"1":
                    self.closed = "engine.io close packet"
                else:
                    self.acks.put_nowait(payload.decode())
            del buf[:pos]


async def _connect(port: int, slow: bool) -> RawWS:
    for attempt in range(5):
        try:
            ws = await RawWS.connect(port, rcvbuf=4096 if slow else None)
            await ws.sio_connect()
            return ws
        except (ConnectionError, OSError, TimeoutError):
            if attempt == 4:
                raise
            await asyncio.sleep(0.2)
    raise AssertionError("unreachable")


async def run(slow: int = 1000, broadcasts: int = 10_000, size: int = 1024, max_buffered: int = 262_144,
              policy: str = "disconnect", good: int = 5, rate: float = 2000) -> Result:
    result = Result(slow, broadcasts, size, max_buffered, policy, rate)
    server = ServerProcess("scale", {"max_buffered_bytes": max_buffered, "slow_consumer_policy": policy,
                                     "ping_interval": 60, "ping_timeout": 60}, [])
    server.start()
    sampling = True
    try:
        result.rss_idle = server.rss()
        slow_clients: list[RawWS] = []
        for start in range(0, slow, 50):
            slow_clients += await asyncio.gather(*(_connect(server.port, True) for _ in range(min(50, slow - start))))
        for ws in slow_clients:
            ws.writer.transport.pause_reading()
        goods = [Good(await _connect(server.port, False)) for _ in range(good)]
        await asyncio.sleep(0.5)
        result.rss_connected = server.rss()
        result.rss_peak = result.rss_connected

        async def sample() -> None:
            while sampling:
                result.rss_peak = max(result.rss_peak, server.rss())
                await asyncio.sleep(0.05)

        sampler = asyncio.ensure_future(sample())
        started = time.monotonic()
        goods[0].ws.send_text(f'421["blast",{broadcasts},{size},{rate}]')
        ack = asyncio.ensure_future(goods[0].acks.get())
        deadline = time.monotonic() + 300
        while not ack.done() and goods[0].closed is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if not ack.done():
            ack.cancel()
            state = await server.state()
            raise AssertionError(f"no answer to blast: good clients {[(g.count, g.closed) for g in goods]}, "
                                 f"stats {state['stats']}")
        assert ack.result() == f"431[{broadcasts}]", (ack.result(), [g.closed for g in goods])
        result.blast_seconds = time.monotonic() - started
        deadline = time.monotonic() + 30
        while any(g.count < broadcasts for g in goods) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        sampling = False
        await sampler
        result.rss_end = server.rss()
        frame = size + 64
        result.bound = slow * (max_buffered + frame)
        result.good_received = [g.count for g in goods]
        result.latencies = [x for g in goods for x in g.latencies]
        state = await server.state()
        result.stats = state["stats"]
        result.open_sessions_after = state["open_sessions"]
        for g in goods:
            g.task.cancel()
            await g.ws.close()
        for ws in slow_clients:
            ws.abort()
    finally:
        sampling = False
        server.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slow", type=int, default=1000)
    parser.add_argument("--broadcasts", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--max-buffered", type=int, default=262_144)
    parser.add_argument("--policy", default="disconnect", choices=["disconnect", "drop"])
    parser.add_argument("--rate", type=float, default=2000, help="broadcasts per second (0: as fast as possible)")
    args = parser.parse_args()
    result = asyncio.run(run(args.slow, args.broadcasts, args.size, args.max_buffered, args.policy, rate=args.rate))
    print(result.report())
    ok = (result.rss_peak - result.rss_connected <= result.bound
          and all(n == args.broadcasts for n in result.good_received))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
