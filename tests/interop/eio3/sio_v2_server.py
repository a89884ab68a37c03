"""The Socket.IO server of the socket.io-client 2.x tests: sioserver with ``allow_eio3=True``, the same handlers as
sio_v2_server.mjs (Node socket.io 4.8 with ``allowEIO3: true``).

    python tests/interop/eio3/sio_v2_server.py --port 0 [--ping-interval S] [--ping-timeout S]

Namespaces ``/`` and ``/custom`` (``/custom`` refuses a connection without ``token``, with a message only, and one
whose token is not ``t-1``, with data). Events, each acknowledged: ``whoami`` (the socket's id, auth and
namespace), ``echo`` (the arguments back), ``ask`` (the server asks the client ``question`` with an ack and
answers with what the client answered), ``binary`` (the arguments back, after a ``bin`` event with binary data).
Prints ``READY <port>``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository: sioserver, tests._support

from aiohttp import web

import sioserver
from tests._support import serving

SERVER_BINARY: dict[str, Any] = {"bytes": b"\x00\x01\x02\xfe\xff", "nested": [b"xyz", {"deep": bytes(range(256))}],
                                 "text": "not binary"}


def build(ping_interval: float, ping_timeout: float) -> sioserver.AsyncServer:
    sio = sioserver.AsyncServer(allow_eio3=True, cors_allowed_origins="*", ping_interval=ping_interval,
                                ping_timeout=ping_timeout)
    auths: dict[str, Any] = {}

    for nsp in ("/", "/custom"):
        def handlers(nsp: str) -> None:
            @sio.on("connect", namespace=nsp)
            def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
                if nsp == "/custom":
                    if "token" not in auth:
                        raise sioserver.ConnectionRefusedError("no token")
                    if auth["token"] != "t-1":
                        raise sioserver.ConnectionRefusedError("bad token", {"reason": "bad token"})
                auths[sid] = auth

            @sio.on("whoami", namespace=nsp)
            def whoami(sid: str) -> dict[str, Any]:
                return {"sid": sid, "auth": auths.get(sid), "nsp": nsp}

            @sio.on("echo", namespace=nsp)
            def echo(sid: str, *args: Any) -> tuple[Any, ...]:
                return args

            @sio.on("ask", namespace=nsp)
            async def ask(sid: str, question: Any) -> Any:
                return await sio.call("question", question, to=sid, namespace=nsp, timeout=5)

            @sio.on("binary", namespace=nsp)
            async def binary(sid: str, *args: Any) -> tuple[Any, ...]:
                await sio.emit("bin", SERVER_BINARY, to=sid, namespace=nsp)
                return args

        handlers(nsp)
    return sio


def main() -> None:
    p = serving.server_arguments(__doc__)
    args = p.parse_args()
    app = web.Application()
    build(args.ping_interval, args.ping_timeout).attach(app, socketio_path="socket.io")
    serving.run(serving.serve(app, host=args.host, port=args.port))


if __name__ == "__main__":
    main()
