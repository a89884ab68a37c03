"""One sioserver process of a test cluster, with a RedisAdapter.

    python tests/adapters/cluster_node.py --port 0 --redis URL --name A [--key socket.io] [--sharded | --streams]

``--streams``: a ``RedisStreamsAdapter`` (stream and channel prefix ``--key``) instead of the RedisAdapter.
``--recovery S``: connection state recovery, ``max_disconnection_duration`` S seconds.

Prints ``READY <port>`` once listening and subscribed. Test clients drive it with the event
``do(op, spec)``, whose ack is the result; ``cluster_node.cjs`` (the Node peer) implements the same
operations with the same answers, so a test can drive either kind of server the same way:

- connect auth ``{"name", "rooms"}``: the session (``data``) becomes ``{"name": name}``, the socket
  joins ``rooms``.
- ``broadcast {event, args, to, except, local, nsp}``; ``emit-ack {..., timeout}`` -> ``{ok, answers}``.
- ``fetch {to, except, local}`` -> ``[{id, rooms, data, local, handshake}]``.
- ``sockets-join {to, rooms}``, ``sockets-leave``, ``disconnect-sockets {to, close}``.
- ``remote {id, action, args}``: fetch_sockets, then emit / join / leave / disconnect on that one.
- ``sse {event, args}``, ``sse-ack {event, args, timeout}`` -> ``{ok, answers, elapsed}``.
- ``all-rooms``, ``server-count``, ``server-events`` (what the server-side handlers got), ``stats``.
- ``stream {event, count, interval, to}``: emits ``event(i)`` to everyone (or to the room ``to``),
  ``count`` times; then ``stream-done(count)`` to the same.
- ``emitter {nsp, to, except, event, args, action}``: the same through ``sioserver.Emitter``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web

import sioserver
from sioserver.adapters import ClusterTimeoutError

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: tests._support

from tests._support import serving


def revive(value: Any) -> Any:
    """``{"$bytes": "0102"}`` in a test's arguments stands for bytes (binary must cross as msgpack bin)."""
    if isinstance(value, dict) and isinstance(value.get("$bytes"), str):
        return bytes.fromhex(value["$bytes"])
    if isinstance(value, list):
        return [revive(v) for v in value]
    return value


