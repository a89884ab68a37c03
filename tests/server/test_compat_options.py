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
