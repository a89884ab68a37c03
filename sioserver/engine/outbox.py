"""What sessions owe their clients: the outbox items, the bound across all sessions, giving memory back.

Each session has an outbox (a deque, created on first use) of what it could not hand to its transport
yet: :class:`~sioserver.engine.transport.SharedPacket` references for broadcasts (one object however many
sessions owe it) and its own encoded packets. A WebSocket is fed from it only while the transport is
under its high-water mark; a long-polling GET takes all of it.

:class:`Backlogs` is the process-wide account: the bytes every outbox owes (``total``), bounded by
``max_buffered_bytes_total``. When an append takes the total over the bound, the slow-consumer policy is
applied to the sessions with the largest backlogs first until the total is back under three quarters of
the bound: ``"disconnect"`` closes them (reason ``slow consumer``), ``"drop"`` discards what they owe
and drops what comes next until they have caught up. Each application is logged and counted in
``stats`` (``slow_consumers`` / ``dropped_slow_consumer``, and ``backlog_bound_reached``).

After a large backlog is released the allocator is asked to give the memory back to the system
(``malloc_trim`` where glibc has it), at most once a second.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import sys
from base64 import b64encode
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..proto.engineio import SEPARATOR
from .transport import SharedPacket

if TYPE_CHECKING:
    from .session import Session

__all__ = ["Backlogs", "OutItem", "encode_items", "item_size", "release_memory"]

log = logging.getLogger("sioserver.engine")

#: an outbox entry: a shared MESSAGE, or one of the session's own packets as a WebSocket message
#: (``str``: the packet type and its data; ``bytes``: a binary MESSAGE)
OutItem = SharedPacket | str | bytes


def item_size(item: OutItem) -> int:
    return item.size if item.__class__ is SharedPacket else len(item)  # type: ignore[arg-type]


def encode_items(items: Sequence[OutItem]) -> str:
    """A long-polling response body: text packets as they are, binary ones as ``b`` + base64."""
    if len(items) == 1 and items[0].__class__ is str:  # mostly one packet is owed
        return items[0]
    parts = []
    for item in items:
        message = item.message if isinstance(item, SharedPacket) else item
        parts.append(message if isinstance(message, str) else "b" + b64encode(message).decode("ascii"))
    return SEPARATOR.join(parts)


class Backlogs:
    """The bytes owed by every session of one server, and the bound across them."""

    __slots__ = ("_trim_at", "_trim_handle", "backlogged", "limit", "logger", "stats", "total")

    def __init__(self, limit: int, stats: Counter[str], logger: logging.Logger = log) -> None:
        self.limit = limit
        self.stats = stats
        self.logger = logger
        self.total = 0
        #: the sessions whose outbox is not empty
        self.backlogged: set[Session] = set()
        self._trim_handle: asyncio.TimerHandle | None = None
        self._trim_at = 0.0

    def over(self) -> bool:
        return 0 < self.limit < self.total

    def relieve(self) -> None:
        """The total is over the bound: apply the slow-consumer policy to the largest backlogs first until
        the total is under three quarters of it."""
        target = self.limit * 3 // 4
        before = self.total
        count = 0
        self.stats["backlog_bound_reached"] += 1
        for session in sorted(self.backlogged, key=_owed, reverse=True):
            if self.total <= target:
                break
            count += 1
            session.slow_consumer(session.owed, "max_buffered_bytes_total", self.limit)
        self.logger.warning(
            "%d bytes owed to clients across all sessions (max_buffered_bytes_total=%d): slow-consumer policy "
            "applied to the %d largest backlogs, %d bytes owed now", before, self.limit, count, self.total,
        )
        self.released(before - self.total)

    def released(self, nbytes: int) -> None:
        """``nbytes`` of backlog were let go at once: give memory back soon if it was a lot."""
        if nbytes < 1 << 20 or self._trim_handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        delay = max(0.0, self._trim_at - loop.time())
        self._trim_handle = loop.call_later(delay, self._trim)

    def _trim(self) -> None:
        self._trim_handle = None
        self._trim_at = asyncio.get_running_loop().time() + 1.0
        if release_memory():
            self.stats["memory_trims"] += 1

    def close(self) -> None:
        if self._trim_handle is not None:
            self._trim_handle.cancel()
            self._trim_handle = None


def _owed(session: Session) -> int:
    return session.owed


_malloc_trim: Callable[[int], int] | None = None
if sys.platform.startswith("linux"):
    try:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _malloc_trim = _libc.malloc_trim  # glibc only; musl has none
        _malloc_trim.argtypes = [ctypes.c_size_t]
        _malloc_trim.restype = ctypes.c_int
    except (OSError, AttributeError):
        _malloc_trim = None


def release_memory() -> bool:
    """Ask the C allocator to return its free memory to the system; False where it cannot."""
    if _malloc_trim is None:
        return False
    _malloc_trim(0)
    return True
