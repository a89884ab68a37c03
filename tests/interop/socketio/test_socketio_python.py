"""Socket.IO interop with a second peer: python-socketio's ``socketio.AsyncClient`` (5.x).

The core scenarios of test_socketio_node.py against one sio_test_server.py per serializer (shared by the module):
transports (websocket, polling, polling + upgrade), namespaces, auth, refusals, acks both ways, binary, rooms and
the disconnect reason this client reports when the server disconnects it.

Where this client's own behaviour decides what is observable, the test says so: it answers every event that has
an ack id even without a handler (with no arguments), its ``disconnect()`` may close the WebSocket before the
DISCONNECT packet is written, and it names server-side disconnects "server disconnect".
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest
import socketio
from sio_harness import SERVER_BINARY, ServerPool, SioServer

pytestmark = pytest.mark.interop

T = TypeVar("T")
STEP = 4.0  # seconds: deadline for one wait (connect, ack, event)
NAMESPACES = ("/", "/custom")

ARGS: tuple[Any, ...] = ("héllo ✓ 中文 🚀", 42, 3.5, True, None, {"nested": {"list": [1, "two", {"three": 3}]}}, [])
NESTED_BINARY: dict[str, Any] = {
    "buf": bytes([0, 1, 2, 253, 254, 255]),
    "list": [b"\x0a\x14\x1e", "text", {"deep": [b"deep bytes", 7]}],
    "all": bytes(range(256)),
    "empty": b"",
    "plain": {"n": 1, "s": "ünï"},
}


async def within(seconds: float, what: str, aw: Awaitable[T]) -> T:
    try:
        return await asyncio.wait_for(aw, seconds)
    except TimeoutError:
        raise AssertionError(f"timeout after {seconds} s waiting for {what}") from None


class Peer:
    """A python-socketio AsyncClient that records every event, disconnect and connect error per namespace."""

    def __init__(self, server: SioServer, serializer: str, label: str = "peer") -> None:
        self.server = server
        self.label = label
        self.client = socketio.AsyncClient(reconnection=False, serializer=serializer, handle_sigint=False)
        self.queues: defaultdict[tuple[str, str], asyncio.Queue[tuple[Any, ...]]] = defaultdict(asyncio.Queue)
        self.seen: defaultdict[tuple[str, str], list[tuple[Any, ...]]] = defaultdict(list)
        self.disconnects: dict[str, list[str]] = defaultdict(list)
        self.connect_errors: dict[str, list[Any]] = defaultdict(list)
        for nsp in NAMESPACES:
            self.watch(nsp)

    def watch(self, nsp: str) -> None:
        """Record the events, disconnects and connect errors of ``nsp``."""

        async def any_event(event: str, *args: Any) -> None:
            self.seen[(nsp, event)].append(args)
            await self.queues[(nsp, event)].put(args)

        async def disconnect(reason: str) -> None:
            self.disconnects[nsp].append(reason)

        async def connect_error(data: Any = None) -> None:
            self.connect_errors[nsp].append(data)

        self.client.on("*", any_event, namespace=nsp)
        self.client.on("disconnect", disconnect, namespace=nsp)
        self.client.on("connect_error", connect_error, namespace=nsp)

    def on(self, event: str, handler: Callable[..., Any], namespace: str = "/") -> None:
        self.client.on(event, handler, namespace=namespace)

    async def connect(
        self, *, transports: list[str] | None = None, namespaces: list[str] | None = None, auth: Any = None
    ) -> None:
        await self.client.connect(
            self.server.url,
            transports=transports,
            namespaces=namespaces or ["/"],
            auth=auth,
            wait_timeout=STEP,
        )

    async def next(self, event: str, namespace: str = "/") -> tuple[Any, ...]:
        return await within(STEP, f"{event!r} in {namespace} ({self.label})", self.queues[(namespace, event)].get())

    async def call(self, event: str, data: Any = None, namespace: str = "/", timeout: float = STEP) -> Any:
        return await self.client.call(event, data, namespace=namespace, timeout=timeout)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.disconnect(), STEP)


PeerFactory = Callable[..., Awaitable[Peer]]


@pytest.fixture(params=["default", "msgpack"])
def serializer(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(sio_servers: ServerPool, serializer: str) -> SioServer:
    """The module's shared server for this serializer."""
    return sio_servers.shared(serializer=serializer)


