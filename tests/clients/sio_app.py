"""The sioserver side of sioclient's tests; mirrors node_sio_server.cjs (read its header for the events).

In process: ``app, sio = make_app(**server_options)``. As a process (for restarts on a fixed port):
``python tests/clients/sio_app.py --port N [--serializer msgpack] [--ping-interval S] [--ping-timeout S]``
prints ``READY <port>`` once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

import sioserver

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: tests._support

from tests._support import serving


def install(sio: sioserver.AsyncServer) -> None:
    def setup(nsp: str) -> None:
        async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
            auth = auth if auth is not None else {}
            if nsp == "/" and auth.get("token") == "bad":
                raise sioserver.ConnectionRefusedError("bad token", {"code": 4001})
            await sio.save_session(sid, {"auth": auth}, namespace=nsp)
            await sio.emit("welcome", {"sid": sid, "nsp": nsp, "auth": auth}, to=sid, namespace=nsp)

        async def echo(sid: str, *args: Any) -> Any:
            await sio.emit("echo", tuple(args), to=sid, namespace=nsp)
            return tuple(args)

        async def auth(sid: str) -> Any:
            return (await sio.get_session(sid, namespace=nsp))["auth"]

        async def ask(sid: str, question: Any) -> Any:
            try:
                return await sio.call("question", question, to=sid, namespace=nsp, timeout=5)
            except Exception as exc:
                return {"error": repr(exc)}

        async def kick(sid: str) -> None:
            await sio.disconnect(sid, namespace=nsp)

        async def transport(sid: str) -> str:
            return sio.transport(sid, namespace=nsp)

        async def hang(sid: str) -> None:  # sioserver only: an ack that takes 30 s
            await asyncio.sleep(30)

        sio.on("connect", connect, namespace=nsp)
        for handler in (echo, auth, ask, kick, transport, hang):
            sio.on(handler.__name__, handler, namespace=nsp)

    setup("/")
    setup("/chat")

    async def private(sid: str, environ: dict[str, Any], auth: Any) -> None:
        raise sioserver.ConnectionRefusedError("not allowed", {"reason": "private"})

    sio.on("connect", private, namespace="/private")


def make_app(**options: Any) -> tuple[web.Application, sioserver.AsyncServer]:
    sio = sioserver.AsyncServer(**options)
    install(sio)
    app = web.Application()
    sio.attach(app)
    return app, sio


async def _serve(args: argparse.Namespace) -> None:
    options: dict[str, Any] = {"serializer": args.serializer}
    if args.ping_interval is not None:
        options["ping_interval"] = args.ping_interval
    if args.ping_timeout is not None:
        options["ping_timeout"] = args.ping_timeout
    app, _ = make_app(**options)
    # SIGKILLed and started again on the same port by the reconnection tests
    await serving.serve(app, port=args.port, reuse_port=True, handler_cancellation=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--serializer", default="default")
    parser.add_argument("--ping-interval", type=float)
    parser.add_argument("--ping-timeout", type=float)
    args = parser.parse_args()
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
