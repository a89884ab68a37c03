#!/usr/bin/env python3
"""The benchmark driver: every scenario against every implementation, interleaved, in one go.

    .venv/bin/python bench/run.py                      # the full bench (about 10 minutes)
    .venv/bin/python bench/run.py --scenarios B,C --repeats 5
    .venv/bin/python bench/run.py --smoke              # seconds: tiny sizes, one server per impl

For each repeat, for each scenario, for each implementation (the order rotates every repeat), a
fresh server process is started pinned to one core and the Node load generator (bench/loadgen.mjs)
pinned to another; the generator reports its own CPU time over the measured window, the driver
samples the server's CPU time, the machine's total CPU time (whatever else ran meanwhile is reported
as ``foreign_cpu``) and, for scenario D, the server's RSS. It prints one JSON line per scenario x
implementation (median, min, max of every metric and its ratio to Node's median) and then a table.

A figure is flagged ``loadgen_limited`` when the generator used >= 90% of its core during the window:
then the generator, not the server, may have been the limit.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SERVERS = HERE / "servers"
LOADGEN = HERE / "loadgen.mjs"
PYTHON = sys.executable
NODE = shutil.which("node") or "node"
CLK_TCK = os.sysconf("SC_CLK_TCK")
LOADGEN_LIMIT = 0.90  # generator CPU fraction over the window past which a figure is flagged

NODE_IMPL = "node"
LIMIT_IMPL = "raw-ws-uvloop"
BATCHED_LIMIT_IMPL = "raw-ws-uvloop-batched"
FLOOR_IMPL = "floor-uvloop"  # uvloop + asyncio.Protocol + httptools, Engine.IO answered directly


@dataclass(frozen=True)
class Impl:
    name: str
    cmd: tuple[str, ...]
    label: str
    env: tuple[tuple[str, str], ...] = ()


IMPLS: dict[str, Impl] = {
    impl.name: impl
    for impl in (
        Impl("sioserver-uvloop", (PYTHON, str(SERVERS / "sioserver_app.py"), "--loop", "uvloop"),
             "sioserver on uvloop"),
        Impl("sioserver-asyncio", (PYTHON, str(SERVERS / "sioserver_app.py"), "--loop", "asyncio"),
             "sioserver on asyncio"),
        Impl("sioserver-attach-uvloop", (PYTHON, str(SERVERS / "sioserver_app.py"), "--loop", "uvloop",
                                         "--front", "aiohttp"),
             "sioserver attached to aiohttp (run(front='aiohttp')) on uvloop"),
        Impl("sioserver-uvloop-metrics", (PYTHON, str(SERVERS / "sioserver_app.py"), "--loop", "uvloop",
                                          "--metrics"),
             "sioserver on uvloop with metrics=True (Prometheus)"),
        Impl("sioserver-uvloop-streams", (PYTHON, str(SERVERS / "sioserver_app.py"), "--loop", "uvloop",
                                          "--adapter", "streams"),
             "sioserver on uvloop, RedisStreamsAdapter (F only)"),
        Impl("sioserver-uvloop-orjson", (PYTHON, str(SERVERS / "sioserver_app.py"), "--loop", "uvloop",
                                         "--json", "orjson"),
             "sioserver on uvloop with json=orjson"),
        Impl("sioserver-uvloop-stdjson", (PYTHON, str(SERVERS / "sioserver_app.py"), "--loop", "uvloop",
                                          "--json", "json"),
             "sioserver on uvloop with json=the standard library's json"),
        Impl("sioserver-uvicorn", (PYTHON, str(SERVERS / "sioserver_app.py"), "--loop", "uvloop",
                                   "--front", "uvicorn"),
             "sioserver.ASGIApp under uvicorn on uvloop"),
        Impl("pysio-uvicorn", (PYTHON, str(SERVERS / "pysio_app.py"), "--loop", "uvloop", "--front", "uvicorn"),
             "python-socketio 5 socketio.ASGIApp under uvicorn on uvloop"),
        Impl("pysio-uvloop", (PYTHON, str(SERVERS / "pysio_app.py"), "--loop", "uvloop"),
             "python-socketio 5 + aiohttp on uvloop"),
        Impl("pysio-asyncio", (PYTHON, str(SERVERS / "pysio_app.py"), "--loop", "asyncio"),
             "python-socketio 5 + aiohttp on asyncio"),
        Impl(NODE_IMPL, (NODE, "--expose-gc", str(SERVERS / "node_server.mjs")), "Node socket.io 4.8"),
        Impl(LIMIT_IMPL, (PYTHON, str(SERVERS / "raw_ws_limit.py")),
             "raw WebSocket broadcast of pre-framed bytes on uvloop, one write per frame (the limit)"),
        Impl(BATCHED_LIMIT_IMPL, (PYTHON, str(SERVERS / "raw_ws_limit.py"), "--batch"),
             "the same, one write per connection per read (the limit with coalesced writes)"),
        Impl(FLOOR_IMPL, (PYTHON, str(SERVERS / "floor_app.py")),
             "the floor: uvloop, asyncio.Protocol, httptools, Engine.IO answered directly, echo by slicing"),
    )
}
DEFAULT_IMPLS = ("sioserver-uvloop", "sioserver-attach-uvloop", "sioserver-asyncio", "pysio-uvloop", "pysio-asyncio",
                 NODE_IMPL)
if importlib.util.find_spec("orjson") is not None:  # the default JSON when installed: the stdlib beside it
    DEFAULT_IMPLS = (DEFAULT_IMPLS[0], "sioserver-uvloop-stdjson", *DEFAULT_IMPLS[1:])


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    metrics: tuple[tuple[str, str], ...]  # (name, "higher" | "lower" is better)
    full: dict[str, Any]
    smoke: dict[str, Any]
    extra: tuple[str, ...] = ()  # run in this scenario besides the chosen implementations
    only: tuple[str, ...] | None = None  # of the chosen implementations, only these


SCENARIOS: dict[str, Scenario] = {
    s.key: s
    for s in (
        Scenario("A", "connect: 1000 WebSocket Socket.IO connections, 100 handshakes in flight",
                 (("conns_per_s", "higher"),),
                 {"clients": 1000, "inflight": 100}, {"clients": 20, "inflight": 10}),
        Scenario("B", "echo with ack: 100 WebSocket clients in a closed loop, 10 s",
                 (("acks_per_s", "higher"), ("p50_ms", "lower"), ("p99_ms", "lower"),
                  ("acks_per_server_cpu_s", "higher")),
                 {"clients": 100, "duration": 10, "warmup": 1},
                 {"clients": 5, "duration": 0.2, "warmup": 0.05}, extra=(FLOOR_IMPL,)),
        Scenario("C", "broadcast: 1000 WebSocket clients, one sends 200 broadcasts",
                 (("deliveries_per_s", "higher"), ("drain_s", "lower"), ("deliveries_per_server_cpu_s", "higher")),
                 {"clients": 1000, "broadcasts": 200}, {"clients": 20, "broadcasts": 10},
                 extra=(LIMIT_IMPL, BATCHED_LIMIT_IMPL)),
        Scenario("D", "memory: RSS per idle WebSocket connection at 1000 and 5000",
                 (("bytes_per_conn_1000", "lower"), ("bytes_per_conn_5000", "lower")),
                 {"counts": "1000,5000", "settle": 1}, {"counts": "10,20", "settle": 0.05}),
        Scenario("E", "polling echo with ack: 200 polling-only clients in a closed loop, 10 s",
                 (("acks_per_s", "higher"), ("p50_ms", "lower"), ("p99_ms", "lower"),
                  ("acks_per_server_cpu_s", "higher")),
                 {"clients": 200, "duration": 10, "warmup": 1},
                 {"clients": 5, "duration": 0.2, "warmup": 0.05}, extra=(FLOOR_IMPL,)),
        Scenario("F", "cluster broadcast: 2 sioserver processes through Redis, 1000 clients, 200 broadcasts",
                 (("deliveries_per_s", "higher"), ("cross_deliveries_per_s", "higher"), ("drain_s", "lower")),
                 {"clients": 1000, "broadcasts": 200}, {"clients": 20, "broadcasts": 10},
                 only=("sioserver-uvloop", "base-sioserver-uvloop", "sioserver-uvloop-streams")),
    )
}


# ------------------------------------------------------------------------------------ processes

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _raise_nofile() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def pinned(core: int | None, cmd: list[str]) -> list[str]:
    if core is None or shutil.which("taskset") is None:
        return cmd
    return ["taskset", "-c", str(core), *cmd]


class Proc:
    """A child process in its own session (so it and its children are stopped together)."""

    def __init__(self, name: str, cmd: list[str], logdir: Path, **kwargs: Any) -> None:
        self.name = name
        self.log = logdir / f"{name}.{time.monotonic_ns()}.log"
        self._logf = self.log.open("wb")
        self.popen = subprocess.Popen(cmd, stdout=kwargs.pop("stdout", self._logf), stderr=self._logf,
                                      start_new_session=True, cwd=ROOT, **kwargs)
        self.pid = self.popen.pid

    def tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-2000:]
        return ""

    def stop(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(5)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)  # anything the leader left behind
        self._logf.close()


def wait_port(port: int, proc: Proc, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}: {proc.tail()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.02)
    raise RuntimeError(f"{proc.name} did not listen on {port} within {timeout}s: {proc.tail()}")


def cpu_ticks(pid: int) -> int:
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    return 0


def machine_busy_ticks() -> int:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return user + nice + system + irq + softirq + steal


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


@contextlib.contextmanager
def servers(impl: Impl, count: int, logdir: Path, core: int | None, redis_url: str | None = None
            ) -> Iterator[list[tuple[Proc, int]]]:
    started: list[tuple[Proc, int]] = []
    try:
        for i in range(count):
            port = free_port()
            cmd = [*impl.cmd, "--port", str(port)]
            if redis_url:
                cmd += ["--redis", redis_url]
            proc = Proc(f"{impl.name}-{i}", pinned(core, cmd), logdir, env={**os.environ, **dict(impl.env)})
            started.append((proc, port))
        for proc, port in started:
            wait_port(port, proc)
        yield started
    finally:
        for proc, _ in started:
            proc.stop()


@contextlib.contextmanager
def redis_server(logdir: Path, core: int | None) -> Iterator[str]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed")
    port = free_port()
    while port == 6379:
        port = free_port()
    proc = Proc("redis", pinned(core, [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                       "--appendonly", "no", "--daemonize", "no"]), logdir)
    try:
        wait_port(port, proc)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.stop()


def has_redis_adapter() -> bool:
    probe = subprocess.run([PYTHON, "-c", "import sioserver, sys; sys.exit(0 if hasattr(sioserver, 'RedisAdapter') "
                            "else 1)"], cwd=ROOT, capture_output=True, check=False)
    return probe.returncode == 0


# ------------------------------------------------------------------------------------------ runs

@dataclass
class RunResult:
    values: dict[str, float] = field(default_factory=dict)
    context: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def run_loadgen(scenario: Scenario, params: dict[str, Any], ports: list[int], server_pids: list[int],
                logdir: Path, core: int | None, timeout: float) -> RunResult:
    cmd = [NODE, str(LOADGEN), "--scenario", scenario.key, "--port", str(ports[0]),
           "--timeout", str(timeout)]
    if len(ports) > 1:
        cmd += ["--port2", str(ports[1])]
    for key, value in params.items():
        cmd += [f"--{key}", str(value)]
    gen = Proc(f"loadgen-{scenario.key}", pinned(core, cmd), logdir, stdout=subprocess.PIPE,
               stdin=subprocess.PIPE, text=True)
    assert gen.popen.stdout is not None and gen.popen.stdin is not None
    out = RunResult()
    marks: dict[str, tuple[float, int, int, int]] = {}
    rss: dict[str, int] = {}
    load1 = os.getloadavg()[0]
    try:
        for line in gen.popen.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            event = msg.get("event")
            if event == "mark":
                marks[msg["name"]] = (time.monotonic(), sum(cpu_ticks(p) for p in server_pids),
                                      cpu_ticks(gen.pid), machine_busy_ticks())
            elif event == "rss":
                rss[msg["label"]] = sum(rss_bytes(p) for p in server_pids)
                gen.popen.stdin.write("ok\n")
                gen.popen.stdin.flush()
            elif event == "error":
                out.error = msg.get("message", "loadgen error")
            elif event == "result":
                for key, value in msg.items():
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        out.values[key] = float(value)
        gen.popen.wait(30)
    finally:
        gen.stop()
    if out.error is None and gen.popen.returncode != 0:
        out.error = f"loadgen exited with {gen.popen.returncode}: {gen.tail()}"
    if "start" in marks and "end" in marks:
        t0, s0, g0, m0 = marks["start"]
        t1, s1, g1, m1 = marks["end"]
        wall = max(t1 - t0, 1e-9)
        server_cpu = (s1 - s0) / CLK_TCK
        gen_cpu = (g1 - g0) / CLK_TCK
        out.context["server_cpu_frac"] = server_cpu / wall / max(len(server_pids), 1)
        # the work done per second of server CPU: robust to a busy machine, where the server does not
        # get its whole core
        for count, name in (("acks", "acks_per_server_cpu_s"), ("deliveries", "deliveries_per_server_cpu_s")):
            if count in out.values and server_cpu >= 0.05:  # 5 clock ticks, or the ratio is noise
                out.values[name] = out.values[count] / server_cpu
        out.context["foreign_cpu_cores"] = max((m1 - m0) / CLK_TCK - server_cpu - gen_cpu, 0.0) / wall
    if rss:
        before = rss.get("before", 0)
        for label, value in rss.items():
            if label != "before":
                out.values[f"bytes_per_conn_{label}"] = (value - before) / int(label)
                out.values[f"rss_{label}"] = value
        out.values["rss_before"] = before
    if "loadgen_cpu_frac" in out.values:
        out.context["loadgen_cpu_frac"] = out.values.pop("loadgen_cpu_frac")
    out.context["load1"] = load1
    return out


def run_one(scenario: Scenario, impl: Impl, params: dict[str, Any], logdir: Path, pin: bool,
            timeout: float) -> RunResult:
    server_core = 0 if pin else None
    gen_core = 1 if pin else None
    try:
        if scenario.key == "F":
            with redis_server(logdir, gen_core) as url, servers(impl, 2, logdir, server_core, url) as procs:
                time.sleep(0.3)  # let both subscribe
                return run_loadgen(scenario, params, [p for _, p in procs], [p.pid for p, _ in procs],
                                   logdir, gen_core, timeout)
        with servers(impl, 1, logdir, server_core) as procs:
            (proc, port), = procs
            result = run_loadgen(scenario, params, [port], [proc.pid], logdir, gen_core, timeout)
            if result.error and proc.popen.poll() is not None:
                result.error += f" (server exited: {proc.tail()})"
            return result
    except RuntimeError as exc:
        return RunResult(error=str(exc))


# --------------------------------------------------------------------------------------- summary

def scenario_metrics(scenario: Scenario, smoke: bool) -> tuple[tuple[str, str], ...]:
    """The metrics of a scenario; D's are named after its connection counts."""
    if scenario.key == "D":
        counts = (scenario.smoke if smoke else scenario.full)["counts"].split(",")
        return tuple((f"bytes_per_conn_{c}", "lower") for c in counts)
    return scenario.metrics