@pytest.fixture
async def peers(server: SioServer, serializer: str) -> AsyncIterator[Callable[..., Peer]]:
    """``peers("label")`` makes a Peer (not yet connected); all are disconnected at teardown."""
    made: list[Peer] = []

    def make(label: str = "peer") -> Peer:
        peer = Peer(server, serializer, label)
        made.append(peer)
        return peer

    yield make
    await asyncio.gather(*(p.close() for p in made))


async def server_reason(server: SioServer, serializer: str, sid: str) -> str | None:
    """The reason the server's disconnect handler got for ``sid`` (polled from a fresh client)."""
    probe = Peer(server, serializer, "reason-probe")
    await probe.connect(transports=["websocket"])
    try:
        deadline = time.monotonic() + STEP
        while True:
            reasons = await probe.call("disconnects")
            if sid in reasons or time.monotonic() > deadline:
                return None if reasons.get(sid) is None else str(reasons[sid])
            await asyncio.sleep(0.05)
    finally:
        await probe.close()


# ------------------------------------------------------------------------------------------ transports


@pytest.mark.parametrize("transport", ["websocket", "polling", "upgrade"])
async def test_transports(peers: Callable[..., Peer], transport: str) -> None:
    """Connect (polling + upgrade for "upgrade"), welcome with the auth, an ack and an event, both ways."""
    peer = peers()
    auth = {"token": "py", "n": [1, 2]}
    await peer.connect(transports=None if transport == "upgrade" else [transport], auth=auth)
    want = "websocket" if transport == "upgrade" else transport
    assert peer.client.transport() == want
    sid = peer.client.get_sid("/")
    assert sid and sid != peer.client.eio.sid, "the namespace sid is fresh, never the Engine.IO sid"
    (welcome,) = await peer.next("welcome")
    assert welcome["auth"] == auth and welcome["sid"] == sid and welcome["nsp"] == "/"
    if transport != "upgrade":  # with the upgrade the CONNECT may travel over either transport
        assert welcome["transport"] == transport
    assert await peer.call("echo", ARGS) == ARGS
    await peer.client.emit("echo-emit", ARGS)
    assert await peer.next("echo") == ARGS
    who = await peer.call("whoami")
    assert who == {"sid": sid, "nsp": "/", "transport": want, "rooms": [sid]}
    # order is kept (10 events: python-engineio's client rejects a polling payload of more than 16 packets,
    # Payload.max_decode_packets, and the server, like the reference, batches whatever is queued into one)
    for i in range(10):
        await peer.client.emit("echo-emit", i)
    assert [(await peer.next("echo"))[0] for _ in range(10)] == list(range(10))


async def test_namespaces(peers: Callable[..., Peer]) -> None:
    """ "/" and "/custom" on one connection: distinct sids, isolated events, one leaves and the other stays."""
    peer = peers()
    await peer.connect(transports=["websocket"], namespaces=["/", "/custom"], auth={"who": "both"})
    main, custom = peer.client.get_sid("/"), peer.client.get_sid("/custom")
    assert len({main, custom, peer.client.eio.sid}) == 3
    for nsp, sid in (("/", main), ("/custom", custom)):
        (welcome,) = await peer.next("welcome", nsp)
        assert welcome == {"auth": {"who": "both"}, "sid": sid, "nsp": nsp, "transport": "websocket"}
        assert (await peer.call("whoami", namespace=nsp))["nsp"] == nsp
        assert await peer.call("echo", f"in {nsp}", namespace=nsp) == f"in {nsp}"
    await peer.client.emit("echo-emit", "custom-only", namespace="/custom")
    assert await peer.next("echo", "/custom") == ("custom-only",)
    await peer.call("echo", "fence")
    assert peer.seen[("/", "echo")] == [], "an event of /custom does not reach /"
    # the server disconnects /custom only: / keeps working on the same connection
    await peer.client.emit("disconnect-me", namespace="/custom")
    await within(STEP, "the /custom disconnect", _until(lambda: peer.disconnects["/custom"]))
    assert peer.disconnects["/custom"] == ["server disconnect"]
    assert await peer.call("echo", "still here") == "still here"
    assert peer.client.connected and peer.disconnects["/"] == []


