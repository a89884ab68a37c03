"""python-socketio's names on the server that sioserver keeps so that its apps port by changing the import:
``sio.manager`` (``get_participants``, ``is_connected``, ``get_rooms``, ``rooms``...), ``sio.environ``,
``sio.reserved_events``.

These are views over sioserver's own state (namespaces, sockets, adapters): nothing is stored twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from ..engine.session import DisconnectReason
from ..exceptions import UnknownSidError
from .adapter import MemoryAdapter
from .client import Client

if TYPE_CHECKING:
    from .adapter import BroadcastOptions
    from .namespace import Handlers, Namespace, NamespaceMatcher
    from .server import AsyncServer
    from .socket import Socket

__all__ = ["RESERVED_EVENTS", "EnvironView", "Manager", "ServerCompat"]

H = TypeVar("H", bound=Callable[..., Any])

#: event names a client may not emit (Socket.IO v5) and handlers python-socketio reserves
RESERVED_EVENTS = ("connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener")


class ServerCompat:
    """The part of :class:`~sioserver.AsyncServer` that is python-socketio's API (``get_environ``) and
    Node's per-socket features (``socket.use()``, ``onAny()``, ``onAnyOutgoing()``), per namespace."""

    reason = DisconnectReason
    reserved_events = list(RESERVED_EVENTS)

    if TYPE_CHECKING:
        _namespaces: dict[str, Namespace]
        adapter_factory: Callable[[Namespace], Any]

        def _cluster_namespace(self, name: str) -> Namespace | None: ...

        def _handlers(self, namespace: NamespaceMatcher | None) -> Handlers: ...

        def _socket(self, sid: str, namespace: str | None) -> Socket: ...

    def get_environ(self, sid: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The WSGI-style environ of ``sid``'s connection (None for an unknown sid, as python-socketio)."""
        try:
            return self._socket(sid, namespace).environ
        except UnknownSidError:
            return None

    def rooms(self, sid: str, namespace: str | None = None) -> list[str]:
        """The rooms of ``sid`` (its own included); ``[]`` for an unknown sid, as python-socketio."""
        try:
            return sorted(self._socket(sid, namespace).rooms)
        except UnknownSidError:
            return []

    def recovered(self, sid: str, namespace: str | None = None) -> bool:
        """Whether ``sid``'s connection got back its sid, rooms and session data after a dropped transport
        (connection state recovery; Node's ``socket.recovered``): true inside its connect handler, which
        then may skip what the first connect did. :class:`~sioserver.UnknownSidError` for an unknown sid."""
        return self._socket(sid, namespace).recovered

    async def get_session(self, sid: str, namespace: str | None = None) -> dict[str, Any]:
        return self._socket(sid, namespace).session

    async def save_session(self, sid: str, session: dict[str, Any], namespace: str | None = None) -> None:
        self._socket(sid, namespace).session = session

    @contextlib.asynccontextmanager
    async def session(self, sid: str, namespace: str | None = None) -> AsyncIterator[dict[str, Any]]:
        """``async with sio.session(sid) as session:`` edits and saves the user session."""
        session = await self.get_session(sid, namespace)
        yield session
        await self.save_session(sid, session, namespace)

    def _elsewhere(self, sid: str, namespace: str | None) -> Namespace | None:
        """With a multi-process adapter, the namespace through which to reach ``sid`` when it is not a
        client of this server (another server may hold it); None otherwise."""
        nsp = self._namespaces.get(namespace or "/")
        if nsp is not None and (sid in nsp.sockets or sid in nsp.departing):
            return None
        return None if self.adapter_factory is MemoryAdapter else self._cluster_namespace(namespace or "/")

    def _remote_callbacks(self, sid: str, namespace: str | None) -> Callable[..., None] | None:
        """``emit_with_callback`` of the adapter when ``sid`` is not a client here and the adapter can
        reach another server's client with a callback (python-socketio's channel format can)."""
        remote = self._elsewhere(sid, namespace)
        return None if remote is None else getattr(remote.adapter, "emit_with_callback", None)

    def _find_socket(self, sid: str) -> Socket | None:
        for nsp in self._namespaces.values():
            socket = nsp.sockets.get(sid) or nsp.departing.get(sid)
            if socket is not None:
                return socket
        return None

    @staticmethod
    def _local_targets(nsp: Namespace, opts: BroadcastOptions) -> set[str]:
        """The sids of this server a broadcast with ``opts`` reaches."""
        targets = nsp.adapter.sockets(opts.rooms)
        if opts.except_rooms:
            targets -= nsp.adapter.sockets(opts.except_rooms)
        return targets

    def use_packets(self, middleware: H | None = None, namespace: NamespaceMatcher | None = None) -> Any:
        """Node's ``socket.use()``: ``middleware(sid, event, args)`` (sync or async) sees every event a
        client of ``namespace`` sends, before any handler; ``args`` is the argument list, which it may
        change in place. Returning ``False`` or raising drops the event (no handler, no ack); an
        exception is logged. Middlewares run in the order registered. ``@sio.use_packets`` works too."""
        def register(fn: H) -> H:
            self._handlers(namespace).packet_middlewares.append(fn)
            return fn

        return register if middleware is None else register(middleware)

    def on_any(self, listener: H | None = None, namespace: NamespaceMatcher | None = None) -> Any:
        """Node's ``onAny()``: ``listener(sid, event, *args)`` for every event a client sends, whatever
        handlers exist (python-socketio's ``"*"`` handler still gets only the events without one)."""
        def register(fn: H) -> H:
            self._handlers(namespace).any_incoming.append(fn)
            return fn

        return register if listener is None else register(listener)

    def on_any_outgoing(self, listener: H | None = None, namespace: NamespaceMatcher | None = None) -> Any:
        """Node's ``onAnyOutgoing()``: ``listener(sid, event, *args)`` for every event sent to a client
        of ``namespace`` on this server (emits, broadcasts, ``call``), once per recipient."""
        def register(fn: H) -> H:
            self._handlers(namespace).any_outgoing.append(fn)
            return fn

        return register if listener is None else register(listener)

class EnvironView(Mapping[str, dict[str, Any]]):
    """``sio.environ[sid]``: the WSGI-style environ of a connection, by Engine.IO sid (python-socketio's
    key) or by the sid of any of its namespace sockets."""

    def __init__(self, server: AsyncServer) -> None:
        self._server = server

    def __getitem__(self, sid: str) -> dict[str, Any]:
        session = self._server.eio.sessions.get(sid)
        if session is not None:
            return session.environ
        socket = self._server._find_socket(sid)
        if socket is None:
            raise KeyError(sid)
        return socket.environ

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._server.eio.sessions))

    def __len__(self) -> int:
        return len(self._server.eio.sessions)


