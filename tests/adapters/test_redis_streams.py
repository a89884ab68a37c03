"""RedisStreamsAdapter: sioserver processes, and Node socket.io servers with @socket.io/redis-streams-adapter
0.3, as one cluster on one Redis stream. Broadcasts (all, room, except), fetch_sockets, server-side
events with acks and broadcasts with acks cross between processes both ways; a Redis restart in the
middle of a stream of broadcasts is survived (what waited for Redis is written once it is back), with the
adapter's health reported down then up again, in the stats and in /metrics."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import socketio  # type: ignore[import-untyped]

import sioserver
from sioserver.adapters._wire import unpack
from sioserver.adapters.redis_streams import decode_entry, encode_entry
from sioserver.server.adapter import BroadcastOptions
from sioserver.server.recovery import PersistedSession
from tests._support.redis import RedisServer
from tests._support.serving import attached
from tests._support.wait import wait_until
from tests.server.test_metrics import scrape

from .conftest import Cluster, ClusterNode, Peer, Peers
from .test_redis import expect

STREAMS = ("--streams",)


@pytest.fixture(scope="module")
def pair(redis_server: RedisServer, cluster: Cluster) -> list[ClusterNode]:
    return cluster.start(("py", "A"), ("py", "B"), redis=redis_server.url, key="streams-py", extra=STREAMS)


@pytest.fixture(scope="module")
def mixed(redis_server: RedisServer, cluster: Cluster, interop_node_modules: Any) -> list[ClusterNode]:
    return cluster.start(("js", "N"), ("py", "S"), redis=redis_server.url, key="streams-mixed", extra=STREAMS)


_warm = 0


async def warm(everyone: tuple[Peer, ...]) -> None:
    """Each server's stream reader is placed: a broadcast from each reaches everyone. (The Node adapter
    starts reading at ``$`` some time after it listens; what is added before that it never reads.)"""
    global _warm
    for sender in everyone:
        for _ in range(50):
            _warm += 1
            event = f"warm-{_warm}"
            await sender.do("broadcast", {"event": event})
            try:
                for peer in everyone:
                    await peer.wait_for(event, timeout=0.5)
                break
            except AssertionError:
                continue
        else:
            raise AssertionError(f"{sender.node} never reached everyone")
    for peer in everyone:
        peer.clear()


async def four(peers: Peers, nodes: list[ClusterNode]) -> tuple[Peer, ...]:
    x, y = nodes
    everyone = tuple(await asyncio.gather(
        peers.connect("x1", x, ["r1"]), peers.connect("x2", x),
        peers.connect("y1", y, ["r1"]), peers.connect("y2", y, ["r2"]),
    ))
    await warm(everyone)
    return everyone


async def broadcasts_cross(everyone: tuple[Peer, ...]) -> None:
    x1, x2, y1, y2 = everyone
    for sender in (x2, y1):
        tag = sender.node.name
        await sender.do("broadcast", {"event": f"all-{tag}", "args": ["é", {"$bytes": "00ff10"}, 1.5, None]})
        assert await expect(everyone, f"all-{tag}", list(everyone), sender) == [["é", b"\x00\xff\x10", 1.5, None]] * 4
        await sender.do("broadcast", {"event": f"room-{tag}", "to": "r1", "args": [tag, {"k": [1, 2]}]})
        assert await expect(everyone, f"room-{tag}", [x1, y1], sender) == [[tag, {"k": [1, 2]}]] * 2
        await sender.do("broadcast", {"event": f"except-{tag}", "except": "r1"})
        await expect(everyone, f"except-{tag}", [x2, y2], sender)
        await sender.do("broadcast", {"event": f"multi-{tag}", "to": ["r1", "r2"], "except": x1.sid})
        await expect(everyone, f"multi-{tag}", [y1, y2], sender)
        target = y2 if sender is x2 else x2
        await sender.do("broadcast", {"event": f"sid-{tag}", "to": target.sid})
        await expect(everyone, f"sid-{tag}", [target], sender)


async def cluster_calls_complete(everyone: tuple[Peer, ...], nodes: list[ClusterNode]) -> None:
    x1, x2, y1, y2 = everyone
    all_sids = sorted(p.sid for p in everyone)
    for asker in (x1, y1):
        assert await asker.do("server-count") == 2
        started = time.monotonic()
        fetched = await asker.do("fetch")
        assert time.monotonic() - started < 1.0, f"{asker}: fetch_sockets waited for a missing answer"
        assert sorted(s["id"] for s in fetched) == all_sids
        by_id = {s["id"]: s for s in fetched}
        assert by_id[y1.sid]["data"] == {"name": "y1"} and by_id[x1.sid]["data"] == {"name": "x1"}
        assert by_id[y1.sid]["rooms"] == sorted([y1.sid, "r1"]) and by_id[x2.sid]["rooms"] == [x2.sid]
        assert by_id[y2.sid]["auth"] == {"name": "y2", "rooms": ["r2"]}
        assert {"headers", "address", "query", "auth", "time", "issued"} <= set(by_id[x2.sid]["handshake"])
        assert [s["local"] for s in fetched].count(True) == 2
        assert sorted(s["id"] for s in await asker.do("fetch", {"to": "r1"})) == sorted([x1.sid, y1.sid])

        result = await asker.do("sse-ack", {"event": "ping-srv", "args": [asker.name]})
        assert result["ok"] and result["elapsed"] < 1.0, result
        other = next(n.name for n in nodes if n is not asker.node)
        assert result["answers"] == [{"pong": [asker.name], "node": other}]

        result = await asker.do("emit-ack", {"event": "survey", "to": "r1", "timeout": 3})
        assert result["ok"] and result["elapsed"] < 1.5, result
        assert sorted(a["from"] for a in result["answers"]) == ["x1", "y1"]

    # rooms joined and left across servers (through the stream)
    await x1.do("sockets-join", {"to": "r2", "rooms": ["joined"]})
    await x1.do("broadcast", {"event": "to-joined", "to": "joined"})
    await expect(everyone, "to-joined", [y2], x1)
    await y1.do("sockets-leave", {"to": "joined", "rooms": ["joined"]})
    await y1.do("broadcast", {"event": "to-joined-2", "to": "joined"})
    await y1.do("broadcast", {"event": "after-leave"})
    await wait_until(lambda: all(p.got("after-leave") for p in everyone), timeout=5, what="after-leave")
    assert not any(p.got("to-joined-2") for p in everyone)


# ----------------------------------------------------------------------------------- sioserver x2


async def test_two_sioserver_nodes_broadcast(pair: list[ClusterNode], peers: Peers) -> None:
    await broadcasts_cross(await four(peers, pair))


async def test_two_sioserver_nodes_cluster_calls(pair: list[ClusterNode], peers: Peers) -> None:
    await cluster_calls_complete(await four(peers, pair), pair)


async def test_the_wire_is_the_node_packages(pair: list[ClusterNode], peers: Peers, redis_server: RedisServer) -> None:
    """The stream entries and the Pub/Sub messages, as @socket.io/redis-streams-adapter writes them."""
    everyone = x1, _, y1, _ = await four(peers, pair)
    client = aioredis.from_url(redis_server.url, protocol=2)
    pubsub = client.pubsub()
    try:
        await pubsub.psubscribe("streams-py#/#")  # a pattern: not counted as a server by NUMSUB
        await x1.do("broadcast", {"event": "wire", "to": "r1", "args": [1, "é"]})
        await x1.do("broadcast", {"event": "wire-bin", "args": [{"$bytes": "0001"}]})
        await expect(everyone, "wire-bin", list(everyone), x1)
        entries = await client.xrevrange("streams-py", "+", "-", count=20)
        by_event: dict[str, dict[str, str]] = {}
        for _, raw in entries:
            fields = {k.decode(): v.decode() for k, v in raw.items()}
            assert list(fields)[:3] == ["uid", "nsp", "type"], fields
            data = fields.get("data", "")
            if data.startswith("{") and '"wire"' in data:
                by_event["wire"] = fields
            elif fields.get("type") == "3" and not data.startswith("{"):
                by_event["wire-bin"] = fields
        plain = by_event["wire"]
        assert plain["nsp"] == "/" and plain["type"] == "3"
        assert json.loads(plain["data"]) == {"packet": {"type": 2, "data": ["wire", 1, "é"]},
                                             "opts": {"rooms": ["r1"], "except": [], "flags": {}}}
        binary = by_event["wire-bin"]
        assert unpack(base64.b64decode(binary["data"]))["packet"]["data"] == ["wire-bin", b"\x00\x01"]
        assert decode_entry(encode_entry(decode_entry(binary))) == decode_entry(binary)

        # requests are ephemeral: msgpack on the namespace's channel, not in the stream
        length = await client.xlen("streams-py")
        await y1.do("fetch")
        message = None
        deadline = time.monotonic() + 5
        while message is None and time.monotonic() < deadline:
            got = await pubsub.get_message(timeout=1.0)
            if got is not None and got["type"] == "pmessage":
                message = unpack(got["data"])
        assert message is not None and message["type"] == 7 and message["nsp"] == "/", message
        assert set(message["data"]) == {"opts", "requestId"}
        assert await client.xlen("streams-py") == length, "the request went through the stream"
    finally:
        await pubsub.aclose()
        await client.aclose()


# ------------------------------------------------------------------------ Node and sioserver


@pytest.mark.interop
async def test_node_and_sioserver_broadcast_both_ways(mixed: list[ClusterNode], peers: Peers) -> None:
    await broadcasts_cross(await four(peers, mixed))


@pytest.mark.interop
async def test_node_and_sioserver_cluster_calls_both_ways(mixed: list[ClusterNode], peers: Peers) -> None:
    await cluster_calls_complete(await four(peers, mixed), mixed)


# ------------------------------------------------------------------------------- Redis restart

TICKS = 300
INTERVAL = 0.01


@pytest.fixture(scope="module")
def fault_pair(redis_server: RedisServer, cluster: Cluster) -> list[ClusterNode]:
    return cluster.start(("py", "F"), ("py", "G"), redis=redis_server.url, key="streams-fault", extra=STREAMS)


async def test_redis_restart_mid_stream(fault_pair: list[ClusterNode], peers: Peers, redis_server: RedisServer,
                                        record_property: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Redis is SIGKILLed during a stream of broadcasts and restarted: local clients get every one, the
    other node's get them in order without duplicates, at most the batch in flight at the kill missing
    (counted), health is reported down then up, and both nodes read, write and answer requests again."""
    f, g = fault_pair
    everyone = f1, g1 = await asyncio.gather(peers.connect("f1", f), peers.connect("g1", g))
    await warm(everyone)
    assert (await f1.do("stats"))["healthy"] and (await g1.do("stats"))["healthy"]

    assert await f1.do("stream", {"event": "tick", "count": TICKS, "interval": INTERVAL}) == "started"
    await f1.wait_for("tick", count=50)
    killed_at = time.monotonic()
    redis_server.kill()
    await wait_until(lambda: len(f1.got("tick")) >= 100, timeout=10, what="ticks go on locally")
    down = [await f1.do("stats"), await g1.do("stats")]
    redis_server.start()
    restarted_at = time.monotonic()

    await f1.wait_for("stream-done", timeout=15)
    await wait_until(lambda: bool(g1.got("stream-done")), timeout=15,
                     what=lambda: f"G never got stream-done\n{g.log()[-3000:]}")
    local = [args[0] for args in f1.got("tick")]
    remote = [args[0] for args in g1.got("tick")]
    assert local == list(range(TICKS)), "local clients get every message, Redis or not"
    assert len(remote) == len(set(remote)) and remote == sorted(remote), "no duplicates, no reordering"
    missing = sorted(set(range(TICKS)) - set(remote))
    up = [await f1.do("stats"), await g1.do("stats")]
    lost = up[0].get("messages_lost", 0)
    report = (f"streams adapter: redis killed during a stream of {TICKS} broadcasts (one every "
              f"{INTERVAL * 1000:.0f} ms), down {restarted_at - killed_at:.2f}s: {len(missing)} missed by the other "
              f"node {missing[:10]}, {lost} counted not written by the sender; healthy while down: "
              f"{[s['healthy'] for s in down]}, after: {[s['healthy'] for s in up]}")
    record_property("redis_streams_fault", report)
    with capsys.disabled():
        print("\n" + report)
    assert not any(s["healthy"] for s in down), down
    assert all(s["healthy"] for s in up), up
    # held while Redis was away and written once it answered: only the batch in flight at the kill may be
    # lost (counted), and what Redis held but G had not read yet when it died with the stream
    assert len(missing) <= lost + 2, f"every missed message is counted by the sender\n{f.log()[-3000:]}"
    assert len(missing) <= 5, f"the stream was held through the restart\n{f.log()[-3000:]}"
    assert all(s["reconnects"] >= 1 for s in up), up
    for node in fault_pair:
        assert node.alive and "Traceback" not in node.log(), node.log()[-3000:]
        assert "cannot read streams-fault" in node.log() and "reading streams-fault" in node.log()

    await g1.do("broadcast", {"event": "after-g"})
    await f1.wait_for("after-g")
    await f1.do("broadcast", {"event": "after-f"})
    await g1.wait_for("after-f")
    result = await f1.do("emit-ack", {"event": "survey", "timeout": 3})
    assert sorted(x["from"] for x in result["answers"]) == ["f1", "g1"] and result["elapsed"] < 1.5, (
        f"{result}\n--- F ---\n{f.log()[-2500:]}\n--- G ---\n{g.log()[-2500:]}")
    result = await g1.do("sse-ack", {"event": "ping-srv", "args": [1]})
    assert result["ok"] and result["answers"] == [{"pong": [1], "node": "F"}], result


