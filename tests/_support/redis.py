"""A redis-server of the tests' own on a free port (never the one on 6379): no persistence, killable and
restartable on the same port."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from .ports import free_port
from .wait import wait_until_sync


def ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """``start()``, ``kill()`` (as in a crash) and ``start()`` again on the same port; ``stop()``."""

    def __init__(self, binary: str, logdir: Path) -> None:
        self.binary = binary
        self.port = free_port()
        self.logdir = logdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.extra: list[str] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _argv(self) -> list[str]:
        log = self.logdir / f"redis-{self.port}-{self.starts}.log"
        return [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--protected-mode", "no", "--daemonize", "no", "--logfile", str(log), *self.extra]

    def start(self, timeout: float = 10.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        log = self.logdir / f"redis-{self.port}-{self.starts}.log"
        argv = self._argv()

        def up() -> bool:
            # the port may take a moment to be free again after a kill: a server that exits is started again
            if self.proc is None or self.proc.poll() is not None:
                self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL)
            return ping(self.port)

        try:
            wait_until_sync(up, timeout=timeout, what=f"redis-server on port {self.port} did not start; see {log}")
        except AssertionError:
            self.kill()
            raise

    def ping(self) -> bool:
        return ping(self.port)

    def answered_at(self, timeout: float = 10.0) -> float:
        """``time.monotonic()`` of the first PONG, polling every millisecond (when Redis answers again)."""
        deadline = time.monotonic() + timeout
        while not ping(self.port):
            assert time.monotonic() < deadline, f"redis-server on port {self.port} does not answer"
            time.sleep(0.001)
        return time.monotonic()

    def restart(self, timeout: float = 10.0) -> float:
        """Start a killed server again on its port; ``time.monotonic()`` when it first answered a PING
        (polled every millisecond, so the moment is known to a millisecond)."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is None or self.proc.poll() is not None:  # the port may not be free yet: again
                self.proc = subprocess.Popen(self._argv(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL)
            if ping(self.port):
                return time.monotonic()
            assert time.monotonic() < deadline, f"redis-server on port {self.port} did not start again"
            time.sleep(0.001)

    def signal(self, signum: int) -> None:
        assert self.proc is not None and self.proc.poll() is None
        os.kill(self.proc.pid, signum)

    def kill(self) -> None:
        """SIGKILL: Redis dies as in a crash (connections reset, nothing saved)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()


def command(port: int, *args: str, timeout: float = 2.0) -> bytes:
    """One command to 127.0.0.1:port (inline, no redis-py), its raw reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args))
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


