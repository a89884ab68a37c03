"""Engine.IO interop with a second peer: python-engineio's ``engineio.AsyncClient``.

The same scenarios as test_engineio_node.py (polling, websocket, upgrade, 1 MiB, heartbeat, server close), each
against a fresh echo server. Where python-engineio's *server* misbehaves the assertion is relaxed for
``SIOSERVER_INTEROP_IMPL=python-engineio`` only (see ``LAX``); sioserver must pass everything.

This client decodes every text message that parses as JSON into the parsed value (on both sides), so the echo
set here carries no JSON-looking text; the Node scenarios cover that.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import engineio  # type: ignore[import-untyped]
import pytest
from engineio import packet as eio_packet

pytestmark = pytest.mark.interop

T = TypeVar("T")

STEP = 5.0  # seconds: deadline for one wait (connect, one echo)
CLOSE = 3.0  # seconds: deadline for a close the server initiates
LARGE = 8.0  # seconds: deadline for one 1 MiB echo

# (scenario, case) -> why python-engineio's server may fail it (it is never relaxed for sioserver)
LAX: dict[str, dict[tuple[str, str], str]] = {
    "python-engineio": {
        # reads a POST body with aiohttp's StreamReader.read(CONTENT_LENGTH), which returns what is buffered:
        # large bodies are cut (text) or fail to base64-decode and are dropped (binary)
        ("large", "polling"): "truncates large POST bodies",
        # when the client closes a polling session (POST "1") it leaves the pending GET hanging until the next
        # ping (the reference answers it at once), so this client's disconnect() takes ~ping_interval
        ("polling", "client-close"): "leaves the pending long-poll open when the client closes",
        # on ping timeout it answers the pending GET with HTTP 400 (not a close packet), and late
        ("heartbeat", "polling-no-pong"): "ends a timed-out polling session with HTTP 400, ~300 ms late",
    },
    "sioserver": {},
}

# the same as in test_engineio_node.py: python-engineio announces int(interval) * 1000 as pingInterval
HEARTBEAT = {"sioserver": (0.3, 0.3, 1.5), "python-engineio": (1.0, 0.3, 2.5)}

ECHO_SET: list[tuple[str, str | bytes]] = [
    ("ascii", "hello"),
    ("unicode", "héllo ✓ — ünïcödé 中文 🚀"),
    ("empty", ""),
    ("b-prefixed-text", "bAAECAw=="),  # text that looks like a base64 polling binary
    ("digits", "42"),
    ("binary-256", bytes(range(256))),
    ("binary-1", b"\x00"),
]


def strict(impl: str, scenario: str, case: str) -> bool:
    return (scenario, case) not in LAX.get(impl, {})


async def within(seconds: float, what: str, aw: Awaitable[T]) -> T:
    try:
        return await asyncio.wait_for(aw, seconds)
    except TimeoutError:
        raise AssertionError(f"timeout after {seconds} s waiting for {what}") from None


def describe(data: object) -> str:
    if isinstance(data, bytes):
        return f"bytes[{len(data)}] {data[:16].hex()}"
    if isinstance(data, str):
        return f"str[{len(data)}] {data[:40]!r}"
    return f"{type(data).__name__} {data!r:.60}"


class RecordingClient(engineio.AsyncClient):  # type: ignore[misc]
    """AsyncClient that records the server's pings and the upgrade attempt; can be told not to answer pings."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ping_times: list[float] = []
        self.answer_pings = True
        self.upgrade_attempts: list[bool] = []  # result of each WebSocket upgrade attempt

    async def _receive_packet(self, pkt: Any) -> None:
        if pkt.packet_type == eio_packet.PING:
            self.ping_times.append(time.monotonic())
            if not self.answer_pings:
                return
        await super()._receive_packet(pkt)

    async def _connect_websocket(self, url: str, headers: dict[str, str], engineio_path: str) -> bool:
        upgrading = self.sid is not None
        ok = bool(await super()._connect_websocket(url, headers, engineio_path))
        if upgrading:
            self.upgrade_attempts.append(ok)
        return ok


