"""Connection state recovery (Node's ``connectionStateRecovery``, socket.io 4.6+): what survives a
transport that drops for a moment, and what an adapter keeps so that nothing sent meanwhile is lost.

Theory of operation, as socket.io 4.8 and socket.io-adapter 2.5 do it on the wire:

1. With ``AsyncServer(connection_state_recovery={...})`` every socket gets a private session id,
   the ``pid``, sent once in its CONNECT reply: ``40{"sid":"..","pid":".."}``. It is never shown to
   other clients (``fetch_sockets()`` answers do not carry it).
2. Every *broadcast* EVENT (what goes through the adapter: ``sio.emit(...)``, ``sio.to(room).emit``,
   ``emit(to=sid)``) that has no ack and is not volatile gets an *offset*, a string appended as its
   last argument (``42["chat","hi","3"]``). The adapter assigns it and keeps the packet
   (:meth:`~.adapter.Adapter.broadcast`; :func:`offset_wanted` says which packets, :func:`with_offset`
   appends it). The JS client remembers the last offset it saw; its listeners see it as a last argument.
   A socket's own ``emit`` (``emit(to=sid, callback=...)``, ``call``) carries none, as in Node.
3. When a socket goes away for a reason in :data:`RECOVERABLE_REASONS` (the transport closed or
   failed, a ping timeout, a server shutdown: not a Socket.IO DISCONNECT from the client, nor a
   server-side ``disconnect``, nor a slow-consumer close), the server hands its adapter a :class:`PersistedSession`
   (``adapter.persist_session(session)``): sid, pid, rooms, and the session data (``socket.data``).
4. A client that reconnects sends ``{"pid": .., "offset": .., **auth}`` as its CONNECT payload. The
   server asks ``await adapter.restore_session(pid, offset)``; a :class:`RestoredSession` (the
   persisted session plus ``missed_packets``, the data arrays of the broadcasts after ``offset`` that
   reach the session's rooms, offsets included, in order) gives the socket back its sid, pid, rooms and
   data, and the missed packets follow the CONNECT reply. ``None`` (unknown or expired pid, an offset
   no longer held) or an exception makes it a new connection: new sid, new pid.

The in-memory part (:class:`MemorySessionStore`, used by :class:`~.adapter.MemoryAdapter`) keeps
sessions for ``max_disconnection_duration`` and broadcasts in a buffer bounded by that age, by
``max_packets`` and by ``max_bytes``; it counts what it holds and drops in the server's ``stats``.
A cluster adapter keeps them where the other servers can reach them (Redis Streams: the stream is the
buffer, the offset is the entry id) and implements the two methods itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..engine.session import DisconnectReason
from ..exceptions import ConfigurationError
from ..proto.socketio import EVENT, Encoded, Packet

if TYPE_CHECKING:
    from .adapter import BroadcastOptions

__all__ = [
    "RECOVERABLE_REASONS",
    "MemorySessionStore",
    "PersistedSession",
    "RecoveryOptions",
    "RestoredSession",
    "offset_wanted",
    "reaches",
    "with_offset",
]

log = logging.getLogger("sioserver.server")

#: The disconnect reasons after which a socket's session is kept (Node's RECOVERABLE_DISCONNECT_REASONS:
#: transport error, transport close, forced close, ping timeout, server shutting down). Not a slow consumer:
#: the replay of what it did not read would be over ``max_buffered_bytes`` again, and close it again, forever.
RECOVERABLE_REASONS = frozenset({
    DisconnectReason.TRANSPORT_CLOSE,
    DisconnectReason.TRANSPORT_ERROR,
    DisconnectReason.PING_TIMEOUT,
    DisconnectReason.SERVER_SHUTDOWN,
})


@dataclass(frozen=True, slots=True)
class RecoveryOptions:
    """``connection_state_recovery={...}`` (``True`` or ``{}``: every default).

    ``max_disconnection_duration`` (seconds, Node's default 2 minutes): how long a session and the
    broadcasts it may miss are kept. ``skip_middlewares``: a recovered socket does not go through the
    ``sio.use()`` middlewares again (its connect handler runs in any case, as Node's ``connection``
    event; ``sio.recovered(sid)`` tells it). ``max_packets`` / ``max_bytes``: the in-memory adapter's
    broadcast buffer never holds more (the oldest are dropped first; a client whose offset was dropped
    gets a new session). ``max_sessions``: the disconnected sessions held at once (the oldest go first).
    """

    max_disconnection_duration: float = 120.0
    skip_middlewares: bool = True
    max_packets: int = 10_000
    max_bytes: int = 16 * 1024 * 1024
    max_sessions: int = 100_000

    @classmethod
    def parse(cls, value: Any) -> RecoveryOptions | None:
        """The option as given to ``AsyncServer``: None/False (off), True, a dict, or RecoveryOptions."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            raise ConfigurationError(f"connection_state_recovery={value!r}: True, or a dict of "
                                     f"{', '.join(cls.__dataclass_fields__)}")
        unknown = set(value) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigurationError(f"connection_state_recovery: unknown key(s) {', '.join(sorted(unknown))}; "
                                     f"valid: {', '.join(cls.__dataclass_fields__)}")
        options = cls(**value)
        if not options.max_disconnection_duration > 0:
            raise ConfigurationError("connection_state_recovery: max_disconnection_duration must be > 0 (seconds)")
        for name in ("max_packets", "max_bytes", "max_sessions"):
            if int(getattr(options, name)) < 1:
                raise ConfigurationError(f"connection_state_recovery: {name} must be >= 1")
        return options