def build(args: argparse.Namespace) -> tuple[sioserver.AsyncServer, Any, web.Application]:
    factory: sioserver.RedisAdapter | sioserver.RedisStreamsAdapter
    if args.streams:
        factory = sioserver.RedisStreamsAdapter(args.redis, stream_name=args.key, channel_prefix=args.key,
                                                request_timeout=args.timeout, health_check_interval=2.0,
                                                block_time=2.0)
    else:
        factory = sioserver.RedisAdapter(args.redis, key=args.key, sharded=args.sharded or None,
                                         request_timeout=args.timeout, health_check_interval=2.0,
                                         max_queue_age=args.max_queue_age)
    recovery = {"max_disconnection_duration": args.recovery} if args.recovery else None
    sio = sioserver.AsyncServer(adapter=factory, cors_allowed_origins="*", ping_interval=5, ping_timeout=5,
                                connection_state_recovery=recovery)
    name = args.name
    server_events: list[Any] = []

    @sio.on_server_event("ping-srv")
    async def ping_srv(*data: Any) -> dict[str, Any]:
        server_events.append(["ping-srv", *data])
        return {"pong": list(data), "node": name}

    @sio.on_server_event("*")
    def any_event(event: str, *data: Any) -> None:
        server_events.append([event, *data])

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        if sio.recovered(sid):
            return  # its session and rooms came back with it
        auth = auth if isinstance(auth, dict) else {}
        await sio.save_session(sid, {"name": auth.get("name")})
        for room in auth.get("rooms") or ():
            await sio.enter_room(sid, room)

    def operator(spec: dict[str, Any]) -> Any:
        op = sio.of(spec.get("nsp") or "/")
        if spec.get("to"):
            op = op.to(spec["to"])
        if spec.get("except"):
            op = op.except_(spec["except"])
        if spec.get("local"):
            op = op.local
        return op

    def describe(s: Any) -> dict[str, Any]:
        return {"id": s.id, "rooms": sorted(s.rooms), "data": s.data, "local": s.local,
                "handshake": sorted(s.handshake), "auth": s.handshake.get("auth")}

    async def stream(event: str, count: int, interval: float, to: str | None) -> None:
        for i in range(count):
            await sio.emit(event, i, to=to)
            await asyncio.sleep(interval)
        await sio.emit("stream-done", count, to=to)

    emitters: list[sioserver.Emitter] = []  # made on first use: it takes one-server URLs only

    def emitter() -> sioserver.Emitter:
        if not emitters:
            emitters.append(sioserver.Emitter(args.redis, key=args.key))
        return emitters[0]

    async def do(op: str, spec: dict[str, Any]) -> Any:
        if "args" in spec:
            spec["args"] = revive(spec["args"])
        if op == "broadcast":
            await operator(spec).emit(spec["event"], *spec.get("args", []))
            return "ok"
        if op == "emit-ack":
            started = time.monotonic()
            answers = await operator(spec).timeout(spec.get("timeout", 2.0)).emit_with_ack(
                spec["event"], *spec.get("args", []))
            return {"ok": True, "answers": answers, "elapsed": time.monotonic() - started}
        if op == "fetch":
            return [describe(s) for s in await operator(spec).fetch_sockets()]
        if op == "sockets-join":
            await operator(spec).sockets_join(spec["rooms"])
            return "ok"
        if op == "sockets-leave":
            await operator(spec).sockets_leave(spec["rooms"])
            return "ok"
        if op == "disconnect-sockets":
            await operator(spec).disconnect_sockets(bool(spec.get("close")))
            return "ok"
        if op == "remote":
            for s in await sio.fetch_sockets():
                if s.id == spec["id"]:
                    action = spec["action"]
                    if action == "emit":
                        await s.emit(*spec["args"])
                    elif action == "join":
                        await s.join(spec["args"][0])
                    elif action == "leave":
                        await s.leave(spec["args"][0])
                    elif action == "disconnect":
                        await s.disconnect()
                    return "ok"
            return "not found"
        if op == "sse":
            await sio.server_side_emit(spec["event"], *spec.get("args", []))
            return "ok"
        if op == "sse-ack":
            started = time.monotonic()
            try:
                answers = await sio.server_side_emit_with_ack(spec["event"], *spec.get("args", []),
                                                              timeout=spec.get("timeout"))
                return {"ok": True, "answers": answers, "elapsed": time.monotonic() - started}
            except ClusterTimeoutError as exc:
                return {"ok": False, "error": str(exc), "answers": exc.responses,
                        "elapsed": time.monotonic() - started}
        if op == "all-rooms":
            return sorted(await sio.all_rooms())
        if op == "server-count":
            return await sio.server_count()
        if op == "server-events":
            return server_events
        if op == "stats":
            return {"healthy": factory.healthy, **factory.stats}
        if op == "stream":
            sio.start_background_task(stream, spec["event"], int(spec["count"]), float(spec["interval"]),
                                      spec.get("to"))
            return "started"
        if op == "emitter":
            target = emitter().of(spec.get("nsp") or "/")
            em: Any = target
            if spec.get("to"):
                em = em.to(spec["to"])
            if spec.get("except"):
                em = em.except_(spec["except"])
            action = spec.get("action", "emit")
            if action == "emit":
                return await em.emit(spec["event"], *spec.get("args", []))
            if action == "sockets-join":
                return await em.sockets_join(spec["rooms"])
            if action == "sockets-leave":
                return await em.sockets_leave(spec["rooms"])
            if action == "disconnect-sockets":
                return await em.disconnect_sockets(bool(spec.get("close")))
            if action == "server-side-emit":
                return await target.server_side_emit(spec["event"], *spec.get("args", []))
        return {"error": f"unknown op {op!r}"}

    @sio.on("do")
    async def on_do(sid: str, op: str, spec: dict[str, Any] | None = None) -> Any:
        try:
            return await do(op, spec or {})
        except Exception as exc:
            logging.getLogger("cluster_node").exception("op %s failed", op)
            return {"error": f"{type(exc).__name__}: {exc}"}

    app = web.Application()
    sio.attach(app)

    async def close_emitter(_: web.Application) -> None:
        for em in emitters:
            await em.close()

    app.on_cleanup.append(close_emitter)
    return sio, factory, app


async def main(args: argparse.Namespace) -> None:
    sio, factory, app = build(args)

    async def subscribed(port: int) -> None:
        if not await factory.wait_ready(10):
            print("redis adapter not ready after 10 s", file=sys.stderr, flush=True)

    async def shutdown() -> None:
        await sio.shutdown()

    await serving.serve(app, port=args.port, before_ready=subscribed, before_cleanup=shutdown, shutdown_timeout=5.0,
                        handler_cancellation=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--name", default="py")
    parser.add_argument("--key", default="socket.io")
    parser.add_argument("--sharded", action="store_true")
    parser.add_argument("--streams", action="store_true")
    parser.add_argument("--recovery", type=float, default=0.0,
                        help="connection_state_recovery with this max_disconnection_duration (seconds)")
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--max-queue-age", type=float, default=10.0)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    asyncio.run(main(parser.parse_args()))