async def _until(cond: Callable[[], Any]) -> None:
    while not cond():
        await asyncio.sleep(0.02)


async def test_auth(peers: Callable[..., Peer]) -> None:
    peer = peers("auth")
    auth = {"token": "abc", "n": 1.5, "list": [1, None, "ü"], "nested": {"ok": True}}
    await peer.connect(transports=["websocket"], namespaces=["/custom"], auth=auth)
    (welcome,) = await peer.next("welcome", "/custom")
    assert welcome["auth"] == auth and welcome["nsp"] == "/custom"
    none = peers("no-auth")
    await none.connect(transports=["polling"])
    (welcome,) = await none.next("welcome")
    assert welcome["auth"] == {}, "this client sends {} when it has no auth"


REFUSALS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "handler-raises": ({"refuse": True}, {"message": "refused by test", "data": {"reason": "test"}}),
    "handler-false": ({"refuse": "false"}, {"message": "Connection rejected by server"}),
    "middleware-raises": ({"middleware": "refuse"}, {"message": "refused by middleware", "data": ["data", 1]}),
}


@pytest.mark.parametrize("namespace", ["/", "/custom"])
@pytest.mark.parametrize("how", list(REFUSALS))
async def test_refused(peers: Callable[..., Peer], namespace: str, how: str) -> None:
    """A refusal: connect() raises ConnectionError; the connect_error handler gets the message and data."""
    auth, error = REFUSALS[how]
    peer = peers()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await peer.connect(transports=["websocket"], namespaces=[namespace], auth=auth)
    assert peer.connect_errors[namespace] == [error]
    assert not peer.client.connected
    assert peer.seen == {} and peer.disconnects == {}, "a refused client gets no event and no disconnect"


async def test_invalid_namespace(peers: Callable[..., Peer]) -> None:
    peer = peers()
    peer.watch("/nope")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await peer.connect(transports=["websocket"], namespaces=["/nope"])
    assert peer.connect_errors["/nope"] == [{"message": "Invalid namespace"}]


# ------------------------------------------------------------------------------------------ acks, binary


