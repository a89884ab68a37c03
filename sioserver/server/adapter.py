"""Where rooms live and how a broadcast reaches its sockets: the adapter interface and the in-memory one.

Every room operation and broadcast of a namespace goes through its adapter, so a multi-process adapter
(Redis) only overrides what crosses processes. The in-memory adapter keeps ``rooms`` (room -> sids)
and ``sids`` (sid -> rooms), both dicts of sets, so joins, leaves and lookups are O(1) per room.

An adapter is made by the server's ``adapter`` factory, called with the namespace
(:class:`~.protocols.AdapterNamespace`, everything an adapter may use of it); it reaches sockets as
:class:`~.protocols.Recipient` objects and awaits acks through :class:`~.protocols.AckHandler` ones.

A broadcast encodes its packet once (:class:`SharedMessage`) and hands the engine the same
:class:`~sioserver.engine.transport.SharedPacket` objects for every recipient: the engine frames each
once, writes the same frame bytes to every plain WebSocket, and keeps references (not copies) for the
clients that cannot take it yet.

Connection state recovery (:mod:`.recovery`): an adapter keeps what a client needs to come back after
a dropped transport. :meth:`Adapter.persist_session` and :meth:`Adapter.restore_session` are the
interface (the base class keeps nothing: no client recovers); :class:`MemoryAdapter` implements it in
this process with a bounded :class:`~.recovery.MemorySessionStore`, and gives every broadcast it keeps
an offset (:func:`~.recovery.offset_wanted`). A cluster adapter implements both across servers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..engine.transport import SharedPacket
from ..proto.socketio import Encoded, Packet
from .recovery import MemorySessionStore, PersistedSession, RestoredSession, encoded_size, offset_wanted, with_offset

if TYPE_CHECKING:
    from .observer import Observer
    from .protocols import AckHandler, AdapterNamespace, Recipient

__all__ = ["Adapter", "BroadcastOptions", "MemoryAdapter", "SharedMessage"]


@dataclass(frozen=True, slots=True)
class BroadcastOptions:
    """Who a broadcast reaches, and how. Immutable: operators make new ones."""

    rooms: frozenset[str] = frozenset()
    except_rooms: frozenset[str] = frozenset()
    volatile: bool = False
    compress: bool = True
    local: bool = False
    timeout: float | None = None
    flags: dict[str, Any] = field(default_factory=dict, compare=False)

    def but(self, **changes: Any) -> BroadcastOptions:
        return replace(self, **changes)


class SharedMessage:
    """One encoded Socket.IO packet for many recipients: its Engine.IO messages (``messages``, a packet
    with binary attachments has several) and the engine's shared form of each (``packets``)."""

    __slots__ = ("compress", "messages", "packets")

    def __init__(self, encoded: Encoded, compress: bool = True) -> None:
        self.messages = encoded
        #: False: never permessage-deflate (Node's ``compress(false)``), even on a compressing connection
        self.compress = compress
        self.packets = tuple(SharedPacket(m, compress) for m in encoded)


