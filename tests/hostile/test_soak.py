"""Soak: a few thousand connect/disconnect cycles over mixed transports against an in-process
server, then every table must be empty: engine sessions, parked polls, each namespace's sockets,
the adapter's rooms and sids, pending acks, background tasks, and no asyncio task, Session or
WebSocket connection left alive. (``scripts/soak.py`` does 10,000 against a server process and
reports its RSS.)"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

import sioserver
from sioserver.engine.session import Session
from sioserver.engine.websocket import WebSocketConnection
from sioserver.server.client import Client
from sioserver.server.socket import Socket
from tests._support import serving
from tests._support.wait import wait_until

from .churn import MODES, install, run_cycles

CYCLES = int(os.environ.get("SOAK_CYCLES", "2000"))


def _tables(sio: sioserver.AsyncServer) -> dict[str, int]:
    eio = sio.eio
    tables = {
        "sessions": len(eio.sessions),
        "parked": len(eio.polling.parked),
        "background_tasks": len(sio._tasks),
        "handler_tasks": len(getattr(sio, "_handler_tasks", ())),
    }
    for name, nsp in sio._namespaces.items():
        tables[f"{name} sockets"] = len(nsp.sockets)
        tables[f"{name} rooms"] = len(nsp.adapter.rooms)
        tables[f"{name} sids"] = len(nsp.adapter.sids)
        tables[f"{name} acks"] = sum(len(s.acks) for s in nsp.sockets.values())
    return tables


def _alive(cls: type, owner: Callable[[Any], bool]) -> int:
    """Live objects of ``cls`` that belong to this test's server (earlier tests' servers may linger)."""
    return sum(1 for obj in gc.get_objects() if isinstance(obj, cls) and owner(obj))


def _ws_owner(sio: sioserver.AsyncServer) -> Callable[[Any], bool]:
    def owned(conn: Any) -> bool:
        handler = getattr(conn, "_handler", None)
        session = getattr(handler, "session", handler)
        return getattr(session, "server", None) is sio.eio

    return owned


async def test_soak_mixed_transports_leave_every_table_empty() -> None:
    # short heartbeat: a session closed while no GET was parked is forgotten after interval + timeout
    sio = sioserver.AsyncServer(ping_interval=0.5, ping_timeout=0.5, ack_timeout=300)
    install(sio)
    app = web.Application()
    sio.attach(app)
    server = await serving.start(app, handler_cancellation=True, access_log=None)
    port = server.port
    tasks_before = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
    try:
        started = time.monotonic()
        done = await run_cycles(port, CYCLES, concurrency=20)
        elapsed = time.monotonic() - started
        errors = {k: v for k, v in done.items() if k.startswith("error")}
        assert not errors, errors
        assert sum(done.values()) == CYCLES and set(done) == set(MODES)

        empty = {k: 0 for k in _tables(sio)}
        await wait_until(lambda: _tables(sio) == empty, timeout=2 * (sio.eio.ping_interval + sio.eio.ping_timeout) + 1,
                         interval=0.05, what=lambda: f"tables not empty: {_tables(sio)}")
        assert set(sio._namespaces) == {"/", "/chat"}
        assert sio.stats["disconnects"] == sio.stats["handshakes"], dict(sio.stats)

        leaked = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()} - tasks_before
        await wait_until(lambda: all(t.done() for t in leaked), timeout=2, interval=0.05,
                         what=lambda: f"tasks left: {[repr(t) for t in leaked if not t.done()][:5]}")

        # Nothing may keep them: a session closed by the server is held by its _forget timer for
        # ping_interval + ping_timeout at most, then everything goes.
        owners: dict[type, Callable[[Any], bool]] = {
            Session: lambda o: o._ctx is sio.eio.session_context,
            Client: lambda o: o.server is sio,
            Socket: lambda o: o.namespace.server is sio,
            WebSocketConnection: _ws_owner(sio),
        }
        alive: dict[str, int] = {}

        def all_gone() -> bool:
            gc.collect()
            alive.update({cls.__name__: _alive(cls, owner) for cls, owner in owners.items()})
            return alive == dict.fromkeys(alive, 0)

        await wait_until(all_gone, timeout=sio.eio.ping_interval + sio.eio.ping_timeout + 1, interval=0.1,
                         what=lambda: f"still referenced: {alive}")
        print(f"\n{CYCLES} cycles in {elapsed:.1f}s: {dict(done)}")
    finally:
        await server.close()
