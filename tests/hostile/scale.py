"""Slow consumers at scale: N clients stop reading while the server sends M broadcasts.

    .venv/bin/python -m tests.hostile.scale [--slow 1000] [--broadcasts 10000] [--size 130]
        [--max-buffered N] [--max-buffered-total N] [--policy disconnect|drop] [--rate 2000] [--sndbuf N]

The server is a ``python -m sioserver`` process at its default options (``max_buffered_bytes``,
``max_buffered_bytes_total`` and ``slow_consumer_policy`` only when given). The slow clients connect
(4 KiB receive buffers), join, then never read again; five good clients read everything; one of them asks
the server to ``blast`` M broadcasts of ``size`` bytes (the server yields to its loop after each, as a
real app would). Then the slow clients leave. ``--sndbuf`` shrinks the server's kernel send buffer per
WebSocket (on loopback the kernel otherwise takes megabytes per connection until its memory pressure
sets in, and the server's own buffering shows only past that).

Checked and reported (issue #11): the server's RSS growth over its level with every client connected
(at most ``--max-growth``, 64 MiB); every broadcast received by every good client; the slow-consumer
policy applied to the slow clients, counted and logged; RSS five seconds after the slow clients left
within ``--max-retained`` (16 MiB) of its level before the broadcasts; the good clients' latency.
``test_scale.py`` runs a smaller version in the suite, and this one when SIOSERVER_SLOW=1.
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

MiB = 1 << 20


@dataclass
class Result:
    slow: int
    broadcasts: int
    size: int
    options: dict[str, Any]
    rate: float
    max_growth: int = 64 * MiB
    max_retained: int = 16 * MiB
    rss_idle: int = 0
    rss_connected: int = 0
    rss_peak: int = 0
    rss_end: int = 0
    rss_after_leave: int = 0
    blast_seconds: float = 0.0
    policy_logged: int = 0
    good_received: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    open_sessions_after: int = 0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")

    @property
    def growth(self) -> int:
        return self.rss_peak - self.rss_connected

    @property
    def retained(self) -> int:
        return self.rss_after_leave - self.rss_connected

    @property
    def policy_applied(self) -> int:
        return int(self.stats.get("slow_consumers", 0)) + int(self.stats.get("dropped_slow_consumer", 0))

    def ok(self) -> bool:
        return (self.growth <= self.max_growth and self.retained <= self.max_retained
                and all(n == self.broadcasts for n in self.good_received)
                and self.policy_applied > 0 and self.policy_logged > 0)

    def report(self) -> str:
        options = ", ".join(f"{k}={v}" for k, v in self.options.items()) or "default options"
        return "\n".join([
            f"slow clients {self.slow}, broadcasts {self.broadcasts} x {self.size} B at "
            f"{f'{self.rate:.0f}/s' if self.rate else 'full speed'}, server at {options}",
            f"server RSS: idle {self.rss_idle / MiB:.1f} MiB, all connected {self.rss_connected / MiB:.1f} MiB, "
            f"peak {self.rss_peak / MiB:.1f} MiB, after the blast {self.rss_end / MiB:.1f} MiB, "
            f"5 s after the slow clients left {self.rss_after_leave / MiB:.1f} MiB",
            f"RSS growth during the blast {self.growth / MiB:.1f} MiB (bound {self.max_growth / MiB:.0f} MiB) -> "
            f"{'within' if self.growth <= self.max_growth else 'OVER'}; retained after leaving "
            f"{self.retained / MiB:.1f} MiB (bound {self.max_retained / MiB:.0f} MiB) -> "
            f"{'within' if self.retained <= self.max_retained else 'OVER'}",
            f"blast took {self.blast_seconds:.1f} s; good clients received {self.good_received} of {self.broadcasts}",
            f"good clients' latency: p50 {self.percentile(0.5) * 1000:.1f} ms, p99 {self.percentile(0.99) * 1000:.1f} ms,"
            f" max {max(self.latencies, default=float('nan')) * 1000:.1f} ms",
            "slow consumer stats: " + json.dumps({k: v for k, v in self.stats.items()
                                                  if "slow" in k or "backlog" in k or "trim" in k})
            + f", policy log lines {self.policy_logged}, open sessions after the blast: {self.open_sessions_after}",
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


async def run(slow: int = 1000, broadcasts: int = 10_000, size: int = 130, options: dict[str, Any] | None = None,
              good: int = 5, rate: float = 2000, sndbuf: int = 0) -> Result:
    options = dict(options or {})
    result = Result(slow, broadcasts, size, options, rate)
    # a heartbeat that never fires during the run: the slow clients are ended by the backlog bounds
    server = ServerProcess("scale", {**options, "ping_interval": 120, "ping_timeout": 60}, [],
                           env={"HOSTILE_SNDBUF": str(sndbuf)} if sndbuf else None)
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
        await server.mark_logs()
        result.rss_connected = server.rss()
        result.rss_peak = result.rss_connected

        async def sample() -> None:
            while sampling:
                result.rss_peak = max(result.rss_peak, server.rss())
                await asyncio.sleep(0.02)

        sampler = asyncio.ensure_future(sample())
        started = time.monotonic()
        goods[0].ws.send_text(f'421["blast",{broadcasts},{size},{rate}]')
        try:
            async with asyncio.timeout(300):
                answer = await goods[0].acks.get()
        except TimeoutError:
            state = await server.state()
            raise AssertionError(f"no answer to blast: good clients {[(g.count, g.closed) for g in goods]}, "
                                 f"stats {state['stats']}") from None
        assert answer == f"431[{broadcasts}]", (answer, [g.closed for g in goods])
        result.blast_seconds = time.monotonic() - started
        async with asyncio.timeout(30):
            while any(g.count < broadcasts and g.closed is None for g in goods):
                await asyncio.sleep(0.05)  # the good clients read the last broadcasts
        sampling = False
        await sampler
        result.rss_end = server.rss()
        result.good_received = [g.count for g in goods]
        result.latencies = [x for g in goods for x in g.latencies]
        state = await server.state()
        result.stats = state["stats"]
        result.open_sessions_after = state["open_sessions"]
        result.policy_logged = sum(1 for r in await server.logs() if "waiting for a client that does not read"
                                   in r.get("message", ""))
        for ws in slow_clients:
            ws.abort()
        await asyncio.sleep(5)  # "five seconds after the slow clients leave"
        result.rss_after_leave = server.rss()
        for g in goods:
            g.task.cancel()
            await g.ws.close()
    finally:
        sampling = False
        server.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slow", type=int, default=1000)
    parser.add_argument("--broadcasts", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=130)
    parser.add_argument("--max-buffered", type=int, default=None, help="max_buffered_bytes (default: the server's)")
    parser.add_argument("--max-buffered-total", type=int, default=None,
                        help="max_buffered_bytes_total (default: the server's)")
    parser.add_argument("--policy", default=None, choices=["disconnect", "drop"])
    parser.add_argument("--rate", type=float, default=2000, help="broadcasts per second (0: as fast as possible)")
    parser.add_argument("--sndbuf", type=int, default=0,
                        help="the server's kernel send buffer per WebSocket (0: the kernel's own sizing)")
    args = parser.parse_args()
    options: dict[str, Any] = {}
    if args.max_buffered is not None:
        options["max_buffered_bytes"] = args.max_buffered
    if args.max_buffered_total is not None:
        options["max_buffered_bytes_total"] = args.max_buffered_total
    if args.policy is not None:
        options["slow_consumer_policy"] = args.policy
    result = asyncio.run(run(args.slow, args.broadcasts, args.size, options, rate=args.rate, sndbuf=args.sndbuf))
    print(result.report())
    sys.exit(0 if result.ok() else 1)


if __name__ == "__main__":
    main()
