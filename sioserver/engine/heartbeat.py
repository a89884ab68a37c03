"""One heartbeat timer for every session of a server.

A timer handle per session costs about 250 bytes and one heap entry each; at tens of thousands of idle
connections that is a good part of what an idle connection costs. The wheel keeps, per tick of
``resolution`` seconds, the set of sessions due then, and one loop timer for the earliest tick. A
deadline is rounded *up* to its tick: a session is never pinged or closed early, and at most
``resolution`` late.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from typing import Protocol

__all__ = ["HeartbeatWheel"]


class _Due(Protocol):
    _beat: set[_Due] | None

    def heartbeat_due(self) -> None: ...


class HeartbeatWheel:
    """Calls ``item.heartbeat_due()`` once its deadline has passed. ``item._beat`` is the wheel's own
    bookkeeping (the set the item is in), so that rescheduling is O(1)."""

    __slots__ = ("_buckets", "_handle", "_handle_tick", "_loop", "_ticks", "resolution")

    def __init__(self, resolution: float = 0.025) -> None:
        self.resolution = resolution
        self._buckets: dict[int, set[_Due]] = {}
        self._ticks: list[int] = []  # a heap of the keys of _buckets
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._handle_tick = 0

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self._buckets.values())

    def schedule(self, item: _Due, delay: float) -> None:
        """Call ``item.heartbeat_due()`` in ``delay`` seconds (replacing what was scheduled for it)."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        old = item._beat
        if old is not None:
            old.discard(item)
        tick = math.ceil((loop.time() + delay) / self.resolution)
        bucket = self._buckets.get(tick)
        if bucket is None:
            bucket = self._buckets[tick] = set()
            heapq.heappush(self._ticks, tick)
            if self._handle is None or tick < self._handle_tick:
                self._arm(tick)
        bucket.add(item)
        item._beat = bucket

    def cancel(self, item: _Due) -> None:
        old = item._beat
        if old is not None:
            old.discard(item)
            item._beat = None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        for bucket in self._buckets.values():
            for item in bucket:
                item._beat = None
        self._buckets.clear()
        self._ticks.clear()

    def _arm(self, tick: int) -> None:
        assert self._loop is not None
        if self._handle is not None:
            self._handle.cancel()
        self._handle_tick = tick
        self._handle = self._loop.call_at(tick * self.resolution, self._fire)

    def _fire(self) -> None:
        self._handle = None
        assert self._loop is not None
        now = self._loop.time() + 0.001  # loops may fire a timer up to their clock's resolution early
        ticks = self._ticks
        buckets = self._buckets
        while ticks and ticks[0] * self.resolution <= now:
            bucket = buckets.pop(heapq.heappop(ticks))
            for item in list(bucket):
                if item._beat is bucket:
                    item._beat = None
                    item.heartbeat_due()
        while ticks and not buckets.get(ticks[0]):  # drop ticks whose sessions all moved on
            buckets.pop(heapq.heappop(ticks), None)
        if ticks:
            self._arm(ticks[0])