class Peer:
    """One python-engineio client connection, with its messages and disconnect reason collected."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = RecordingClient(handle_sigint=False, request_timeout=STEP)
        self.inbox: asyncio.Queue[object] = asyncio.Queue()
        self.reasons: list[str] = []
        self.gone = asyncio.Event()
        self.connected_at = 0.0
        on: Callable[[str], Callable[[Callable[..., Awaitable[None]]], Any]] = self.client.on

        @on("message")
        async def message(data: object) -> None:
            self.inbox.put_nowait(data)

        @on("disconnect")
        async def disconnect(reason: str) -> None:
            self.reasons.append(reason)
            self.gone.set()

    async def connect(self, transports: list[str] | None) -> None:
        await within(STEP, f"connect {transports}", self.client.connect(self.url, transports=transports))
        self.connected_at = time.monotonic()

    async def next(self, what: str, seconds: float = STEP) -> object:
        get = asyncio.ensure_future(self.inbox.get())
        gone = asyncio.ensure_future(self.gone.wait())
        try:
            done, _ = await asyncio.wait({get, gone}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if get in done:
            return get.result()
        get.cancel()
        if gone.done():
            raise AssertionError(f"disconnected ({self.reasons}) while waiting for {what}")
        raise AssertionError(f"timeout after {seconds} s waiting for {what}")

    async def echo(self, name: str, data: str | bytes, seconds: float = STEP) -> None:
        await self.client.send(data)
        got = await self.next(f"echo of {name}", seconds)
        assert type(got) is type(data), f"{name}: sent {describe(data)}, got {describe(got)}"
        assert got == data, f"{name}: sent {describe(data)}, got {describe(got)}"

    async def echo_set(self) -> None:
        for name, data in ECHO_SET:
            await self.echo(name, data)
        # the whole set again as one burst: several packets per polling request and response
        for _, data in ECHO_SET:
            await self.client.send(data)
        for name, data in ECHO_SET:
            got = await self.next(f"burst echo of {name}")
            assert type(got) is type(data) and got == data, f"burst {name}: {describe(data)} != {describe(got)}"

    async def disconnect_gracefully(self) -> float:
        """The client's own close (it sends "1" and waits for its read loop); returns how long it took.

        The reference server answers the pending long-poll at once, so this takes milliseconds."""
        t0 = time.monotonic()
        await within(1.0, "the client's graceful disconnect", self.client.disconnect())
        return time.monotonic() - t0

    async def close(self) -> None:
        """Teardown: abort (no wait for the read loop), then make sure no task or session is left behind."""
        c = self.client
        with contextlib.suppress(Exception):
            await asyncio.wait_for(c.disconnect(abort=True), 2)
        for task in (getattr(c, "read_loop_task", None), getattr(c, "write_loop_task", None)):
            if task is not None and not task.done():
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(task, 1)
        http = getattr(c, "http", None)
        if http is not None and not http.closed:
            await http.close()


async def with_peer(url: str, body: Callable[[Peer], Awaitable[T]]) -> T:
    peer = Peer(url)
    try:
        return await body(peer)
    finally:
        await peer.close()


def explain(server: Any) -> str:
    return "\n" + str(server.context())


async def explained(server: Any, body: Callable[[Peer], Awaitable[T]]) -> T:
    """``with_peer`` against ``server``; a failed assertion carries the server's command line and log."""
    try:
        return await with_peer(server.url, body)
    except AssertionError as e:
        raise AssertionError(f"{e}{explain(server)}") from None


# ---------------------------------------------------------------------------------------------- tests


async def test_polling(eio_server: Callable[..., Any], impl: str) -> None:
    server = eio_server()

    async def body(peer: Peer) -> None:
        await peer.connect(["polling"])
        c = peer.client
        assert c.transport() == "polling"
        assert c.upgrades == ["websocket"], "a polling session offers the websocket upgrade"
        assert c.upgrade_attempts == [], "transports=['polling'] never upgrades"
        await peer.echo_set()
        assert c.transport() == "polling" and c.state == "connected" and not peer.reasons
        if strict(impl, "polling", "client-close"):
            await peer.disconnect_gracefully()

    await explained(server, body)


async def test_websocket(eio_server: Callable[..., Any]) -> None:
    server = eio_server()

    async def body(peer: Peer) -> None:
        await peer.connect(["websocket"])
        c = peer.client
        assert c.transport() == "websocket"
        assert c.upgrades == [], "a WebSocket-only session offers no upgrade"
        await peer.echo_set()
        assert c.transport() == "websocket" and c.state == "connected" and not peer.reasons
        await peer.disconnect_gracefully()

    await explained(server, body)


async def test_upgrade(eio_server: Callable[..., Any]) -> None:
    server = eio_server()

    async def body(peer: Peer) -> None:
        await peer.connect(None)  # default: polling first, then the 2probe/3probe/5 upgrade
        c = peer.client
        assert c.upgrades == ["websocket"]
        assert c.upgrade_attempts == [True], f"upgrade attempts: {c.upgrade_attempts}"
        assert c.transport() == "websocket"
        await peer.echo_set()
        assert c.transport() == "websocket" and c.state == "connected" and not peer.reasons
        await peer.disconnect_gracefully()

    await explained(server, body)


async def test_large(eio_server: Callable[..., Any], impl: str) -> None:
    server = eio_server(max_http_buffer_size=3_000_000)
    text = ("The quick brown fox 0123456789 é ✓ 中 🚀 jumps over the lazy dog\n" * 20_000)[: 1 << 20]
    blob = bytes((i * 7 + (i >> 8)) & 0xFF for i in range(1 << 20))

    async def one(transport: str) -> str | None:
        async def body(peer: Peer) -> None:
            await peer.connect([transport])
            assert peer.client.transport() == transport
            await peer.echo("1 MiB text", text, LARGE)
            await peer.echo("1 MiB binary", blob, LARGE)
            assert peer.client.state == "connected" and not peer.reasons

        try:
            await with_peer(server.url, body)
        except AssertionError as e:
            if strict(impl, "large", transport):
                return f"{transport}: {e}"
        return None

    errors = [e for e in await asyncio.gather(one("polling"), one("websocket")) if e]
    assert not errors, "\n".join(errors) + explain(server)


