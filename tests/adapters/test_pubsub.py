"""python-socketio's Redis channel format: python-socketio servers, sioserver servers and write-only
managers (python-socketio's and sioserver's, async and sync) on one real redis-server.

Every server runs ``pubsub_node.py``: the same python-socketio app, once with ``import socketio`` and
once with ``import sioserver as socketio``. Clients are python-socketio's. Absence is checked with a
fence: after the emit under test, a ``fence`` event to everyone is published by the same publisher on
the same channel, so a client that has the fence has everything published before it.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import socketio  # type: ignore[import-untyped]

import sioserver
from sioserver.adapters import AsyncRedisManager, RedisManager
from tests._support.procs import Process, start_all
from tests._support.redis import RedisServer
from tests._support.wait import wait_until

HERE = Path(__file__).resolve().parent
NODE = HERE / "pubsub_node.py"


class Node(Process):
    """A pubsub_node.py server (python-socketio's app, with python-socketio or with sioserver)."""

    def __init__(self, impl: str, name: str, redis_url: str, logdir: Path) -> None:
        super().__init__([sys.executable, str(NODE), "--impl", impl, "--redis", redis_url, "--name", name],
                         log_path=logdir / f"{impl}-{name}.log", name=name)
        self.impl = impl

    def log(self) -> str:
        return self.output()


@pytest.fixture(scope="module")
def nodes(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Node]]:
    logdir = tmp_path_factory.mktemp("pubsub")
    started = {name: Node(impl, name, redis_server.url, logdir)
               for impl, name in (("python-socketio", "P"), ("sioserver", "S1"), ("sioserver", "S2"))}
    start_all(list(started.values()))
    yield started
    for node in started.values():
        node.stop()


