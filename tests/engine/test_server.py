"""The Engine.IO v4 server over HTTP: handshake, error table, long-polling, heartbeat, limits."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

import sioserver.engineio
from sioserver.exceptions import ConfigurationError

from .conftest import PATH, EchoFactory, disconnected, handshake, parked, until


class TestErrorTable:
    """Every row of the reference server's error table: status and exact JSON body."""

    @pytest.mark.parametrize(
        ("method", "query", "status", "body"),
        [
            ("GET", {"EIO": "3", "transport": "polling"}, 400, {"code": 5, "message": "Unsupported protocol version"}),
            ("GET", {"transport": "polling"}, 400, {"code": 5, "message": "Unsupported protocol version"}),
            ("GET", {"EIO": "4", "transport": "flash"}, 400, {"code": 0, "message": "Transport unknown"}),
            ("GET", {"EIO": "4"}, 400, {"code": 0, "message": "Transport unknown"}),
            ("GET", {"EIO": "4", "transport": "polling", "sid": "nope"}, 400, {"code": 1, "message": "Session ID unknown"}),
            ("POST", {"EIO": "4", "transport": "polling"}, 400, {"code": 2, "message": "Bad handshake method"}),
            ("PUT", {"EIO": "4", "transport": "polling"}, 400, {"code": 2, "message": "Bad handshake method"}),
            ("DELETE", {"EIO": "4", "transport": "polling"}, 400, {"code": 2, "message": "Bad handshake method"}),
            ("GET", {"EIO": "4", "transport": "websocket"}, 400, {"code": 3, "message": "Bad request"}),
        ],
    )
    async def test_row(self, echo_server: EchoFactory, method: str, query: dict[str, str], status: int,
                       body: dict[str, Any]) -> None:
        _, client = await echo_server(cors_allowed_origins="*")
        resp = await client.request(method, PATH, params=query, headers={"Origin": "http://example.com"})
        assert resp.status == status
        assert resp.headers["Content-Type"] == "application/json"
        assert await resp.json() == body
        # error responses carry the CORS headers, or the browser hides them
        assert resp.headers["Access-Control-Allow-Origin"] == "http://example.com"

    async def test_forbidden_by_allow_request(self, echo_server: EchoFactory) -> None:
        _, client = await echo_server(allow_request=lambda environ: False)
        resp = await client.get(PATH, params={"EIO": "4", "transport": "polling"})
        assert resp.status == 403
        assert await resp.json() == {"code": 4, "message": "Forbidden"}

    async def test_forbidden_origin(self, echo_server: EchoFactory) -> None:
        _, client = await echo_server(cors_allowed_origins=["https://good.example"])
        resp = await client.get(PATH, params={"EIO": "4", "transport": "polling"},
                                headers={"Origin": "https://evil.example"})
        assert resp.status == 403
        assert await resp.json() == {"code": 4, "message": "Forbidden"}
        assert "Access-Control-Allow-Origin" not in resp.headers

    async def test_polling_with_the_sid_of_a_websocket_session(self, echo_server: EchoFactory) -> None:
        _, client = await echo_server()
        ws = await client.ws_connect(PATH, params={"EIO": "4", "transport": "websocket"})
        sid = json.loads((await ws.receive_str())[1:])["sid"]
        resp = await client.get(PATH, params={"EIO": "4", "transport": "polling", "sid": sid})
        assert resp.status == 400
        assert await resp.json() == {"code": 3, "message": "Bad request"}
        await ws.close()

    async def test_oversize_post_is_413_and_not_processed(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server(max_http_buffer_size=1000)
        sid = (await handshake(client))["sid"]
        q = {"EIO": "4", "transport": "polling", "sid": sid}
        resp = await client.post(PATH, params=q, data="4" + "x" * 1000)
        assert resp.status == 413
        assert not [e for e in eio.events if e[0] == "message"]  # type: ignore[attr-defined]
        # as the reference server: the session is not closed by the server (the client's transport errors)
        assert (await client.post(PATH, params=q, data="4" + "x" * 999)).status == 200

    async def test_unknown_option_names_the_closest(self) -> None:
        with pytest.raises(ConfigurationError, match="did you mean 'cors_allowed_origins'") as info:
            sioserver.engineio.AsyncServer(cors_allowed_origin="*")
        assert isinstance(info.value, TypeError)


class TestHandshake:
    async def test_open_packet(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server(ping_interval=0.3, ping_timeout=0.25, max_http_buffer_size=5000)
        data = await handshake(client)
        assert list(data) == ["sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"]
        assert data["upgrades"] == ["websocket"]
        assert (data["pingInterval"], data["pingTimeout"], data["maxPayload"]) == (300, 250, 5000)
        assert ("connect", data["sid"]) in eio.events  # type: ignore[attr-defined]

    async def test_polling_only_server_advertises_no_upgrades(self, echo_server: EchoFactory) -> None:
        _, client = await echo_server(transports=["polling"])
        assert (await handshake(client))["upgrades"] == []

    async def test_websocket_handshake_sends_open_with_no_upgrades(self, echo_server: EchoFactory) -> None:
        _, client = await echo_server()
        ws = await client.ws_connect(PATH, params={"EIO": "4", "transport": "websocket"})
        data = json.loads((await ws.receive_str())[1:])
        assert data["upgrades"] == []
        await ws.send_str("4hi")
        assert await ws.receive_str() == "4hi"
        await ws.close()

    async def test_connect_handler_refusal_is_forbidden(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server()
        resp = await client.get(PATH, params={"EIO": "4", "transport": "polling", "refuse": "1"})
        assert resp.status == 403
        assert eio.sessions == {}

    async def test_cookie(self, echo_server: EchoFactory) -> None:
        _, client = await echo_server(cookie={"name": "io", "samesite": "Strict"})
        resp = await client.get(PATH, params={"EIO": "4", "transport": "polling"})
        sid = json.loads((await resp.text())[1:])["sid"]
        assert resp.headers["Set-Cookie"] == f"io={sid}; Path=/; HttpOnly; SameSite=Strict"

    async def test_preflight(self, echo_server: EchoFactory) -> None:
        _, client = await echo_server(cors_allowed_origins="*")
        resp = await client.options(PATH, headers={"Origin": "http://a.example",
                                                   "Access-Control-Request-Headers": "x-token"})
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == "http://a.example"
        assert resp.headers["Access-Control-Allow-Credentials"] == "true"
        assert resp.headers["Access-Control-Allow-Headers"] == "x-token"
        assert resp.headers["Vary"] == "Origin"

    async def test_same_origin_default(self, echo_server: EchoFactory) -> None:
        _, client = await echo_server()
        host = f"{client.host}:{client.port}"
        ok = await client.get(PATH, params={"EIO": "4", "transport": "polling"}, headers={"Origin": f"http://{host}"})
        assert ok.status == 200
        bad = await client.get(PATH, params={"EIO": "4", "transport": "polling"}, headers={"Origin": "http://x.example"})
        assert bad.status == 403


class TestUpgrade:
    async def test_probe_noop_upgrade_and_flush(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server()
        sid = (await handshake(client))["sid"]
        q = {"EIO": "4", "transport": "polling", "sid": sid}
        parked_get = asyncio.ensure_future(client.get(PATH, params=q))
        await until(parked(eio, sid))
        ws = await client.ws_connect(PATH, params={"EIO": "4", "transport": "websocket", "sid": sid})
        await ws.send_str("2probe")
        assert await ws.receive_str() == "3probe"
        # the parked GET is answered with a noop at once, so the client can pause polling
        assert await (await parked_get).text() == "6"
        # a GET during the upgrade is answered with a noop too
        assert await (await client.get(PATH, params=q)).text() == "6"
        # what the server sends while the upgrade is pending is held, then flushed on the WebSocket
        await eio.send(sid, "held")
        await ws.send_str("5")
        assert await ws.receive_str() == "4held"
        assert eio.transport(sid) == "websocket"
        await ws.send_str("4after")
        assert await ws.receive_str() == "4after"
        # polling with the sid of an upgraded session: 400
        resp = await client.get(PATH, params=q)
        assert resp.status == 400
        assert await resp.json() == {"code": 3, "message": "Bad request"}
        # a second WebSocket with the same sid is closed
        second = await client.ws_connect(PATH, params={"EIO": "4", "transport": "websocket", "sid": sid})
        msg = await second.receive()
        assert msg.type.name in ("CLOSE", "CLOSED")
        await ws.send_str("4still")
        assert await ws.receive_str() == "4still"
        await ws.close()

    async def test_upgrade_timeout_keeps_polling(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server(upgrade_timeout=0.1)
        sid = (await handshake(client))["sid"]
        ws = await client.ws_connect(PATH, params={"EIO": "4", "transport": "websocket", "sid": sid})
        msg = await ws.receive(timeout=2)
        assert msg.type.name in ("CLOSE", "CLOSED")
        assert eio.transport(sid) == "polling"
        q = {"EIO": "4", "transport": "polling", "sid": sid}
        await client.post(PATH, params=q, data="4still polling")
        assert await (await client.get(PATH, params=q)).text() == "4still polling"

    async def test_message_instead_of_probe_abandons_the_upgrade(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server()
        sid = (await handshake(client))["sid"]
        ws = await client.ws_connect(PATH, params={"EIO": "4", "transport": "websocket", "sid": sid})
        await ws.send_str("4sneaky")
        msg = await ws.receive(timeout=2)
        assert msg.type.name in ("CLOSE", "CLOSED")
        assert not [e for e in eio.events if e[0] == "message"]  # type: ignore[attr-defined]
        assert eio.transport(sid) == "polling"

    async def test_upgrades_disabled(self, echo_server: EchoFactory) -> None:
        _, client = await echo_server(allow_upgrades=False)
        data = await handshake(client)
        assert data["upgrades"] == []
        resp = await client.get(PATH, params={"EIO": "4", "transport": "websocket", "sid": data["sid"]},
                                headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                         "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                         "Sec-WebSocket-Version": "13"})
        assert resp.status == 400

    async def test_oversize_websocket_message_closes_1009(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server(max_http_buffer_size=1000)
        ws = await client.ws_connect(PATH, params={"EIO": "4", "transport": "websocket"})
        sid = json.loads((await ws.receive_str())[1:])["sid"]
        await ws.send_str("4" + "x" * 2000)
        msg = await ws.receive(timeout=2)
        assert msg.type.name == "CLOSE"
        assert msg.data == 1009
        assert await disconnected(eio, sid) == "transport error"

    async def test_slow_consumer_is_disconnected_not_buffered_forever(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server(max_buffered_bytes=10_000)
        sid = (await handshake(client))["sid"]
        for _ in range(20):
            await eio.send(sid, "x" * 1000)
        assert ("disconnect", sid, "slow consumer") in eio.events  # type: ignore[attr-defined]
        assert eio.stats["slow_consumers"] == 1


class TestSlowConsumerPolicy:
    async def test_drop_policy_drops_counts_and_keeps_the_session(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server(max_buffered_bytes=5000, slow_consumer_policy="drop")
        sid = (await handshake(client))["sid"]
        for _ in range(10):
            await eio.send(sid, "x" * 1000)
        assert eio.stats["dropped_slow_consumer"] == 6
        assert not eio.sessions[sid].closed
        body = await (await client.get(PATH, params={"EIO": "4", "transport": "polling", "sid": sid})).text()
        assert body.count("\x1e") == 3  # the four that fit
        await eio.send(sid, "after")  # the backlog drained: sending works again
        assert eio.stats["dropped_slow_consumer"] == 6

    def test_unknown_policy_is_refused(self) -> None:
        with pytest.raises(ConfigurationError):
            sioserver.engineio.AsyncServer(slow_consumer_policy="ignore")


class TestHardening:
    async def test_handshake_rate_per_address(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server(max_handshake_rate=2)
        statuses = [(await client.get(PATH, params={"EIO": "4", "transport": "polling"})).status for _ in range(6)]
        assert statuses[:4] == [200] * 4  # a burst of twice the rate
        assert statuses[4:] == [429, 429]
        assert eio.stats["refused:handshake_rate"] == 2

    def test_rate_limiter_table_is_bounded(self) -> None:
        from sioserver.engine.server import RateLimiter

        limiter = RateLimiter(1.0, max_entries=100)
        for i in range(1000):
            assert limiter.allow(f"10.0.{i // 256}.{i % 256}", now=float(i) * 0.001)
        assert len(limiter.buckets) <= 101

    async def test_slow_body_is_cut_off(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server(body_timeout=0.2)
        sid = (await handshake(client))["sid"]
        reader, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(
            f"POST {PATH}?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n4he".encode()
        )
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 2)
        assert b" 400 " in status
        writer.close()
        assert not [e for e in eio.events if e[0] == "message"]  # type: ignore[attr-defined]
        assert ("disconnect", sid, "transport error") in eio.events  # type: ignore[attr-defined]

    async def test_shutdown_refuses_handshakes_and_spreads_closes(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server()
        sids = [(await handshake(client))["sid"] for _ in range(10)]
        started = time.monotonic()
        task = asyncio.ensure_future(eio.shutdown(grace=0.3))
        await disconnected(eio, sids[0])  # the first batch
        closed_early = sum(1 for e in eio.events if e[0] == "disconnect")  # type: ignore[attr-defined]
        resp = await client.get(PATH, params={"EIO": "4", "transport": "polling"})
        assert resp.status == 503
        await task
        assert 0 < closed_early < 10
        assert time.monotonic() - started >= 0.3
        assert {e[1] for e in eio.events if e[0] == "disconnect"} == set(sids)  # type: ignore[attr-defined]
        assert all(e[2] == "server shutting down" for e in eio.events if e[0] == "disconnect")  # type: ignore[attr-defined]