async def test_acks(peers: Callable[..., Peer]) -> None:
    """client.call() both with an answer and timing out; the server's sio.call() and emit(callback=) answered by
    this client's handlers' return values; a server-side ack timeout, after which a late answer is ignored."""
    peer = peers()
    release = asyncio.Event()

    async def question(payload: Any) -> Any:
        return {"answered": payload, "bin": b"\x09\x08\x07"}

    async def question_ignored(payload: Any) -> str:
        await release.wait()  # answers only after the server's deadline
        return "too late"

    peer.on("question", question)
    peer.on("question-ignored", question_ignored)
    await peer.connect(transports=["websocket"])
    assert await peer.call("echo", ("x", 2, [3], {"four": 4})) == ("x", 2, [3], {"four": 4})
    assert await peer.call("echo") is None
    t0 = time.monotonic()
    with pytest.raises(socketio.exceptions.TimeoutError):
        await peer.call("never-answer", 1, timeout=0.4)
    assert 0.35 <= time.monotonic() - t0 < 2

    outcome = await peer.call("server-call", ({"q": "why"}, 3))
    assert outcome["ok"] is True and outcome["answer"] == {"answered": {"q": "why"}, "bin": b"\x09\x08\x07"}
    (event,) = await peer.next("answer")
    assert event == outcome

    peer.on("question", lambda payload: ("a", 2, {"p": payload}))
    await peer.client.emit("server-callback", "cb")
    assert await peer.next("callback-answer") == ("a", 2, {"p": "cb"})

    outcome = await peer.call("server-call-timeout", ("ignored", 0.3))
    assert outcome["ok"] is False and outcome["error"] == "AckTimeoutError"
    assert 0.25 <= outcome["elapsed"] < 1.0
    release.set()
    await asyncio.sleep(0.1)  # the late ACK goes out
    assert await peer.call("echo", "still connected") == "still connected"
    assert peer.client.connected and peer.disconnects["/"] == []


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_binary(peers: Callable[..., Peer], transport: str) -> None:
    """bytes nested in objects and arrays both ways, in events and acks, byte for byte."""
    peer = peers()
    peer.on("question", lambda payload: {"got": payload, "reply": b"\x01\x00\x01"})
    await peer.connect(transports=[transport])
    found, *echoed = await peer.call("binary", (NESTED_BINARY, "second", [b"\xff"]))
    assert [f["path"] for f in found] == [
        "$[0].buf",
        "$[0].list[0]",
        "$[0].list[2].deep[0]",
        "$[0].all",
        "$[0].empty",
        "$[2][0]",
    ]
    assert all(f["type"] == "bytes" for f in found), found
    assert echoed == [NESTED_BINARY, "second", [b"\xff"]]
    await peer.client.emit("binary-emit")
    assert await peer.next("binary") == (SERVER_BINARY,)
    big = bytes(range(256)) * 800
    await peer.client.emit("echo-emit", ({"big": big}, [b"a", b"b"]))
    assert await peer.next("echo") == ({"big": big}, [b"a", b"b"])
    outcome = await peer.call("server-call", b"\x05\x05")
    assert outcome["answer"] == {"got": b"\x05\x05", "reply": b"\x01\x00\x01"}


# ------------------------------------------------------------------------------------------ rooms


async def test_rooms(peers: Callable[..., Peer]) -> None:
    """a: r1; b: r1 + r2; c: r2; d: r1 of "/custom". Each broadcast reaches exactly its targets."""
    names = "abcd"
    clients = {n: peers(n) for n in names}

    def answerer(name: str) -> Callable[[Any], dict[str, Any]]:
        return lambda payload: {"from": name, "payload": payload}

    for n, peer in clients.items():
        peer.on("survey", answerer(n), namespace="/custom" if n == "d" else "/")
    # b polls, the others use a WebSocket: one broadcast reaches both kinds of transport
    await asyncio.gather(
        *(
            p.connect(transports=["polling" if n == "b" else "websocket"], namespaces=["/custom" if n == "d" else "/"])
            for n, p in clients.items()
        )
    )
    a, b, c, d = (clients[n] for n in names)
    sid = {n: p.client.get_sid("/custom" if n == "d" else "/") for n, p in clients.items()}
    assert await a.call("join", "r1") == sorted([sid["a"], "r1"])
    await b.call("join", "r1")
    assert await b.call("join", "r2") == sorted([sid["b"], "r1", "r2"])
    assert await c.call("join", "r2") == sorted([sid["c"], "r2"])
    assert await d.call("join", "r1", namespace="/custom") == sorted([d.client.get_sid("/custom"), "r1"])

    def by_sender(answers: list[dict[str, str]]) -> list[str]:
        return sorted(x["from"] for x in answers)

    assert by_sender(await a.call("broadcast-ack", {"room": "r2", "payload": "s"})) == ["b", "c"]
    assert by_sender(await c.call("broadcast-ack", {"room": "r1", "except": "r2", "payload": "s"})) == ["a"]
    assert by_sender(await a.call("broadcast-ack", {"room": "r1", "payload": "s"})) == ["a", "b"]

    async def received() -> dict[str, list[tuple[Any, ...]]]:
        # a round trip per client: everything broadcast before it has arrived
        await asyncio.gather(
            *(p.call("echo", "fence", namespace="/custom" if n == "d" else "/") for n, p in clients.items())
        )
        got = {n: list(p.seen[("/custom" if n == "d" else "/", "room-msg")]) for n, p in clients.items()}
        for p in clients.values():
            p.seen.clear()
        return got

    assert await c.call("to-room", ("r1", "hello", b"\x01")) == "sent"
    hello = [("r1", "hello", b"\x01")]
    assert await received() == {"a": hello, "b": hello, "c": [], "d": []}
    await a.call("to-room-except", ("r1", "r2", "not r2"))
    assert await received() == {"a": [("r1", "not r2")], "b": [], "c": [], "d": []}
    assert await b.call("leave", "r1") == sorted([sid["b"], "r2"])
    await a.call("to-room", ("r1", "after b left"))
    assert await received() == {"a": [("r1", "after b left")], "b": [], "c": [], "d": []}
    await b.call("join", "r1")
    await a.call("to-room-skip", ("r1", "not to a", b"\x02"))
    assert await received() == {"a": [], "b": [("r1", "not to a", b"\x02")], "c": [], "d": []}
    await b.call("leave", "r1")
    await a.call("to-room", (sid["c"], "to c's own room"))
    assert await received() == {"a": [], "b": [], "c": [(sid["c"], "to c's own room")], "d": []}
    await d.call("to-room", ("r1", "custom r1"), namespace="/custom")
    assert await received() == {"a": [], "b": [], "c": [], "d": [("r1", "custom r1")]}


