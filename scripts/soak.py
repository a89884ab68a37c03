#!/usr/bin/env python3
"""Soak a server process: N connect/disconnect cycles over mixed transports, then its tables must
be empty; prints the server's RSS before and after.

    .venv/bin/python scripts/soak.py --cycles 10000 [--concurrency 20]

The server is ``python -m sioserver tests.hostile.app:sio`` with the churn handlers (see
tests/hostile/churn.py for the cycles: clean leaves, resets with pending acks or parked polls,
upgrades, namespaces, violations). Exits 1 if a cycle failed or a table is not empty at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.hostile.churn import run_cycles
from tests.hostile.conftest import ServerProcess


def mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


async def soak(cycles: int, concurrency: int, warmup: int) -> int:
    # the test app keeps only its last 100 log records, so that they do not count as the server's memory
    server = ServerProcess("soak", {"ping_interval": 2, "ping_timeout": 2, "ack_timeout": 600}, ["soak"],
                           {"HOSTILE_LOG_KEEP": "100"})
    server.start()
    try:
        rss_start = server.rss()
        await run_cycles(server.port, warmup, concurrency)  # imports, caches, allocator arenas
        await server.settle(10)
        rss_before = server.rss()
        started = time.monotonic()
        done: Counter[str] = Counter()
        step = max(1000, cycles // 10)
        for offset in range(0, cycles, step):
            done += await run_cycles(server.port, min(step, cycles - offset), concurrency, start=warmup + offset)
            print(f"  {offset + min(step, cycles - offset):>7} cycles  RSS {mb(server.rss())}", flush=True)
        elapsed = time.monotonic() - started
        rss_after = server.rss()
        state = await server.settle(15)
        state = await server.wait_for(lambda s: s["sessions"] == 0 and s["parked"] == 0, 10, "sessions forgotten")
        rss_settled = server.rss()
        errors = {k: v for k, v in done.items() if k.startswith("error")}
        records = await server.logs(0)
        crashes = [r for r in records if r["exc"] or r["level"] in ("ERROR", "CRITICAL")]
        print(f"cycles:             {sum(done.values())} in {elapsed:.1f} s ({sum(done.values()) / elapsed:.0f}/s), "
              f"concurrency {concurrency}")
        print(f"modes:              {json.dumps({k: v for k, v in sorted(done.items()) if k not in errors})}")
        print(f"errors:             {errors or 'none'}")
        print(f"RSS at start:       {mb(rss_start)}")
        print(f"RSS after warmup:   {mb(rss_before)}  ({warmup} cycles)")
        print(f"RSS after cycles:   {mb(rss_after)}  (+{mb(rss_after - rss_before)})")
        print(f"RSS when settled:   {mb(rss_settled)}  (+{mb(rss_settled - rss_before)}, "
              f"{(rss_settled - rss_before) / max(cycles, 1) * 1000 / 1024:.1f} KiB per 1000 cycles)")
        tables = {"sessions": state["sessions"], "parked": state["parked"], "tasks": state["tasks"],
                  "background_tasks": state["background_tasks"], "namespaces": state["namespaces"]}
        print(f"tables at the end:  {json.dumps(tables)}")
        print(f"stats:              {json.dumps(state['stats'], sort_keys=True)}")
        print(f"errors logged:      {len(crashes)}" + "".join(f"\n  {r['logger']}: {r['message'][:200]}"
                                                           for r in crashes[:5]))
        ok = not errors and all(n["sockets"] == n["rooms"] == n["sids"] == n["acks"] == 0
                                for n in state["namespaces"].values())
        return 0 if ok else 1
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=500)
    args = parser.parse_args()
    sys.exit(asyncio.run(soak(args.cycles, args.concurrency, args.warmup)))


if __name__ == "__main__":
    main()
