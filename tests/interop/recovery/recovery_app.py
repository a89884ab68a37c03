"""The sioserver side of the connection state recovery tests; mirrors recovery_server.cjs (Node socket.io 4.8
with ``connectionStateRecovery``), so one client scenario holds both to the same behaviour.

    python tests/interop/recovery/recovery_app.py --port 0 --window-ms 120000 [--no-skip-middlewares]

prints ``READY <port>`` once listening. A client connects with ``auth = {"room": R, "user": U}``:
a new connection joins room R and gets ``{"user": U}`` as its session data; a recovered one gets them
back. Events (each acked): ``burst(room, count, interval_ms, pause_at=-1)`` broadcasts ``tick i members``
(i = 0..count-1; members: the sockets in the room at that moment) to the room, one every interval_ms,
starting after the ack; before tick ``pause_at`` it waits until the asking socket has disconnected (the
client drops its transport on the tick before), so the next ticks are sent while it is away; ``whoami()`` acks
``{"id", "recovered", "rooms", "data", "middleware_runs", "connects"}``; ``until_gone(sid)`` acks once that
socket has disconnected (its session is persisted by then).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

import sioserver

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository: tests._support

from tests._support import serving


def make_server(window_s: float = 120.0, skip_middlewares: bool = True, **options: Any) -> sioserver.AsyncServer:
    sio = sioserver.AsyncServer(connection_state_recovery={"max_disconnection_duration": window_s,
                                                           "skip_middlewares": skip_middlewares}, **options)
    middleware_runs: dict[str, int] = {}
    connects: dict[str, int] = {}

    @sio.use
    def count_middleware(sid: str, environ: Any, auth: Any) -> None:
        user = str((auth or {}).get("user"))
        middleware_runs[user] = middleware_runs.get(user, 0) + 1

    @sio.event
    async def connect(sid: str, environ: Any, auth: Any) -> None:
        auth = auth or {}
        user = str(auth.get("user"))
        connects[user] = connects.get(user, 0) + 1
        if not sio.recovered(sid):
            await sio.enter_room(sid, str(auth.get("room")))
            await sio.save_session(sid, {"user": auth.get("user")})

    leaving: dict[str, list[asyncio.Event]] = {}

    def when_gone(sid: str) -> asyncio.Event:
        event = asyncio.Event()
        leaving.setdefault(sid, []).append(event)
        return event

    @sio.event
    def disconnect(sid: str) -> None:
        for event in leaving.pop(sid, ()):
            event.set()

    @sio.event
    async def until_gone(sid: str, target: str) -> bool:
        if sio.manager.is_connected(target, "/"):
            async with asyncio.timeout(5):
                await when_gone(target).wait()
        return True

    @sio.event
    async def burst(sid: str, room: str, count: int, interval_ms: float, pause_at: int = -1) -> str:
        gone = when_gone(sid)

        async def run() -> None:
            for i in range(count):
                if i == pause_at:  # the client drops its transport on tick pause_at - 1: go on once it is away
                    async with asyncio.timeout(5):
                        await gone.wait()
                # how many sockets the room has now: 0 while the client is away (the tick can only come back
                # replayed)
                members = len(sio.adapter().rooms.get(room, ()))
                await sio.emit("tick", (i, members), room=room)
                await asyncio.sleep(interval_ms / 1000)

        sio.start_background_task(run)
        return "started"

    @sio.event
    async def whoami(sid: str) -> dict[str, Any]:
        data = await sio.get_session(sid)
        user = str(data.get("user"))
        return {"id": sid, "recovered": sio.recovered(sid), "rooms": sorted(sio.rooms(sid)), "data": data,
                "middleware_runs": middleware_runs.get(user, 0), "connects": connects.get(user, 0)}

    return sio


async def serve(args: argparse.Namespace) -> None:
    app = web.Application()
    make_server(args.window_ms / 1000, not args.no_skip_middlewares).attach(app)
    await serving.serve(app, host=args.host, port=args.port)


def main() -> None:
    p = serving.server_arguments(__doc__)
    p.add_argument("--window-ms", type=float, default=120_000)
    p.add_argument("--no-skip-middlewares", action="store_true")
    serving.run(serve(p.parse_args()))


if __name__ == "__main__":
    main()
