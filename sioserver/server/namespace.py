"""Namespaces: who handles what, and the sockets of each concrete namespace.

A :class:`Handlers` registry belongs to a namespace *spec*: an exact name (``"/chat"``), a regular
expression or a callable (dynamic namespaces, whose children are created on demand and removed when
their last socket leaves), or ``"*"`` (every namespace; its handlers receive the namespace name first,
as python-socketio's catch-all namespace handlers do). A :class:`Namespace` is one concrete name at
run time, with its sockets and its adapter.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import re
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..engine.session import DisconnectReason
from ..exceptions import ConnectionRefusedError
from ..proto.socketio import ACK, EVENT, Encoded, Packet, disconnect_packet
from . import eager
from .adapter import Adapter
from .protocols import ServerEventResponder
from .recovery import RECOVERABLE_REASONS, PersistedSession, RecoveryOptions, RestoredSession

if TYPE_CHECKING:
    from .client import Client
    from .observer import Observer
    from .server import AsyncServer
    from .socket import Socket

__all__ = ["AsyncNamespace", "Handlers", "Namespace", "NamespaceMatcher"]

log = logging.getLogger("sioserver.server")

Handler = Callable[..., Any]
#: seconds an adapter may take to look up a session to restore (a remote store); then the connection is new
RESTORE_TIMEOUT = 5.0
_no_restore = Adapter.restore_session
NamespaceMatcher = str | re.Pattern[str] | Callable[[str, Any], bool]


def _positional_count(fn: Handler) -> int:
    """How many positional arguments ``fn`` takes (a large number for ``*args``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 99
    count = 0
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            return 99
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


class Handlers:
    """The handlers, middlewares and options of one namespace spec."""

    __slots__ = ("any_incoming", "any_outgoing", "catch_all", "connect", "connect_args", "disconnect",
                 "disconnect_args", "disconnecting", "disconnecting_args", "dispatch", "events", "instance",
                 "matcher", "middlewares", "packet_middlewares", "prefix_namespace")

    def __init__(self, matcher: NamespaceMatcher) -> None:
        self.matcher = matcher
        self.events: dict[str, Handler] = {}
        self.catch_all: Handler | None = None
        self.connect: Handler | None = None
        self.connect_args = 0
        self.disconnect: Handler | None = None
        self.disconnect_args = 0
        self.middlewares: list[Handler] = []
        self.instance: AsyncNamespace | None = None
        self.prefix_namespace = matcher == "*"
        self.disconnecting: Handler | None = None
        self.disconnecting_args = 0
        # Node's per-socket features: socket.use(), onAny(), onAnyOutgoing()
        self.packet_middlewares: list[Handler] = []
        self.any_incoming: list[Handler] = []
        self.any_outgoing: list[Handler] = []
        self.dispatch: Handler | None = None  # an AsyncNamespace's own trigger_event

    def set(self, event: str, handler: Handler) -> None:
        extra = 1 if self.prefix_namespace else 0
        if event == "connect":
            self.connect = handler
            self.connect_args = _positional_count(handler) - extra
        elif event == "disconnect":
            self.disconnect = handler
            self.disconnect_args = _positional_count(handler) - extra
        elif event == "disconnecting":
            self.disconnecting = handler
            self.disconnecting_args = _positional_count(handler) - extra
        elif event == "*":
            self.catch_all = handler
        else:
            self.events[event] = handler

    def matches(self, name: str, auth: Any) -> bool:
        matcher = self.matcher
        if isinstance(matcher, str):
            return matcher in ("*", name)
        if isinstance(matcher, re.Pattern):
            return matcher.fullmatch(name) is not None
        return bool(matcher(name, auth))

    def lookup(self, event: str) -> Handler | None:
        handler = self.events.get(event)
        if handler is None and self.dispatch is not None:
            return functools.partial(self.dispatch, event)
        if handler is None and self.instance is not None:
            handler = getattr(self.instance, "on_" + event, None) if isinstance(event, str) else None
            if handler is not None:
                self.events[event] = handler
        return handler


class Namespace:
    """One concrete namespace at run time: its sockets, its adapter and its handlers.

    What its adapter may use of it is declared by :class:`~.protocols.AdapterNamespace`.
    """

    def __init__(self, server: AsyncServer, name: str, handlers: Handlers, dynamic: bool) -> None:
        self.server = server
        self.name = name
        self.handlers = handlers
        self.dynamic = dynamic
        self.sockets: dict[str, Socket] = {}
        self.departing: dict[str, Socket] = {}  # gone, while their disconnect handlers run
        self._running_handlers: dict[str, int] = {}
        self._failed = self._handler_failed  # (one bound method, not one per event)
        self._linger: asyncio.TimerHandle | None = None  # a dynamic namespace kept for its sessions
        self._ack_ids = 0
        self.encode: Callable[[Packet], Encoded] = server.parser.encode
        #: connection state recovery (:mod:`.recovery`), or None
        self.recovery: RecoveryOptions | None = server.recovery
        self.adapter: Adapter = server.adapter_factory(self)
        if self.recovery is not None and type(self.adapter).restore_session is _no_restore:
            log.warning("connection_state_recovery is on, but the adapter of %s (%s) keeps no sessions: "
                        "no client of it will recover", name, type(self.adapter).__name__)

    def __repr__(self) -> str:
        return f"<Namespace {self.name} ({len(self.sockets)} sockets)>"

    def next_ack_id(self) -> int:
        self._ack_ids += 1
        return self._ack_ids

    @property
    def ack_timeout(self) -> float:
        return self.server.ack_timeout

    @property
    def observer(self) -> Observer | None:
        return self.server.observer

    @property
    def stats(self) -> Counter[str]:
        return self.server.stats

    def start_background_task(self, target: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        return self.server.start_background_task(target, *args)

    def server_side_event(self, data: list[Any], respond: ServerEventResponder | None) -> None:
        """``[event, *args]`` from another server: its handler (``sio.on_server_event``) runs in a task;
        ``respond(answer)`` follows, with ``None`` when the handler fails or there is none (a Node
        peer waits for an answer from every server)."""
        server = self.server
        name = self.name

        async def run() -> None:
            answer = None
            try:
                answer = await server._server_event(name, data)
            except Exception:
                log.exception("server-side event %r in %s: the handler failed", data[0] if data else None, name)
            if respond is not None:
                respond(answer)

        server.start_background_task(run)

    def _prefix(self) -> tuple[Any, ...]:
        return (self.name,) if self.handlers.prefix_namespace else ()

    # -------------------------------------------------------------- connect

    def connect(self, client: Client, packet: Packet) -> None:
        from .socket import Socket  # noqa: PLC0415 - socket imports this module

        socket = Socket(self, client, client.socket_id(self.name), packet.data)
        client.sockets[self.name] = socket
        if client.connect_timer is not None:
            client.connect_timer.cancel()
            client.connect_timer = None
        auth = packet.data
        if self.recovery is not None and client.protocol == 5 and isinstance(auth, dict):
            pid, offset = auth.get("pid"), auth.get("offset")
            if isinstance(pid, str) and isinstance(offset, str):
                # the socket is registered with the client (a second CONNECT is a violation) but not
                # in the namespace until the adapter answers (a Redis one awaits)
                eager.run(self._restore(socket, pid, offset), None, lambda exc: self._connect_failed(socket, exc))
                return
        self._admit(socket, None)

    async def _restore(self, socket: Socket, pid: str, offset: str) -> None:
        session = None
        try:
            async with asyncio.timeout(RESTORE_TIMEOUT):
                session = await self.adapter.restore_session(pid, offset)
        except Exception as exc:  # TimeoutError included: a new session rather than a client left waiting
            log.info("cannot restore session of %s: %r; a new session", self.name, exc,
                     extra={"namespace": self.name, "reason": "recovery failed"})
        if socket.disconnected:  # the client left while the adapter looked: keep the session for the next try
            if session is not None:
                self.adapter.persist_session(PersistedSession(session.sid, session.pid, session.rooms, session.data))
            return
        if session is not None and session.sid in self.sockets:
            session = None  # that sid is connected (the old connection is not closed yet): a new session
        self._admit(socket, session)

    def _admit(self, socket: Socket, session: RestoredSession | None) -> None:
        """Enter the namespace (with what a restored session brings back), then middlewares and the
        connect handler; the missed packets are held and follow the CONNECT reply."""
        rooms: list[str] = []
        if session is not None:
            socket.sid = session.sid
            socket.pid = session.pid
            socket.recovered = True
            if isinstance(session.data, dict):
                socket.session = session.data
            rooms = [room for room in session.rooms if room != session.sid]
            held = socket._held
            if held is not None:
                for data in session.missed_packets:
                    try:
                        held.append(self.encode(Packet(EVENT, self.name, data)))
                    except (TypeError, ValueError) as exc:
                        log.error("cannot replay a missed packet to %s: %s", session.sid, exc)
        elif self.recovery is not None and socket.client.protocol == 5:  # v2 clients cannot recover
            socket.pid = secrets.token_urlsafe(15)
        sid = socket.sid
        self.sockets[sid] = socket
        self.adapter.add_all(sid, (sid, *rooms))
        eager.run(self._run_connect(socket), None, lambda exc: self._connect_failed(socket, exc))

    async def _run_connect(self, socket: Socket) -> None:
        handlers = self.handlers
        environ = socket.environ
        auth = socket.auth
        skip = socket.recovered and self.recovery is not None and self.recovery.skip_middlewares
        try:
            for middleware in () if skip else list(handlers.middlewares):
                result = middleware(socket.sid, environ, auth)
                if inspect.isawaitable(result):
                    result = await result
                if result is False:
                    raise ConnectionRefusedError()
            if self.server.always_connect:
                socket.accept()
            result = True
            if handlers.connect is not None:
                args: tuple[Any, ...] = (*self._prefix(), socket.sid, environ)
                if handlers.connect_args >= 3:
                    args = (*args, auth)
                result = handlers.connect(*args)
                if inspect.isawaitable(result):
                    result = await result
            if result is False:
                raise ConnectionRefusedError()
        except ConnectionRefusedError as exc:
            self._reject(socket, exc.message, exc.data)
            return
        if socket.disconnected:
            # the client went away while the connect handler ran: it was accepted, so it is told
            self._run_disconnect(socket, socket.close_reason or DisconnectReason.TRANSPORT_CLOSE)
            return
        if not socket.connected:
            socket.accept()
        self.server.stats["connects"] += 1

    def _connect_failed(self, socket: Socket, exc: BaseException) -> None:
        log.error("connect handler for %s failed: %r", self.name, exc, exc_info=exc)
        self._reject(socket, "Connection rejected by server", None)

    def _reject(self, socket: Socket, message: str, data: Any) -> None:
        self.server.stats["connects_refused"] += 1
        log.info("connection to %s refused: %s", self.name, message,
                 extra={"sid": socket.sid, "namespace": self.name, "reason": str(message)[:200]})
        client = socket.client
        was_connected = socket.connected
        socket.connected = False
        socket.disconnected = True
        socket._held = None
        self.sockets.pop(socket.sid, None)
        self.adapter.delete_all(socket.sid)
        client.sockets.pop(self.name, None)
        if was_connected:  # always_connect: the client was told it is in, so it is told it is out
            client.write(self.encode(disconnect_packet(self.name)), False)
            observer = self.server.observer
            if observer is not None:
                observer.socket_disconnected(socket, DisconnectReason.SERVER_DISCONNECT)
        else:
            client.refuse(self.name, message, data)
        client.socket_removed()
        self._cleanup()

    # ---------------------------------------------------------------- events

    def dispatch_event(self, socket: Socket, packet: Packet) -> None:
        handlers = self.handlers
        if self.server.event_logger is not None:
            self.server.event_logger.info('received event "%s" from %s [%s]', str(packet.data[0])[:100],
                                          socket.sid, self.name)
        if handlers.any_incoming:
            data = packet.data
            for listener in list(handlers.any_incoming):  # Node's onAny(): every event, before its handler
                eager.call(listener, (socket.sid, *data), None, self._handler_failed)
        if handlers.packet_middlewares:
            eager.run(self._through_middlewares(socket, packet), None, self._handler_failed)
            return
        self._dispatch(socket, packet)

    async def _through_middlewares(self, socket: Socket, packet: Packet) -> None:
        """Node's ``socket.use()``: each middleware sees ``(sid, event, args)`` (``args`` may be changed
        in place); returning False or raising drops the packet (an exception is logged)."""
        data = packet.data
        args = data[1:]
        for middleware in list(self.handlers.packet_middlewares):
            try:
                result = middleware(socket.sid, data[0], args)
                if inspect.isawaitable(result):
                    result = await result
            except Exception as exc:
                log.info("packet middleware of %s refused %r from %s: %r", self.name, data[0], socket.sid, exc)
                return
            if result is False:
                log.debug("packet middleware of %s dropped %r from %s", self.name, data[0], socket.sid)
                return
        if socket.connected:
            self._dispatch(socket, Packet(packet.type, packet.nsp, [data[0], *args], packet.id))

    def notify_outgoing(self, sids: Any, event: str, args: list[Any]) -> None:
        """Node's ``onAnyOutgoing()``: ``listener(sid, event, *args)`` for each recipient here."""
        for sid in sids:
            for listener in list(self.handlers.any_outgoing):
                eager.call(listener, (sid, event, *args), None, self._handler_failed)

    def _dispatch(self, socket: Socket, packet: Packet) -> None:
        data = packet.data
        event = data[0]
        observer = self.server.observer_events
        if observer is not None:
            observer.event_received(socket, data)
        handlers = self.handlers
        handler = handlers.events.get(event) or handlers.lookup(event)
        if handler is not None:
            args = (*self._prefix(), socket.sid, *data[1:]) if handlers.prefix_namespace else (socket.sid, *data[1:])
        elif handlers.catch_all is not None:
            handler = handlers.catch_all
            args = (event, *self._prefix(), socket.sid, *data[1:])
        else:
            log.debug("no handler for event %r in %s", event, self.name)
            return
        ack_id = packet.id
        done = None if ack_id is None else functools.partial(_send_ack, socket, ack_id)
        server = self.server
        task = eager.call(handler, args, done, self._failed, server._handler_tasks)
        if task is not None and not server.async_handlers:
            socket.client.wait_for(task)

    def _handler_failed(self, exc: BaseException) -> None:
        log.error("event handler in %s failed: %r", self.name, exc, exc_info=exc)

    # ------------------------------------------------------------ disconnect

    def remove(self, socket: Socket, reason: DisconnectReason, was_connected: bool) -> None:
        """The socket is gone. ``disconnecting`` handlers run while it is still in its rooms (Node's
        event of that name); then it leaves them, and ``disconnect`` handlers run. Until both have
        finished, ``get_session``, ``rooms`` and ``get_environ`` still answer for it."""
        sid = socket.sid
        socket.close_reason = reason
        socket.left_rooms = set(self.adapter.socket_rooms(sid) or ())
        handlers = self.handlers
        if was_connected and handlers.disconnecting is not None:
            self._run_handler(socket, handlers.disconnecting, handlers.disconnecting_args, reason)
        if was_connected and socket.pid is not None and reason in RECOVERABLE_REASONS:
            rooms = self.adapter.socket_rooms(sid) or ()
            self.adapter.persist_session(PersistedSession(sid, socket.pid, [sid, *(r for r in rooms if r != sid)],
                                                          socket.session))
        self.sockets.pop(sid, None)
        self.adapter.delete_all(sid)
        if was_connected:
            observer = self.server.observer
            if observer is not None:
                observer.socket_disconnected(socket, reason)
            self._run_disconnect(socket, reason)
        self._cleanup()

    def _run_disconnect(self, socket: Socket, reason: DisconnectReason) -> None:
        handler = self.handlers.disconnect
        if handler is not None:
            self._run_handler(socket, handler, self.handlers.disconnect_args, reason)

    def _run_handler(self, socket: Socket, handler: Handler, positional: int, reason: DisconnectReason) -> None:
        args: tuple[Any, ...] = (*self._prefix(), socket.sid)
        if positional >= 2:
            args = (*args, reason.value)
        sid = socket.sid
        self.departing[sid] = socket
        running = self._running_handlers
        running[sid] = running.get(sid, 0) + 1

        def finished(_: Any = None) -> None:
            left = running.get(sid, 1) - 1
            if left > 0:
                running[sid] = left
            else:
                running.pop(sid, None)
                if self.departing.get(sid) is socket:
                    del self.departing[sid]

        def failed(exc: BaseException) -> None:
            finished()
            self._handler_failed(exc)

        eager.call(handler, args, finished, failed)

    def _cleanup(self) -> None:
        if self.dynamic and not self.sockets:
            recovery = self.recovery
            if recovery is not None and self.adapter.holds_sessions:
                # kept while clients may come back to it; looked at again once their window has passed
                if self._linger is None:
                    self._linger = asyncio.get_running_loop().call_later(
                        recovery.max_disconnection_duration + 0.5, self._lingered)
                return
            self.server.remove_namespace(self)

    def _lingered(self) -> None:
        self._linger = None
        self._cleanup()


_tuple_new = tuple.__new__


def _send_ack(socket: Socket, ack_id: int, result: Any) -> None:
    """Send a handler's return value as the ack (a tuple gives several arguments); a handler's ``done``
    is ``partial(_send_ack, socket, ack_id)`` (made in C, cheaper than an object of ours)."""
    if socket.disconnected:
        return
    try:
        # Packet(ACK, nsp, args, id) without the NamedTuple's Python-level __new__
        namespace = socket.namespace
        args = list(result) if isinstance(result, tuple) else [] if result is None else [result]  # (args_of)
        encoded = namespace.encode(_tuple_new(Packet, (ACK, namespace.name, args, ack_id, 0)))
        if socket._held is not None:  # (socket.write)
            socket._held.append(encoded)
            return
        client = socket.client
        if len(encoded) == 1 and client.server.tap_sent is None:  # (client.write: one text message)
            client.session.send(encoded[0])
        else:
            client.write(encoded, False)
    except (TypeError, ValueError) as exc:
        log.error("cannot send the ack of %s: %s", socket.sid, exc)


class AsyncNamespace:
    """Class-based handlers: ``on_<event>`` methods, registered with ``sio.register_namespace(ns)``.

    The helper methods act on this namespace by default.
    """

    def __init__(self, namespace: str | None = None) -> None:
        self.namespace = namespace or "/"
        self.server: AsyncServer | None = None

    def _set_server(self, server: AsyncServer) -> None:
        self.server = server

    async def trigger_event(self, event: str, *args: Any) -> Any:
        """Run the ``on_<event>`` method (python-socketio's dispatcher). Override it to see every event
        of this namespace, ``connect`` and ``disconnect`` included; its return value is the ack."""
        handler = getattr(self, "on_" + event, None)
        if handler is None:
            return None
        if event in ("connect", "disconnect", "disconnecting"):
            args = args[:_positional_count(handler)]  # (sid, environ[, auth]), (sid[, reason])
        result = handler(*args)
        if inspect.isawaitable(result):
            result = await result
        return result

    @property
    def _sio(self) -> AsyncServer:
        if self.server is None:
            raise RuntimeError("this namespace is not registered with a server")
        return self.server

    async def emit(self, event: str, data: Any = None, to: str | None = None, room: str | None = None,
                   skip_sid: Any = None, namespace: str | None = None, callback: Handler | None = None,
                   **kwargs: Any) -> None:
        await self._sio.emit(event, data, to=to, room=room, skip_sid=skip_sid,
                             namespace=namespace or self.namespace, callback=callback, **kwargs)

    async def send(self, data: Any, to: str | None = None, room: str | None = None, skip_sid: Any = None,
                   namespace: str | None = None, callback: Handler | None = None, **kwargs: Any) -> None:
        await self._sio.send(data, to=to, room=room, skip_sid=skip_sid,
                             namespace=namespace or self.namespace, callback=callback, **kwargs)

    async def call(self, event: str, data: Any = None, to: str | None = None, sid: str | None = None,
                   namespace: str | None = None, timeout: float = 60, ignore_queue: bool = False) -> Any:
        return await self._sio.call(event, data, to=to, sid=sid, namespace=namespace or self.namespace,
                                    timeout=timeout, ignore_queue=ignore_queue)

    def get_environ(self, sid: str, namespace: str | None = None) -> dict[str, Any] | None:
        return self._sio.get_environ(sid, namespace=namespace or self.namespace)

    async def enter_room(self, sid: str, room: str, namespace: str | None = None) -> None:
        await self._sio.enter_room(sid, room, namespace=namespace or self.namespace)

    async def leave_room(self, sid: str, room: str, namespace: str | None = None) -> None:
        await self._sio.leave_room(sid, room, namespace=namespace or self.namespace)

    async def close_room(self, room: str, namespace: str | None = None) -> None:
        await self._sio.close_room(room, namespace=namespace or self.namespace)

    def rooms(self, sid: str, namespace: str | None = None) -> list[str]:
        return self._sio.rooms(sid, namespace=namespace or self.namespace)

    async def get_session(self, sid: str, namespace: str | None = None) -> dict[str, Any]:
        return await self._sio.get_session(sid, namespace=namespace or self.namespace)

    async def save_session(self, sid: str, session: dict[str, Any], namespace: str | None = None) -> None:
        await self._sio.save_session(sid, session, namespace=namespace or self.namespace)

    def session(self, sid: str, namespace: str | None = None) -> Any:
        return self._sio.session(sid, namespace=namespace or self.namespace)

    async def disconnect(self, sid: str, namespace: str | None = None) -> None:
        await self._sio.disconnect(sid, namespace=namespace or self.namespace)
