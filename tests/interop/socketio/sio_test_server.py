"""Socket.IO test server for the interop tests: one sioserver app exercising the whole public API.

    python tests/interop/socketio/sio_test_server.py --port N [--serializer default|msgpack] [--front F]
        [--transports polling,websocket] [--ping-interval S --ping-timeout S] [--connect-timeout S] [--ack-timeout S]

Namespaces ``/`` and ``/custom`` get the same handlers; ``/dyn-<digits>`` (a regex, dynamic namespaces) only
answers ``echo`` with ``("dyn", *args)``; anything else is refused with "Invalid namespace".

- middleware: auth ``{"middleware": "refuse"}`` -> ``ConnectionRefusedError("refused by middleware", ["data", 1])``;
  ``{"middleware": "false"}`` -> returns False (the default refusal).
- connect: auth ``{"refuse": true}`` -> ``ConnectionRefusedError("refused by test", {"reason": "test"})``;
  ``{"refuse": "false"}`` -> returns False; otherwise the client gets
  ``welcome {"auth": auth, "sid": sid, "nsp": nsp, "transport": ...}`` (emitted from inside the connect handler,
  so it must follow the CONNECT reply).
- ``echo *args`` -> ack with the same arguments; ``echo-emit *args`` -> emits ``echo *args`` back.
- ``whoami`` -> ack ``{"sid", "nsp", "transport", "rooms"}``.
- ``join room`` / ``leave room`` -> ack with the client's rooms (sorted, its own sid included).
- ``to-room room *args`` -> ``sio.emit("room-msg", (room, *args), room=room)``; ack ``"sent"``.
- ``to-room-skip room *args`` -> the same with ``skip_sid=sid`` (the sender is left out).
- ``to-room-except room except *args`` -> ``sio.to(room).except_(except).emit("room-msg", room, *args)``.
- ``server-call payload [timeout]`` -> ``sio.call("question", payload, to=sid, timeout=timeout)``; the outcome is
  emitted back as ``answer {"ok": true, "answer": ..}`` or ``{"ok": false, "error": "AckTimeoutError", ..}``,
  and is the ack too. ``server-call-timeout payload [timeout]`` does the same with the event
  ``question-ignored`` (which the test clients answer only after the deadline) and a short default timeout.
- ``server-callback payload`` -> ``sio.emit("question", payload, to=sid, callback=fn)``; ``fn(*answer)`` emits
  ``callback-answer *answer``.
- ``broadcast-ack {"room"?, "except"?, "timeout"?, "payload"?}`` -> ``emit_with_ack("survey", payload)`` to the
  room (everyone without one); the list of answers is emitted as ``survey-result`` and is the ack.
- ``never-answer *args`` -> sleeps past any client timeout and returns nothing (the client's ack times out).
- ``disconnect-me`` -> ``sio.disconnect(sid)``; ``close-transport`` -> closes the whole Engine.IO session.
- ``binary *args`` -> ack ``(found, *args)``: ``found`` lists every binary the server decoded (path, Python
  type, hex), then the arguments as received (their bytes go back as attachments).
- ``binary-emit`` -> emits ``binary`` with :data:`SERVER_BINARY` (bytes, bytearray and memoryview, nested).
- ``disconnects`` -> ack with ``{sid: reason}`` of every disconnect handler run so far (any namespace).

Prints ``READY <port>`` once listening (``--port 0`` picks a free port). Connects, refusals and disconnects are
logged on stderr, which the fixtures attach to failure messages.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

import sioserver

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository: tests._support

from tests._support import asgi, serving

NAMESPACES = ("/", "/custom")
DYNAMIC = re.compile(r"/dyn-\d+")
H = TypeVar("H", bound=Callable[..., Awaitable[Any]])

#: What ``binary-emit`` sends: every binary type the server accepts, nested in objects and arrays.
SERVER_BINARY: dict[str, Any] = {
    "bytes": b"\x00\x01\x02\xfe\xff",
    "nested": [bytearray(b"xyz"), {"deep": memoryview(bytes(range(256)))}],
    "empty": b"",
    "text": "not binary",
}


def log(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


def find_binary(value: Any, path: str = "$") -> list[dict[str, Any]]:
    """Every bytes-like value inside ``value`` with its JSON path, Python type and hex contents."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return [{"path": path, "type": type(value).__name__, "hex": bytes(value).hex()}]
    found: list[dict[str, Any]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            found += find_binary(v, f"{path}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            found += find_binary(v, f"{path}[{i}]")
    return found


def build_sio(args: argparse.Namespace) -> sioserver.AsyncServer:
    sio = sioserver.AsyncServer(
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        cors_allowed_origins="*",
        transports=args.transports,
        serializer=args.serializer,
        connect_timeout=args.connect_timeout,
        ack_timeout=args.ack_timeout,
    )
    disconnects: dict[str, str] = {}

    def register(nsp: str) -> None:
        def on(event: str) -> Callable[[H], H]:
            register: Callable[[H], H] = sio.on(event, namespace=nsp)
            return register

        async def middleware(sid: str, environ: dict[str, Any], auth: Any) -> bool:
            mode = auth.get("middleware") if isinstance(auth, dict) else None
            if mode == "refuse":
                raise sioserver.ConnectionRefusedError("refused by middleware", ["data", 1])
            return mode != "false"

        sio.use(middleware, namespace=nsp)

        @on("connect")
        async def connect(sid: str, environ: dict[str, Any], auth: Any) -> bool:
            if isinstance(auth, dict) and auth.get("refuse") is True:
                log("REFUSE", nsp, sid)
                raise sioserver.ConnectionRefusedError("refused by test", {"reason": "test"})
            if isinstance(auth, dict) and auth.get("refuse") == "false":
                return False
            log("CONNECT", nsp, sid, sio.transport(sid, namespace=nsp), environ.get("QUERY_STRING", ""))
            welcome = {"auth": auth, "sid": sid, "nsp": nsp, "transport": sio.transport(sid, namespace=nsp)}
            await sio.emit("welcome", welcome, to=sid, namespace=nsp)
            return True

        @on("disconnect")
        async def disconnect(sid: str, reason: str) -> None:
            log("DISCONNECT", nsp, sid, reason)
            disconnects[sid] = str(reason)

        @on("echo")
        async def echo(sid: str, *data: Any) -> tuple[Any, ...]:
            return data

        @on("echo-emit")
        async def echo_emit(sid: str, *data: Any) -> None:
            await sio.emit("echo", data, to=sid, namespace=nsp)

        @on("whoami")
        async def whoami(sid: str) -> dict[str, Any]:
            return {
                "sid": sid,
                "nsp": nsp,
                "transport": sio.transport(sid, namespace=nsp),
                "rooms": sio.rooms(sid, namespace=nsp),
            }

        @on("join")
        async def join(sid: str, room: str) -> list[str]:
            await sio.enter_room(sid, room, namespace=nsp)
            return sio.rooms(sid, namespace=nsp)

        @on("leave")
        async def leave(sid: str, room: str) -> list[str]:
            await sio.leave_room(sid, room, namespace=nsp)
            return sio.rooms(sid, namespace=nsp)

        @on("to-room")
        async def to_room(sid: str, room: str, *data: Any) -> str:
            await sio.emit("room-msg", (room, *data), room=room, namespace=nsp)
            return "sent"

        @on("to-room-skip")
        async def to_room_skip(sid: str, room: str, *data: Any) -> str:
            await sio.emit("room-msg", (room, *data), room=room, skip_sid=sid, namespace=nsp)
            return "sent"

        @on("to-room-except")
        async def to_room_except(sid: str, room: str, except_room: str, *data: Any) -> str:
            await sio.to(room, namespace=nsp).except_(except_room).emit("room-msg", room, *data)
            return "sent"

        async def call_client(sid: str, event: str, payload: Any, timeout: float) -> dict[str, Any]:
            started = time.monotonic()
            outcome: dict[str, Any]
            try:
                answer = await sio.call(event, payload, to=sid, namespace=nsp, timeout=timeout)
                outcome = {"ok": True, "answer": answer}
            except sioserver.AckTimeoutError as exc:
                outcome = {"ok": False, "error": type(exc).__name__}
            except sioserver.DisconnectedError as exc:
                outcome = {"ok": False, "error": type(exc).__name__, "reason": exc.reason}
            outcome["elapsed"] = round(time.monotonic() - started, 3)
            outcome["timeout"] = timeout
            with contextlib.suppress(sioserver.DisconnectedError):
                await sio.emit("answer", outcome, to=sid, namespace=nsp)
            return outcome

        @on("server-call")
        async def server_call(sid: str, payload: Any = None, timeout: float = 5.0) -> dict[str, Any]:
            return await call_client(sid, "question", payload, timeout)

        @on("server-call-timeout")
        async def server_call_timeout(sid: str, payload: Any = None, timeout: float = 0.5) -> dict[str, Any]:
            return await call_client(sid, "question-ignored", payload, timeout)

        @on("server-callback")
        async def server_callback(sid: str, payload: Any = None) -> None:
            async def answered(*answer: Any) -> None:
                await sio.emit("callback-answer", answer, to=sid, namespace=nsp)

            def callback(*answer: Any) -> None:
                sio.start_background_task(answered, *answer)

            await sio.emit("question", payload, to=sid, namespace=nsp, callback=callback)

        @on("broadcast-ack")
        async def broadcast_ack(sid: str, spec: dict[str, Any] | None = None) -> list[Any]:
            spec = spec or {}
            op = sio.of(nsp)
            if spec.get("room"):
                op = op.to(spec["room"])
            if spec.get("except"):
                op = op.except_(spec["except"])
            op = op.timeout(float(spec.get("timeout", 2.0)))
            answers = await op.emit_with_ack("survey", spec.get("payload"))
            await sio.emit("survey-result", (answers,), to=sid, namespace=nsp)
            return answers

        @on("never-answer")
        async def never_answer(sid: str, *data: Any) -> None:
            await asyncio.sleep(30)

        @on("disconnect-me")
        async def disconnect_me(sid: str) -> None:
            await sio.disconnect(sid, namespace=nsp)

        @on("close-transport")
        async def close_transport(sid: str) -> None:
            # the whole Engine.IO session (every namespace), as Node's socket.conn.close(): no DISCONNECT packet
            eio_sid = sio._socket(sid, nsp).client.session.sid
            sio.eio.close_session(eio_sid)

        @on("binary")
        async def binary(sid: str, *data: Any) -> tuple[Any, ...]:
            return (find_binary(list(data)), *data)

        @on("binary-emit")
        async def binary_emit(sid: str) -> str:
            await sio.emit("binary", SERVER_BINARY, to=sid, namespace=nsp)
            return "sent"

        @on("disconnects")
        async def get_disconnects(sid: str) -> dict[str, str]:
            return dict(disconnects)

    for nsp in NAMESPACES:
        register(nsp)

    # dynamic namespaces /dyn-<digits>: created on first connect, removed when the last client leaves
    async def dyn_echo(sid: str, *data: Any) -> tuple[Any, ...]:
        return ("dyn", *data)

    sio.on("echo", dyn_echo, namespace=DYNAMIC)
    return sio


def build_app(args: argparse.Namespace) -> web.Application:
    app = web.Application()
    build_sio(args).attach(app, socketio_path="socket.io")
    return app


def build_asgi_app(args: argparse.Namespace) -> Any:
    """``sioserver.ASGIApp`` in front of a FastAPI app (its ``/api/ping`` answers ``{"pong": true}``)."""
    from fastapi import FastAPI

    api = FastAPI()

    @api.get("/api/ping")
    async def ping() -> dict[str, bool]:
        return {"pong": True}

    return sioserver.ASGIApp(build_sio(args), other_asgi_app=api)


async def serve(args: argparse.Namespace) -> None:
    async def shutdown() -> None:
        log("SHUTDOWN")

    def ready(port: int) -> None:
        log(f"listening on {args.host}:{port} front={args.front} serializer={args.serializer} "
            f"transports={','.join(args.transports)}")

    if args.front != "aiohttp":
        await asgi.serve(build_asgi_app(args), args.front, host=args.host, port=args.port, after_ready=ready)
        return
    await serving.serve(build_app(args), host=args.host, port=args.port, before_cleanup=shutdown, after_ready=ready)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = serving.server_arguments(__doc__)
    p.add_argument("--serializer", choices=("default", "msgpack"), default="default")
    p.add_argument("--front", choices=("aiohttp", *asgi.SERVERS), default="aiohttp",
                   help="aiohttp attach, or sioserver.ASGIApp (beside a FastAPI app) under an ASGI server")
    p.add_argument("--connect-timeout", type=float, default=45.0, help="seconds")
    p.add_argument("--ack-timeout", type=float, default=60.0, help="seconds")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    serving.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
