"""SimpleClient: the blocking wrapper, against the shared Node server."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import sioclient


def test_simple_client(node_url: Callable[..., str]) -> None:
    url = node_url()
    with sioclient.SimpleClient(reconnection=False) as client:
        client.connect(url, auth={"token": "simple"}, transports=["websocket"])
        assert client.connected and client.transport == "websocket"
        event, data = client.receive(timeout=5)
        assert event == "welcome" and data == {"sid": client.sid, "nsp": "/", "auth": {"token": "simple"}}
        client.emit("echo", ("hello", b"\x00bin"))
        assert client.receive(timeout=5) == ["echo", "hello", b"\x00bin"]
        assert client.call("echo", "answer me", timeout=5) == "answer me"
        assert client.receive(timeout=5) == ["echo", "answer me"]
        with pytest.raises(TimeoutError):
            client.receive(timeout=0.1)
        assert threading.active_count() >= 2  # the loop thread
    assert not client.connected
    with pytest.raises(sioclient.DisconnectedError):
        client.receive(timeout=1)


def test_simple_client_namespace_and_refusal(node_url: Callable[..., str]) -> None:
    url = node_url()
    client = sioclient.SimpleClient(reconnection=False)
    with pytest.raises(sioclient.ConnectionError) as info:
        client.connect(url, namespace="/private")
    assert info.value.data == {"message": "not allowed", "data": {"reason": "private"}}
    client.connect(url, namespace="/chat", transports=["polling"])
    try:
        assert client.receive(timeout=5)[1]["nsp"] == "/chat"
        assert client.call("transport", timeout=5) == "polling"
    finally:
        client.disconnect()