# ------------------------------------------------------------------------------------------ disconnects


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_server_disconnect(
    peers: Callable[..., Peer], server: SioServer, serializer: str, transport: str
) -> None:
    """sio.disconnect(sid): this client's disconnect handler gets "server disconnect"; so does the server's."""
    peer = peers()
    await peer.connect(transports=[transport])
    sid = peer.client.get_sid("/")
    await peer.client.emit("disconnect-me")
    await within(STEP, "the disconnect", _until(lambda: peer.disconnects["/"]))
    assert peer.disconnects["/"] == ["server disconnect"]
    await within(STEP, "the client to close", _until(lambda: not peer.client.connected))
    assert await server_reason(server, serializer, sid) == "server disconnect"


async def test_client_disconnect(peers: Callable[..., Peer], server: SioServer, serializer: str) -> None:
    """The client leaves: its handler says "client disconnect". The server's reason is "client disconnect" when
    the DISCONNECT packet arrives, "transport close" when this client closed its WebSocket before writing it
    (python-engineio's disconnect() does not wait for its write queue; the Node reference server sees the same)."""
    peer = peers()
    await peer.connect(transports=["polling"])
    sid = peer.client.get_sid("/")
    await peer.client.disconnect()
    assert peer.disconnects["/"] == ["client disconnect"]
    # over polling the DISCONNECT and CLOSE packets leave in one POST, before the session ends
    assert await server_reason(server, serializer, sid) == "client disconnect"


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_close_transport(peers: Callable[..., Peer], server: SioServer, serializer: str, transport: str) -> None:
    """The server closes the whole Engine.IO session: both namespaces on it are disconnected. This client names it
    "server disconnect" when a CLOSE packet precedes the end (sioserver sends one over both transports) and
    "transport error" when the WebSocket just closes (the reference's way)."""
    peer = peers()
    await peer.connect(transports=[transport], namespaces=["/", "/custom"])
    sid = peer.client.get_sid("/")
    await peer.client.emit("close-transport")
    await within(STEP, "both disconnects", _until(lambda: peer.disconnects["/"] and peer.disconnects["/custom"]))
    for nsp in NAMESPACES:
        assert peer.disconnects[nsp] in (["server disconnect"], ["transport error"]), peer.disconnects
    await within(STEP, "the client to close", _until(lambda: not peer.client.connected))
    assert await server_reason(server, serializer, sid) == "server disconnect"