class Adapter:
    """The interface, implemented for one process. Subclasses add the other processes."""

    def __init__(self, namespace: AdapterNamespace) -> None:
        self.namespace = namespace
        self.rooms: dict[str, set[str]] = {}
        self.sids: dict[str, set[str]] = {}

    async def init(self) -> None:
        """Called once when the namespace is created."""

    async def close(self) -> None:
        """Called when the namespace or the server goes away."""

    # ---------------------------------------------------------------- rooms

    def add_all(self, sid: str, rooms: Iterable[str]) -> None:
        joined = self.sids.get(sid)
        if joined is None:
            joined = self.sids[sid] = set()
        observer = self.namespace.observer
        for room in rooms:
            if observer is not None and room not in joined:
                observer.room_joined(self.namespace, room, sid)
            joined.add(room)
            members = self.rooms.get(room)
            if members is None:
                self.rooms[room] = {sid}
            else:
                members.add(sid)

    def delete(self, sid: str, room: str) -> None:
        joined = self.sids.get(sid)
        if joined is not None:
            if room in joined:
                observer = self.namespace.observer
                if observer is not None:
                    observer.room_left(self.namespace, room, sid)
            joined.discard(room)
        members = self.rooms.get(room)
        if members is not None:
            members.discard(sid)
            if not members:
                del self.rooms[room]

    def delete_all(self, sid: str) -> None:
        joined = self.sids.pop(sid, None)
        if not joined:
            return
        observer = self.namespace.observer
        for room in joined:
            if observer is not None:
                observer.room_left(self.namespace, room, sid)
            members = self.rooms.get(room)
            if members is not None:
                members.discard(sid)
                if not members:
                    del self.rooms[room]

    def socket_rooms(self, sid: str) -> set[str] | None:
        return self.sids.get(sid)

    def sockets(self, rooms: Iterable[str] = ()) -> set[str]:
        return set(self._targets(BroadcastOptions(rooms=frozenset(rooms))))

    def _targets(self, opts: BroadcastOptions) -> Iterator[str]:
        """The sids a broadcast reaches in this process, each once."""
        excluded: set[str] = set()
        for room in opts.except_rooms:
            members = self.rooms.get(room)
            if members:
                excluded.update(members)
        if opts.rooms:
            if len(opts.rooms) == 1:
                (room,) = opts.rooms
                members = self.rooms.get(room)
                if members:
                    for sid in tuple(members):
                        if sid not in excluded:
                            yield sid
                return
            seen: set[str] = set()
            for room in opts.rooms:
                members = self.rooms.get(room)
                if members:
                    for sid in tuple(members):
                        if sid not in seen and sid not in excluded:
                            seen.add(sid)
                            yield sid
        else:
            for sid in tuple(self.sids):
                if sid not in excluded:
                    yield sid

    def _sockets(self, opts: BroadcastOptions) -> Iterator[Recipient]:
        sockets = self.namespace.sockets
        for sid in self._targets(opts):
            socket = sockets.get(sid)
            if socket is not None:
                yield socket

    # ----------------------------------------------------------- broadcasts

    def broadcast(self, packet: Packet, opts: BroadcastOptions) -> int:
        """Deliver to every local target; returns how many sockets it was written to."""
        return self.write_broadcast(packet, opts, SharedMessage(self.namespace.encode(packet), opts.compress))

    def write_broadcast(self, packet: Packet, opts: BroadcastOptions, shared: SharedMessage) -> int:
        """Write ``shared`` (``packet`` encoded) to every local target; how many sockets it reached."""
        observer = self.namespace.observer
        if observer is not None:
            return self._observed_broadcast(observer, shared, packet, opts)
        count = 0
        for socket in self._sockets(opts):
            socket.write_shared(shared, opts.volatile)
            count += 1
        return count

    def _observed_broadcast(self, observer: Observer, shared: SharedMessage, packet: Packet,
                            opts: BroadcastOptions) -> int:
        """A broadcast reported once (its packets times the recipients), not per recipient; the
        recipients' sids only to an observer that wants them (the Admin UI's event_sent)."""
        if observer.wants_recipients:
            sids = []
            for socket in self._sockets(opts):
                socket.write_shared(shared, opts.volatile)
                sids.append(socket.sid)
            count = len(sids)
            if sids:
                observer.event_sent(self.namespace, sids, packet.data)
        else:
            count = 0
            for socket in self._sockets(opts):
                socket.write_shared(shared, opts.volatile)
                count += 1
        if count:
            for message in shared.messages:
                observer.message_sent(message, count)
        return count

    def broadcast_with_ack(
        self,
        packet: Packet,
        opts: BroadcastOptions,
        client_count: Callable[[int], None],
        ack: AckHandler,
    ) -> None:
        """Deliver with one ack id for every target; ``client_count`` is told how many answers to await,
        ``ack`` gets each answer (or a ``fail`` for each target that leaves first)."""
        ack_id = self.namespace.next_ack_id()
        packet = Packet(packet.type, packet.nsp, packet.data, ack_id)
        shared = SharedMessage(self.namespace.encode(packet), opts.compress)
        sids = []
        for socket in self._sockets(opts):
            socket.expect_ack(ack_id, ack, opts.timeout)
            socket.write_shared(shared, opts.volatile)
            sids.append(socket.sid)
        observer = self.namespace.observer
        if observer is not None and sids:
            observer.event_sent(self.namespace, sids, packet.data)
            for message in shared.messages:
                observer.message_sent(message, len(sids))
        client_count(len(sids))

    # ------------------------------------------------------ cluster operations

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[Any]:
        """The targeted sockets: local :class:`~.protocols.Recipient` objects; a cluster adapter adds the
        other servers' as dicts ``{"id", "handshake", "rooms", "data"}`` (the operator wraps both as
        RemoteSocket)."""
        return list(self._sockets(opts))

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        for sid in list(self._targets(opts)):
            self.add_all(sid, rooms)

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        for sid in list(self._targets(opts)):
            for room in rooms:
                self.delete(sid, room)

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        for socket in list(self._sockets(opts)):
            socket.disconnect_from_server(close)

    async def server_side_emit(self, args: list[Any]) -> None:
        """Send ``[event, *args]`` to the other servers of the cluster: there are none in one process."""

    async def server_side_emit_with_ack(self, args: list[Any], timeout: float | None = None) -> list[Any]:
        """As :meth:`server_side_emit`, and return one answer per other server."""
        return []

    async def all_rooms(self) -> set[str]:
        """Every room of the namespace, on every server of the cluster."""
        return set(self.rooms)

    async def server_count(self) -> int:
        return 1

    # ------------------------------------------------ connection state recovery

    def persist_session(self, session: PersistedSession) -> None:
        """Keep ``session`` (a socket gone for a recoverable reason) for
        ``namespace.recovery.max_disconnection_duration`` seconds, where :meth:`restore_session` can
        find it by its pid (on any server of the cluster, for a cluster adapter). Called only when
        recovery is on. Never blocks: an adapter that stores remotely queues the write and logs a failure.
        The base adapter keeps nothing."""

    @property
    def holds_sessions(self) -> bool:
        """Whether this process keeps sessions of this namespace that clients may come back to (a dynamic
        namespace is not removed while it does). False when they are kept elsewhere (Redis)."""
        return False

    async def restore_session(self, pid: str, offset: str) -> RestoredSession | None:
        """The session persisted under ``pid``, with the broadcasts after ``offset`` that reach its rooms
        (``missed_packets``, their data arrays with their offsets, oldest first); ``None`` when the pid is
        unknown or expired, or when the packets after ``offset`` are no longer all held. A session is
        handed out at most once. The client's values are untrusted strings: check them. An exception
        counts as ``None`` (logged). The base adapter: always ``None``."""
        return None


