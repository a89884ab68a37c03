"""Waiting for a condition, with a deadline and a message that says what was awaited and what was seen.

For state that only exists on the other side of a socket (a server's debug tables, a peer's log, a
subscriber's messages) a poll is the signal; where the test owns the event, await the event instead.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

Describe = str | Callable[[], str]


def _describe(what: Describe) -> str:
    return what() if callable(what) else what


async def wait_until(check: Callable[[], T | Awaitable[T]], *, timeout: float, what: Describe,
                     interval: float = 0.01) -> T:
    """Calls ``check`` (plain or async) until it returns something true and returns that; raises
    AssertionError with ``what`` (a string, or a function giving one then) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"after {timeout} s: {_describe(what)}")
        await asyncio.sleep(interval)


def wait_until_sync(check: Callable[[], T], *, timeout: float, what: Describe, interval: float = 0.02) -> T:
    """``wait_until`` outside an event loop (process start-up)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"after {timeout} s: {_describe(what)}")
        time.sleep(interval)
