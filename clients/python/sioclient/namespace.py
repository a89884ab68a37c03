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

Connection state recovery
-------------------------
With a server that recovers sessions (sioserver's ``connection_state_recovery``, Node's
``connectionStateRecovery``) the CONNECT reply carries a ``pid``. The namespace keeps it and the offset of
the last broadcast it received, and every reconnect sends ``{"pid", "offset", **auth}``, as the JS client
does; ``client.recovered`` (``is_recovered(namespace)``) tells whether the server gave the old session back
(same sid and rooms, the missed broadcasts replayed in order). As with the JS client, a broadcast's offset is
its last argument, so handlers of broadcast events get it (``def chat(msg, offset=None)``), and the last
string argument of any event is taken as the offset. Events that arrive before the CONNECT reply (a Node
server writes the missed ones first) are dispatched right after it, before the ``connect`` handler. A
Socket.IO DISCONNECT (``disconnect()``, or the server's) and a new ``connect()`` start a new session.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sioserver.proto.socketio import Encoded, Packet

from .exceptions import DisconnectedError, EmitBufferFullError

__all__ = ["Ack", "ClientNamespace"]

MAX_EARLY_EVENTS = 100_000


@dataclass(slots=True)
class Ack:
    """What waits for the server's answer to one emit: a callback, or the future of a ``call()``."""

    callback: Callable[..., Any] | None
    future: asyncio.Future[list[Any]] | None


class ClientNamespace:
    """The client's side of one namespace (see the module docstring for its rules)."""

    __slots__ = ("acks", "active", "buffer", "connected", "early", "logger", "name", "next_id", "offset", "pid",
                 "recovered", "sid", "waiter")

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
        # connection state recovery: the server's private session id, the offset of the last broadcast
        # received, whether the last CONNECT got the old session back, and the events that came before
        # the CONNECT reply (a Node server writes a recovered session's missed packets first)
        self.pid: str | None = None
        self.offset: str | None = None
        self.recovered = False
        self.early: list[Packet] = []

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
        self.early.clear()
        if give_up:  # a Socket.IO DISCONNECT (either side) ends the server's session for good
            self.active = False
            self.drop_buffer(reason)
            self.pid = self.offset = None
            self.recovered = False
        return was_connected

    def hold_early(self, packet: Packet) -> None:
        """An event before the CONNECT reply: dispatched right after it (bounded: a server sends at most
        its recovery buffer)."""
        if len(self.early) >= MAX_EARLY_EVENTS:
            self.logger.warning("more than %d events on %s before its CONNECT reply: %r dropped",
                                MAX_EARLY_EVENTS, self.name, packet.data[0] if packet.data else None)
            return
        self.early.append(packet)

    def recovery_auth(self, auth: dict[str, Any] | None) -> dict[str, Any] | None:
        """The CONNECT payload: ``{"pid", "offset", **auth}`` once the server gave a pid (as the JS client)."""
        if self.pid is None:
            return auth
        head: dict[str, Any] = {"pid": self.pid}
        if self.offset is not None:
            head["offset"] = self.offset
        return {**head, **(auth or {})}

    def connect_reply(self, sid: str, pid: Any) -> None:
        """The CONNECT reply: recovered when it carries the pid we sent."""
        pid = pid if isinstance(pid, str) else None
        self.recovered = pid is not None and pid == self.pid
        if not self.recovered:
            self.offset = None  # an offset of another session would bring back packets this one saw
        self.pid = pid
        self.connected_as(sid)

    def answer(self, outcome: Any) -> None:
        """Settle the wait for the answer to our CONNECT (True, the refusal's data, or an exception)."""
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(outcome)
