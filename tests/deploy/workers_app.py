"""The app of the ``--workers`` tests: chat to everyone (acked with the worker's pid), cluster
operations that must span the workers (``fetch_sockets``, ``server_side_emit_with_ack``), and which
worker holds a client (``worker``)."""

from __future__ import annotations

import os
from typing import Any

import sioserver

# WORKERS_TEST_REDIS: the app brings its own adapter, which the workers must keep (no local cluster then)
# (WORKERS_TEST_MANAGER=1: python-socketio's format, AsyncRedisManager, whose host id is per server)
_redis = os.environ.get("WORKERS_TEST_REDIS")
_adapter: Any = None
if _redis and os.environ.get("WORKERS_TEST_MANAGER"):
    _adapter = sioserver.AsyncRedisManager(_redis)
elif _redis:
    _adapter = sioserver.RedisAdapter(_redis)
# WORKERS_TEST_METRICS=1: /metrics on (tests/deploy/test_workers_metrics.py)
sio = sioserver.AsyncServer(cors_allowed_origins="*", adapter=_adapter, namespaces=["/", "/other"],
                            metrics=bool(os.environ.get("WORKERS_TEST_METRICS")))
sio.adapter("/other")  # a second namespace made at import, before the fork


@sio.event
async def chat(sid: str, data: Any) -> dict[str, Any]:
    await sio.emit("chat", data)
    return {"ok": True, "pid": os.getpid()}


@sio.event
async def whoami(sid: str) -> int:
    return os.getpid()


@sio.event
async def worker(sid: str) -> dict[str, Any]:
    return {"worker": int(os.environ.get("SIOSERVER_WORKER", "0")), "pid": os.getpid()}


@sio.event
async def census(sid: str) -> dict[str, Any]:
    sockets = await sio.fetch_sockets()
    pids = await sio.server_side_emit_with_ack("pid", timeout=3)
    return {"sockets": len(sockets), "others": sorted(pids), "worker": os.environ.get("SIOSERVER_WORKER")}


@sio.on_server_event("pid")
async def pid() -> int:
    return os.getpid()


@sio.event
async def echo(sid: str, data: Any) -> Any:
    return data
