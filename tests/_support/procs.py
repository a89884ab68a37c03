"""Server subprocesses: started with their output (stdout and stderr together) read by a thread into a
log file, ready when a line matches (``READY <port>`` by default), stopped with SIGTERM then SIGKILL.

The reading thread drains the pipe for the whole life of the process, so a chatty server never blocks
on a full pipe, and start-up waits on an event the thread sets, not on a sleep.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
READY_PORT = re.compile(r"^READY (\d+)\s*$")


class StartError(AssertionError):
    """The process exited, or printed no ready line in time."""


class Process:
    """One subprocess and its log. ``start()`` returns the match of the ready line."""

    def __init__(self, argv: Sequence[str], *, log_path: Path, env: Mapping[str, str] | None = None,
                 cwd: Path | str | None = None, ready: re.Pattern[str] | None = READY_PORT,
                 new_session: bool = False, name: str = "") -> None:
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.ready = ready
        self.new_session = new_session
        self.name = name or Path(self.argv[1] if len(self.argv) > 1 else self.argv[0]).name
        self.proc: subprocess.Popen[bytes] | None = None
        self.match: re.Match[str] | None = None
        self._lines: list[str] = []
        self._signal = threading.Event()
        self._reader: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------ life

    def start(self, timeout: float = 20.0) -> re.Match[str] | None:
        """Start and wait for the ready line (None when ``ready`` is None); StartError otherwise."""
        assert self.proc is None, "a Process starts once; make a new one to restart"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=self.env, cwd=self.cwd,
                                     start_new_session=self.new_session)
        self._reader = threading.Thread(target=self._read, name=f"log {self.name}", daemon=True)
        self._reader.start()
        if self.ready is None:
            return None
        self._signal.wait(timeout)
        if self.match is None:
            ended = (self._reader is not None and not self._reader.is_alive()) or self._signal.is_set()
            code = self.wait_exit(5) if ended else self.proc.poll()
            self.stop()
            state = f"exit {code}" if code is not None else f"no ready line within {timeout} s"
            raise StartError(f"{self.name} did not start ({state})\n{self.context()}")
        return self.match

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        with self.log_path.open("ab") as log:
            for raw in iter(self.proc.stdout.readline, b""):
                log.write(raw)
                log.flush()
                line = raw.decode(errors="replace").rstrip("\r\n")
                self._lines.append(line)
                if self.match is None and self.ready is not None:
                    m = self.ready.search(line)
                    if m:
                        self.match = m
                        self._signal.set()
        self._signal.set()

    @property
    def port(self) -> int:
        """The port of a ``READY <port>`` line."""
        assert self.match is not None, f"{self.name} is not started"
        return int(self.match.group(1))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def wait_exit(self, timeout: float) -> int | None:
        """The exit code, or None if still running after ``timeout``."""
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        if self._reader is not None:
            self._reader.join(timeout=5)  # all it printed is in output() from now on
        return code

    def send(self, sig: int) -> None:
        if self.alive:
            assert self.proc is not None
            if self.new_session:
                os.killpg(self.proc.pid, sig)
            else:
                self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 5.0) -> int | None:
        """``sig``, then SIGKILL after ``timeout``; returns the exit code. Safe to call again."""
        if self.proc is None:
            return None
        if self.alive:
            self.send(sig)
            if self.wait_exit(timeout) is None:
                self.send(signal.SIGKILL)
                self.proc.wait(timeout=5)
        if self._reader is not None:
            self._reader.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode

    def kill(self) -> int | None:
        """SIGKILL: the process dies as in a crash."""
        return self.stop(signal.SIGKILL)

    # ------------------------------------------------------------------------------------------- log

    def output(self) -> str:
        """Everything it printed so far."""
        return "\n".join(self._lines)

    def context(self, limit: int = 6000) -> str:
        """How it was started and what it printed, for failure messages."""
        log = self.output()
        if len(log) > limit:
            log = "[…]\n" + log[-limit:]
        return f"{self.name}: {' '.join(self.argv)}\n--- output ({self.log_path}) ---\n{log}"


def start_all(processes: Sequence[Process], timeout: float = 20.0) -> None:
    """Start several processes at once and wait for each one's ready line (one deadline for all)."""
    errors: list[str] = []
    threads = [threading.Thread(target=_start_into, args=(p, timeout, errors)) for p in processes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        for p in processes:
            p.stop()
        pytest.fail("\n\n".join(errors), pytrace=False)


def _start_into(process: Process, timeout: float, errors: list[str]) -> None:
    try:
        process.start(timeout)
    except StartError as exc:
        errors.append(str(exc))


def start_or_fail(process: Process, timeout: float = 20.0) -> Process:
    """``process.start()``; a start failure fails the test with the process's output."""
    try:
        process.start(timeout)
    except StartError as exc:
        pytest.fail(str(exc), pytrace=False)
    return process


def flags(**options: object) -> list[str]:
    """Command-line flags from keyword options: ``ping_interval=0.3`` -> ``--ping-interval 0.3``; None is left
    out, True is a bare ``--flag``, False is left out."""
    argv: list[str] = []
    for name, value in options.items():
        if value is None or value is False:
            continue
        argv.append("--" + name.replace("_", "-"))
        if value is not True:
            argv.append(str(value))
    return argv


def python_env(**extra: str) -> dict[str, str]:
    """The environment for a Python helper script: the repository (tests.*) and clients/python importable."""
    env = dict(os.environ)
    paths = [str(ROOT), str(ROOT / "clients" / "python"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env
