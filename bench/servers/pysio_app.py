"""python-socketio 5.x on aiohttp: the same ``echo``, ``bcast`` and ``gc`` handlers as every bench server."""

from __future__ import annotations

import argparse
import asyncio
import gc

import socketio
import uvloop
from aiohttp import web


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="uvloop")
    parser.add_argument("--front", choices=("aiohttp", "uvicorn"), default="aiohttp",
                        help="aiohttp, or socketio.ASGIApp under uvicorn (its defaults: httptools, websockets)")
    args = parser.parse_args()

    sio = socketio.AsyncServer(async_mode="asgi" if args.front == "uvicorn" else "aiohttp")

    @sio.on("echo")
    async def echo(sid: str, *data: object) -> tuple[object, ...]:
        return data

    @sio.on("bcast")
    async def bcast(sid: str, *data: object) -> None:
        await sio.emit("bcast", data)

    @sio.on("gc")
    async def collect(sid: str) -> None:
        gc.collect()

    if args.front == "uvicorn":
        import uvicorn  # noqa: PLC0415 - only this front needs it

        uvicorn.run(socketio.ASGIApp(sio), host="127.0.0.1", port=args.port, log_level="warning",
                    loop="uvloop" if args.loop == "uvloop" else "asyncio", lifespan="on")
        return
    app = web.Application()
    sio.attach(app)
    loop = uvloop.new_event_loop() if args.loop == "uvloop" else asyncio.new_event_loop()
    print(f"python-socketio listening on http://127.0.0.1:{args.port}", flush=True)
    web.run_app(app, host="127.0.0.1", port=args.port, loop=loop, print=None, access_log=None)


if __name__ == "__main__":
    main()