@dataclass(slots=True)
class PersistedSession:
    """What is kept of a socket that went away recoverably (Node's ``SessionToPersist``).

    ``rooms`` includes the socket's own sid room; ``data`` is its session (``socket.data`` in Node).
    A cluster adapter serializes these four fields as Node does (msgpack of ``{sid, pid, rooms, data}``).
    """

    sid: str
    pid: str
    rooms: list[str]
    data: Any


@dataclass(slots=True)
class RestoredSession(PersistedSession):
    """A persisted session found again, with ``missed_packets``: the data arrays (``[event, *args,
    offset]``) of the broadcasts after the client's offset that reach its rooms, oldest first
    (Node's ``Session``)."""

    missed_packets: list[list[Any]] = field(default_factory=list)


def offset_wanted(packet: Packet, opts: BroadcastOptions) -> bool:
    """Whether a broadcast gets an offset and is kept for recovery: an EVENT without ack, not volatile
    (socket.io-adapter's ``addOffsetIfNecessary``; an ack cannot be restored on another connection)."""
    return packet.type is EVENT and packet.id is None and not opts.volatile


def with_offset(packet: Packet, offset: str) -> Packet:
    """The packet with ``offset`` appended to its arguments (where the JS client looks for it)."""
    return packet._replace(data=[*packet.data, offset])


def reaches(rooms: Iterable[str], opts: BroadcastOptions) -> bool:
    """Whether a broadcast with ``opts`` reaches a socket in ``rooms`` (``shouldIncludePacket``)."""
    rooms = tuple(rooms)
    included = not opts.rooms or any(room in opts.rooms for room in rooms)
    return included and not any(room in opts.except_rooms for room in rooms)


def encoded_size(encoded: Encoded) -> int:
    """What a packet costs in the buffer: its encoded messages' lengths (characters and bytes)."""
    return sum(len(message) for message in encoded)


@dataclass(slots=True)
class _Kept:
    seq: int
    data: list[Any]
    opts: BroadcastOptions
    at: float
    size: int


@dataclass(slots=True)
class _Held:
    session: PersistedSession
    at: float


