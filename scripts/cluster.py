#!/usr/bin/env python3
"""The docker-compose topology on one machine, without Docker: redis-server, N chat-demo workers
sharing broadcasts through Redis, and nginx (Debian's) with sticky sessions in front of them.

    python scripts/cluster.py --port 8080 [--workers 3] [--balance round-robin]

``--balance round-robin``: no ``ip_hash``, each request to the next worker; the workers forward each
other's sessions' requests (they share a RedisAdapter, see sioserver/integrations/nodes.py).

Prints ``READY <json>`` (the nginx URL, the workers' URLs, the Redis URL) once everything answers,
then runs until SIGINT/SIGTERM and stops every process it started. Installs nginx and redis-server
with apt when they are missing (as root). Used by tests/deploy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "clients" / "browser" / "demo.py"

NGINX_CONF = """\
worker_processes 1;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    upstream sioserver {{
{balance}{servers}
    }}
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    server {{
        listen {host}:{port};
        location / {{
            proxy_pass http://sioserver;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_buffering off;
            proxy_read_timeout 75s;
            client_max_body_size 2m;
            client_body_buffer_size 2m;  # in memory: the temp dir may be unreadable to nginx's user
        }}
    }}
}}
"""


def nginx_conf(workdir: Path, ports: list[int], host: str, port: int, balance: str = "ip_hash") -> Path:
    """An nginx.conf in ``workdir`` (temp dirs made) for the upstream ``127.0.0.1:<ports>``; ``balance``
    ``ip_hash`` (sticky) or ``round-robin`` (nginx's default: no stickiness at all)."""
    if balance not in ("ip_hash", "round-robin"):
        raise ValueError(f"balance: ip_hash or round-robin, not {balance!r}")
    (workdir / "tmp").mkdir(exist_ok=True)
    servers = "\n".join(f"        server 127.0.0.1:{p};" for p in ports)
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, servers=servers, host=host, port=port,
                                      balance="        ip_hash;\n" if balance == "ip_hash" else ""))
    return conf


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"cluster: {what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"cluster: {what} did not listen on {port} within {timeout}s")


def ensure(binary: str, package: str) -> str:
    path = shutil.which(binary) or (f"/usr/sbin/{binary}" if os.path.exists(f"/usr/sbin/{binary}") else None)
    if path:
        return path
    if os.geteuid() != 0:
        raise SystemExit(f"cluster: {binary} is missing; install the Debian package {package}")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", package], check=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    path = shutil.which(binary) or f"/usr/sbin/{binary}"
    if not os.path.exists(path):
        raise SystemExit(f"cluster: installing {package} did not provide {binary}")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="nginx's port (0: a free one)")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--redis-port", type=int, default=0, help="0: start a redis-server on a free port")
    parser.add_argument("--balance", choices=("ip_hash", "round-robin"), default="ip_hash",
                        help="nginx's upstream: sticky (ip_hash, the default) or round-robin")
    args = parser.parse_args(argv)

    nginx = ensure("nginx", "nginx")
    redis_server = ensure("redis-server", "redis-server")
    workdir = Path(tempfile.mkdtemp(prefix="sioserver-cluster-"))
    procs: list[subprocess.Popen[bytes]] = []

    stopping: list[int] = []

    def on_signal(signum: int, _: object) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    status = 0
    try:
        redis_port = args.redis_port
        if not redis_port:
            redis_port = free_port()
            proc = subprocess.Popen([redis_server, "--port", str(redis_port), "--bind", "127.0.0.1",
                                     "--save", "", "--appendonly", "no", "--dir", str(workdir)],
                                    stdout=subprocess.DEVNULL)
            procs.append(proc)
            wait_port(redis_port, proc, "redis-server")
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        worker_ports = [free_port() for _ in range(args.workers)]
        for port in worker_ports:
            proc = subprocess.Popen([sys.executable, str(DEMO), "--host", "127.0.0.1", "--port", str(port),
                                     "--redis", redis_url], stdout=subprocess.DEVNULL)
            procs.append(proc)
        for port, proc in zip(worker_ports, procs[-args.workers:], strict=True):
            wait_port(port, proc, f"worker on {port}")
        port = args.port or free_port()
        conf = nginx_conf(workdir, worker_ports, args.host, port, args.balance)
        proc = subprocess.Popen([nginx, "-p", str(workdir), "-c", str(conf), "-g", "daemon off;"])
        procs.append(proc)
        wait_port(port, proc, "nginx")
        print("READY " + json.dumps({
            "url": f"http://{args.host}:{port}",
            "workers": [f"http://127.0.0.1:{p}" for p in worker_ports],
            "redis": redis_url,
        }), flush=True)
        while not stopping and all(p.poll() is None for p in procs):
            time.sleep(0.2)
        if not stopping:
            dead = [str(p.args) for p in procs if p.poll() is not None]
            print(f"cluster: a process exited ({dead}); stopping", file=sys.stderr, flush=True)
            status = 1
    finally:
        stop(procs, workdir)
    sys.exit(status)


def stop(procs: list[subprocess.Popen[bytes]], workdir: Path, timeout: float = 5.0) -> None:
    """Terminate what was started, last first (killed after ``timeout`` s), and remove its directory."""
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.terminate()
    for proc in reversed(procs):
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    shutil.rmtree(workdir, ignore_errors=True)

if __name__ == "__main__":
    main()
