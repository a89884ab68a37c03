"""sioserver under test, served by ``sioserver.run`` (its own HTTP/1.1 front, or ``--front aiohttp``):
``echo`` acks its arguments, ``bcast`` emits them to everyone.

``gc`` (acked once done) collects garbage before the driver reads the resident set size, as every
bench server does, so memory figures do not depend on when each runtime's collector last ran.
"""

from __future__ import annotations

import argparse
import gc

import sioserver


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="uvloop")
    parser.add_argument("--redis", default=None, help="redis:// URL: use sioserver.RedisAdapter")
    parser.add_argument("--adapter", choices=("pubsub", "streams"), default="pubsub",
                        help="with --redis: sioserver.RedisAdapter (Pub/Sub) or sioserver.RedisStreamsAdapter")
    parser.add_argument("--json", default=None, help="a module with dumps/loads (e.g. orjson)")
    parser.add_argument("--front", choices=("http1", "aiohttp", "uvicorn"), default="http1",
                        help="sioserver.run's own HTTP/1.1 front (the default), aiohttp attach, or "
                             "sioserver.ASGIApp under uvicorn (its defaults: httptools, websockets)")
    parser.add_argument("--metrics", action="store_true", help="AsyncServer(metrics=True): Prometheus metrics on")
    args = parser.parse_args()

    options: dict[str, object] = {}
    if args.metrics:
        options["metrics"] = True
    if args.redis:
        if args.adapter == "streams":
            options["adapter"] = sioserver.RedisStreamsAdapter(args.redis)  # type: ignore[attr-defined]
        else:
            options["adapter"] = sioserver.RedisAdapter(args.redis)  # type: ignore[attr-defined]
    if args.json:
        options["json"] = __import__(args.json)
    sio = sioserver.AsyncServer(**options)

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

        uvicorn.run(sioserver.ASGIApp(sio), host="127.0.0.1", port=args.port, log_level="warning",
                    loop="uvloop" if args.loop == "uvloop" else "asyncio", lifespan="on")
        return
    # a tree from before the front existed (--baseline) knows no front= keyword: pass it only when asked
    extra = {"front": args.front} if args.front != "http1" else {}
    sioserver.run(sio, "127.0.0.1", args.port, uvloop=args.loop == "uvloop", **extra)


if __name__ == "__main__":
    main()