class MemoryAdapter(Adapter):
    """The default adapter: one process, nothing to install.

    With connection state recovery on, it keeps sessions and broadcasts in a
    :class:`~.recovery.MemorySessionStore` (``self.store``) bounded by age, count and bytes, and
    appends each kept broadcast's offset to its arguments.
    """

    def __init__(self, namespace: AdapterNamespace) -> None:
        super().__init__(namespace)
        recovery = namespace.recovery
        self.store: MemorySessionStore | None = (None if recovery is None
                                                 else MemorySessionStore(recovery, namespace.stats))

    async def close(self) -> None:
        if self.store is not None:
            self.store.close()
        await super().close()

    def broadcast(self, packet: Packet, opts: BroadcastOptions) -> int:
        store = self.store
        if store is None or not offset_wanted(packet, opts):
            return super().broadcast(packet, opts)
        packet = with_offset(packet, store.next_offset)
        shared = SharedMessage(self.namespace.encode(packet), opts.compress)
        store.keep(packet.data, opts, encoded_size(shared.messages))
        return self.write_broadcast(packet, opts, shared)

    def persist_session(self, session: PersistedSession) -> None:
        if self.store is not None:
            self.store.persist(session)

    @property
    def holds_sessions(self) -> bool:
        store = self.store
        if store is None:
            return False
        store.prune()
        return bool(store.sessions)

    async def restore_session(self, pid: str, offset: str) -> RestoredSession | None:
        return None if self.store is None else self.store.restore(pid, offset)
