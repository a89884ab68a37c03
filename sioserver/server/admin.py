"""The server side of the official Socket.IO Admin UI (``@socket.io/admin-ui`` 0.5): ``sio.instrument()``.

The UI (https://admin.socket.io, or its static build from the npm package) is a Socket.IO client of
the admin namespace (``/admin``). It speaks this protocol, the one of the package's Node server:

- CONNECT with ``auth`` ``{"username", "password"}``, or ``{"sessionId"}`` when it has one; a refusal
  carries the message ``"invalid credentials"`` (the UI shows its login form again). After a login
  with a password the server sends ``session`` (an id the UI stores and offers next time).
- ``config`` ``{"supportedFeatures": [...]}``; in development mode ``all_sockets`` (every socket of
  every namespace, on every server of the cluster).
- ``server_stats`` every ``server_stats_interval`` seconds from every server: ``serverId``,
  ``hostname``, ``pid``, ``uptime``, ``clientsCount``, ``pollingClientsCount``, ``namespaces``
  (``name``, ``socketsCount``) and ``aggregatedEvents`` (per second: ``rawConnection``,
  ``rawDisconnection`` by reason, ``packetsIn``/``packetsOut``, ``bytesIn``/``bytesOut``).
- Development mode: ``socket_connected``, ``socket_updated`` (the transport after an upgrade),
  ``socket_disconnected``, ``room_joined``, ``room_left``, ``event_received``, ``event_sent``.
- Actions from the UI (unless ``read_only``): ``emit(nsp, filter, event, *args)``,
  ``join(nsp, room, filter)``, ``leave(nsp, room, filter)``, ``_disconnect(nsp, close, filter)``,
  where ``filter`` is a room (a socket's id for one socket) or nothing for the whole namespace;
  they act on every server through the adapter.

Every server of a cluster (Redis adapter) that calls ``instrument()`` broadcasts its events and
statistics in the admin namespace, so a UI connected to any of them sees all of them.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import json
import logging
import os
import secrets
import socket as _socket
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigurationError, ConnectionRefusedError
from .adapter import BroadcastOptions
from .client import Client
from .observer import Observer

if TYPE_CHECKING:
    from ..engine.session import DisconnectReason, Session
    from .protocols import AdapterNamespace
    from .server import AsyncServer
    from .socket import Socket

__all__ = ["AdminUI"]

log = logging.getLogger("sioserver.admin")

AdminAuth = dict[str, Any] | list[dict[str, Any]] | Callable[[Any], "bool | Awaitable[bool]"] | bool

#: the server-side event by which a server asks the others of the cluster for their sockets
_SOCKETS_REQUEST = "sioserver:admin:sockets"
#: how long a login session (the id the UI keeps) stays valid, and how many are kept
_SESSION_TTL = 24 * 3600.0
_MAX_SESSIONS = 10_000
_WRITE_FEATURES = ["EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT"]


def _iso_now() -> str:
    """Now, as JavaScript's ``new Date()`` goes on the wire: ``2026-12-02T16:20:00.123Z``."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


def _byte_length(data: str | bytes) -> int:
    """Node's ``Buffer.byteLength(data)``: UTF-8 bytes of a string."""
    if isinstance(data, str):
        return len(data) if data.isascii() else len(data.encode("utf-8", "surrogatepass"))
    return len(data)


def _jsonable(value: Any) -> Any:
    """A user's session as the UI can show it: unchanged if it is JSON, else with repr() of the rest."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return json.loads(json.dumps(value, default=repr, skipkeys=True))
    return value


class _EventBuffer:
    """Counts per (second, type, subType), as the Node server's EventBuffer; emptied by each stats."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[tuple[int, str, str | None], int] = {}

    def push(self, kind: str, sub_type: str | None = None, count: int = 1) -> None:
        key = (int(time.time()) * 1000, kind, sub_type)
        counts = self.counts
        counts[key] = counts.get(key, 0) + count

    def take(self) -> list[dict[str, Any]]:
        counts, self.counts = self.counts, {}
        values = []
        for (timestamp, kind, sub_type), count in counts.items():
            item: dict[str, Any] = {"timestamp": timestamp, "type": kind, "count": count}
            if sub_type is not None:
                item["subType"] = sub_type
            values.append(item)
        return values