class Peer:
    """A python-socketio client that records every event it gets, per namespace."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: dict[str, list[tuple[str, list[Any]]]] = {"/": [], "/jobs": []}
        self.fences: dict[tuple[str, Any], asyncio.Event] = {}
        self.disconnected = asyncio.Event()
        self.client.on("disconnect", lambda *args: self.disconnected.set())
        for nsp in self.events:
            self.client.on("*", self._recorder(nsp), namespace=nsp)
            self.client.on("ask", self._answer, namespace=nsp)

    def _recorder(self, nsp: str) -> Any:
        def record(event: str, *args: Any) -> None:
            if event == "fence":
                self.fences.setdefault((nsp, args[0]), asyncio.Event()).set()
            else:
                self.events[nsp].append((event, list(args)))

        return record

    def _answer(self, *args: Any) -> Any:
        return {"answered_by": self.name, "got": list(args)}

    def sid(self, nsp: str = "/") -> str:
        sid = self.client.get_sid(nsp)
        assert sid is not None
        return str(sid)

    async def fenced(self, tag: Any, nsp: str = "/") -> list[tuple[str, list[Any]]]:
        """Everything received before the fence ``tag``; the list is emptied."""
        event = self.fences.setdefault((nsp, tag), asyncio.Event())
        await asyncio.wait_for(event.wait(), 5)
        got, self.events[nsp] = self.events[nsp], []
        return got

    async def do(self, op: str, **spec: Any) -> Any:
        return await self.client.call("do", (op, spec), timeout=5)


@pytest.fixture
async def peers(nodes: dict[str, Node], redis_server: RedisServer) -> AsyncIterator[dict[str, Peer]]:
    """p (on the python-socketio server, room r), s1 (S1, room r), s1b (S1, no room), s2 (S2, room r)."""
    layout = {"p": ("P", ["r"]), "s1": ("S1", ["r"]), "s1b": ("S1", []), "s2": ("S2", ["r"])}
    made: dict[str, Peer] = {}
    for name, (node, rooms) in layout.items():
        peer = made[name] = Peer(name)
        await peer.client.connect(nodes[node].url, auth={"rooms": rooms}, namespaces=["/", "/jobs"],
                                  transports=["websocket"], wait_timeout=5)
    # python-socketio subscribes when its first client connects: wait until all three servers listen
    probe = aioredis.Redis.from_url(redis_server.url)

    async def subscribed() -> bool:
        return bool((await probe.pubsub_numsub("socketio"))[0][1] >= 3)

    try:
        await wait_until(subscribed, timeout=10, what="the servers did not all subscribe to 'socketio'")
    finally:
        await probe.aclose()
    yield made
    for peer in made.values():
        await peer.client.disconnect()


async def fence_all(peers: dict[str, Peer], publish: Any, tag: str, nsp: str = "/") -> dict[str, list[Any]]:
    """Publish the fence ``tag`` (through the same publisher as the emit under test) and collect."""
    await publish("fence", tag, nsp)
    return {name: await peer.fenced(tag, nsp) for name, peer in peers.items() if not peer.disconnected.is_set()}


@pytest.fixture(params=["python-socketio async", "python-socketio sync", "sioserver async", "sioserver sync"])
async def worker(request: pytest.FixtureRequest, redis_server: RedisServer) -> AsyncIterator[Any]:
    """A write-only manager of a task worker, with the same calls whichever library made it."""
    kind = str(request.param)
    if kind.startswith("python-socketio"):
        cls = socketio.AsyncRedisManager if kind.endswith("async") else socketio.RedisManager
    else:
        cls = AsyncRedisManager if kind.endswith("async") else RedisManager
    manager = cls(redis_server.url, write_only=True)

    async def call(method: str, *args: Any, **kwargs: Any) -> None:
        if method == "disconnect" and kind.startswith("python-socketio"):
            # python-socketio's write-only disconnect() and can_disconnect() first disconnect locally,
            # through a server they do not have (AttributeError): publish the message they would send
            sid, namespace = args
            result = manager._publish({"method": "disconnect", "sid": sid, "namespace": namespace,
                                       "host_id": manager.host_id})
        else:
            result = getattr(manager, method)(*args, **kwargs)
        if asyncio.iscoroutine(result):
            await result

    call.kind = kind  # type: ignore[attr-defined]
    yield call
    if hasattr(manager, "redis") and manager.redis is not None and kind == "python-socketio async":
        await manager.redis.aclose()
    elif isinstance(manager, AsyncRedisManager):
        await manager.close()
    elif isinstance(manager, RedisManager):
        manager.close()


class TestWriteOnlyWorkers:
    async def test_emits_to_a_room_everyone_and_binary_reach_both_kinds_of_server(
        self, peers: dict[str, Peer], worker: Any
    ) -> None:
        async def publish(event: str, data: Any, nsp: str) -> None:
            await worker("emit", event, data, namespace=nsp)

        await worker("emit", "news", {"text": "é"}, room="r")
        await worker("emit", "all", (1, "two", None))
        await worker("emit", "bin", {"blob": b"\x00\xff", "list": [b"\x01"]})
        got = await fence_all(peers, publish, "t1")
        in_room = [("news", [{"text": "é"}])]
        everyone = [("all", [1, "two", None]), ("bin", [{"blob": b"\x00\xff", "list": [b"\x01"]}])]
        assert got == {"p": in_room + everyone, "s1": in_room + everyone, "s1b": everyone, "s2": in_room + everyone}

    async def test_skip_sid_and_a_namespace(self, peers: dict[str, Peer], worker: Any) -> None:
        async def publish(event: str, data: Any, nsp: str) -> None:
            await worker("emit", event, data, namespace=nsp)

        await worker("emit", "jobs", "done", room="r", skip_sid=[peers["s1"].sid("/jobs"), peers["p"].sid("/jobs")],
                     namespace="/jobs")
        await worker("emit", "to-one", "hi", to=peers["s1b"].sid("/jobs"), namespace="/jobs")
        got = await fence_all(peers, publish, "t2", "/jobs")
        assert got == {"p": [], "s1": [], "s1b": [("to-one", ["hi"])], "s2": [("jobs", ["done"])]}
        assert (await fence_all(peers, publish, "t2-root"))["s2"] == []  # nothing leaked into "/"

    async def test_enter_leave_close_room_and_disconnect(self, peers: dict[str, Peer], worker: Any) -> None:
        async def publish(event: str, data: Any, nsp: str) -> None:
            await worker("emit", event, data, namespace=nsp)

        await worker("enter_room", peers["s1b"].sid(), "/", "r")
        await worker("leave_room", peers["s2"].sid(), "/", "r")
        await worker("emit", "after-moves", 1, room="r")
        got = await fence_all(peers, publish, "t3")
        assert {name: [e for e, _ in events] for name, events in got.items()} == {
            "p": ["after-moves"], "s1": ["after-moves"], "s1b": ["after-moves"], "s2": []}
        await worker("close_room", "r", "/")
        await worker("emit", "after-close", 2, room="r")
        assert all(events == [] for events in (await fence_all(peers, publish, "t4")).values())
        await worker("disconnect", peers["s2"].sid(), "/")
        await asyncio.wait_for(peers["s2"].disconnected.wait(), 5)


class TestMixedCluster:
    @pytest.mark.parametrize("sender", ["p", "s1"])
    async def test_a_servers_broadcast_reaches_the_clients_of_the_other_kind(
        self, peers: dict[str, Peer], sender: str
    ) -> None:
        origin = peers[sender]

        async def publish(event: str, data: Any, nsp: str) -> None:
            await origin.do("emit", event=event, args=[data], namespace=nsp)

        await origin.do("emit", event="room-news", args=[{"n": 1}, b"\x02"], room="r", skip_sid=peers["s2"].sid())
        await origin.do("emit", event="hello", args=["all"])
        got = await fence_all(peers, publish, f"t5-{sender}")
        news, hello = ("room-news", [{"n": 1}, b"\x02"]), ("hello", ["all"])
        assert got == {"p": [news, hello], "s1": [news, hello], "s1b": [hello], "s2": [hello]}

    async def test_a_python_socketio_servers_call_to_a_sioserver_client_gets_its_answer(
        self, peers: dict[str, Peer]
    ) -> None:
        answer = await peers["p"].do("call", event="ask", args=["q", 1], to=peers["s2"].sid())
        assert answer == {"answered_by": "s2", "got": ["q", 1]}

    async def test_a_sioserver_call_and_emit_callback_reach_clients_of_other_servers(
        self, peers: dict[str, Peer]
    ) -> None:
        for target in ("p", "s2"):  # on the python-socketio server, on the other sioserver
            answer = await peers["s1"].do("call", event="ask", args=["q", 2], to=peers[target].sid())
            assert answer == {"answered_by": target, "got": ["q", 2]}

    async def test_an_emit_with_acks_gets_this_servers_answers_without_waiting_for_others(
        self, peers: dict[str, Peer]
    ) -> None:
        # the format cannot ask the other servers: their clients are not waited for (30 s) but left out
        answers = await asyncio.wait_for(peers["s1"].do("emit_with_ack", event="ask"), 10)
        assert sorted(a["answered_by"] for a in answers) == ["s1", "s1b"]

    async def test_sioserver_moves_and_closes_rooms_of_python_socketio_clients(self, peers: dict[str, Peer]) -> None:
        s1 = peers["s1"]

        async def publish(event: str, data: Any, nsp: str) -> None:
            await s1.do("emit", event=event, args=[data], namespace=nsp)

        await s1.do("enter_room", sid=peers["p"].sid(), room="vip")  # p is a client of the python-socketio server
        await s1.do("enter_room", sid=peers["s2"].sid(), room="vip")  # s2 of the other sioserver
        await s1.do("leave_room", sid=peers["s2"].sid(), room="r")
        await s1.do("emit", event="vip", args=[1], room="vip")
        await s1.do("emit", event="r", args=[2], room="r")
        got = await fence_all(peers, publish, "t6-moves")
        assert got == {"p": [("vip", [1]), ("r", [2])], "s1": [("r", [2])], "s1b": [], "s2": [("vip", [1])]}
        await s1.do("close_room", room="r")
        await s1.do("emit", event="after-close", args=[1], room="r")
        assert all(events == [] for events in (await fence_all(peers, publish, "t6")).values())
        await s1.do("disconnect", sid=peers["p"].sid())
        await asyncio.wait_for(peers["p"].disconnected.wait(), 5)


def test_a_sync_manager_must_be_write_only() -> None:
    with pytest.raises(sioserver.ConfigurationError, match="asyncio only"):
        RedisManager("redis://127.0.0.1:1/0")