class RedisCluster:
    """A Redis Cluster of ``masters`` ``redis-server --cluster-enabled yes`` processes (no replicas) made
    with ``redis-cli --cluster create``. ``restart(i)`` kills node i and starts it again on its port with
    its nodes.conf, so it comes back as the same node serving the same slots."""

    def __init__(self, binary: str, logdir: Path, masters: int = 3) -> None:
        self.binary = binary
        self.logdir = logdir
        self.nodes: list[RedisServer] = []
        used: set[int] = set()
        for i in range(masters):
            port = bus = 0
            while not port or port in used or bus in used or port == bus:
                port, bus = free_port(), free_port()
            used |= {port, bus}
            node = RedisServer(binary, logdir / f"node{i}")
            node.port = port
            (logdir / f"node{i}").mkdir(parents=True, exist_ok=True)
            node.extra = ["--cluster-enabled", "yes", "--cluster-port", str(bus), "--cluster-config-file",
                          str(logdir / f"node{i}" / "nodes.conf"), "--cluster-node-timeout", "2000",
                          "--cluster-require-full-coverage", "no", "--dir", str(logdir / f"node{i}")]
            self.nodes.append(node)

    @property
    def url(self) -> str:
        """Two seeds, as a deployment would give."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:2])

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        cli = str(Path(self.binary).with_name("redis-cli"))
        subprocess.run([cli, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in self.nodes),
                        "--cluster-replicas", "0", "--cluster-yes"], check=True, capture_output=True, timeout=30)
        self.wait_ok()

    def wait_ok(self, timeout: float = 20.0) -> None:
        def ok() -> bool:
            for node in self.nodes:
                try:
                    info = command(node.port, "CLUSTER", "INFO")
                except OSError:
                    return False
                if b"cluster_state:ok" not in info or b"cluster_slots_ok:16384" not in info:
                    return False
            return True

        wait_until_sync(ok, timeout=timeout, what=f"the cluster on {[n.port for n in self.nodes]} is not ok")

    def slot_owner(self, slot: int) -> int:
        """The index of the node serving ``slot``."""
        import redis  # the tests' own synchronous client, for its parser

        for node in self.nodes:
            try:
                client = redis.Redis(port=node.port, socket_timeout=2)
                ranges = client.execute_command("CLUSTER", "SLOTS")  # type: ignore[no-untyped-call]
                client.close()
            except (OSError, redis.RedisError):
                continue
            ports = [n.port for n in self.nodes]
            for first, last, master, *_ in ranges:
                if first <= slot <= last:
                    return ports.index(int(master[1]))
        raise AssertionError(f"no node serves slot {slot}")

    def node_id(self, i: int) -> str:
        return command(self.nodes[i].port, "CLUSTER", "MYID").split(b"\r\n")[1].decode()

    def restart(self, i: int, down: float) -> float:
        """Kill node i, start it again ``down`` seconds later; the moment it answered a PING."""
        node = self.nodes[i]
        node.kill()
        time.sleep(down)
        return node.restart()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class RedisSentinels:
    """A master, a replica of it and ``count`` sentinels (``redis-server sentinel.conf --sentinel``)
    watching it as ``service``: ``kill_master()`` and the sentinels fail over to the replica."""

    def __init__(self, binary: str, logdir: Path, service: str = "mymaster", count: int = 3) -> None:
        self.binary = binary
        self.logdir = logdir
        self.service = service
        self.master = RedisServer(binary, logdir)
        self.replica = RedisServer(binary, logdir)
        # replication writes an RDB for the full sync: in the test's directory, not the working one
        self.master.extra = ["--dir", str(logdir)]
        self.replica.extra = ["--dir", str(logdir), "--replicaof", "127.0.0.1", str(self.master.port)]
        self.ports = [free_port() for _ in range(count)]
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return "redis+sentinel://" + ",".join(f"127.0.0.1:{p}" for p in self.ports) + f"/{self.service}/0"

    def start(self) -> None:
        self.master.start()
        self.replica.start()
        wait_until_sync(lambda: b"master_link_status:up" in command(self.replica.port, "INFO", "replication"),
                        timeout=10, what="the replica did not sync with the master")
        quorum = len(self.ports) // 2 + 1
        for i, port in enumerate(self.ports):
            conf = self.logdir / f"sentinel-{i}.conf"
            conf.write_text(f"port {port}\nbind 127.0.0.1\ndaemonize no\nprotected-mode no\n"
                            f"logfile {self.logdir / f'sentinel-{i}.log'}\ndir {self.logdir}\n"
                            f"sentinel monitor {self.service} 127.0.0.1 {self.master.port} {quorum}\n"
                            f"sentinel down-after-milliseconds {self.service} 1000\n"
                            f"sentinel failover-timeout {self.service} 5000\n")
            self.procs.append(subprocess.Popen([self.binary, str(conf), "--sentinel"], stdin=subprocess.DEVNULL,
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

        def settled() -> bool:  # every sentinel knows the replica and the other sentinels: a failover can happen
            for port in self.ports:
                try:
                    info = command(port, "SENTINEL", "MASTER", self.service)
                except OSError:
                    return False
                fields = info.split(b"\r\n")[2::2]
                values = dict(zip(fields[0::2], fields[1::2], strict=False))
                if values.get(b"num-slaves") != b"1" or values.get(b"num-other-sentinels") != str(
                        len(self.ports) - 1).encode():
                    return False
            return True

        wait_until_sync(settled, timeout=30, what="the sentinels did not discover each other and the replica")

    def master_port(self) -> int:
        """The master's port as the first sentinel says."""
        reply = command(self.ports[0], "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
        return int(reply.split(b"\r\n")[4])

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
        self.master.stop()
        self.replica.stop()
