"""``AsyncServer(metrics=True)``: ``GET /metrics`` scraped with prometheus-client's own parser, under each
front end (aiohttp attach, ``sioserver.run``, ``ASGIApp`` under uvicorn), while python-socketio clients connect over both transports,
emit with acks, keep the server waiting for an ack, leave and are disconnected."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

import sioserver
from sioserver.integrations.standalone import serve as serve_http1
from sioserver.server.metrics import _fold
from tests._support import asgi
from tests._support.redis import RedisServer
from tests._support.serving import attached
from tests._support.wait import wait_until

Serve = Callable[[sioserver.AsyncServer], Awaitable[str]]


@pytest.fixture(params=["aiohttp", "run", "uvicorn"])
async def serve(request: pytest.FixtureRequest) -> AsyncIterator[Serve]:
    """The server under each front end: ``sio.attach(app)`` on aiohttp, ``sioserver.run``'s own, and
    ``sioserver.ASGIApp`` under uvicorn."""
    closers: list[Callable[[], Awaitable[None]]] = []

    async def start(sio: sioserver.AsyncServer) -> str:
        if request.param == "aiohttp":
            server = await attached(sio)
            closers.append(server.close)
            return server.url
        if request.param == "uvicorn":
            served = await asgi.start(sioserver.ASGIApp(sio), "uvicorn")
            closers.append(served.close)
            return served.url
        stop = asyncio.Event()
        bound: asyncio.Future[list[tuple[str, int]]] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve_http1(sio, "127.0.0.1", 0, stop=stop, ready=bound.set_result))

        async def close() -> None:
            stop.set()
            await task

        closers.append(close)
        host, port = (await asyncio.wait_for(bound, 10))[0]
        return f"http://{host}:{port}"

    yield start
    for close in closers:
        await close()


class Scrape:
    """One scrape of /metrics: ``value(name, **labels)`` (0 when the sample is absent)."""

    def __init__(self, text: str) -> None:
        self.samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.families = {}
        for family in text_string_to_metric_families(text):
            self.families[family.name] = family
            for sample in family.samples:
                self.samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(url: str) -> Scrape:
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return Scrape(await response.text())


def app_server() -> sioserver.AsyncServer:
    sio = sioserver.AsyncServer(metrics=True, namespaces=["/chat"])

    @sio.on("echo")
    def echo(sid: str, data: Any) -> Any:
        return data

    return sio


async def test_metrics_follow_the_traffic(serve: Serve) -> None:
    sio = app_server()
    url = await serve(sio)
    first = await scrape(url)
    assert first.value("sioserver_connected_clients", transport="websocket") == 0
    assert first.families["sioserver_packets_received"].type == "counter"
    assert first.families["sioserver_ack_duration_seconds"].type == "histogram"

    ws_client = socketio.AsyncClient(reconnection=False)
    poll_client = socketio.AsyncClient(reconnection=False)
    await ws_client.connect(url, namespaces=["/", "/chat"], transports=["websocket"])
    await poll_client.connect(url, transports=["polling"])
    now = await scrape(url)
    assert now.value("sioserver_connected_clients", transport="websocket") == 1
    assert now.value("sioserver_connected_clients", transport="polling") == 1
    assert now.value("sioserver_namespace_sockets", namespace="/") == 2
    assert now.value("sioserver_namespace_sockets", namespace="/chat") == 1
    connects = now.value("sioserver_packets_received_total", type="connect")
    assert connects == 3  # one CONNECT per namespace joined

    # emits with acks, from both clients: counted in, and their acks counted out
    for i in range(5):
        assert await ws_client.call("echo", i) == i
        assert await poll_client.call("echo", {"n": i}) == {"n": i}
    now = await scrape(url)
    assert now.value("sioserver_packets_received_total", type="event") == 10
    assert now.value("sioserver_packets_sent_total", type="ack") == 10
    assert now.value("sioserver_bytes_received_total") > first.value("sioserver_bytes_received_total")

    # a broadcast counts once per recipient
    news: asyncio.Queue[Any] = asyncio.Queue()
    for client in (ws_client, poll_client):
        client.on("news", news.put_nowait)
    await sio.emit("news", {"headline": "metrics"})
    assert [await asyncio.wait_for(news.get(), 5) for _ in range(2)] == [{"headline": "metrics"}] * 2
    now = await scrape(url)
    assert now.value("sioserver_packets_sent_total", type="event") == 2

    # the server waits for an ack: pending while the client holds it, then a duration
    release = asyncio.Event()

    async def slow(*args: Any) -> str:
        await release.wait()
        return "late"

    ws_client.on("question", slow)
    call = asyncio.create_task(sio.call("question", to=ws_client.get_sid("/"), timeout=10))
    async def pending() -> bool:
        return (await scrape(url)).value("sioserver_acks_pending") == 1

    await wait_until(pending, timeout=5, what="the ack pending in /metrics")
    release.set()
    assert await call == "late"
    now = await scrape(url)
    assert now.value("sioserver_acks_pending") == 0
    assert now.value("sioserver_ack_duration_seconds_count") == 1
    assert now.value("sioserver_ack_duration_seconds_bucket", le="+Inf") == 1
    assert 0 < now.value("sioserver_ack_duration_seconds_sum") < 10

    # an ack that never comes
    never = asyncio.Event()

    async def stall(*args: Any) -> None:
        await never.wait()  # a client that never answers

    poll_client.on("stall", stall)
    with pytest.raises(sioserver.AckTimeoutError):
        await sio.call("stall", to=poll_client.get_sid("/"), timeout=0.3)
    assert (await scrape(url)).value("sioserver_acks_failed_total", outcome="timeout") == 1

    # leaving: a client that disconnects, and one the server disconnects
    await poll_client.disconnect()
    gone = asyncio.Event()
    ws_client.on("disconnect", lambda *args: gone.set())
    await sio.disconnect(ws_client.get_sid("/"))
    await asyncio.wait_for(gone.wait(), 5)
    await ws_client.disconnect()
    async def all_gone() -> Scrape | None:
        now = await scrape(url)
        return now if now.value("sioserver_connected_clients", transport="websocket") == 0 else None

    now = await wait_until(all_gone, timeout=5, what="no client left in /metrics")
    assert now.value("sioserver_connected_clients", transport="polling") == 0
    assert now.value("sioserver_connected_clients", transport="websocket") == 0
    assert now.value("sioserver_namespace_sockets", namespace="/") == 0
    reasons = {labels: value for (name, labels), value in now.samples.items() if name == "sioserver_disconnects_total"}
    assert sum(reasons.values()) == 2, reasons
    assert now.value("sioserver_packets_sent_total", type="disconnect") == 1  # the server's DISCONNECT
    assert now.value("sioserver_event_loop_lag_seconds") >= 0


async def test_exact_bytes_and_types_on_a_hand_driven_websocket(serve: Serve) -> None:
    url = await serve(app_server())
    before = await scrape(url)
    sent = ["0", '2["echo","é"]', '21["echo",1]']
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{url}/socket.io/?EIO=4&transport=websocket")
        assert (await ws.receive_str(timeout=5))[0] == "0"
        await ws.send_str("4" + sent[0])
        reply = await ws.receive_str(timeout=5)
        for message in sent[1:]:
            await ws.send_str("4" + message)
        assert await ws.receive_str(timeout=5) == '431[1]'
        now = await scrape(url)
        await ws.close()
    assert now.value("sioserver_bytes_received_total") - before.value("sioserver_bytes_received_total") == \
        sum(len(m.encode()) for m in sent)
    assert now.value("sioserver_bytes_sent_total") == len(reply) - 1 + len("31[1]")
    assert now.value("sioserver_packets_received_total", type="event") == 2
    assert now.value("sioserver_packets_sent_total", type="connect") == 1


async def test_the_logs_are_folded_between_scrapes(serve: Serve) -> None:
    """What the server appends to the metrics' logs is counted by a timer too, not only when Prometheus
    scrapes: the logs (and the strings they hold) do not grow between scrapes."""
    sio = app_server()
    url = await serve(sio)
    metrics = sio.metrics
    assert metrics is not None
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, transports=["websocket"])
    for i in range(20):
        assert await client.call("echo", i) == i
    await wait_until(lambda: not metrics.received_log and not metrics.sent_log, timeout=2,
                     what=f"the logs folded (still {len(metrics.received_log)} + {len(metrics.sent_log)})")
    assert (metrics.received["2"], metrics.sent["3"]) == (20, 20)
    await client.disconnect()


def _reference_fold(log: list[str | bytes]) -> tuple[dict[str, int], int]:
    """One message at a time, as a hook would count it."""
    counts: dict[str, int] = {}
    size = 0
    for data in log:
        if isinstance(data, str):
            key = data[:1] if data[:1] in tuple("0123456") else "b"
            size += len(data.encode("utf-8", "surrogatepass"))
        else:
            key = "b"
            size += len(data)
        counts[key] = counts.get(key, 0) + 1
    return counts, size


_TEXT = st.text(st.characters(exclude_categories=()), max_size=12)  # lone surrogates too
_PACKET = st.one_of(st.builds(str.__add__, st.sampled_from("0123456"), _TEXT), _TEXT, st.binary(max_size=12))


@given(st.lists(_PACKET, max_size=30))
def test_fold_counts_as_one_message_at_a_time(log: list[str | bytes]) -> None:
    """The logs are folded with C-level loops (and a slow path for empty, binary or odd messages): the
    figures are those of counting each message by itself."""
    counts: defaultdict[str, int] = defaultdict(int)
    want_counts, want_size = _reference_fold(log)
    assert _fold(list(log), counts) == want_size
    assert {k: v for k, v in counts.items() if v} == want_counts


async def test_each_server_has_its_own_registry(serve: Serve) -> None:
    a, b = app_server(), app_server()
    url_a, url_b = await serve(a), await serve(b)
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url_a, transports=["websocket"])
    assert (await scrape(url_a)).value("sioserver_connected_clients", transport="websocket") == 1
    assert (await scrape(url_b)).value("sioserver_connected_clients", transport="websocket") == 0
    await client.disconnect()


async def test_off_by_default(serve: Serve) -> None:
    sio = sioserver.AsyncServer()
    assert sio.metrics is None and sio.observer is None
    assert sio.observer_events is None and sio.tap_received is None and sio.tap_sent is None
    on = sioserver.AsyncServer(metrics=True)  # the metrics count through lists, and want no event hooks
    assert on.metrics is not None and on.observer_events is None
    assert (on.tap_received, on.tap_sent) == (on.metrics.received_log.append, on.metrics.sent_log.append)
    url = await serve(sio)
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as response:
        assert response.status == 404
    with pytest.raises(TypeError, match="metrics"):
        sioserver.AsyncServer(metrics="metrics")


async def test_adapter_metrics_follow_redis(serve: Serve, redis_binary: str, tmp_path: Path) -> None:
    """With a RedisAdapter: healthy 1 and a lag while Redis answers; healthy 0 once it is killed, and every
    broadcast it could not publish yet in the queue; healthy 1 again once Redis is back, the queue flushed
    and nothing counted as a publish failure."""
    redis = RedisServer(redis_binary, tmp_path)
    redis.start()
    try:
        sio = sioserver.AsyncServer(metrics=True, adapter=sioserver.RedisAdapter(redis.url))
        url = await serve(sio)
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(url, transports=["websocket"])  # the "/" namespace and its adapter exist now

        async def healthy(want: float) -> bool:
            return (await scrape(url)).value("sioserver_adapter_healthy", namespace="/") == want

        async def lag_reported() -> bool:
            return "sioserver_adapter_lag_seconds" in (await scrape(url)).families

        await wait_until(lambda: healthy(1), timeout=15, interval=0.1, what="adapter_healthy 1 while Redis answers")
        await wait_until(lag_reported, timeout=15, interval=0.1, what="adapter_lag_seconds after the first probe")
        now = await scrape(url)
        assert 0 < now.value("sioserver_adapter_lag_seconds") < 5
        assert now.value("sioserver_adapter_publish_failures_total") == 0

        redis.kill()
        await wait_until(lambda: healthy(0), timeout=15, interval=0.1, what="adapter_healthy 0 once Redis is killed")
        for i in range(3):
            await sio.emit("news", {"n": i})  # the local client still gets them; Redis does not

        async def queued(count: int) -> bool:
            return (await scrape(url)).value("sioserver_adapter_queued_messages") == count

        await wait_until(lambda: queued(3), timeout=15, interval=0.1, what="the 3 unpublished broadcasts queued")
        redis.start()
        await wait_until(lambda: healthy(1), timeout=20, interval=0.1, what="adapter_healthy 1 once Redis is back")
        await wait_until(lambda: queued(0), timeout=5, interval=0.1, what="the queue flushed once Redis is back")
        assert (await scrape(url)).value("sioserver_adapter_publish_failures_total") == 0
        await client.disconnect()
    finally:
        redis.stop()