async def test_heartbeat(eio_server: Callable[..., Any], impl: str) -> None:
    interval, timeout, idle = HEARTBEAT[impl]
    server = eio_server(ping_interval=interval, ping_timeout=timeout)
    expected = int(idle / interval)

    async def idle_case(transport: str) -> None:
        async def body(peer: Peer) -> None:
            await peer.connect([transport])
            c = peer.client
            # the handshake carries exact milliseconds (0.3 s must not become 0)
            assert c.ping_interval == interval, f"pingInterval {c.ping_interval} s, configured {interval} s"
            assert c.ping_timeout == timeout, f"pingTimeout {c.ping_timeout} s, configured {timeout} s"
            await asyncio.sleep(idle)
            pings = len(c.ping_times)
            assert max(1, expected - 2) <= pings <= expected + 2, f"{pings} pings in {idle} s"
            gaps = [b - a for a, b in zip(c.ping_times, c.ping_times[1:], strict=False)]
            assert all(g >= interval / 2 for g in gaps), f"ping gaps {gaps}"
            assert c.state == "connected" and not peer.reasons, f"closed while idle: {peer.reasons}"
            await peer.echo("after idle", "after idle")

        await with_peer(server.url, body)

    async def silent_case(transport: str) -> None:
        # never answers a ping: the server must end the session pingTimeout after its unanswered ping
        async def body(peer: Peer) -> None:
            peer.client.answer_pings = False
            await peer.connect([transport])
            await within((interval + timeout) * 3 + 2, "the server to end the session", peer.gone.wait())
            c = peer.client
            assert len(c.ping_times) == 1, f"{len(c.ping_times)} pings before the close"
            late = time.monotonic() - c.ping_times[0]
            # polling: the close packet on the pending GET; websocket: the socket closes (the reference sends no
            # close packet there, so this client calls it a transport error)
            allowed = ["server disconnect"] if transport == "polling" else ["server disconnect", "transport error"]
            if strict(impl, "heartbeat", f"{transport}-no-pong"):
                assert len(peer.reasons) == 1 and peer.reasons[0] in allowed, f"reasons {peer.reasons}"
                # the client's own read deadline is interval + timeout after the ping: the server must be first
                assert timeout / 2 <= late <= timeout + 0.3, f"closed {late:.3f} s after the ping"

        await with_peer(server.url, body)

    results = await asyncio.gather(
        idle_case("polling"),
        idle_case("websocket"),
        silent_case("polling"),
        silent_case("websocket"),
        return_exceptions=True,
    )
    names = ["polling", "websocket", "polling-no-pong", "websocket-no-pong"]
    errors = [f"{n}: {r!r}" for n, r in zip(names, results, strict=True) if isinstance(r, BaseException)]
    assert not errors, "\n".join(errors) + explain(server)


async def test_server_close(eio_server: Callable[..., Any]) -> None:
    server = eio_server()

    async def one(name: str, transports: list[str] | None) -> dict[str, Any]:
        async def body(peer: Peer) -> dict[str, Any]:
            await peer.connect(transports)
            c = peer.client
            await peer.echo("before close-me", "before close-me")
            transport = c.transport()
            t0 = time.monotonic()
            await c.send("close-me")
            await within(CLOSE, "the server's close", peer.gone.wait())
            return {"transport": transport, "reasons": peer.reasons, "s": time.monotonic() - t0}

        return await with_peer(server.url, body)

    names = {"polling": ["polling"], "websocket": ["websocket"], "upgraded": None}
    results = await asyncio.gather(*(one(n, t) for n, t in names.items()), return_exceptions=True)
    errors = []
    for name, r in zip(names, results, strict=True):
        if isinstance(r, BaseException):
            errors.append(f"{name}: {r!r}")
            continue
        want_transport = "polling" if name == "polling" else "websocket"
        if r["transport"] != want_transport:
            errors.append(f"{name}: transport {r['transport']}, expected {want_transport}")
        # polling: the close packet "1" -> "server disconnect". websocket: the reference just closes the socket,
        # which this client reports as "transport error"; a server that sends "1" first gets "server disconnect"
        allowed = ["server disconnect"] if name == "polling" else ["server disconnect", "transport error"]
        if len(r["reasons"]) != 1 or r["reasons"][0] not in allowed:
            errors.append(f"{name}: disconnect reasons {r['reasons']}, expected one of {allowed}")
    assert not errors, "\n".join(errors) + explain(server)