class Manager:
    """``sio.manager``: python-socketio's client manager API over this server's namespaces and rooms
    (this server's clients only, as python-socketio's)."""

    def __init__(self, server: AsyncServer) -> None:
        self.server = server

    def get_namespaces(self) -> list[str]:
        return list(self.server._namespaces)

    def is_connected(self, sid: str, namespace: str | None = None) -> bool:
        nsp = self.server._namespaces.get(namespace or "/")
        socket = None if nsp is None else nsp.sockets.get(sid)
        return socket is not None and socket.connected and not socket.disconnected

    def get_participants(self, namespace: str | None, room: str | list[str] | None) -> Iterator[tuple[str, str]]:
        """``(sid, eio_sid)`` of every client of ``namespace`` in ``room`` (a list: in any of them)."""
        nsp = self.server._namespaces.get(namespace or "/")
        if nsp is None:
            return
        rooms = [room] if isinstance(room, str) or room is None else list(room)
        seen: set[str] = set()
        for name in rooms:
            sids = nsp.sockets if name is None else nsp.adapter.sockets((name,))
            for sid in list(sids):
                socket = nsp.sockets.get(sid)
                if socket is not None and sid not in seen:
                    seen.add(sid)
                    yield sid, socket.client.session.sid

    def get_rooms(self, sid: str, namespace: str | None = None) -> list[str]:
        return self.server.rooms(sid, namespace)

    def sid_from_eio_sid(self, eio_sid: str, namespace: str | None = None) -> str | None:
        session = self.server.eio.sessions.get(eio_sid)
        client = None if session is None else session.receiver
        socket: Socket | None = client.sockets.get(namespace or "/") if isinstance(client, Client) else None
        return None if socket is None else socket.sid

    def eio_sid_from_sid(self, sid: str, namespace: str | None = None) -> str | None:
        nsp = self.server._namespaces.get(namespace or "/")
        socket = None if nsp is None else nsp.sockets.get(sid)
        return None if socket is None else socket.client.session.sid

    @property
    def rooms(self) -> dict[str, dict[str, dict[str, str]]]:
        """``{namespace: {room: {sid: eio_sid}}}``, a snapshot (python-socketio's ``manager.rooms``)."""
        out: dict[str, dict[str, dict[str, str]]] = {}
        for name, nsp in self.server._namespaces.items():
            rooms: dict[str, dict[str, str]] = {}
            for sid, socket in nsp.sockets.items():
                for room in nsp.adapter.socket_rooms(sid) or ():
                    rooms.setdefault(room, {})[sid] = socket.client.session.sid
            out[name] = rooms
        return out