class AdminUI(Observer):
    """The Admin UI's server side for one :class:`~sioserver.AsyncServer` (``sio.instrument()``)."""

    def __init__(self, sio: AsyncServer, *, auth: AdminAuth | None = None, mode: str = "development",
                 read_only: bool = False, server_id: str | None = None, namespace: str = "/admin",
                 server_stats_interval: float = 2) -> None:
        if auth is None:
            raise ConfigurationError(
                "instrument() needs auth: {'username': ..., 'password': ...}, a list of them, a callable "
                "(auth) -> bool, or auth=False to let anyone who reaches the server administer it")
        if auth is True or not (isinstance(auth, (dict, list)) or callable(auth) or auth is False):
            raise ConfigurationError(f"instrument(auth={auth!r}): expected a dict, a list of dicts, a callable "
                                     "or False")
        for entry in auth if isinstance(auth, list) else [auth] if isinstance(auth, dict) else []:
            if not isinstance(entry, dict) or not isinstance(entry.get("username"), str) \
                    or not isinstance(entry.get("password"), str):
                raise ConfigurationError("instrument(auth=...): each entry needs a 'username' and a 'password' string")
        if mode not in ("development", "production"):
            raise ConfigurationError(f"instrument(mode={mode!r}): 'development' or 'production'")
        if not isinstance(namespace, str) or not namespace.startswith("/"):
            raise ConfigurationError(f"instrument(namespace={namespace!r}) must start with '/'")
        if server_stats_interval <= 0:
            raise ConfigurationError("instrument(server_stats_interval=...) must be positive (seconds)")
        self.sio = sio
        self.auth = auth
        self.development = mode == "development"
        self.wants_recipients = self.development  # event_sent per recipient of a broadcast
        self.read_only = read_only
        self.server_id = server_id or f"{_socket.gethostname()}#{os.getpid()}"
        self.namespace = namespace
        self.server_stats_interval = float(server_stats_interval)
        features = [] if read_only else list(_WRITE_FEATURES)
        features.append("AGGREGATED_EVENTS")
        if self.development:
            features.append("ALL_EVENTS")
        self.features = features
        self._events = _EventBuffer()
        self._sessions: dict[str, float] = {}  # login session id -> expiry (monotonic)
        self._new_sessions: dict[str, str] = {}  # admin sid -> the session id to send it
        self._started = time.monotonic()
        self._stats_task: asyncio.Task[Any] | None = None

        sio.use(self._authenticate, namespace=namespace)
        sio.on("connect", self._on_connect, namespace=namespace)
        sio.on("disconnect", self._on_disconnect, namespace=namespace)
        if not read_only:
            sio.on("emit", self._emit_action, namespace=namespace)
            sio.on("join", self._join_action, namespace=namespace)
            sio.on("leave", self._leave_action, namespace=namespace)
            sio.on("_disconnect", self._disconnect_action, namespace=namespace)
        # registering a server-side event creates the namespace, so that its adapter listens at once
        sio.on_server_event(_SOCKETS_REQUEST, self.local_sockets, namespace=namespace)
        sio.observe(self)
        sio.when_running(self._start)

    def __repr__(self) -> str:
        return f"<AdminUI {self.namespace} server_id={self.server_id!r}>"

    # ------------------------------------------------------------------ authentication

    async def _authenticate(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        if self.auth is False:
            return
        given = auth if isinstance(auth, dict) else {}
        session_id = given.get("sessionId")
        if isinstance(session_id, str) and self._session_valid(session_id):
            return
        if "username" in given and await self._credentials_match(given):
            self._new_sessions[sid] = self._new_session()
            return
        log.info("Admin UI login refused from %s", environ.get("REMOTE_ADDR", "?"),
                 extra={"sid": sid, "namespace": self.namespace, "reason": "invalid credentials"})
        raise ConnectionRefusedError("invalid credentials")

    async def _credentials_match(self, given: dict[str, Any]) -> bool:
        auth = self.auth
        if isinstance(auth, dict):
            return _same_credentials(auth, given)
        if isinstance(auth, list):
            return any(_same_credentials(entry, given) for entry in auth)
        if callable(auth):
            result = auth(given)
            if inspect.isawaitable(result):
                result = await result
            return bool(result)
        return False

    def _new_session(self) -> str:
        now = time.monotonic()
        sessions = self._sessions
        if len(sessions) >= _MAX_SESSIONS:
            for key in [key for key, expiry in sessions.items() if expiry <= now] or [next(iter(sessions))]:
                del sessions[key]
        session_id = secrets.token_hex(16)
        sessions[session_id] = now + _SESSION_TTL
        return session_id

    def _session_valid(self, session_id: str) -> bool:
        expiry = self._sessions.get(session_id)
        if expiry is None:
            return False
        if expiry <= time.monotonic():
            del self._sessions[session_id]
            return False
        return True

    # ---------------------------------------------------------------- the UI's socket

    async def _on_connect(self, sid: str, environ: dict[str, Any]) -> None:
        socket = self.sio._socket(sid, self.namespace)
        session_id = self._new_sessions.pop(sid, None)
        if session_id is not None:
            socket.emit("session", [session_id])
        socket.emit("config", [{"supportedFeatures": self.features}])
        if self.development:
            self.sio.start_background_task(self._send_all_sockets, sid)

    def _on_disconnect(self, sid: str) -> None:
        self._new_sessions.pop(sid, None)

    async def _send_all_sockets(self, sid: str) -> None:
        sockets = self.local_sockets()
        try:
            answers = await self.sio.server_side_emit_with_ack(_SOCKETS_REQUEST, namespace=self.namespace)
        except TimeoutError as exc:  # some server did not answer: show the others
            answers = getattr(exc, "responses", None) or []
            log.warning("Admin UI: %s; listing the sockets of the servers that answered", exc)
        for answer in answers:
            if isinstance(answer, list):
                sockets.extend(item for item in answer if isinstance(item, dict))
        target = self.sio._namespaces.get(self.namespace)
        socket = None if target is None else target.sockets.get(sid)
        if socket is not None and socket.connected:
            socket.emit("all_sockets", [sockets])

    def local_sockets(self) -> list[dict[str, Any]]:
        """Every connected socket of this server, serialized as the UI expects."""
        return [self.serialize(socket) for nsp in list(self.sio._namespaces.values())
                for socket in list(nsp.sockets.values()) if socket.connected]

    def serialize(self, socket: Socket) -> dict[str, Any]:
        """A socket in the shape of the Node server's ``serialize()``."""
        handshake = dict(socket.handshake)
        handshake.pop("auth", None)  # credentials stay on the server, as in Node
        headers = handshake.get("headers") or {}
        handshake["address"] = headers.get("cf-connecting-ip") or headers.get("x-forwarded-for") \
            or handshake.get("address", "")
        session = socket.client.session
        sid = socket.sid
        return {
            "id": sid,
            "clientId": session.sid[:12],  # as Node: enough to group sockets, not enough to hijack
            "transport": session.transport,
            "nsp": socket.namespace.name,
            "data": _jsonable(socket.session),
            "handshake": handshake,
            "rooms": [sid, *sorted(room for room in socket.rooms if room != sid)],
        }

    # -------------------------------------------------------------------- actions

    def _operator(self, nsp: Any, room_filter: Any) -> Any:
        if not isinstance(nsp, str) or not nsp.startswith("/"):
            raise ValueError(f"namespace {nsp!r}")
        operator = self.sio.of(nsp)
        if room_filter:
            if not isinstance(room_filter, str):
                raise ValueError(f"filter {room_filter!r}")
            operator = operator.to(room_filter)
        return operator

    async def _emit_action(self, sid: str, nsp: Any = None, room_filter: Any = None, event: Any = None,
                           *args: Any) -> None:
        if not isinstance(event, str) or not event:
            log.info("Admin UI emit without an event name; ignored", extra={"sid": sid, "namespace": self.namespace})
            return
        await self._act(sid, "emit", lambda: self._operator(nsp, room_filter).emit(event, *args))

    async def _join_action(self, sid: str, nsp: Any = None, room: Any = None, room_filter: Any = None) -> None:
        if isinstance(room, str) and room:
            await self._act(sid, "join", lambda: self._operator(nsp, room_filter).sockets_join(room))

    async def _leave_action(self, sid: str, nsp: Any = None, room: Any = None, room_filter: Any = None) -> None:
        if isinstance(room, str) and room:
            await self._act(sid, "leave", lambda: self._operator(nsp, room_filter).sockets_leave(room))

    async def _disconnect_action(self, sid: str, nsp: Any = None, close: Any = False,
                                 room_filter: Any = None) -> None:
        await self._act(sid, "_disconnect",
                        lambda: self._operator(nsp, room_filter).disconnect_sockets(bool(close)))

    async def _act(self, sid: str, action: str, run: Callable[[], Awaitable[None]]) -> None:
        try:
            await run()
        except ValueError as exc:
            log.info("Admin UI %s with a bad %s; ignored", action, exc,
                     extra={"sid": sid, "namespace": self.namespace})
            return
        log.info("Admin UI action %s", action, extra={"sid": sid, "namespace": self.namespace})

    # ------------------------------------------------------------------ statistics

    def _start(self) -> None:
        if self._stats_task is None:
            self._stats_task = self.sio.start_background_task(self._stats_loop)

    async def _stats_loop(self) -> None:
        while True:
            self._emit("server_stats", self.server_stats())
            await asyncio.sleep(self.server_stats_interval)

    def server_stats(self) -> dict[str, Any]:
        """What this server reports every ``server_stats_interval`` (and empties its event counts)."""
        sessions = [s for s in self.sio.eio.sessions.values() if not s.closed]
        return {
            "serverId": self.server_id,
            "hostname": _socket.gethostname(),
            "pid": os.getpid(),
            "uptime": time.monotonic() - self._started,
            "clientsCount": len(sessions),
            "pollingClientsCount": sum(1 for s in sessions if s.transport == "polling"),
            "aggregatedEvents": self._events.take(),
            "namespaces": [{"name": nsp.name, "socketsCount": sum(1 for s in nsp.sockets.values() if s.connected)}
                           for nsp in list(self.sio._namespaces.values())],
        }

    def shutdown(self) -> None:
        if self._stats_task is not None:
            self._stats_task.cancel()
            self._stats_task = None

    def _emit(self, event: str, *args: Any) -> None:
        """Broadcast to every UI connected to any server of the cluster."""
        self.sio._broadcast(self.namespace, event, list(args), BroadcastOptions())

    # ---------------------------------------------------------------------- hooks

    def session_opened(self, session: Session) -> None:
        self._events.push("rawConnection")

    def session_closed(self, session: Session, reason: DisconnectReason) -> None:
        self._events.push("rawDisconnection", reason.value)

    def message_received(self, data: str | bytes) -> None:
        events = self._events
        events.push("packetsIn")
        events.push("bytesIn", None, _byte_length(data))

    def message_sent(self, data: str | bytes, count: int = 1) -> None:
        events = self._events
        events.push("packetsOut", None, count)
        events.push("bytesOut", None, _byte_length(data) * count)

    def session_upgraded(self, session: Session) -> None:
        if not self.development:
            return
        client = session.receiver
        for socket in list(client.sockets.values()) if isinstance(client, Client) else ():
            if socket.connected:
                self._emit("socket_updated", {"id": socket.sid, "nsp": socket.namespace.name,
                                              "transport": session.transport})

    def socket_connected(self, socket: Socket) -> None:
        if self.development:
            self._emit("socket_connected", self.serialize(socket), _iso_now())

    def socket_disconnected(self, socket: Socket, reason: DisconnectReason) -> None:
        if self.development:
            self._emit("socket_disconnected", socket.namespace.name, socket.sid, reason.value, _iso_now())

    def room_joined(self, namespace: AdapterNamespace, room: str, sid: str) -> None:
        if self.development:
            self._emit("room_joined", namespace.name, room, sid, _iso_now())

    def room_left(self, namespace: AdapterNamespace, room: str, sid: str) -> None:
        if self.development:
            self._emit("room_left", namespace.name, room, sid, _iso_now())

    def event_received(self, socket: Socket, data: list[Any]) -> None:
        if self.development and socket.namespace.name != self.namespace:
            self._emit("event_received", socket.namespace.name, socket.sid, _jsonable(data), _iso_now())

    def event_sent(self, namespace: AdapterNamespace, sids: list[str], data: list[Any]) -> None:
        if self.development and namespace.name != self.namespace:
            args = _jsonable(data)
            stamp = _iso_now()
            for sid in sids:
                self._emit("event_sent", namespace.name, sid, args, stamp)


def _same_credentials(expected: dict[str, Any], given: dict[str, Any]) -> bool:
    """Username and password equal, compared in constant time."""
    ok = True
    for key in ("username", "password"):
        value = given.get(key)
        if not isinstance(value, str):
            return False
        ok &= hmac.compare_digest(value.encode(), str(expected[key]).encode())
    return ok
