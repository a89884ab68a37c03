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

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _argv(self) -> list[str]:
        log = self.logdir / f"redis-{self.port}-{self.starts}.log"
        return [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--protected-mode", "no", "--daemonize", "no", "--logfile", str(log)]

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
