"""``python -m sioserver doctor``: each diagnosis against a real deployment.

Four deployments, diagnosed in parallel (the idle check waits one ping interval, 25 s, in each):

- the chat demo directly (clients/browser/demo.py);
- the demo cluster behind nginx with sticky sessions (scripts/cluster.py, as tests/deploy runs it);
- nginx in front of one demo worker that does not pass the Upgrade and Connection headers;
- nginx round-robin (not sticky) in front of two demo workers, with ``proxy_read_timeout 5s``, shorter
  than the ping interval.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests._support import tools
from tests._support.ports import accepts, free_port
from tests._support.procs import ROOT, Process, start_all
from tests._support.wait import wait_until_sync

DEMO = ROOT / "clients" / "browser" / "demo.py"
NGINX = """\
worker_processes 1;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    upstream demo {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://demo;
            proxy_http_version 1.1;
{extra}
            proxy_set_header Host $http_host;
            proxy_buffering off;
            proxy_read_timeout {read_timeout};
        }}
    }}
}}
"""
# what an nginx copied from a plain HTTP site looks like: HTTP/1.1 upstream, but no Upgrade passed on
STRIP_UPGRADE = '            proxy_set_header Connection "";'
PASS_UPGRADE = "            proxy_set_header Upgrade $http_upgrade;\n            proxy_set_header Connection \"upgrade\";"


def demo(tmp: Path, name: str) -> Process:
    return Process([sys.executable, "-u", str(DEMO), "--host", "127.0.0.1", "--port", "0"], cwd=ROOT,
                   log_path=tmp / f"{name}.log", ready=re.compile(r"^sioserver demo on http://127\.0\.0\.1:(\d+)$"),
                   name=name)


def nginx(tmp: Path, name: str, upstreams: list[Process], extra: str, read_timeout: str) -> Process:
    workdir = tmp / name
    (workdir / "tmp").mkdir(parents=True)
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX.format(dir=workdir, port=port, extra=extra, read_timeout=read_timeout,
                                 servers="\n".join(f"        server 127.0.0.1:{u.port};" for u in upstreams)))
    proc = Process([tools.nginx(), "-p", str(workdir), "-c", str(conf), "-g", "daemon off;"],
                   log_path=workdir / "out.log", ready=None, name=name)
    proc.start()
    wait_until_sync(lambda: accepts(port), timeout=10, what=lambda: f"nginx {name} on {port}\n{proc.context()}")
    proc.public_url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    return proc


def doctor(url: str, *args: str) -> tuple[int, dict[str, str]]:
    proc = subprocess.run([sys.executable, "-m", "sioserver", "doctor", url, *args], capture_output=True,
                          text=True, timeout=120, check=False, cwd=ROOT)
    lines = proc.stdout.strip().splitlines()
    checks = {}
    for line in lines:
        status, _, rest = line.partition(" ")
        name, _, detail = rest.partition(": ")
        checks[name] = f"{status} {detail}"
    assert lines and proc.stderr == "", (proc.stdout, proc.stderr)
    return proc.returncode, checks


@pytest.fixture(scope="module")
def diagnoses(browser_node_modules: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[dict[str, tuple[int, dict[str, str]]]]:
    tmp = tmp_path_factory.mktemp("doctor")
    tools.redis_server()
    direct, strip_worker, rr_a, rr_b = (demo(tmp, name) for name in ("direct", "strip-worker", "rr-a", "rr-b"))
    cluster = Process([sys.executable, str(ROOT / "scripts" / "cluster.py"), "--port", "0", "--workers", "2"],
                      log_path=tmp / "cluster.log", ready=re.compile(r"^READY (\{.*\})\s*$"), new_session=True,
                      name="cluster")
    procs = [direct, strip_worker, rr_a, rr_b, cluster]
    try:
        start_all(procs, timeout=60)
        assert cluster.match is not None
        behind_cluster = json.loads(cluster.match.group(1))["url"]
        stripping = nginx(tmp, "strip", [strip_worker], STRIP_UPGRADE, "75s")
        procs.append(stripping)
        round_robin = nginx(tmp, "round-robin", [rr_a, rr_b], PASS_UPGRADE, "5s")
        procs.append(round_robin)
        runs = {
            "direct": (direct.url, "--origin", direct.url),
            "cluster": (behind_cluster, "--origin", behind_cluster),
            "strip": (stripping.public_url,),  # type: ignore[attr-defined]
            "round_robin": (round_robin.public_url,),  # type: ignore[attr-defined]
        }
        started = time.monotonic()
        with ThreadPoolExecutor(len(runs)) as pool:
            futures = {name: pool.submit(doctor, *argv) for name, argv in runs.items()}
            results = {name: future.result() for name, future in futures.items()}
        print(f"doctor runs took {time.monotonic() - started:.1f} s")
        for name, (code, checks) in results.items():
            print(name, code, json.dumps(checks, indent=1))
        yield results
    finally:
        for proc in reversed(procs):
            proc.stop(timeout=15)


def test_the_demo_directly_passes_every_check(diagnoses: dict[str, tuple[int, dict[str, str]]]) -> None:
    code, checks = diagnoses["direct"]
    assert list(checks) == ["handshake", "websocket", "upgrade", "sticky", "cors", "idle"]
    assert all(value.startswith("PASS") for value in checks.values()), checks
    assert "pingInterval 25000 ms" in checks["handshake"]
    assert code == 0


def test_the_sticky_nginx_cluster_passes_every_check(diagnoses: dict[str, tuple[int, dict[str, str]]]) -> None:
    code, checks = diagnoses["cluster"]
    assert all(value.startswith("PASS") for value in checks.values()), checks
    assert code == 0


def test_a_proxy_that_strips_upgrade_is_named(diagnoses: dict[str, tuple[int, dict[str, str]]]) -> None:
    code, checks = diagnoses["strip"]
    assert checks["handshake"].startswith("PASS")
    assert checks["websocket"].startswith("FAIL") and "the proxy strips Upgrade" in checks["websocket"]
    assert "proxy_set_header Upgrade $http_upgrade" in checks["websocket"]
    assert checks["upgrade"].startswith("SKIP")
    # long-polling through it is fine: sticky (one worker) and idle-safe (75 s > 25 s)
    assert checks["sticky"].startswith("PASS") and checks["idle"].startswith("PASS"), checks
    assert code == 1


def test_a_round_robin_proxy_with_a_short_timeout(diagnoses: dict[str, tuple[int, dict[str, str]]]) -> None:
    code, checks = diagnoses["round_robin"]
    assert checks["handshake"].startswith("PASS") and checks["websocket"].startswith("PASS")
    assert checks["sticky"].startswith("FAIL") and "the balancer is not sticky" in checks["sticky"]
    assert "ip_hash" in checks["sticky"]
    # every other request reaches the other worker: the upgrade of the session too
    assert checks["upgrade"].startswith("FAIL") and "Session ID unknown" in checks["upgrade"], checks
    # the WebSocket, idle for 5 s, is cut before the first ping at 25 s
    assert checks["idle"].startswith("FAIL an idle WebSocket was closed after 5."), checks["idle"]
    assert "before the server's first ping" in checks["idle"] and "proxy_read_timeout" in checks["idle"]
    assert code == 1
