"""Unit tests: the backoff math and the option checks."""

from __future__ import annotations

import random

import pytest
import sioclient
from sioclient import AsyncClient, Backoff

from sioserver.exceptions import ConfigurationError


def test_backoff_ceiling_doubles_then_caps() -> None:
    b = Backoff(1.0, 5.0, 0.5)
    assert [b.ceiling(n) for n in range(6)] == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert b.ceiling(10_000) == 5.0  # no overflow
    assert [b.bounds(n) for n in range(4)] == [(0.5, 1.0), (1.0, 2.0), (2.0, 4.0), (2.5, 5.0)]


def test_backoff_draws_span_the_interval() -> None:
    assert Backoff(1.0, 5.0, 0.5, rng=lambda: 0.0).duration(2) == 4.0  # rng 0: the ceiling
    assert Backoff(1.0, 5.0, 0.5, rng=lambda: 1.0).duration(2) == 2.0  # rng 1: the floor
    assert Backoff(1.0, 5.0, 0.0, rng=random.random).duration(1) == 2.0  # no jitter
    full = Backoff(1.0, 5.0, 1.0, rng=lambda: 0.999999)
    assert 0 <= full.duration(3) < 0.001  # full jitter reaches down to zero
    rng = random.Random(7)
    b = Backoff(0.2, 3.0, 0.5, rng=rng.random)
    for attempt in range(12):
        low, high = b.bounds(attempt)
        draws = [b.duration(attempt) for _ in range(200)]
        assert all(low <= d <= high <= 3.0 for d in draws)
        assert max(draws) - min(draws) > 0.8 * (high - low)  # jitter uses the whole interval


@pytest.mark.parametrize(("delay", "delay_max", "factor"), [(-1, 5, 0.5), (2, 1, 0.5), (1, 5, -0.1), (1, 5, 1.5)])
def test_backoff_refuses_bad_values(delay: float, delay_max: float, factor: float) -> None:
    with pytest.raises(ConfigurationError):
        Backoff(delay, delay_max, factor)


def test_client_options_use_the_backoff() -> None:
    client = AsyncClient(reconnection_delay=0.5, reconnection_delay_max=2, randomization_factor=0.25)
    assert client.backoff.bounds(0) == (0.375, 0.5)
    assert client.backoff.bounds(5) == (1.5, 2.0)


def test_unknown_option_names_the_closest() -> None:
    with pytest.raises(TypeError, match=r"'reconection_delay'.*did you mean 'reconnection_delay'"):
        AsyncClient(reconection_delay=1)
    with pytest.raises(TypeError, match="did you mean 'serializer'"):
        AsyncClient(serialiser="msgpack")
    with pytest.raises(TypeError, match="unknown parser"):
        AsyncClient(serializer="yaml")
    with pytest.raises(ConfigurationError):
        AsyncClient(max_buffered_emits=-1)


async def test_unknown_connect_option_names_the_closest() -> None:
    client = AsyncClient()
    with pytest.raises(TypeError, match="did you mean 'transports'"):
        await client.connect("http://127.0.0.1:1", transport=["websocket"])
    with pytest.raises(ValueError, match="transports"):
        await client.connect("http://127.0.0.1:1", transports=["carrier-pigeon"])
    with pytest.raises(ValueError, match="namespace"):
        await client.connect("http://127.0.0.1:1", namespaces=["chat"])


async def test_connection_refused_raises_connection_error() -> None:
    client = AsyncClient(reconnection=False, request_timeout=2)
    with pytest.raises(sioclient.ConnectionError):
        await client.connect("http://127.0.0.1:1")
    assert isinstance(sioclient.ConnectionError("x"), ConnectionError)  # the builtin, too
    assert not client.connected
