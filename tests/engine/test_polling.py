"""sioserver.engine.polling: GET and POST of long-polling sessions, against the real HTTP stack."""

from __future__ import annotations

import asyncio
import gzip
import time

import pytest

from .conftest import PATH, EchoFactory, disconnected, handshake, parked, until


class TestPolling:
    async def test_echo_text_and_binary(self, echo_server: EchoFactory) -> None:
        _, client = await echo_server()
        sid = (await handshake(client))["sid"]
        q = {"EIO": "4", "transport": "polling", "sid": sid}
        resp = await client.post(PATH, params=q, data="4hello\x1ebAQIDBA==")
        assert resp.status == 200
        assert await resp.text() == "ok"
        resp = await client.get(PATH, params=q)
        assert await resp.text() == "4hello\x1ebAQIDBA=="

    async def test_nothing_is_sent_before_the_client_asks(self, echo_server: EchoFactory) -> None:
        _, client = await echo_server(ping_interval=0.4, ping_timeout=1)
        sid = (await handshake(client))["sid"]
        started = time.monotonic()
        resp = await client.get(PATH, params={"EIO": "4", "transport": "polling", "sid": sid})
        assert await resp.text() == "2"  # the first thing the parked GET gets is the ping
        assert time.monotonic() - started >= 0.35

    async def test_no_pong_closes_at_interval_plus_timeout(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server(ping_interval=0.2, ping_timeout=0.3)
        started = time.monotonic()
        sid = (await handshake(client))["sid"]
        assert await disconnected(eio, sid) == "ping timeout"
        elapsed = time.monotonic() - started
        assert 0.5 <= elapsed < 0.65
        assert ("disconnect", sid, "ping timeout") in eio.events  # type: ignore[attr-defined]

    async def test_pongs_keep_a_session_alive(self, echo_server: EchoFactory) -> None:
        # a generous timeout (a pong's round trip on a loaded machine), and a loop that outlasts
        # interval + timeout: without the pongs the session would be closed by the end
        eio, client = await echo_server(ping_interval=0.1, ping_timeout=0.5)
        sid = (await handshake(client))["sid"]
        q = {"EIO": "4", "transport": "polling", "sid": sid}
        started = time.monotonic()
        pings = 0
        while time.monotonic() - started < 1.0:
            assert await (await client.get(PATH, params=q)).text() == "2"
            assert (await client.post(PATH, params=q, data="3")).status == 200
            pings += 1
        assert pings >= 5
        assert not eio.sessions[sid].closed

    async def test_ping_from_a_v4_client_is_a_protocol_error(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server()
        sid = (await handshake(client))["sid"]
        await client.post(PATH, params={"EIO": "4", "transport": "polling", "sid": sid}, data="2")
        assert ("disconnect", sid, "transport error") in eio.events  # type: ignore[attr-defined]

    async def test_second_concurrent_get_closes_the_session(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server()
        sid = (await handshake(client))["sid"]
        q = {"EIO": "4", "transport": "polling", "sid": sid}
        first = asyncio.ensure_future(client.get(PATH, params=q))
        await until(parked(eio, sid))
        second = await client.get(PATH, params=q)
        assert second.status == 400
        assert await (await first).text() == "1"
        assert ("disconnect", sid, "transport error") in eio.events  # type: ignore[attr-defined]

    async def test_server_disconnect_answers_the_parked_get_with_close(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server()
        sid = (await handshake(client))["sid"]
        q = {"EIO": "4", "transport": "polling", "sid": sid}
        get = asyncio.ensure_future(client.get(PATH, params=q))
        await until(parked(eio, sid))
        await eio.disconnect(sid)
        assert await (await get).text() == "1"
        assert (await client.get(PATH, params=q)).status == 400

    async def test_client_close_packet(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server()
        sid = (await handshake(client))["sid"]
        await client.post(PATH, params={"EIO": "4", "transport": "polling", "sid": sid}, data="1")
        # Node engine.io's reason (tests/engine/test_close_semantics.py compares it): the transport closed
        assert ("disconnect", sid, "transport close") in eio.events  # type: ignore[attr-defined]
        assert sid not in eio.sessions

    @pytest.mark.parametrize("body", ["", "x", "4a\x1e", "b!!!", "\xff"])
    async def test_malformed_post_ends_the_session_at_once(self, echo_server: EchoFactory, body: str) -> None:
        # as the reference: the POST is answered "ok", the session ends ("parse error") and its sid is
        # unknown from the next request on; nothing of the body is processed
        eio, client = await echo_server()
        sid = (await handshake(client))["sid"]
        q = {"EIO": "4", "transport": "polling", "sid": sid}
        resp = await client.post(PATH, params=q, data=body.encode("latin-1"))
        assert (resp.status, await resp.text()) == (200, "ok")
        assert await disconnected(eio, sid) == "parse error"
        after = await client.get(PATH, params=q)
        assert after.status == 400
        assert await after.json() == {"code": 1, "message": "Session ID unknown"}
        assert not [e for e in eio.events if e[0] == "message"]  # type: ignore[attr-defined]

    async def test_too_many_packets_in_one_post_is_refused_not_dropped(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server(max_payload_packets=16)
        sid = (await handshake(client))["sid"]
        resp = await client.post(PATH, params={"EIO": "4", "transport": "polling", "sid": sid},
                                 data="\x1e".join(["4m"] * 17))
        assert resp.status == 400
        assert not [e for e in eio.events if e[0] == "message"]  # type: ignore[attr-defined]

    async def test_aborted_get_closes_the_session(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server(poll_check_interval=0.05)
        sid = (await handshake(client))["sid"]
        _, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(f"GET {PATH}?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        await until(parked(eio, sid))
        writer.close()
        assert await disconnected(eio, sid) == "transport close"

    async def test_truncated_post_is_not_processed(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server()
        sid = (await handshake(client))["sid"]
        reader, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(
            f"POST {PATH}?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n4hello".encode()
        )
        await writer.drain()
        writer.write_eof()
        await reader.read()
        writer.close()
        assert await disconnected(eio, sid) == "transport error"
        assert not [e for e in eio.events if e[0] == "message"]  # type: ignore[attr-defined]

    async def test_large_bodies_are_gzipped(self, echo_server: EchoFactory) -> None:
        _, client = await echo_server()
        sid = (await handshake(client))["sid"]
        q = {"EIO": "4", "transport": "polling", "sid": sid}
        await client.post(PATH, params=q, data="4" + "a" * 5000)
        resp = await client.get(PATH, params=q, headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
        assert resp.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(await resp.read()) == b"4" + b"a" * 5000