def summarize(scenario: Scenario, impl: str, runs: list[RunResult], node_medians: dict[str, float],
              limit_medians: dict[str, dict[str, float]], smoke: bool) -> dict[str, Any]:
    line: dict[str, Any] = {"scenario": scenario.key, "title": scenario.title, "impl": impl,
                            "label": IMPLS[impl].label}
    good = [r for r in runs if r.error is None]
    errors = [r.error for r in runs if r.error is not None]
    if errors:
        line["errors"] = errors
    line["repeats"] = len(good)
    if not good:
        return line
    metrics: dict[str, Any] = {}
    for name, better in scenario_metrics(scenario, smoke):
        values = [r.values[name] for r in good if r.values.get(name) is not None]
        if not values:
            continue
        med = statistics.median(values)
        entry: dict[str, Any] = {"median": med, "min": min(values), "max": max(values), "runs": values,
                                 "better": better}
        if impl != NODE_IMPL and node_medians.get(name):
            entry["ratio_to_node"] = med / node_medians[name]
        if scenario.key == "C" and name == "deliveries_per_s" and impl not in limit_medians:
            for limit, key in ((LIMIT_IMPL, "fraction_of_limit"), (BATCHED_LIMIT_IMPL, "fraction_of_batched_limit")):
                if limit_medians[limit].get(name):
                    entry[key] = med / limit_medians[limit][name]
        metrics[name] = entry
    line["metrics"] = metrics
    for key in ("loadgen_cpu_frac", "server_cpu_frac", "foreign_cpu_cores", "load1"):
        values = [r.context[key] for r in good if key in r.context]
        if values:
            line[key] = {"median": statistics.median(values), "max": max(values)}
    gen = line.get("loadgen_cpu_frac")
    line["loadgen_limited"] = bool(gen and gen["max"] >= LOADGEN_LIMIT)
    return line