class MemorySessionStore:
    """Sessions and broadcasts of one namespace, in this process (socket.io-adapter's
    ``SessionAwareAdapter``), every part bounded.

    Offsets are the decimal sequence numbers of the kept broadcasts, so finding the client's place is
    arithmetic, not a search. A session is handed out once (restoring removes it, as the Redis Streams
    adapter's ``GETDEL``). Ages are on the monotonic clock. In ``stats`` (the server's counters, summed
    over namespaces): ``recovery_buffered_packets`` / ``recovery_buffered_bytes`` / ``recovery_sessions``
    (held now), ``recovery_packets_expired`` / ``recovery_packets_dropped`` (dropped for age / for the
    size bounds), ``recovery_sessions_persisted``, ``recovery_sessions_expired``, ``recovery_restored``,
    ``recovery_missed_packets`` (replayed), ``recovery_refused`` (an unknown or expired pid, or an offset
    no longer held).
    """

    def __init__(self, options: RecoveryOptions, stats: Counter[str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.options = options
        self.stats: Counter[str] = Counter() if stats is None else stats
        self.clock = clock
        self.sessions: dict[str, _Held] = {}  # by pid, oldest first
        self.packets: deque[_Kept] = deque()
        self.bytes = 0
        self.next_seq = 1
        self._timer: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------ broadcasts

    @property
    def next_offset(self) -> str:
        """The offset the next kept broadcast gets."""
        return str(self.next_seq)

    def keep(self, data: list[Any], opts: BroadcastOptions, size: int) -> None:
        """Keep a broadcast's data array, its offset (:attr:`next_offset`) already appended; ``size``:
        what it costs (its encoded length)."""
        seq = self.next_seq
        self.next_seq = seq + 1
        self.packets.append(_Kept(seq, data, opts, self.clock(), size))
        self.bytes += size
        stats = self.stats
        stats["recovery_buffered_packets"] += 1
        stats["recovery_buffered_bytes"] += size
        self._trim_size()
        self._arm()

    def _trim_size(self) -> None:
        packets = self.packets
        options = self.options
        dropped = 0
        while packets and (len(packets) > options.max_packets or self.bytes > options.max_bytes):
            self._drop_oldest()
            dropped += 1
        if dropped:
            self.stats["recovery_packets_dropped"] += dropped

    def _drop_oldest(self) -> None:
        kept = self.packets.popleft()
        self.bytes -= kept.size
        self.stats["recovery_buffered_packets"] -= 1
        self.stats["recovery_buffered_bytes"] -= kept.size

    # -------------------------------------------------------------- sessions

    def persist(self, session: PersistedSession) -> None:
        sessions = self.sessions
        stats = self.stats
        if sessions.pop(session.pid, None) is None:
            stats["recovery_sessions"] += 1
        sessions[session.pid] = _Held(session, self.clock())
        stats["recovery_sessions_persisted"] += 1
        while len(sessions) > self.options.max_sessions:
            del sessions[next(iter(sessions))]
            stats["recovery_sessions_expired"] += 1
            stats["recovery_sessions"] -= 1
        self._arm()

    def restore(self, pid: str, offset: str) -> RestoredSession | None:
        self.prune()
        held = self.sessions.pop(pid, None)
        if held is None:
            self.stats["recovery_refused"] += 1
            return None
        self.stats["recovery_sessions"] -= 1
        seq = int(offset) if offset.isdigit() and len(offset) < 20 else -1
        packets = self.packets
        first = packets[0].seq if packets else self.next_seq
        # every broadcast after ``seq`` must still be held: seq >= first - 1; a future offset is no offset
        if seq < first - 1 or seq >= self.next_seq:
            self.stats["recovery_refused"] += 1
            return None
        session = held.session
        rooms = session.rooms
        missed = [kept.data for kept in _after(packets, seq - first + 1) if reaches(rooms, kept.opts)]
        self.stats["recovery_restored"] += 1
        self.stats["recovery_missed_packets"] += len(missed)
        return RestoredSession(session.sid, session.pid, list(rooms), session.data, missed)

    # ---------------------------------------------------------------- ageing

    def prune(self) -> None:
        """Drop what is older than ``max_disconnection_duration``."""
        threshold = self.clock() - self.options.max_disconnection_duration
        sessions = self.sessions
        expired = 0
        while sessions:
            pid = next(iter(sessions))
            if sessions[pid].at >= threshold:
                break
            del sessions[pid]
            expired += 1
        if expired:
            self.stats["recovery_sessions_expired"] += expired
            self.stats["recovery_sessions"] -= expired
        packets = self.packets
        dropped = 0
        while packets and packets[0].at < threshold:
            self._drop_oldest()
            dropped += 1
        if dropped:
            self.stats["recovery_packets_expired"] += dropped

    def _arm(self) -> None:
        """A timer prunes while anything is held, so an idle namespace lets go of its buffer too."""
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        interval = max(0.25, min(60.0, self.options.max_disconnection_duration / 4))
        self._timer = loop.call_later(interval, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self.prune()
        if self.sessions or self.packets:
            self._arm()

    def close(self) -> None:
        """Let go of everything (the namespace or the server is gone)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        stats = self.stats
        stats["recovery_buffered_packets"] -= len(self.packets)
        stats["recovery_buffered_bytes"] -= self.bytes
        stats["recovery_sessions"] -= len(self.sessions)
        self.packets.clear()
        self.sessions.clear()
        self.bytes = 0


def _after(packets: deque[_Kept], start: int) -> Iterable[_Kept]:
    for index in range(max(start, 0), len(packets)):
        yield packets[index]
