"""One namespace on the client's side: whether it is connected, its acks, and what is buffered for it.

Emitting while disconnected
---------------------------
* Namespace connected: the packet is queued on the Engine.IO session at once (``emit`` only waits when
  more than a megabyte is queued there).
* Namespace not connected but *active* - its connect is in flight, or the connection dropped and the
  client is reconnecting: the packet is buffered, up to ``max_buffered_emits`` packets per namespace
  (default 100), and sent in order right after the namespace's next CONNECT succeeds, before its
  ``connect`` handler runs. One more raises :class:`~sioclient.exceptions.EmitBufferFullError` and
  nothing is queued. ``max_buffered_emits=0`` turns buffering off (every such emit raises).
* Namespace inactive - never connected, ``disconnect()`` called, the server disconnected or refused it,
  reconnection off or given up: :class:`~sioclient.exceptions.NotConnectedError`.
* A ``call()`` timeout covers its time in the buffer; a timed-out call leaves the buffer. When the
  client gives up (``disconnect()``, reconnection exhausted, namespace refused), buffered packets are
  dropped and their ``call()`` raises :class:`~sioclient.exceptions.DisconnectedError`.
* Acks still due when the connection drops can never come (ids belong to the server-side socket of the
  old session): a waiting ``call()`` raises DisconnectedError at once; an ``emit(callback=)`` callback
  is forgotten (logged at debug level). Buffered packets keep their acks.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sioserver.proto.socketio import Encoded

from .exceptions import DisconnectedError, EmitBufferFullError

__all__ = ["Ack", "ClientNamespace"]


@dataclass(slots=True)
class Ack:
    """What waits for the server's answer to one emit: a callback, or the future of a ``call()``."""

    callback: Callable[..., Any] | None
    future: asyncio.Future[list[Any]] | None


class ClientNamespace:
    """The client's side of one namespace (see the module docstring for its rules)."""

    __slots__ = ("acks", "active", "buffer", "connected", "logger", "name", "next_id", "sid", "waiter")

    def __init__(self, name: str, logger: logging.Logger) -> None:
        self.name = name
        self.logger = logger
        self.sid: str | None = None
        self.connected = False
        self.active = False  # should be connected: connecting, connected or reconnecting
        self.buffer: deque[tuple[int | None, Encoded]] = deque()
        self.acks: dict[int, Ack] = {}
        self.next_id = 0
        self.waiter: asyncio.Future[Any] | None = None  # the answer to our CONNECT

    # -- acks ----------------------------------------------------------------------------------------
    def add_ack(self, ack: Ack) -> int:
        """Register ``ack`` under the next id and return the id."""
        ack_id = self.next_id
        self.next_id += 1
        self.acks[ack_id] = ack
        return ack_id

    def take_ack(self, ack_id: int) -> Ack | None:
        """The ack waiting for answer ``ack_id`` (and forget it), or None for an unexpected answer."""
        return self.acks.pop(ack_id, None)

    def forget(self, ack_id: int) -> None:
        """A ``call()`` timed out: its ack goes, and its packet if it is still buffered."""
        self.acks.pop(ack_id, None)
        self.buffer = deque(entry for entry in self.buffer if entry[0] != ack_id)

    def fail_acks(self, reason: str) -> None:
        """Acks that were sent can never be answered now; buffered packets keep theirs."""
        buffered = {ack_id for ack_id, _ in self.buffer}
        for ack_id in [i for i in self.acks if i not in buffered]:
            entry = self.acks.pop(ack_id)
            if entry.future is not None:
                if not entry.future.done():
                    entry.future.set_exception(DisconnectedError(reason))
            else:
                self.logger.debug("ack %d on %s forgotten: %s", ack_id, self.name, reason)

    # -- the buffer ----------------------------------------------------------------------------------
    def buffer_emit(self, ack_id: int | None, encoded: Encoded, limit: int) -> None:
        """Keep a packet for the next CONNECT; EmitBufferFullError (and its ack dropped) past ``limit``."""
        if len(self.buffer) >= limit:
            if ack_id is not None:
                del self.acks[ack_id]
            raise EmitBufferFullError(
                f"namespace {self.name} is reconnecting and {len(self.buffer)} packets are buffered already"
            )
        self.buffer.append((ack_id, encoded))

    def drain_buffer(self) -> list[Encoded]:
        """The buffered packets, in order, to send now that the namespace is connected."""
        packets = [encoded for _, encoded in self.buffer]
        self.buffer.clear()
        return packets

    def drop_buffer(self, reason: str) -> None:
        """The client gave up on this namespace: buffered packets go, their ``call()`` fails."""
        for ack_id, _ in self.buffer:
            entry = self.acks.pop(ack_id, None) if ack_id is not None else None
            if entry is not None and entry.future is not None and not entry.future.done():
                entry.future.set_exception(DisconnectedError(reason))
        if self.buffer:
            self.logger.info("%d buffered packet(s) on %s dropped: %s", len(self.buffer), self.name, reason)
        self.buffer.clear()

    # -- state -------------------------------------------------------------------------------------
    def connected_as(self, sid: str) -> None:
        self.sid = sid
        self.connected = True

    def lost(self, reason: str, *, give_up: bool) -> bool:
        """The namespace is no longer connected: its sent acks fail; with ``give_up`` it becomes inactive
        and its buffer is dropped. Returns whether it was connected."""
        was_connected = self.connected
        self.connected = False
        self.sid = None
        self.fail_acks(reason)
        if give_up:
            self.active = False
            self.drop_buffer(reason)
        return was_connected

    def answer(self, outcome: Any) -> None:
        """Settle the wait for the answer to our CONNECT (True, the refusal's data, or an exception)."""
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(outcome)
