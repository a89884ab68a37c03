#!/usr/bin/env python3
"""Profile a Python server under one bench scenario with py-spy (sampling; the server runs unmodified).

    .venv/bin/pip install py-spy
    .venv/bin/python bench/profile_server.py --scenario B --impl sioserver-uvloop
    .venv/bin/python bench/profile_server.py --scenario C --impl sioserver-uvloop --out bench/profiles/C-sioserver

Writes ``<out>.collapsed`` (py-spy's folded stacks: feed them to flamegraph.pl or speedscope) and
``<out>.txt``: the functions with the most samples, by self time and by inclusive time, as a share of
the samples in which the server was busy (idle waits in the event loop are not sampled).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as bench  # noqa: E402 - the driver, next to this file


def layer(leaf: str) -> str:
    """Which layer a sample's innermost frame belongs to."""
    if leaf.startswith("run_app "):
        return "event loop itself (uvloop's C code: epoll, recv, callbacks)"
    if leaf.startswith(("WebSocketConnection._write ", "WebSocketConnection._flush_held ")):
        return "transport.write (the send() syscall)"
    if "(sioserver/" in leaf:
        return "sioserver (Python)"
    if "(aiohttp/" in leaf or "(yarl/" in leaf or "(multidict/" in leaf:
        return "aiohttp / yarl / multidict"
    if "(socketio/" in leaf or "(engineio/" in leaf:
        return "python-socketio / python-engineio"
    return "other (stdlib: json, asyncio, ...)"


def summarize(collapsed: Path, top: int) -> str:
    layers: collections.Counter[str] = collections.Counter()
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1] + ")"
                  if " (" in f else f for f in stack.split(";")]
        self_time[frames[-1]] += n
        layers[layer(stack.split(";")[-1])] += n
        for frame in set(frames):
            inclusive[frame] += n
    out = [f"{total} busy samples", "", "by layer (innermost frame):"]
    out += [f"  {n / total:6.1%}  {name}" for name, n in layers.most_common()]
    out += ["", "self time:"]
    out += [f"  {n / total:6.1%}  {f}" for f, n in self_time.most_common(top)]
    out += ["", "inclusive time:"]
    out += [f"  {n / total:6.1%}  {f}" for f, n in inclusive.most_common(top)]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", required=True, choices=sorted(bench.SCENARIOS))
    parser.add_argument("--impl", default="sioserver-uvloop")
    parser.add_argument("--duration", type=float, default=None, help="B and E: measured window (s)")
    parser.add_argument("--rate", type=int, default=500, help="samples per second")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(pyspy).exists():
        parser.error("py-spy is not installed (.venv/bin/pip install py-spy)")
    scenario = bench.SCENARIOS[args.scenario]
    impl = bench.IMPLS[args.impl]
    params = dict(scenario.full)
    if args.duration is not None and "duration" in params:
        params["duration"] = args.duration
    out = args.out or HERE / "profiles" / f"{args.scenario}-{args.impl}"
    out.parent.mkdir(parents=True, exist_ok=True)
    collapsed = out.with_suffix(".collapsed")
    logdir = Path(tempfile.mkdtemp(prefix="sioserver-profile-"))
    try:
        with bench.servers(impl, 1, logdir, 0) as procs:
            (proc, port), = procs
            spy = subprocess.Popen([pyspy, "record", "--pid", str(proc.pid), "--rate", str(args.rate),
                                    "--format", "raw", "--output", str(collapsed), "--nonblocking"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
            time.sleep(1.0)
            result = bench.run_loadgen(scenario, params, [port], [proc.pid], logdir, 1, 600)
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
    finally:
        shutil.rmtree(logdir, ignore_errors=True)
    if result.error:
        print(f"load generator failed: {result.error}", file=sys.stderr)
    figures = ", ".join(f"{k}={v:.4g}" for k, v in result.values.items())
    context = ", ".join(f"{k}={v:.2f}" for k, v in result.context.items())
    text = (f"# py-spy profile: scenario {args.scenario} ({scenario.title}) on {args.impl}, "
            f"{args.rate} Hz\n# {figures}\n# {context}\n\n{summarize(collapsed, args.top)}\n")
    out.with_suffix(".txt").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
