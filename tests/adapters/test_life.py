"""sioserver/adapters/_life.py: the one loop of a link, waiting for a change, a factory's members."""

from __future__ import annotations

import asyncio

import pytest

from sioserver.adapters._life import Changes, Members, running_loop, until


def test_running_loop_binds_one_loop() -> None:
    assert running_loop(None, "a link") is None  # no loop runs: nothing to start yet
    first = asyncio.run(_current(None))
    assert first is not None
    other = asyncio.new_event_loop()
    try:
        with pytest.raises(RuntimeError, match="a link is used from two event loops"):
            other.run_until_complete(_current(first))
    finally:
        other.close()


async def _current(bound: asyncio.AbstractEventLoop | None) -> asyncio.AbstractEventLoop | None:
    return running_loop(bound, "a link")


async def test_until_wakes_on_notify_and_times_out() -> None:
    changes = Changes()
    state = {"ok": False}
    waiting = asyncio.ensure_future(until(lambda: state["ok"], changes, 5.0))
    await asyncio.sleep(0)
    changes.notify()  # a change that does not make it true: it goes on waiting
    await asyncio.sleep(0)
    assert not waiting.done()
    state["ok"] = True
    changes.notify()
    assert await asyncio.wait_for(waiting, 1.0) is True
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await until(lambda: False, changes, 0.05) is False
    assert loop.time() - started >= 0.05
    assert changes._waiters == []  # nobody left behind


class Unit:
    def __init__(self, healthy: bool = True) -> None:
        self.healthy = healthy
        self.closed = 0
        self.ready_asked: list[float] = []

    async def wait_ready(self, timeout: float) -> bool:
        self.ready_asked.append(timeout)
        return self.healthy

    async def close(self) -> None:
        self.closed += 1


class Adapter:
    def __init__(self) -> None:
        self.started = 0
        self.closed = 0

    def start(self) -> None:
        self.started += 1

    async def close(self) -> None:
        self.closed += 1


async def test_members_close_a_unit_with_its_last_adapter() -> None:
    members: Members[Unit, Adapter] = Members()
    assert not members.healthy  # nothing yet
    one, two = Unit(), Unit()
    a, b, c = Adapter(), Adapter(), Adapter()
    members.add(one, a)
    members.add(one, b)
    members.add(two, c)
    assert members.healthy and one in members and sorted(map(id, members.adapters)) == sorted(map(id, (a, b, c)))
    assert await members.wait_ready(1.0)
    assert (a.started, b.started, c.started) == (1, 1, 1)
    await members.release(one, a)
    assert one.closed == 0  # b still uses it
    await members.release(one, b)
    assert one.closed == 1 and one not in members
    await members.release(one, b)  # again: nothing more
    assert one.closed == 1
    two.healthy = False
    assert not members.healthy
    assert not await members.wait_ready(1.0)
    await members.close()
    assert c.closed == 1 and two.closed == 1 and members.units == []

