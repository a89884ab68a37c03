"""``logger=True`` (the Socket.IO server's ``engineio_logger``): each packet sent and received is logged, in python-engineio's words."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tests.engine.conftest import PATH, EchoFactory, disconnected, handshake

pytestmark = pytest.mark.asyncio


@pytest.fixture
def engine_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    logger = logging.getLogger("sioserver.engine")
    saved = logger.level
    logger.setLevel(logging.NOTSET)
    caplog.set_level(logging.INFO, logger="sioserver.engine")
    try:
        yield caplog
    finally:
        logger.setLevel(saved)


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "sioserver.engine" and r.levelno == logging.INFO]


async def test_websocket_packets_both_ways(echo_server: EchoFactory, engine_log: pytest.LogCaptureFixture) -> None:
    eio, client = await echo_server(logger=True, ping_interval=0.2, ping_timeout=5)
    ws = await client.ws_connect(PATH, params={"EIO": "4", "transport": "websocket"})
    opening = await ws.receive_str()
    sid = eio.events[0][1]
    await ws.send_str("4hello")
    assert await ws.receive_str() == "4hello"
    await ws.send_bytes(b"\x01\x02")
    assert await ws.receive_bytes() == b"\x01\x02"
    assert await ws.receive_str() == "2"  # the server's ping
    await ws.send_str("3")
    await ws.close()
    await disconnected(eio, sid)
    seen = lines(engine_log)
    assert f"{sid}: Sending packet OPEN data {opening[1:]}" in seen
    assert f"{sid}: Received packet MESSAGE data hello" in seen
    assert f"{sid}: Sending packet MESSAGE data hello" in seen
    assert f"{sid}: Received packet MESSAGE data <binary>" in seen
    assert f"{sid}: Sending packet MESSAGE data <binary>" in seen
    assert f"{sid}: Sending packet PING data None" in seen
    assert f"{sid}: Received packet PONG data None" in seen
    # in the order they happened: the echo follows what it echoes
    assert seen.index(f"{sid}: Received packet MESSAGE data hello") < seen.index(f"{sid}: Sending packet MESSAGE data hello")


async def test_polling_packets_and_close(echo_server: EchoFactory, engine_log: pytest.LogCaptureFixture) -> None:
    eio, client = await echo_server(logger=True)
    sid = (await handshake(client))["sid"]
    query: dict[str, Any] = {"EIO": "4", "transport": "polling", "sid": sid}
    resp = await client.post(PATH, params=query, data="4one\x1e4two")
    assert resp.status == 200
    resp = await client.get(PATH, params=query)
    assert await resp.text() == "4one\x1e4two"
    resp = await client.post(PATH, params=query, data="1")
    assert resp.status == 200
    await disconnected(eio, sid)
    seen = lines(engine_log)
    assert any(line.startswith(f'{sid}: Sending packet OPEN data {{"sid":"{sid}"') for line in seen)
    for data in ("one", "two"):
        assert f"{sid}: Received packet MESSAGE data {data}" in seen
        assert f"{sid}: Sending packet MESSAGE data {data}" in seen
    assert f"{sid}: Received packet CLOSE data None" in seen


async def test_without_it_no_packet_is_logged(echo_server: EchoFactory,
                                              engine_log: pytest.LogCaptureFixture) -> None:
    eio, client = await echo_server()
    ws = await client.ws_connect(PATH, params={"EIO": "4", "transport": "websocket"})
    await ws.receive_str()
    await ws.send_str("4hello")
    assert await ws.receive_str() == "4hello"
    await ws.close()
    await disconnected(eio, eio.events[0][1])
    assert not [line for line in lines(engine_log) if " packet " in line]


async def test_engineio_v3_ping_and_pong(echo_server: EchoFactory, engine_log: pytest.LogCaptureFixture) -> None:
    _, client = await echo_server(logger=True, allow_eio3=True)
    resp = await client.get(PATH, params={"EIO": "3", "transport": "polling"})
    sid = json.loads((await resp.text()).partition(":")[2][1:])["sid"]
    query = {"EIO": "3", "transport": "polling", "sid": sid}
    await client.post(PATH, params=query, data="1:25:2data")
    assert await (await client.get(PATH, params=query)).text() == "1:35:3data"
    seen = lines(engine_log)
    assert f"{sid}: Received packet PING data None" in seen
    assert f"{sid}: Received packet PING data data" in seen
    assert f"{sid}: Sending packet PONG data data" in seen