def fmt(value: float | None, name: str) -> str:
    if value is None:
        return "-"
    if name.endswith("_ms"):
        return f"{value:.2f}"
    if name.endswith("_s") and "per_" not in name:
        return f"{value:.3f}"
    if name.startswith("bytes"):
        return f"{value / 1024:.1f} KiB"
    return f"{value:,.0f}"


def table(lines: list[dict[str, Any]]) -> str:
    out = ["| scenario | metric | implementation | median | min .. max | vs Node | generator CPU | server CPU |",
           "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for line in lines:
        if "skipped" in line:
            out.append(f"| {line['scenario']} | - | {line['impl']} | skipped: {line['skipped']} | | | | |")
            continue
        if not line.get("metrics"):
            out.append(f"| {line['scenario']} | - | {line['impl']} | failed: {'; '.join(line.get('errors', []))[:80]}"
                       " | | | | |")
            continue
        gen = line.get("loadgen_cpu_frac", {}).get("max")
        srv = line.get("server_cpu_frac", {}).get("median")
        for name, m in line["metrics"].items():
            ratio = m.get("ratio_to_node")
            extra = ""
            if "fraction_of_limit" in m:
                extra = f" ({m['fraction_of_limit']:.0%} of limit"
                if "fraction_of_batched_limit" in m:
                    extra += f", {m['fraction_of_batched_limit']:.0%} of batched"
                extra += ")"
            out.append(
                f"| {line['scenario']} | {name} | {line['impl']} | {fmt(m['median'], name)}{extra} | "
                f"{fmt(m['min'], name)} .. {fmt(m['max'], name)} | "
                f"{'' if ratio is None else f'{ratio:.2f}x'} | "
                f"{'' if gen is None else f'{gen:.0%}'}{' (limit)' if line['loadgen_limited'] else ''} | "
                f"{'' if srv is None else f'{srv:.0%}'} |"
            )
    return "\n".join(out)


TARGETS = (
    # (scenario, metric, compare against, comparison, threshold, description)
    ("B", "acks_per_s", NODE_IMPL, ">=", 1.0, "echo with ack >= 1.0x Node"),
    ("C", "deliveries_per_s", NODE_IMPL, ">=", 1.5, "broadcast deliveries/s >= 1.5x Node"),
    ("E", "acks_per_s", NODE_IMPL, ">=", 1.0, "polling echo >= 1.0x Node"),
    ("D", "bytes_per_conn_1000", NODE_IMPL, "<=", 0.75, "memory per idle WebSocket (1000) <= 0.75x Node"),
    ("D", "bytes_per_conn_5000", NODE_IMPL, "<=", 0.75, "memory per idle WebSocket (5000) <= 0.75x Node"),
    ("A", "conns_per_s", NODE_IMPL, ">=", 1.0, "connections/s >= 1.0x Node"),
    ("B", "acks_per_s", "pysio", ">=", 4.0, "echo >= 4x python-socketio (same loop)"),
    ("C", "deliveries_per_s", "pysio", ">=", 5.0, "broadcast >= 5x python-socketio (same loop)"),
)


def targets(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    medians = {(ln["scenario"], ln["impl"]): {k: m["median"] for k, m in ln.get("metrics", {}).items()}
               for ln in lines}
    results = []
    for scen, metric, base, op, threshold, desc in TARGETS:
        for loop in ("uvloop", "asyncio"):
            ours = medians.get((scen, f"sioserver-{loop}"), {}).get(metric)
            base_impl = f"pysio-{loop}" if base == "pysio" else base
            theirs = medians.get((scen, base_impl), {}).get(metric)
            if ours is None or not theirs:
                continue
            ratio = ours / theirs
            met = ratio >= threshold if op == ">=" else ratio <= threshold
            results.append({"target": desc, "impl": f"sioserver-{loop}", "against": base_impl,
                            "ratio": round(ratio, 3), "threshold": f"{op} {threshold}", "met": met})
    return results


# ------------------------------------------------------------------------------------------ main

def _git_head() -> str:
    proc = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    return proc.stdout.strip()


def scenario_impls(scenario: Scenario, impls: list[str]) -> list[str]:
    """The implementations a scenario runs: the chosen ones (plus the limit server where it applies)."""
    names = [n for n in impls if scenario.only is None or n in scenario.only]
    return names + [n for n in scenario.extra if n not in names]


def wait_quiet(threshold: float, max_wait: float) -> None:
    deadline = time.monotonic() + max_wait
    while os.getloadavg()[0] >= threshold and time.monotonic() < deadline:
        print(f"# waiting for a quiet machine: load {os.getloadavg()[0]:.2f} >= {threshold}", file=sys.stderr)
        time.sleep(15)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default="A,B,C,D,E,F")
    parser.add_argument("--impls", default=",".join(DEFAULT_IMPLS),
                        help=f"from {', '.join(IMPLS)} (the raw limit servers always run in C)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat: checks the harness only")
    parser.add_argument("--duration", type=float, default=None, help="override the measured window of B and E (s)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and generator to cores")
    parser.add_argument("--wait-quiet", type=float, default=0.0,
                        help="wait (up to --wait-max s) for the 1-min load to drop below this first")
    parser.add_argument("--wait-max", type=float, default=900.0)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON lines here")
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="a directory holding another sioserver package (e.g. `git archive HEAD~1 sioserver "
                             "| tar -x -C DIR`): adds base-sioserver-uvloop/-asyncio, run from it, for before/after")
    parser.add_argument("--tree", type=Path, default=None,
                        help="run sioserver from this directory (e.g. `git archive HEAD sioserver | tar -x -C DIR`): "
                             "a fixed snapshot while others keep editing the work tree")
    parser.add_argument("--python", dest="pythons", action="append", type=Path, default=[],
                        help="another interpreter (with aiohttp, uvloop, msgpack, redis): adds sioserver-uvloop-pyX.Y "
                             "run by it, from --tree or this work tree; repeatable")
    args = parser.parse_args(argv)
    for python in args.pythons:
        version = subprocess.run([str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        name = f"sioserver-uvloop-py{version}"
        tree = str((args.tree or ROOT).resolve())
        IMPLS[name] = Impl(name, (str(python), *IMPLS["sioserver-uvloop"].cmd[1:]),
                           f"sioserver on uvloop, Python {version}", (("PYTHONPATH", tree),))
    if args.tree is not None:
        for name in ("sioserver-uvloop", "sioserver-uvloop-orjson", "sioserver-uvloop-metrics", "sioserver-asyncio"):
            ours = IMPLS[name]
            IMPLS[name] = Impl(name, ours.cmd, f"{ours.label} ({args.tree})",
                               (("PYTHONPATH", str(args.tree.resolve())),))
    if args.baseline is not None:
        # PYTHONPATH comes before the editable install (the server scripts do not run from the repo root)
        path = str(args.baseline.resolve())
        for loop in ("uvloop", "asyncio"):
            ours = IMPLS[f"sioserver-{loop}"]
            IMPLS[f"base-sioserver-{loop}"] = Impl(f"base-sioserver-{loop}", ours.cmd,
                                                   f"{ours.label} ({args.baseline})", (("PYTHONPATH", path),))

    scenarios = [SCENARIOS[s.strip().upper()] for s in args.scenarios.split(",") if s.strip()]
    impls = [i.strip() for i in args.impls.split(",") if i.strip()]
    for name in impls:
        if name not in IMPLS:
            parser.error(f"unknown implementation {name!r}")
    repeats = 1 if args.smoke else args.repeats
    _raise_nofile()  # inherited by the servers and the generator (5000 connections in D)
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2
    redis_ok = has_redis_adapter()
    if args.wait_quiet:
        wait_quiet(args.wait_quiet, args.wait_max)

    logdir = Path(tempfile.mkdtemp(prefix="sioserver-bench-"))
    started = time.time()
    load_start = os.getloadavg()
    print(f"# bench: repeats={repeats} smoke={args.smoke} pinned={pin} load={load_start[0]:.2f}/"
          f"{load_start[1]:.2f}/{load_start[2]:.2f} logs={logdir}", file=sys.stderr)
    runs: dict[tuple[str, str], list[RunResult]] = {}
    skipped: dict[tuple[str, str], str] = {}

    def params_for(scenario: Scenario) -> tuple[dict[str, Any], float]:
        params = dict(scenario.smoke if args.smoke else scenario.full)
        if args.duration is not None and "duration" in params:
            params["duration"] = args.duration
        budget = 60 + float(params.get("duration", 0)) + float(params.get("warmup", 0))
        return params, budget if args.smoke else budget + 240

    def record(rep: int, scenario: Scenario, name: str, result: RunResult) -> None:
        runs.setdefault((scenario.key, name), []).append(result)
        summary = ", ".join(f"{k}={v:.4g}" for k, v in result.values.items())
        ctx = ", ".join(f"{k}={v:.2f}" for k, v in result.context.items())
        print(f"# [{rep + 1}/{repeats}] {scenario.key} {name}: {result.error or summary} ({ctx})",
              file=sys.stderr, flush=True)

    for scenario in scenarios:
        if scenario.key == "F" and not redis_ok:
            for name in scenario_impls(scenario, impls):
                skipped[(scenario.key, name)] = "no RedisAdapter"
    todo = [s for s in scenarios if not (s.key == "F" and not redis_ok)]
    try:
        if args.smoke:
            # Checks the harness, measures nothing: one server per implementation for every scenario,
            # all implementations at once.
            def series(name: str) -> None:
                mine = [s for s in todo if name in scenario_impls(s, impls)]
                for scenario in [s for s in mine if s.key == "F"]:
                    params, budget = params_for(scenario)
                    record(0, scenario, name, run_one(scenario, IMPLS[name], params, logdir, False, budget))
                mine = [s for s in mine if s.key != "F"]
                if not mine:
                    return
                try:
                    with servers(IMPLS[name], 1, logdir, None) as procs:
                        (proc, port), = procs
                        for scenario in mine:
                            params, budget = params_for(scenario)
                            record(0, scenario, name,
                                   run_loadgen(scenario, params, [port], [proc.pid], logdir, None, budget))
                except RuntimeError as exc:
                    for scenario in mine:
                        record(0, scenario, name, RunResult(error=str(exc)))

            everyone = list(dict.fromkeys(n for s in todo for n in scenario_impls(s, impls)))
            with ThreadPoolExecutor(len(everyone) or 1) as pool:
                list(pool.map(series, everyone))
        else:
            for rep in range(repeats):
                for scenario in todo:
                    names = scenario_impls(scenario, impls)
                    shift = rep % len(names)
                    for name in names[shift:] + names[:shift]:
                        params, budget = params_for(scenario)
                        record(rep, scenario, name, run_one(scenario, IMPLS[name], params, logdir, pin, budget))
    finally:
        if not args.keep_logs:
            shutil.rmtree(logdir, ignore_errors=True)

    lines: list[dict[str, Any]] = []
    for scenario in scenarios:
        def medians(impl: str, scenario: Scenario = scenario) -> dict[str, float]:
            good = [r for r in runs.get((scenario.key, impl), []) if r.error is None]
            return {name: statistics.median(vals) for name, _ in scenario_metrics(scenario, args.smoke)
                    if (vals := [r.values[name] for r in good if name in r.values])}

        node_medians = medians(NODE_IMPL)
        limit_medians = {LIMIT_IMPL: medians(LIMIT_IMPL), BATCHED_LIMIT_IMPL: medians(BATCHED_LIMIT_IMPL)}
        for name in scenario_impls(scenario, impls):
            if (scenario.key, name) in skipped:
                lines.append({"scenario": scenario.key, "title": scenario.title, "impl": name,
                              "skipped": skipped[(scenario.key, name)]})
            elif (scenario.key, name) in runs:
                lines.append(summarize(scenario, name, runs[(scenario.key, name)], node_medians, limit_medians,
                                       args.smoke))
    load_end = os.getloadavg()
    meta = {"meta": True, "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
            "seconds": round(time.time() - started, 1), "repeats": repeats, "pinned": pin,
            "load_start": [round(x, 2) for x in load_start], "load_end": [round(x, 2) for x in load_end],
            "sioserver": str(args.tree) if args.tree else "work tree", "commit": _git_head(),
            "cpus": os.cpu_count()}
    target_lines = targets(lines)
    out_lines = [meta, *lines, *({"target": True, **t} for t in target_lines)]
    text = "\n".join(json.dumps(x) for x in out_lines)
    print(text, flush=True)
    if args.out:
        args.out.write_text(text + "\n")
    print("\n" + table(lines))
    if target_lines:
        print("\n| target | sioserver | against | ratio | met |\n| --- | --- | --- | ---: | --- |")
        for t in target_lines:
            print(f"| {t['target']} | {t['impl']} | {t['against']} | {t['ratio']:.2f}x | "
                  f"{'yes' if t['met'] else 'NO'} |")
    failed = any(ln.get("errors") for ln in lines)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
