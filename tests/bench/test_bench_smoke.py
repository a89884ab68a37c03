"""A smoke run of the benchmark (bench/run.py --smoke): tiny sizes, every scenario, every implementation.

Not a timed test: it checks that the harness starts every server (sioserver on asyncio and uvloop,
python-socketio on both, Node socket.io, the raw WebSocket limit server), that the load generator
completes every scenario against each, and that the output is one well-formed JSON line per
scenario x implementation with every metric.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"


def _driver() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", BENCH / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module
    spec.loader.exec_module(module)
    return module


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def test_smoke_run_gives_a_json_line_per_scenario_and_implementation(bench_node_modules: Path, tmp_path: Path) -> None:
    driver = _driver()
    out = tmp_path / "smoke.jsonl"
    proc = subprocess.run([sys.executable, str(BENCH / "run.py"), "--smoke", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"

    lines = [json.loads(line) for line in out.read_text().splitlines()]
    meta, rest = lines[0], lines[1:]
    assert meta["meta"] is True and meta["repeats"] == 1
    assert len(meta["load_start"]) == 3
    results = {(ln["scenario"], ln["impl"]): ln for ln in rest if "scenario" in ln}
    results_all = dict(results)
    targets = [ln for ln in rest if ln.get("target")]

    has_redis_adapter = driver.has_redis_adapter()
    impls = list(driver.DEFAULT_IMPLS)
    for key, scenario in driver.SCENARIOS.items():
        for impl in driver.scenario_impls(scenario, impls):
            line = results.pop((key, impl), None)
            assert line is not None, f"no JSON line for scenario {key} x {impl}"
            if "skipped" in line:
                assert key == "F" and not has_redis_adapter, line
                assert line["skipped"] == "no RedisAdapter"
                continue
            assert "errors" not in line, line
            assert line["repeats"] == 1
            for name, better in driver.scenario_metrics(scenario, smoke=True):
                if "per_server_cpu" in name and name not in line["metrics"]:
                    continue  # a smoke window can be shorter than one clock tick of server CPU time
                metric = line["metrics"].get(name)
                assert metric is not None, f"{key} x {impl}: no {name} in {line}"
                assert metric["better"] == better
                assert all(_finite(metric[k]) for k in ("median", "min", "max")), metric
                assert metric["min"] <= metric["median"] <= metric["max"]
                assert len(metric["runs"]) == 1
                node_has_it = name in results_all.get((key, driver.NODE_IMPL), {}).get("metrics", {})
                if impl != driver.NODE_IMPL and key != "F" and ("per_server_cpu" not in name or node_has_it):
                    assert _finite(metric["ratio_to_node"]), metric  # Node's CPU, too, can be under a tick
            if key in "ABCEF":
                assert _finite(line["loadgen_cpu_frac"]["median"]), line
                assert isinstance(line["loadgen_limited"], bool)
            if key == "C" and impl not in (driver.LIMIT_IMPL, driver.BATCHED_LIMIT_IMPL):
                assert _finite(line["metrics"]["deliveries_per_s"]["fraction_of_limit"])
                assert _finite(line["metrics"]["deliveries_per_s"]["fraction_of_batched_limit"])
    assert not results, f"unexpected lines: {sorted(results)}"
    assert targets, "no target lines"
    assert all(isinstance(t["met"], bool) and _finite(t["ratio"]) for t in targets)
    assert "| scenario | metric | implementation |" in proc.stdout


def test_micro_polling_runs_every_echo_through_the_front() -> None:
    """bench/micro_polling.py on a few hundred rounds: it checks each POST is answered ``ok`` and each parked
    GET gets its ack (``43...``), so a broken polling path fails here, not only in the bench."""
    done = subprocess.run([sys.executable, str(BENCH / "micro_polling.py"), "--repeats", "1", "--rounds", "300"],
                          check=False, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "us per echo" in done.stdout, done.stdout
