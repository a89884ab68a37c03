"""sioclient.reconnection.reconnect: the attempt loop (the backoff's figures are in test_options.py)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sioclient import Backoff
from sioclient.exceptions import ConnectionError
from sioclient.reconnection import reconnect

LOG = logging.getLogger("test.sioclient.reconnection")
NOW = Backoff(0.0, 0.0)  # no wait between attempts


class Attempts:
    """An attempt that fails ``failures`` times, then succeeds; records every call."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.made = 0
        self.failed: list[str] = []

    async def attempt(self) -> None:
        self.made += 1
        if self.made <= self.failures:
            raise ConnectionError(f"refused {self.made}")

    def on_failure(self, exc: ConnectionError) -> None:
        self.failed.append(exc.message)


async def test_retries_until_an_attempt_succeeds() -> None:
    a = Attempts(failures=2)
    made = await reconnect(NOW, 0, wanted=lambda: True, attempt=a.attempt, failed=a.on_failure, logger=LOG)
    assert made == 3 and a.failed == ["refused 1", "refused 2"]


async def test_gives_up_after_max_attempts(caplog: pytest.LogCaptureFixture) -> None:
    a = Attempts(failures=10)
    with caplog.at_level(logging.WARNING, LOG.name):
        made = await reconnect(NOW, 3, wanted=lambda: True, attempt=a.attempt, failed=a.on_failure, logger=LOG)
    assert made is None and a.made == 3
    assert "giving up after 3 reconnection attempts" in caplog.text


async def test_stops_when_nothing_is_wanted_any_more() -> None:
    a = Attempts(failures=10)
    assert await reconnect(NOW, 0, wanted=lambda: False, attempt=a.attempt, failed=a.on_failure, logger=LOG) is None
    assert a.made == 0
    # the last namespace refused during the second attempt: no third one
    made = await reconnect(NOW, 0, wanted=lambda: a.made < 2, attempt=a.attempt, failed=a.on_failure, logger=LOG)
    assert made is None and a.made == 2


async def test_an_error_other_than_connection_error_ends_the_loop() -> None:
    async def broken() -> None:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError, match="bug"):
        await reconnect(NOW, 0, wanted=lambda: True, attempt=broken, failed=print, logger=LOG)


async def test_cancelling_stops_the_wait_before_the_attempt() -> None:
    a = Attempts(failures=0)
    waiting = asyncio.ensure_future(
        reconnect(Backoff(60.0, 60.0), 0, wanted=lambda: True, attempt=a.attempt, failed=a.on_failure, logger=LOG)
    )
    await asyncio.sleep(0)  # the loop is in its first backoff wait
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert a.made == 0