async def test_metrics_report_the_streams_adapter(redis_binary: str, tmp_path: Path) -> None:
    """/metrics with a RedisStreamsAdapter: healthy 1 while Redis answers, 0 once it is killed (the broadcasts
    held for it counted as queued, the local client getting them at once), 1 again once it is back, the
    queue written to the new stream and nothing counted as a failure."""
    redis = RedisServer(redis_binary, tmp_path)
    redis.start()
    server = None
    client = socketio.AsyncClient(reconnection=False)
    try:
        sio = sioserver.AsyncServer(metrics=True, adapter=sioserver.RedisStreamsAdapter(redis.url, block_time=1.0))
        server = await attached(sio)
        got: list[Any] = []
        client.on("news", lambda data, *offset: got.append(data))
        await client.connect(server.url, transports=["websocket"])

        async def healthy(want: float) -> bool:
            return (await scrape(server.url)).value("sioserver_adapter_healthy", namespace="/") == want

        await wait_until(lambda: healthy(1), timeout=15, interval=0.1, what="adapter_healthy 1 while Redis answers")
        assert (await scrape(server.url)).value("sioserver_adapter_publish_failures_total") == 0
        redis.kill()
        await wait_until(lambda: healthy(0), timeout=15, interval=0.1, what="adapter_healthy 0 once Redis is killed")
        for i in range(3):
            await sio.emit("news", {"n": i})
        await wait_until(lambda: len(got) == 3, timeout=5, what="the local client gets them, Redis or not")

        async def queued(count: int) -> bool:
            return (await scrape(server.url)).value("sioserver_adapter_queued_messages") == count

        await wait_until(lambda: queued(3), timeout=10, interval=0.1, what="3 broadcasts held for Redis")
        redis.start()
        await wait_until(lambda: healthy(1), timeout=20, interval=0.1, what="adapter_healthy 1 once Redis is back")
        await wait_until(lambda: queued(0), timeout=5, interval=0.1, what="the 3 written once Redis is back")
        assert (await scrape(server.url)).value("sioserver_adapter_publish_failures_total") == 0
        probe = aioredis.from_url(redis.url)
        try:
            assert await probe.xlen("socket.io") == 3
        finally:
            await probe.aclose()
    finally:
        await client.disconnect()
        if server is not None:
            await server.close()
        redis.stop()


