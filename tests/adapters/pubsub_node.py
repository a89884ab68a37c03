"""One server of a mixed python-socketio / sioserver cluster sharing python-socketio's Redis channel.

    python tests/adapters/pubsub_node.py --impl sioserver|python-socketio --redis URL --name A

The code below the import is the same for both: a python-socketio app, ported by changing the import.
Prints ``READY <port>`` once listening. Test clients drive it with the event ``do(op, spec)``, whose
ack is the result:

- connect auth ``{"rooms": [..]}``: the socket joins those rooms (in ``/`` and in ``/jobs``).
- ``emit {event, args, room, skip_sid, namespace}``; ``call {event, args, to, namespace}`` -> the answer;
- ``enter_room`` / ``leave_room {sid, room, namespace}``, ``close_room {room, namespace}``,
  ``disconnect {sid, namespace}``; ``rooms {sid, namespace}`` -> the sorted rooms.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: tests._support

from tests._support import serving


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=("sioserver", "python-socketio"), required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--name", required=True)
    args = parser.parse_args()
    if args.impl == "sioserver":
        import sioserver as socketio
    else:
        import socketio  # type: ignore[import-untyped, no-redef]

    sio = socketio.AsyncServer(client_manager=socketio.AsyncRedisManager(args.redis), async_mode="aiohttp",
                               cors_allowed_origins="*")
    name = args.name

    def joiner(namespace: str) -> Any:
        async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
            for room in (auth or {}).get("rooms", []):
                await sio.enter_room(sid, room, namespace=namespace)

        return connect

    for nsp in ("/", "/jobs"):
        sio.on("connect", joiner(nsp), namespace=nsp)

    @sio.on("do")
    async def do(sid: str, op: str, spec: dict[str, Any]) -> Any:
        nsp = spec.get("namespace") or "/"
        if op == "emit":
            await sio.emit(spec["event"], tuple(spec.get("args", [])), room=spec.get("room"),
                           skip_sid=spec.get("skip_sid"), namespace=nsp)
            return "ok"
        if op == "call":
            return await sio.call(spec["event"], tuple(spec.get("args", [])), to=spec["to"], namespace=nsp,
                                  timeout=5)
        if op == "enter_room":
            await sio.enter_room(spec["sid"], spec["room"], namespace=nsp)
            return "ok"
        if op == "leave_room":
            await sio.leave_room(spec["sid"], spec["room"], namespace=nsp)
            return "ok"
        if op == "close_room":
            await sio.close_room(spec["room"], namespace=nsp)
            return "ok"
        if op == "disconnect":
            await sio.disconnect(spec["sid"], namespace=nsp)
            return "ok"
        if op == "emit_with_ack":  # sioserver's operators only
            return await sio.timeout(30).emit_with_ack(spec["event"])
        if op == "whoami":
            return name
        return {"error": f"unknown op {op!r}"}

    async def serve() -> None:
        app = web.Application()
        sio.attach(app)
        await serving.serve(app)

    asyncio.run(serve())
    sys.exit(0)


if __name__ == "__main__":
    main()
