"""``sioserver.run(sio)`` and ``python -m sioserver module:sio``: a server with nothing else to set up."""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
from typing import Any

from aiohttp import web

from .aiohttp import HttpErrorLogger

__all__ = ["load", "run"]

log = logging.getLogger("sioserver")


def _use_uvloop() -> bool:
    try:
        import uvloop  # noqa: PLC0415 - optional
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def run(sio: Any, host: str = "127.0.0.1", port: int = 8000, *, app: web.Application | None = None,
        socketio_path: str | None = None, uvloop: bool = True, access_log: bool = False) -> None:
    """Serve ``sio`` (a Socket.IO or Engine.IO server) on ``host:port`` until SIGINT/SIGTERM.

    uvloop is used when installed (``pip install sioserver[uvloop]``). Long-polls aborted by the
    client are cancelled at once (aiohttp's ``handler_cancellation``).
    """
    if uvloop and _use_uvloop():
        log.info("using uvloop")
    # One loop, current before attach() (which starts the namespaces' adapter tasks) and then run:
    # without it uvloop's policy has no current loop, and asyncio's would schedule them on a loop
    # that never runs.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app = app or web.Application()
    if socketio_path is None:
        socketio_path = "engine.io" if sio.__class__.__module__.startswith("sioserver.engineio") else "socket.io"
    if socketio_path:
        if hasattr(sio, "eio"):
            sio.attach(app, socketio_path=socketio_path)
        else:
            sio.attach(app, engineio_path=socketio_path)
    print(f"sioserver listening on http://{host}:{port}", flush=True)
    web.run_app(app, host=host, port=port, handler_cancellation=True, print=None,
                access_log=log if access_log else None, handle_signals=True,
                shutdown_timeout=5, loop=loop, logger=HttpErrorLogger())


def load(target: str) -> Any:
    """``package.module:attribute`` -> the object."""
    module_name, _, attr = target.partition(":")
    sys.path.insert(0, ".")
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in (attr or "sio").split("."):
        obj = getattr(obj, part)
    return obj