async def test_sessions_in_redis_as_the_node_package_keeps_them(redis_server: RedisServer) -> None:
    """persist_session / restore_session on a real Redis, against entries written as the Node package writes
    them: the session is SET with PX, taken once; the broadcasts after the offset that reach its rooms come
    back with their ids (other rooms, excepted rooms and other namespaces left out); an offset that is not an
    entry id, or is no longer in the stream, gives no session; live copies of what was replayed are held back."""
    factory = sioserver.RedisStreamsAdapter(redis_server.url, stream_name="sessions", channel_prefix="sessions")
    sio = sioserver.AsyncServer(adapter=factory, connection_state_recovery={"max_disconnection_duration": 5})
    server = await attached(sio)
    raw = aioredis.from_url(redis_server.url, decode_responses=True)
    try:
        sio._cluster_namespace("/")
        assert await factory.wait_ready(5)
        adapter = sio.adapter("/")

        def entry(nsp: str, event: str, rooms: list[str], exclude: tuple[str, ...] = ()) -> dict[str, str]:
            data = {"packet": {"type": 2, "data": [event, 1], "nsp": nsp},
                    "opts": {"rooms": rooms, "except": list(exclude), "flags": {}}}
            return {"uid": "node-uid", "nsp": nsp, "type": "3", "data": json.dumps(data)}

        offset = await raw.xadd("sessions", entry("/", "seen", []))
        ids = {name: await raw.xadd("sessions", fields) for name, fields in [
            ("to-r", entry("/", "to-r", ["r"])),
            ("to-z", entry("/", "to-z", ["z"])),
            ("other-nsp", entry("/x", "other-nsp", [])),
            ("all-but-r", entry("/", "all-but-r", [], ("r",))),
            ("to-sid", entry("/", "to-sid", ["SID"])),
            ("all", entry("/", "all", [])),
        ]}
        adapter.persist_session(PersistedSession("SID", "PID", ["SID", "r"], {"name": "x", "n": [1, 2]}))
        await wait_until(lambda: raw.exists("sio:session:PID"), timeout=5, what="the session stored")
        assert 0 < await raw.pttl("sio:session:PID") <= 5000
        stored = unpack(base64.b64decode(await raw.get("sio:session:PID")))
        assert stored == {"sid": "SID", "pid": "PID", "rooms": ["SID", "r"], "data": {"name": "x", "n": [1, 2]}}

        assert await adapter.restore_session("PID", "not-an-id") is None
        adapter.persist_session(PersistedSession("SID", "PID", ["SID", "r"], {"name": "x", "n": [1, 2]}))
        await wait_until(lambda: raw.exists("sio:session:PID"), timeout=5, what="the session stored again")
        session = await adapter.restore_session("PID", offset)
        assert session is not None
        assert (session.sid, session.pid, session.rooms, session.data) == ("SID", "PID", ["SID", "r"],
                                                                            {"name": "x", "n": [1, 2]})
        assert session.missed_packets == [["to-r", 1, ids["to-r"]], ["to-sid", 1, ids["to-sid"]],
                                          ["all", 1, ids["all"]]]
        assert await adapter.restore_session("PID", offset) is None, "a session is handed out once"

        # what was replayed to SID is not sent to it again live; what comes after is
        opts = BroadcastOptions()
        assert adapter._unreplayed(opts, ids["to-r"]).except_rooms == {"SID"}
        assert adapter._unreplayed(opts, ids["all"]).except_rooms == {"SID"}
        later = await raw.xadd("sessions", entry("/", "later", []))
        assert adapter._unreplayed(opts, later) is opts

        adapter.persist_session(PersistedSession("SID2", "PID2", ["SID2"], {}))
        await wait_until(lambda: raw.exists("sio:session:PID2"), timeout=5, what="the second session stored")
        assert await adapter.restore_session("PID2", "1-0") is None, "an offset no longer in the stream"
        assert factory.stats["sessions_restored"] == 1 and factory.stats["sessions_refused"] == 2
    finally:
        await raw.aclose()
        await sio.shutdown()
        await server.close()
