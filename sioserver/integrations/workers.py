"""``run(sio, workers=N)`` and ``python -m sioserver app:sio --workers N``: N processes on one port.

The supervisor (the process that imported the app) makes a private temporary directory (mode 0700),
then forks the workers. Each worker opens its own listening socket on the port with ``SO_REUSEPORT``
(the kernel spreads new connections over them), builds its own event loop, and serves as the
single-process ``run`` does, graceful shutdown included. The workers talk over Unix sockets in that
directory:

* ``node-<i>.sock``: the cluster protocol (:mod:`sioserver.adapters.local`), the default adapter when
  the app gave none, so broadcasts, rooms, ``fetch_sockets``, ``server_side_emit`` and acks span them;
* ``http-<i>.sock``: worker ``i``'s HTTP front. Worker ``i`` hands out sids starting ``"<i>."``; a
  request for a sid that is another worker's is forwarded there (:mod:`.forward`) and the answer
  relayed, so no stickiness is needed between the workers of one machine.

With ``metrics=True``, a ``GET /metrics`` of any worker answers the figures of all of them, each sample
labelled ``worker="<i>"``: it fetches the others' own over their ``http-<j>.sock`` (:mod:`.group_metrics`).
``/health`` stays the worker's own (what a load balancer's probe of the port should see).

With a Redis adapter, worker ``i`` is node ``<machine>-<i>`` of the wider cluster
(:mod:`.nodes`): its sids start ``"<machine>-<i>."``, the other workers of the machine still forward to
it over ``http-<i>.sock``, and other machines' nodes over a private TCP door of its own (port chosen by
the system, registered in Redis).

The supervisor restarts a worker that dies (at most once a second per worker) and, on SIGTERM or SIGINT,
sends SIGTERM to every worker, waits for their graceful shutdowns, removes the directory and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
from typing import Any

from ..adapters.local import LocalLink, local_adapter
from ..server.adapter import MemoryAdapter
from .forward import Forwarder, http_socket, local_owner
from .group_metrics import GroupMetrics
from .http1.server import Route
from .nodes import cluster_node, new_node_id
from .standalone import _hooks, serve

__all__ = ["run_workers"]

log = logging.getLogger("sioserver")

START_ATTEMPTS = 3  # workers that die before the first all-ready: then the app cannot start, and the supervisor exits
RESTART_DELAY = 1.0  # a worker that died sooner than this after its start waits this long to restart


def _listening_socket(host: str, port: int) -> socket.socket:
    info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(info[0], socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(info[4])
    return sock


async def _fresh_adapters(sio: Any, link: LocalLink) -> None:
    """Adapters of this worker's own. The local cluster adapter for a server that was given none (one given,
    Redis, is kept); and the namespaces made at import, in the supervisor, get new adapters: the forked ones
    would share one uid (each worker would take the others' messages for its own) and the factory's state."""
    if getattr(sio, "adapter_factory", None) is MemoryAdapter:
        sio.adapter_factory = local_adapter(link)
    namespaces = list(getattr(sio, "_namespaces", {}).values())  # no socket in them yet
    for nsp in namespaces:  # all closed first: a factory then forgets its per-server state (host id, link)
        try:
            await nsp.adapter.close()
        except Exception:
            log.exception("worker: closing the adapter %r made before the fork", nsp.adapter)
    for nsp in namespaces:
        nsp.adapter = sio.adapter_factory(nsp)


async def _worker(sio: Any, index: int, count: int, directory: str, sock: socket.socket, ready_fd: int,
                  host: str, machine: str, options: dict[str, Any]) -> None:
    engine, _, _ = _hooks(sio)
    link = LocalLink(directory, index, count)
    await link.start()
    await _fresh_adapters(sio, link)
    options = dict(options)
    # with a Redis adapter, a node of the wider cluster too: other machines forward to its private door
    node = cluster_node(sio, engine, options.pop("advertise", None), node_id=f"{machine}-{index}",
                        local=(directory, index, count))
    if node is None:
        engine.sid_prefix = f"{index}."
        engine.forward = Forwarder(engine, local_owner(directory, index, count)).forward

    def ready(_: list[tuple[str, int]]) -> None:
        os.write(ready_fd, b"%d\n" % index)

    routes: dict[str, Route] = {}
    metrics = getattr(sio, "metrics", None)
    if metrics is not None:  # a scrape of any worker answers the figures of all of them
        routes[metrics.path] = GroupMetrics(metrics.response, directory, index, count).answer
    try:
        await serve(sio, host, sock=sock, ready=ready, unix_path=str(http_socket(directory, index)), node=node,
                    routes=routes, **options)
    finally:
        await link.close()
        log.info("worker %d: %d requests forwarded to their sessions' workers; %d cluster messages received",
                 index, engine.stats["forwarded"], link.stats["received"])


def _child(sio: Any, index: int, count: int, directory: str, host: str, port: int, ready_fd: int,
           uvloop: bool, machine: str, options: dict[str, Any]) -> None:
    code = 0
    try:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        _die_with_parent()
        os.environ["SIOSERVER_WORKER"] = str(index)  # for the app: a task to run in one worker only
        if uvloop:
            from .standalone import _use_uvloop  # noqa: PLC0415

            _use_uvloop()
        sock = _listening_socket(host, port)
        http = options.get("http")
        sock.listen(http.backlog if http is not None else 1024)
        sock.setblocking(False)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_worker(sio, index, count, directory, sock, ready_fd, host, machine, options))
    except BaseException:
        log.exception("worker %d failed", index)
        code = 1
    finally:
        logging.shutdown()
        os._exit(code)


def _die_with_parent() -> None:
    """Linux: a worker gets SIGTERM when its supervisor dies (SIGKILL), instead of serving orphaned."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes  # noqa: PLC0415

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


class Supervisor:
    def __init__(self, sio: Any, host: str, port: int, count: int, uvloop: bool, options: dict[str, Any]) -> None:
        self.sio = sio
        self.host = host
        self.count = count
        self.uvloop = uvloop
        self.options = options
        self.directory = tempfile.mkdtemp(prefix="sioserver-workers-")
        self.machine = new_node_id()  # with a Redis adapter, worker i is node "<machine>-<i>" of the cluster
        # holds the port (bound, never listening: it gets no connection) so port 0 names one for all
        self.reserve = _listening_socket(host, port)
        self.port = self.reserve.getsockname()[1]
        self.children: dict[int, tuple[int, float]] = {}  # pid -> (index, started)
        self.stopping = False
        self.failed = False  # workers could not start: the supervisor exits 1
        self.failed_starts = 0
        self.ready_r, self.ready_w = os.pipe()

    def spawn(self, index: int) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.close(self.ready_r)
            _child(self.sio, index, self.count, self.directory, self.host, self.port, self.ready_w, self.uvloop,
                   self.machine, self.options)
        self.children[pid] = (index, time.monotonic())

    def stop(self, signum: int, _frame: Any) -> None:
        if not self.stopping and not self.failed:
            log.info("supervisor: %s, draining %d workers", signal.Signals(signum).name, len(self.children))
        self.stopping = True
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        try:
            for index in range(self.count):
                self.spawn(index)
            self._wait_ready()
            if self.failed:
                while self.children:
                    with contextlib.suppress(ChildProcessError):
                        self.children.pop(os.wait()[0], None)
                return
            log.info("supervisor: the workers' sockets are in %s", self.directory)  # before the ready line
            shown = f"[{self.host}]" if ":" in self.host else self.host
            print(f"sioserver listening on http://{shown}:{self.port} ({self.count} workers, supervisor "
                  f"pid {os.getpid()})", flush=True)
            while self.children:
                try:
                    pid, status = os.wait()
                except ChildProcessError:
                    break
                self._reaped(pid, status)
        finally:
            self.reserve.close()
            shutil.rmtree(self.directory, ignore_errors=True)
            log.info("supervisor: every worker stopped")

    def _reaped(self, pid: int, status: int) -> None:
        entry = self.children.pop(pid, None)
        if entry is None or self.stopping:
            return
        index, started = entry
        log.warning("supervisor: worker %d (pid %d) died (%s); starting a new one", index, pid, _describe(status))
        delay = RESTART_DELAY - (time.monotonic() - started)
        if delay > 0:
            time.sleep(delay)
        if not self.stopping:
            self.spawn(index)

    def _wait_ready(self) -> None:
        """Until every worker serves (a worker that dies first is restarted by the main loop)."""
        seen: set[bytes] = set()
        buffer = b""
        while len(seen) < self.count and not self.stopping:
            if not select.select([self.ready_r], [], [], 0.5)[0]:
                with contextlib.suppress(ChildProcessError):
                    pid, status = os.waitpid(-1, os.WNOHANG)
                    if pid:
                        self.failed_starts += 1
                        if self.failed_starts >= START_ATTEMPTS:
                            log.error("supervisor: %d workers died before serving: giving up (see above why)",
                                      self.failed_starts)
                            self.failed = True
                            self.children.pop(pid, None)
                            self.stop(signal.SIGTERM, None)
                            return
                        self._reaped(pid, status)
                continue
            chunk = os.read(self.ready_r, 64)
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            seen.update(lines)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


def run_workers(sio: Any, host: str, port: int, workers: int, *, uvloop: bool = True, **options: Any) -> None:
    """Serve ``sio`` from ``workers`` processes on ``host:port`` (see the module docstring)."""
    if workers < 1:
        raise ValueError(f"workers must be 1 or more, not {workers}")
    if not hasattr(socket, "SO_REUSEPORT"):
        raise RuntimeError("--workers needs SO_REUSEPORT (Linux, BSD, macOS)")
    supervisor = Supervisor(sio, host, port, workers, uvloop, options)
    supervisor.run()
    if supervisor.failed:
        raise SystemExit(1)
