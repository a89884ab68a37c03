"""Engine.IO echo server for the interop tests.

    python tests/interop/eio_echo_server.py --port N [--impl sioserver|python-engineio]
        [--transports polling,websocket] [--ping-interval S] [--ping-timeout S] [--max-http-buffer-size N]
        [--allow-eio3]

Every message is sent back as it came (str stays str, bytes stay bytes); the text message "close-me" makes the
server call ``disconnect(sid)`` for that session instead. Prints ``READY <port>`` on stdout once listening
(``--port 0`` picks a free port, and the line tells which). Connects and disconnects are logged on stderr,
which the test fixtures attach to failure messages.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: tests._support

from tests._support import serving

IMPLS = ("sioserver", "python-engineio")
Handler = TypeVar("Handler", bound=Callable[..., Awaitable[None]])


def log(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


def make_server(impl: str, options: dict[str, Any]) -> Any:
    """The Engine.IO server under test; both implementations share python-engineio's constructor shape."""
    if impl == "sioserver":
        import sioserver.engineio

        return sioserver.engineio.AsyncServer(**options)
    if impl == "python-engineio":
        import engineio  # type: ignore[import-untyped]

        return engineio.AsyncServer(async_mode="aiohttp", **options)
    raise ValueError(f"unknown impl {impl!r}; expected one of {IMPLS}")


def describe(data: object) -> str:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return f"bytes[{len(data)}]"
    if isinstance(data, str):
        return f"str[{len(data)}]"
    # python-engineio hands a text message that parses as JSON to the handler as the parsed value
    return f"{type(data).__name__}:{data!r:.60}"


def build_app(args: argparse.Namespace) -> web.Application:
    eio = make_server(
        args.impl,
        {
            "ping_interval": args.ping_interval,
            "ping_timeout": args.ping_timeout,
            "max_http_buffer_size": args.max_http_buffer_size,
            "cors_allowed_origins": "*",
            "transports": args.transports,
            "allow_upgrades": True,
            "compression": False,
            **({"allow_eio3": True} if args.allow_eio3 else {}),
        },
    )

    # typed view of eio.on (both implementations: on(event) returns a decorator that registers the handler)
    on: Callable[[str], Callable[[Handler], Handler]] = eio.on

    @on("connect")
    async def connect(sid: str, environ: dict[str, Any]) -> None:
        log("CONNECT", sid, environ.get("QUERY_STRING", ""))

    @on("message")
    async def message(sid: str, data: str | bytes) -> None:
        if data == "close-me":
            log("CLOSE-ME", sid)
            await eio.disconnect(sid)
            return
        if args.verbose:
            log("MESSAGE", sid, describe(data))
        await eio.send(sid, data)

    @on("disconnect")
    async def disconnect(sid: str, reason: object = None) -> None:
        log("DISCONNECT", sid, reason)

    # a default Application, as users write it: the engine must cope with aiohttp's own defaults
    # (client_max_size is 1 MiB) and enforce max_http_buffer_size itself
    app = web.Application()
    eio.attach(app, engineio_path="engine.io")
    return app


async def serve(args: argparse.Namespace) -> None:
    await serving.serve(build_app(args), host=args.host, port=args.port, after_ready=lambda port: log(
        f"listening on {args.host}:{port} impl={args.impl} transports={','.join(args.transports)}"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = serving.server_arguments(__doc__)
    p.add_argument("--impl", choices=IMPLS, default="sioserver")
    p.add_argument("--max-http-buffer-size", type=int, default=1_000_000, help="bytes")
    p.add_argument("--verbose", action="store_true", help="log every message on stderr")
    p.add_argument("--allow-eio3", action="store_true", help="serve Engine.IO v3 clients too (sioserver only)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    serving.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
