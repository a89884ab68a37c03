"""python-socketio's option names that sioserver takes so that its apps port by changing the import."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import socketio as python_socketio

import sioserver
from sioserver.adapters import AsyncRedisManager

from .conftest import RawClient


class TestAsyncMode:
    @pytest.mark.parametrize("mode", [None, "aiohttp", "asgi"])
    async def test_the_asyncio_modes_are_accepted(self, sio_app: Any, mode: str | None) -> None:
        sio, client = await sio_app(sioserver.AsyncServer(async_mode=mode))
        assert sio.async_mode == (mode or "aiohttp")
        c: RawClient = await client()
        await c.connect()

    @pytest.mark.parametrize("mode", ["threading", "eventlet", "gevent", "gevent_uwsgi"])
    def test_the_others_are_refused_saying_sioserver_is_asyncio_only(self, mode: str) -> None:
        with pytest.raises(sioserver.ConfigurationError, match=f"async_mode='{mode}': sioserver is asyncio only"):
            sioserver.AsyncServer(async_mode=mode)

    @pytest.mark.parametrize("mode", ["sanic", "tornado"])
    def test_asyncio_frameworks_without_an_integration_are_refused_with_what_exists(self, mode: str) -> None:
        with pytest.raises(sioserver.ConfigurationError, match=f"no {mode} integration"):
            sioserver.AsyncServer(async_mode=mode)

    def test_a_typo_is_refused(self) -> None:
        with pytest.raises(sioserver.ConfigurationError, match="'aiohtp' is not one of 'aiohttp', 'asgi'"):
            sioserver.AsyncServer(async_mode="aiohtp")


class TestClientManager:
    def test_client_manager_is_the_adapter(self) -> None:
        manager = AsyncRedisManager("redis://127.0.0.1:1/0")
        sio = sioserver.AsyncServer(client_manager=manager)
        assert sio.adapter_factory is manager
        import sioserver as socketio

        assert socketio.AsyncRedisManager is AsyncRedisManager  # socketio.AsyncRedisManager(url) ports as is

    def test_python_socketios_own_manager_object_is_refused_with_the_sioserver_name(self) -> None:
        with pytest.raises(sioserver.ConfigurationError, match=r"use sioserver.AsyncRedisManager\(...\)"):
            sioserver.AsyncServer(client_manager=python_socketio.AsyncRedisManager("redis://127.0.0.1:1/0"))

    def test_adapter_and_client_manager_together_are_refused(self) -> None:
        with pytest.raises(sioserver.ConfigurationError, match="not both"):
            sioserver.AsyncServer(client_manager=AsyncRedisManager(), adapter=sioserver.MemoryAdapter)

    def test_a_write_only_manager_cannot_serve(self) -> None:
        with pytest.raises(sioserver.ConfigurationError, match="write_only"):
            sioserver.AsyncServer(client_manager=AsyncRedisManager(write_only=True))
        with pytest.raises(sioserver.ConfigurationError, match="write_only"):
            sioserver.AsyncServer(adapter=AsyncRedisManager(write_only=True))


class TestMonitorClients:
    def test_true_is_accepted_and_false_is_logged(self, caplog: pytest.LogCaptureFixture) -> None:
        sioserver.AsyncServer(monitor_clients=True)
        assert not [r for r in caplog.records if "monitor_clients" in r.getMessage()]
        with caplog.at_level(logging.WARNING, logger="sioserver.server"):
            sioserver.AsyncServer(monitor_clients=False)
        assert any("monitor_clients=False is ignored" in r.getMessage() for r in caplog.records)


class TestLoggers:
    async def test_logger_and_engineio_logger_true_log_each_connection_and_event(
        self, sio_app: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        loggers = [logging.getLogger(name) for name in ("", "sioserver.server", "sioserver.engine")]
        saved = [lg.level for lg in loggers]
        loggers[0].setLevel(logging.WARNING)  # INFO is hidden unless the options turn it on
        for lg in loggers[1:]:
            lg.setLevel(logging.NOTSET)
        try:
            sio, client = await sio_app(sioserver.AsyncServer(logger=True, engineio_logger=True))

            @sio.on("hello")
            async def hello(sid: str, data: Any) -> None:
                await sio.enter_room(sid, "r")
                await sio.emit("welcome", data, room="r")

            c: RawClient = await client()
            sid = await c.connect()
            await c.send('42["hello",1]')
            assert await c.recv() == '42["welcome",1]'
            await c.close()
            lines = {(r.name, r.levelno, r.getMessage()) for r in caplog.records}
            eio_sid = c.open["sid"]
            assert ("sioserver.engine", logging.INFO, f"session {eio_sid}: websocket handshake from 127.0.0.1") in lines
            assert ("sioserver.server", logging.INFO, f'received event "hello" from {sid} [/]') in lines
            # and each Engine.IO packet, as python-engineio's logger
            assert ("sioserver.engine", logging.INFO, f'{eio_sid}: Received packet MESSAGE data 2["hello",1]') in lines
            assert ("sioserver.engine", logging.INFO, f'{eio_sid}: Sending packet MESSAGE data 2["welcome",1]') in lines
            assert ("sioserver.server", logging.INFO, f"{sid} is entering room r [/]") in lines
            assert ("sioserver.server", logging.INFO, 'emitting event "welcome" to r [/]') in lines
        finally:
            for lg, level in zip(loggers, saved, strict=True):
                lg.setLevel(level)

    async def test_without_them_nothing_is_logged_at_info(self, sio_app: Any,
                                                          caplog: pytest.LogCaptureFixture) -> None:
        root = logging.getLogger()
        saved = root.level
        root.setLevel(logging.WARNING)
        try:
            sio, client = await sio_app(sioserver.AsyncServer())
            sio.on("hello", lambda sid, data: None)
            c: RawClient = await client()
            await c.connect()
            await c.send('421["hello",1]')
            assert await c.recv() == "431[]"  # handled
        finally:
            root.setLevel(saved)
        assert not [r for r in caplog.records if r.levelno == logging.INFO and "event" in r.getMessage()]
