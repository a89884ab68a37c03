"""Engine.IO v3 sessions (``allow_eio3=True``): the v3 handshake, payloads, heartbeat and binary frames,
bytes in and bytes out over the real HTTP stack. Off by default: EIO=3 gets the reference's 400 code 5."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from sioserver.proto.engineio_v3 import decode_binary_payload, encode_binary_payload

from .conftest import PATH, EchoFactory, disconnected, parked, until


async def handshake3(client: Any, **query: str) -> dict[str, Any]:
    resp = await client.get(PATH, params={"EIO": "3", "transport": "polling", **query})
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"] == "text/plain; charset=UTF-8"
    body = await resp.text()
    length, _, packet = body.partition(":")
    assert int(length) == len(packet) and packet[0] == "0"
    return json.loads(packet[1:])  # type: ignore[no-any-return]


class TestOffByDefault:
    async def test_eio3_is_refused_with_code_5(self, echo_server: EchoFactory) -> None:
        _, client = await echo_server()
        resp = await client.get(PATH, params={"EIO": "3", "transport": "polling"})
        assert resp.status == 400
        assert await resp.json() == {"code": 5, "message": "Unsupported protocol version"}

    async def test_only_3_and_4_are_served_when_on(self, echo_server: EchoFactory) -> None:
        _, client = await echo_server(allow_eio3=True)
        for eio in ("2", "5", ""):
            resp = await client.get(PATH, params={"EIO": eio, "transport": "polling"})
            assert (resp.status, (await resp.json())["code"]) == (400, 5)


class TestHandshake:
    async def test_jsonp_is_refused_not_served_wrong(self, echo_server: EchoFactory) -> None:
        _, client = await echo_server(allow_eio3=True)
        resp = await client.get(PATH, params={"EIO": "3", "transport": "polling", "j": "0"})
        assert (resp.status, await resp.json()) == (400, {"code": 3, "message": "Bad request"})

    async def test_open_packet_has_the_v3_keys(self, echo_server: EchoFactory) -> None:
        _, client = await echo_server(allow_eio3=True, ping_interval=(10, 2), ping_timeout=5)
        opened = await handshake3(client)
        assert list(opened) == ["sid", "upgrades", "pingInterval", "pingTimeout"]
        assert opened["upgrades"] == ["websocket"]
        assert (opened["pingInterval"], opened["pingTimeout"]) == (12000, 5000)

    async def test_v4_is_unchanged_beside_it(self, echo_server: EchoFactory) -> None:
        _, client = await echo_server(allow_eio3=True)
        resp = await client.get(PATH, params={"EIO": "4", "transport": "polling"})
        body = await resp.text()
        assert body[0] == "0" and "maxPayload" in json.loads(body[1:])


class TestPolling:
    async def test_text_and_base64_echo(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server(allow_eio3=True)
        sid = (await handshake3(client, b64="1"))["sid"]
        q = {"EIO": "3", "transport": "polling", "sid": sid, "b64": "1"}
        resp = await client.post(PATH, params=q, data="9:4héllo 🚀10:b4AQID/w==")
        assert (resp.status, await resp.text()) == (200, "ok")
        await until(lambda: len([e for e in eio.events if e[0] == "message"]) == 2)  # type: ignore[attr-defined]
        resp = await client.get(PATH, params=q)
        assert resp.headers["Content-Type"] == "text/plain; charset=UTF-8"
        assert await resp.text() == "9:4héllo 🚀10:b4AQID/w=="

    async def test_binary_payloads_both_ways(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server(allow_eio3=True)
        sid = (await handshake3(client))["sid"]
        q = {"EIO": "3", "transport": "polling", "sid": sid}
        body = encode_binary_payload(["4text", b"\x00\xffbin"])
        resp = await client.post(PATH, params=q, data=body, headers={"Content-Type": "application/octet-stream"})
        assert (resp.status, await resp.text()) == (200, "ok")
        assert ("message", sid, b"\x00\xffbin") in eio.events  # type: ignore[attr-defined]
        resp = await client.get(PATH, params=q)
        assert resp.headers["Content-Type"] == "application/octet-stream"
        raw = await resp.read()
        assert raw == body
        assert [p.data for p in decode_binary_payload(raw)] == ["text", b"\x00\xffbin"]

    async def test_a_payload_that_does_not_parse_ends_the_session(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server(allow_eio3=True)
        sid = (await handshake3(client))["sid"]
        q = {"EIO": "3", "transport": "polling", "sid": sid}
        assert (await client.post(PATH, params=q, data="5:4a")).status == 200
        assert await disconnected(eio, sid) == "parse error"

    async def test_packet_bound_is_a_400(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server(allow_eio3=True, max_payload_packets=3)
        sid = (await handshake3(client))["sid"]
        q = {"EIO": "3", "transport": "polling", "sid": sid}
        assert (await client.post(PATH, params=q, data="2:4a" * 4)).status == 400
        assert await disconnected(eio, sid) == "transport error"

    async def test_server_close_is_a_v3_close_packet(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server(allow_eio3=True)
        sid = (await handshake3(client))["sid"]
        q = {"EIO": "3", "transport": "polling", "sid": sid}
        get = asyncio.ensure_future(client.get(PATH, params=q))
        await until(parked(eio, sid))
        await eio.disconnect(sid)
        assert await (await get).text() == "1:1"


class TestHeartbeat:
    async def test_client_pings_server_pongs_with_the_data(self, echo_server: EchoFactory) -> None:
        _, client = await echo_server(allow_eio3=True)
        sid = (await handshake3(client))["sid"]
        q = {"EIO": "3", "transport": "polling", "sid": sid}
        await client.post(PATH, params=q, data="1:25:2data")
        assert await (await client.get(PATH, params=q)).text() == "1:35:3data"

    async def test_no_ping_closes_at_interval_plus_timeout_and_the_server_never_pings(
        self, echo_server: EchoFactory
    ) -> None:
        eio, client = await echo_server(allow_eio3=True, ping_interval=0.2, ping_timeout=0.3)
        started = time.monotonic()
        sid = (await handshake3(client))["sid"]
        q = {"EIO": "3", "transport": "polling", "sid": sid}
        get = asyncio.ensure_future(client.get(PATH, params=q))
        assert await disconnected(eio, sid) == "ping timeout"
        assert 0.5 <= time.monotonic() - started < 0.65
        assert await (await get).text() == "1:1"  # no ping came before the close

    async def test_pings_keep_it_alive(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server(allow_eio3=True, ping_interval=0.1, ping_timeout=0.3)
        sid = (await handshake3(client))["sid"]
        q = {"EIO": "3", "transport": "polling", "sid": sid}
        started = time.monotonic()
        pongs = 0
        while time.monotonic() - started < 1.0:
            await client.post(PATH, params=q, data="1:2")
            assert await (await client.get(PATH, params=q)).text() == "1:3"
            pongs += 1
        assert pongs >= 5 and not eio.sessions[sid].closed

    async def test_pong_from_a_v3_client_is_a_protocol_error(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server(allow_eio3=True)
        sid = (await handshake3(client))["sid"]
        await client.post(PATH, params={"EIO": "3", "transport": "polling", "sid": sid}, data="1:3")
        assert await disconnected(eio, sid) == "transport error"


class TestWebSocket:
    async def test_binary_frames_carry_the_type_byte(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server(allow_eio3=True)
        ws = await client.ws_connect(PATH, params={"EIO": "3", "transport": "websocket"})
        opened = json.loads((await ws.receive_str())[1:])
        assert "maxPayload" not in opened
        await ws.send_bytes(b"\x04\x01\x02")
        assert await ws.receive_bytes() == b"\x04\x01\x02"
        await ws.send_str("2")
        assert await ws.receive_str() == "3"
        await ws.send_str("4text")
        assert await ws.receive_str() == "4text"
        await ws.send_bytes(b"\x03x")  # a binary frame that is not a MESSAGE
        assert await disconnected(eio, opened["sid"]) == "parse error"
        await ws.close()

    @pytest.mark.parametrize("b64", [False, True])
    async def test_upgrade_from_polling(self, echo_server: EchoFactory, b64: bool) -> None:
        eio, client = await echo_server(allow_eio3=True)
        extra = {"b64": "1"} if b64 else {}
        sid = (await handshake3(client, **extra))["sid"]
        q = {"EIO": "3", "transport": "polling", "sid": sid, **extra}
        get = asyncio.ensure_future(client.get(PATH, params=q))
        await until(parked(eio, sid))
        ws = await client.ws_connect(PATH, params={**q, "transport": "websocket"})
        await ws.send_str("2probe")
        assert await ws.receive_str() == "3probe"
        assert await (await get).text() == "1:6"
        await ws.send_str("5")
        await until(lambda: eio.sessions[sid].transport == "websocket")
        if b64:
            await ws.send_str("b4AQI=")
            assert await ws.receive_str() == "b4AQI="
        else:
            await ws.send_bytes(b"\x04\x01\x02")
            assert await ws.receive_bytes() == b"\x04\x01\x02"
        resp = await client.get(PATH, params=q)
        assert resp.status == 400
        await ws.close()
        assert await disconnected(eio, sid) == "transport close"

