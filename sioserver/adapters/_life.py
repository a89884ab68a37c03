"""What every Redis link and adapter factory shares: the one event loop a link serves, waiting for a state
to change, and a factory's book of which namespace adapters use which server's connections.

* :func:`running_loop`: a link's tasks run on one event loop; the first one it is used from binds it.
* :class:`Changes`: wait (with a timeout) until something says the state behind ``healthy`` changed.
* :class:`Members`: per server, the unit holding its connections (a link, or the streams adapter's
  pair of links) and the namespace adapters using it; the unit is closed with its last adapter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

__all__ = ["Changes", "Members", "running_loop", "until"]


def running_loop(bound: asyncio.AbstractEventLoop | None, what: str) -> asyncio.AbstractEventLoop | None:
    """The running loop, None when none runs yet; RuntimeError when ``bound`` is another loop."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    if bound is not None and bound is not loop:
        raise RuntimeError(f"{what} is used from two event loops; create one adapter per loop")
    return loop


class Changes:
    """Waiters for a change of state: :meth:`wait` returns at the next :meth:`notify`, or after ``timeout``."""

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []

    async def wait(self, timeout: float) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait((waiter,), timeout=timeout)
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


async def until(condition: Callable[[], bool], changes: Changes, timeout: float) -> bool:
    """Wait until ``condition()`` holds (True), looked at again on each change; False after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        await changes.wait(remaining)
    return True


class Unit(Protocol):
    @property
    def healthy(self) -> bool: ...
    async def wait_ready(self, timeout: float) -> bool: ...
    async def close(self) -> None: ...


class Adapter(Protocol):
    def start(self) -> None: ...
    async def close(self) -> None: ...


U = TypeVar("U", bound=Unit)
A = TypeVar("A", bound=Adapter)


class Members(Generic[U, A]):
    """A factory's servers: each one's unit of connections, and the namespace adapters on it."""

    def __init__(self) -> None:
        self._members: dict[U, set[A]] = {}

    def __contains__(self, unit: object) -> bool:
        return unit in self._members

    def add(self, unit: U, adapter: A) -> None:
        self._members.setdefault(unit, set()).add(adapter)

    def of(self, unit: U) -> set[A]:
        return self._members.get(unit, set())

    @property
    def units(self) -> list[U]:
        return list(self._members)

    @property
    def adapters(self) -> list[A]:
        return [a for members in self._members.values() for a in members]

    @property
    def healthy(self) -> bool:
        """Every server's connections work (False before the first namespace exists)."""
        units = list(self._members)
        return bool(units) and all(unit.healthy for unit in units)

    async def wait_ready(self, timeout: float) -> bool:
        """Start the adapters made so far and wait until :attr:`healthy` (False after ``timeout`` s)."""
        for adapter in self.adapters:
            adapter.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for unit in list(self._members):
            if not await unit.wait_ready(max(deadline - loop.time(), 0)):
                return False
        return True

    async def close(self) -> None:
        """Close every adapter, then every unit."""
        for adapter in self.adapters:
            await adapter.close()
        for unit in list(self._members):
            await unit.close()
        self._members.clear()

    async def release(self, unit: U, adapter: A) -> None:
        """``adapter`` closed: its unit closes with the last adapter on it."""
        members = self._members.get(unit)
        if members is None:
            return
        members.discard(adapter)
        if not members:
            del self._members[unit]
            await unit.close()
