"""The Engine.IO v4 server: request routing, handshake, upgrade, and the options of every session.

Subclasses (the public ``sioserver.engineio.AsyncServer``) override :meth:`EngineServer.accept`,
:meth:`EngineServer.handle_message` and :meth:`EngineServer.handle_disconnect`; an upper layer with a
receiver of its own per session (the Socket.IO server) sets ``session.receiver`` in ``accept`` instead,
and gets each message with no call in between. Messages are delivered synchronously from the transport
with no task per message: a receiver that needs to await decides so itself.

Front ends call :meth:`EngineServer.handle_request` with an object that satisfies
:class:`~sioserver.engine.http.HttpRequest` and answer with the :class:`~sioserver.engine.http.HttpResponse`
it returns (``None``: the request became a WebSocket, see ``HttpRequest.upgrade_websocket``).
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import json
import logging
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ..exceptions import ConfigurationError, HandshakeError, check_options
from ..proto import engineio_v3
from ..proto.engineio import EngineError, open_packet
from .http import CorsPolicy, HttpRequest, HttpResponse, error_response
from .packet_log import LoggedSession, LoggedSessionV3, log_packet
from .polling import Polling, PollingConfig
from .session import SERVER_SIDE, DisconnectReason, Session, SessionConfig, SessionContext
from .session_v3 import SessionV3, V3WebSocket
from .transport import WebSocketTransport
from .websocket import WebSocketConfig

__all__ = ["ENGINE_OPTIONS", "EngineServer"]

log = logging.getLogger("sioserver.engine")

AllowRequest = Callable[[dict[str, Any]], "bool | Awaitable[bool]"]

#: option name -> default. Times in seconds, sizes in bytes.
ENGINE_OPTIONS: dict[str, Any] = {
    "ping_interval": 25.0,
    "ping_timeout": 20.0,
    "max_http_buffer_size": 1_000_000,
    "allow_upgrades": True,
    "upgrade_timeout": 10.0,
    "transports": ("polling", "websocket"),
    "cors_allowed_origins": None,
    "cors_credentials": True,
    "cookie": None,
    "http_compression": True,
    "compression_threshold": 1024,
    "compression": False,
    "max_buffered_bytes": 8 * 1024 * 1024,
    "max_buffered_bytes_total": 64 * 1024 * 1024,
    "slow_consumer_policy": "disconnect",
    "max_payload_packets": 1000,
    "max_connections": 0,
    "max_handshake_rate": 0.0,
    "body_timeout": 30.0,
    "allow_request": None,
    "poll_check_interval": 1.0,
    "health_path": "/health",
    "allow_eio3": False,
    "logger": None,
}

_TEXT_HEADERS = [("Content-Type", "text/plain; charset=UTF-8")]


class EngineServer:
    """The protocol engine. Framework-free: integrations call :meth:`handle_request`."""

    def __init__(self, **options: Any) -> None:
        check_options(options, ENGINE_OPTIONS, type(self).__name__)
        opts = {**ENGINE_OPTIONS, **options}
        ping_interval = opts["ping_interval"]
        # python-engineio's (interval, grace): pings every interval; the client is told interval + grace
        if isinstance(ping_interval, (tuple, list)):
            if len(ping_interval) != 2:
                raise ConfigurationError("ping_interval must be seconds or a tuple (interval, grace period)")
            ping_interval, grace = ping_interval
            self.ping_interval_grace_period = float(grace)
            if self.ping_interval_grace_period < 0:
                raise ConfigurationError("the ping_interval grace period must not be negative")
        else:
            self.ping_interval_grace_period = 0.0
        self.ping_interval = float(ping_interval)
        self.ping_timeout = float(opts["ping_timeout"])
        if self.ping_interval <= 0 or self.ping_timeout <= 0:
            raise ConfigurationError("ping_interval and ping_timeout must be positive (seconds)")
        self.max_http_buffer_size = int(opts["max_http_buffer_size"])
        self.allow_upgrades = bool(opts["allow_upgrades"])
        self.upgrade_timeout = float(opts["upgrade_timeout"])
        transports = opts["transports"]
        if isinstance(transports, str):
            transports = [transports]
        transports = list(transports)
        unknown = [t for t in transports if t not in ("polling", "websocket")]
        if unknown:  # as python-engineio: dropped, but said
            log.warning("transports: ignoring %s (sioserver serves 'polling' and 'websocket')",
                        ", ".join(map(repr, unknown)))
        self.transports = tuple(t for t in transports if t in ("polling", "websocket"))
        if not self.transports:
            raise ConfigurationError(f"transports must include 'polling' and/or 'websocket', not {unknown}")
        self.cors = CorsPolicy(opts["cors_allowed_origins"], bool(opts["cors_credentials"]))
        self.cookie = _cookie_options(opts["cookie"])
        self.http_compression = bool(opts["http_compression"])
        self.compression_threshold = int(opts["compression_threshold"])
        self.max_buffered_bytes = int(opts["max_buffered_bytes"])
        self.max_buffered_bytes_total = int(opts["max_buffered_bytes_total"])
        self.slow_consumer_policy = str(opts["slow_consumer_policy"])
        if self.slow_consumer_policy not in ("disconnect", "drop"):
            raise ConfigurationError("slow_consumer_policy must be 'disconnect' or 'drop'")
        if self.max_buffered_bytes < 1 or self.max_buffered_bytes_total < 0:
            raise ConfigurationError("max_buffered_bytes must be positive and max_buffered_bytes_total >= 0 "
                                     "(0: no bound across sessions)")
        self.max_payload_packets = int(opts["max_payload_packets"])
        self.max_connections = int(opts["max_connections"])
        self.body_timeout = float(opts["body_timeout"])
        self.handshake_limiter = RateLimiter(float(opts["max_handshake_rate"]))
        self.allow_request: AllowRequest | None = opts["allow_request"]
        self.poll_check_interval = float(opts["poll_check_interval"])
        #: Engine.IO v3 clients (socket.io-client 2.x) are served too, as Node's ``allowEIO3``
        self.allow_eio3 = bool(opts["allow_eio3"])
        health_path = opts["health_path"]
        if health_path and not str(health_path).startswith("/"):
            raise ConfigurationError(f"health_path={health_path!r} must start with '/' (or be None: no health check)")
        self.health_path: str | None = str(health_path) if health_path else None
        self.logger: logging.Logger = opts["logger"] or log
        # engineio_logger given: each session's start and end at INFO, as python-engineio
        self._session_level = logging.DEBUG if opts["logger"] is None else logging.INFO
        #: and each packet sent and received, in sessions of the classes that log them (others pay nothing)
        self._session_classes: tuple[type[Session], type[SessionV3]] = (
            (Session, SessionV3) if opts["logger"] is None else (LoggedSession, LoggedSessionV3))
        self.ws_config = WebSocketConfig(
            max_message_size=self.max_http_buffer_size,
            compression=bool(opts["compression"]),
            compression_threshold=self.compression_threshold,
            # a session's transport is paused as soon as the kernel leaves anything in it, and resumed
            # when it is empty: what a slow client owes waits in the outbox as references, and goes to
            # the transport in chunks, instead of one queued write (about 700 bytes) per message
            write_buffer_high=0,
            write_buffer_low=0,
        )
        self.sessions: dict[str, Session] = {}
        self.stats: Counter[str] = Counter()
        #: a node of several (a worker of ``--workers``): ``"<node>."`` starts every sid it hands out
        self.sid_prefix = ""
        #: ``forward(request, sid, cors)``: serve a request whose sid is another node's by that node (the
        #: owner's answer; None: the connection became the owner's WebSocket); OSError when the owner cannot
        #: be reached. Asked only for an unknown sid: the requests of this node's sessions never see it
        self.forward: Callable[[HttpRequest, str, list[tuple[str, str]]],
                               Awaitable[HttpResponse | None]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._accepting = True
        self.session_context = SessionContext(
            SessionConfig(
                ping_interval=self.ping_interval,
                ping_timeout=self.ping_timeout,
                ping_grace=self.ping_interval_grace_period,
                upgrade_timeout=self.upgrade_timeout,
                max_buffered_bytes=self.max_buffered_bytes,
                max_buffered_bytes_total=self.max_buffered_bytes_total,
                slow_consumer_policy=self.slow_consumer_policy,
            ),
            self.session_closed,
            self.stats,
            self.logger,
            on_upgraded=self.handle_upgrade,
        )
        self.polling = Polling(
            PollingConfig(
                max_http_buffer_size=self.max_http_buffer_size,
                max_payload_packets=self.max_payload_packets,
                body_timeout=self.body_timeout,
                http_compression=self.http_compression,
                compression_threshold=self.compression_threshold,
                poll_check_interval=self.poll_check_interval,
            ),
            self._forget,
            self.stats,
            self.logger,
        )

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def describe(self) -> str:
        """The effective transport and CORS policy, for the startup log."""
        upgrades = "with upgrades" if self.allow_upgrades and len(self.transports) == 2 else "no upgrades"
        return (
            f"transports {', '.join(self.transports)} ({upgrades}); CORS: {self.cors.describe()}; "
            f"ping {self.ping_interval}s/{self.ping_timeout}s; max payload {self.max_http_buffer_size} B"
        )

    # -------------------------------------------------------------- subclass hooks

    async def accept(self, session: Session) -> bool:
        """Called at the handshake, before the OPEN packet. Return False to refuse (403). An upper layer
        may set ``session.receiver`` here; otherwise messages go to :meth:`handle_message`."""
        return True

    def handle_message(self, session: Session, data: str | bytes) -> None:
        """A MESSAGE from the client (for sessions whose receiver was left as it was)."""

    def handle_disconnect(self, session: Session, reason: DisconnectReason) -> None:
        """The session ended (exactly once per session; for sessions whose receiver was left as it was)."""

    def handle_open(self, session: Session) -> None:
        """The handshake completed: the client has its OPEN packet (``handle_disconnect`` follows once)."""

    def handle_upgrade(self, session: Session) -> None:
        """The session moved from long-polling to WebSocket."""

    # ----------------------------------------------------------------- health

    def health(self) -> tuple[bool, str]:
        """Whether this server should get traffic, and why not: False while it shuts down."""
        if not self._accepting:
            return False, "draining"
        return True, "serving"

    def endpoints(self) -> dict[str, Callable[[], HttpResponse]]:
        """The GET paths every front end serves beside the Engine.IO path: ``{path: answer()}``
        (the health check; ``/metrics`` too on a Socket.IO server with ``metrics=True``)."""
        return {self.health_path: self.health_response} if self.health_path else {}

    def health_response(self) -> HttpResponse:
        """``GET <health_path>`` for load balancers and Kubernetes probes: 200 ``{"status": "serving"}``,
        or 503 with the reason (``draining``, ``adapter down: /nsp``)."""
        ok, status = self.health()
        body = json.dumps({"status": status, "sessions": len(self.sessions)}).encode()
        return HttpResponse(200 if ok else 503, body,
                            [("Content-Type", "application/json"), ("Cache-Control", "no-store")])

    # -------------------------------------------------------------------- API

    def send(self, sid: str, data: str | bytes) -> bool:
        session = self.sessions.get(sid)
        return session is not None and session.send(data)

    def close_session(self, sid: str, reason: DisconnectReason = DisconnectReason.SERVER_DISCONNECT) -> None:
        session = self.sessions.get(sid)
        if session is not None:
            session.close(reason)

    def close_all(self, reason: DisconnectReason = DisconnectReason.SERVER_SHUTDOWN) -> None:
        self._accepting = False
        for session in list(self.sessions.values()):
            session.close(reason)

    def session_closed(self, session: Session, reason: DisconnectReason) -> None:
        """Called by :meth:`Session.close` (through the session context), before the receiver is told."""
        if self.sessions.get(session.sid) is session:
            # as the reference: a polling session the server closed with no GET parked keeps its sid
            # until the next GET has taken the CLOSE packet (or for a heartbeat period); every other
            # session is forgotten at once, and its sid is unknown from the next request on
            if session.ws is None and session.poll_waiter is None and reason in SERVER_SIDE:
                self.loop.call_later(self.ping_interval + self.ping_timeout, self._forget, session)
            else:
                del self.sessions[session.sid]
        self.polling.session_closed(session)
        self.stats["disconnects"] += 1
        self.stats[f"disconnect:{reason.value}"] += 1
        self.logger.log(self._session_level, "session %s closed: %s", session.sid, reason.value,
                        extra={"sid": session.sid, "reason": reason.value})

    def _forget(self, session: Session) -> None:
        if self.sessions.get(session.sid) is session:
            del self.sessions[session.sid]

    # --------------------------------------------------------------- requests

    async def handle_request(self, request: HttpRequest) -> HttpResponse | None:
        """Answer one HTTP request. ``None`` means the request became a WebSocket."""
        headers = request.headers
        origin = headers.get("Origin")
        if origin is None:  # no Origin, no CORS (what allows() and headers() say without one)
            cors_ok = True
            cors: list[tuple[str, str]] = []
        else:
            cors_ok = self.cors.allows(origin, headers.get("Host"), request.environ)
            cors = self.cors.headers(origin) if cors_ok else []
        method = request.method
        if method == "OPTIONS":
            if not cors_ok:
                return self._refuse(request, EngineError.FORBIDDEN, f"origin {origin!r} is not allowed", [])
            pre = self.cors.preflight_headers(origin, headers.get("Access-Control-Request-Headers"))
            return HttpResponse(204, b"", pre)
        query = request.query
        transport = query.get("transport")
        if transport not in self.transports:
            return self._refuse(request, EngineError.UNKNOWN_TRANSPORT, f"transport {transport!r}", cors)
        if not cors_ok:
            return self._refuse(request, EngineError.FORBIDDEN, f"origin {origin!r} is not allowed", cors)
        sid = query.get("sid")
        if sid is not None:
            session = self.sessions.get(sid)
            if session is None or (session.closed and method != "GET"):
                if session is None:
                    return await self._unknown_sid(request, sid, cors)
                return self._refuse(request, EngineError.UNKNOWN_SID, f"sid {sid!r}", cors)
            if transport == "websocket":
                return self._upgrade(request, session, cors)
            if session.transport != "polling" or session.ws is not None:
                return self._refuse(request, EngineError.BAD_REQUEST, "polling on a websocket session", cors)
            if method == "GET":
                return await self.polling.get(request, session, cors)
            if method == "POST":
                return await self.polling.post(request, session, cors)
            return self._refuse(request, EngineError.BAD_REQUEST, f"method {method}", cors)
        if method != "GET":
            return self._refuse(request, EngineError.BAD_HANDSHAKE_METHOD, f"{method} handshake", cors)
        if transport == "websocket" and not _is_upgrade(request):
            return self._refuse(request, EngineError.BAD_REQUEST, "websocket handshake without upgrade", cors)
        if self.allow_request is not None:
            allowed = self.allow_request(request.environ())
            if not isinstance(allowed, bool):
                allowed = await allowed
            if not allowed:
                return self._refuse(request, EngineError.FORBIDDEN, "refused by allow_request", cors)
        eio = query.get("EIO")
        if eio != "4" and (eio != "3" or not self.allow_eio3):
            return self._refuse(request, EngineError.UNSUPPORTED_PROTOCOL_VERSION, f"EIO={eio!r}", cors)
        if eio == "3" and "j" in query:  # a script tag would get an XHR body: refused, not served wrong
            return self._refuse(request, EngineError.BAD_REQUEST, "JSONP polling is not served", cors)
        if not self._accepting:
            return HttpResponse(503, b'{"code":3,"message":"Server shutting down"}',
                                [("Content-Type", "application/json"), *cors])
        if not self.handshake_limiter.allow(request.remote_addr, self.loop.time()):
            self.stats["refused:handshake_rate"] += 1
            self.logger.warning("refusing a handshake from %s: over max_handshake_rate=%s/s",
                                request.remote_addr, self.handshake_limiter.rate)
            return HttpResponse(429, b'{"code":4,"message":"Forbidden"}',
                                [("Content-Type", "application/json"), ("Retry-After", "1"), *cors])
        if self.max_connections and len(self.sessions) >= self.max_connections:
            self.stats["refused:max_connections"] += 1
            self.logger.warning("refusing a handshake: max_connections=%d reached", self.max_connections)
            return HttpResponse(503, b'{"code":3,"message":"Too many connections"}',
                                [("Content-Type", "application/json"), *cors])
        return await self._handshake(request, str(transport), cors, eio == "3")

    async def _unknown_sid(self, request: HttpRequest, sid: str, cors: list[tuple[str, str]]) -> HttpResponse | None:
        """A sid this node does not hold: another node's (forwarded to it when it can be reached), or gone."""
        node, dot, _ = sid.partition(".")
        if dot and node + dot != self.sid_prefix:
            if self.forward is not None:
                try:
                    return await self.forward(request, sid, cors)
                except OSError as exc:
                    self.logger.info("cannot forward sid %r to node %s: %s", sid, node, exc)
            self.stats["refused:unknown_sid"] += 1
            self.logger.warning("refused %s from %s: sid %r belongs to node %s, which this node cannot reach: "
                                "the load balancer is not sticky (see the README's deployment section)",
                                request.method, request.remote_addr, sid, node)
            return error_response(EngineError.UNKNOWN_SID, cors)
        return self._refuse(request, EngineError.UNKNOWN_SID, f"sid {sid!r}", cors)

    def _gone_during_upgrade(self, request: HttpRequest, exc: OSError) -> HttpResponse:
        self.stats["upgrade_aborted"] += 1
        self.logger.info("client %s went away during the WebSocket handshake (%s)", request.remote_addr,
                         exc.__class__.__name__)
        return HttpResponse(400, b"")  # nobody is left to read it

    def _refuse(
        self, request: HttpRequest, error: EngineError, detail: str, cors: Sequence[tuple[str, str]]
    ) -> HttpResponse:
        self.stats[f"refused:{error.name.lower()}"] += 1
        self.logger.info(
            "refused %s from %s: %s (%s)", request.method, request.remote_addr, error.message, detail
        )
        return error_response(error, cors)

    async def _handshake(
        self, request: HttpRequest, transport: str, cors: list[tuple[str, str]], v3: bool = False
    ) -> HttpResponse | None:
        sid = self.sid_prefix + secrets.token_urlsafe(15)
        if v3:
            session: Session = self._session_classes[1](self.session_context, sid, transport, request.environ(),
                                                        base64=bool(request.query.get("b64")))
        else:
            session = self._session_classes[0](self.session_context, sid, transport, request.environ())
        session.receiver = _Hooks(self, session)
        self.logger.log(self._session_level, "session %s: %s handshake from %s", sid, transport, request.remote_addr)
        upgrades = ["websocket"] if transport == "polling" and self._can_upgrade() else []
        interval_ms = round((self.ping_interval + self.ping_interval_grace_period) * 1000)
        if v3:
            opening = engineio_v3.open_packet(sid, upgrades, interval_ms, round(self.ping_timeout * 1000))
        else:
            opening = open_packet(sid, upgrades, interval_ms, round(self.ping_timeout * 1000),
                                  self.max_http_buffer_size)
        if isinstance(session, LoggedSession | LoggedSessionV3):
            log_packet(session, "Sending", 0, opening[1:])
        headers = list(cors)
        if self.cookie is not None:
            headers.append(("Set-Cookie", _set_cookie(sid, self.cookie)))
        if transport == "websocket":
            try:
                conn = self._upgrade_websocket(request, session, headers)
            except HandshakeError as exc:
                return self._refuse(request, EngineError.BAD_REQUEST, exc.reason, cors)
            except OSError as exc:
                return self._gone_during_upgrade(request, exc)
            self.sessions[sid] = session
            try:
                accepted = await self.accept(session)
            except Exception:
                self.logger.exception("connect handler failed for session %s", sid)
                accepted = False
            if not accepted or conn.closed:
                self.sessions.pop(sid, None)
                session.take_outbox()
                session.state = Session.CLOSED
                if not conn.closed:
                    conn.close(1008, "refused")
                return None
            # what the connect handler sent waited in the outbox; it follows the OPEN packet
            conn.send(opening)
            session.attach_ws(conn)
            self._opened(session, request)
            return None
        self.sessions[sid] = session
        try:
            accepted = await self.accept(session)
        except Exception:
            self.logger.exception("connect handler failed for session %s", sid)
            accepted = False
        if not accepted:
            self.sessions.pop(sid, None)
            session.take_outbox()
            session.state = Session.CLOSED
            return self._refuse(request, EngineError.FORBIDDEN, "refused by the connect handler", cors)
        self._opened(session, request)
        body = opening.encode() if not v3 else session.payload.encode([opening])[0]
        return HttpResponse(200, body, [*_TEXT_HEADERS, *headers])

    def _opened(self, session: Session, request: HttpRequest) -> None:
        self.stats["handshakes"] += 1
        session.start_heartbeat()
        self.handle_open(session)
        release = getattr(request, "release", None)  # optional: see the HttpRequest contract
        if release is not None:
            if self.release_after_accept:
                release()
            else:
                session.hold_request(release)

    #: call the handshake request's ``release()`` once :meth:`accept` has run; an upper layer whose own
    #: connect handlers run later (Socket.IO) sets False and calls ``session.release_request()`` itself
    release_after_accept = True

    def _can_upgrade(self) -> bool:
        return self.allow_upgrades and "websocket" in self.transports

    # --------------------------------------------------------------- websocket

    def _upgrade(self, request: HttpRequest, session: Session, cors: list[tuple[str, str]]) -> HttpResponse | None:
        if not _is_upgrade(request):
            return self._refuse(request, EngineError.BAD_REQUEST, "websocket request without upgrade", cors)
        if not self._can_upgrade():
            return self._refuse(request, EngineError.BAD_REQUEST, "upgrades are disabled", cors)
        try:
            conn = self._upgrade_websocket(request, session, cors)
        except HandshakeError as exc:
            return self._refuse(request, EngineError.BAD_REQUEST, exc.reason, cors)
        except OSError as exc:
            return self._gone_during_upgrade(request, exc)
        if session.closed or session.ws is not None or session.upgrading or session.probing:
            # a second WebSocket for this sid
            self.logger.info("session %s: a second websocket for the same sid; closing it", session.sid)
            conn.close(None)
            return None
        session.begin_probe(conn)
        return None

    def _upgrade_websocket(
        self, request: HttpRequest, session: Session, headers: Sequence[tuple[str, str]]
    ) -> WebSocketTransport:
        """Answer 101; the connection reports to the session (through :class:`V3WebSocket` for a v3 one)."""
        if session.protocol == 4:
            return request.upgrade_websocket(session, self.ws_config, headers)
        link = V3WebSocket(session, base64=bool(request.query.get("b64")))
        return link.bind(request.upgrade_websocket(link, self.ws_config, headers))

    async def shutdown(self, grace: float = 0.0) -> None:
        """Stop taking handshakes (503) and close every session (clients see a transport close and
        reconnect elsewhere). With ``grace`` > 0 the closes are spread over that many seconds, so a
        fleet of clients does not come back all at once."""
        self._accepting = False
        sessions = [s for s in self.sessions.values() if not s.closed]
        if grace > 0 and sessions:
            batches = min(len(sessions), max(1, int(grace / 0.05)))
            per_batch = -(-len(sessions) // batches)
            pause = grace / batches
            for start in range(0, len(sessions), per_batch):
                for session in sessions[start:start + per_batch]:
                    session.close(DisconnectReason.SERVER_SHUTDOWN)
                await asyncio.sleep(pause)
        self.close_all(DisconnectReason.SERVER_SHUTDOWN)
        self.polling.close()
        self.session_context.wheel.close()
        self.session_context.backlogs.close()
        await asyncio.sleep(0)


class RateLimiter:
    """A token bucket per remote address: ``rate`` per second, bursts of ``2 * rate``; 0 turns it off.

    The table is bounded: past ``max_entries`` addresses, the ones whose bucket is full again (idle
    for a while) are forgotten first.
    """

    __slots__ = ("buckets", "burst", "max_entries", "rate")

    def __init__(self, rate: float, max_entries: int = 100_000) -> None:
        self.rate = rate
        self.burst = max(1.0, 2 * rate)
        self.max_entries = max_entries
        self.buckets: dict[str, tuple[float, float]] = {}

    def allow(self, key: str, now: float) -> bool:
        if self.rate <= 0:
            return True
        tokens, last = self.buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1:
            self.buckets[key] = (tokens, now)
            return False
        self.buckets[key] = (tokens - 1, now)
        if len(self.buckets) > self.max_entries:
            self._prune(now)
        return True

    def _prune(self, now: float) -> None:
        full = self.burst / self.rate
        for key, (_, last) in list(self.buckets.items()):
            if now - last >= full:
                del self.buckets[key]
        while len(self.buckets) > self.max_entries:  # all busy: drop the oldest
            del self.buckets[next(iter(self.buckets))]


class _Hooks:
    """The receiver of a session whose upper layer set none: the server's own hooks."""

    __slots__ = ("server", "session")

    def __init__(self, server: EngineServer, session: Session) -> None:
        self.server = server
        self.session = session

    def on_message(self, data: str | bytes) -> None:
        self.server.handle_message(self.session, data)

    def on_close(self, reason: DisconnectReason) -> None:
        self.server.handle_disconnect(self.session, reason)


def _is_upgrade(request: HttpRequest) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


#: cookie attributes, by every spelling accepted (python-engineio's ``SameSite``, ``HttpOnly``...)
_COOKIE_KEYS = {"name": "name", "path": "Path", "domain": "Domain", "max_age": "Max-Age", "max-age": "Max-Age",
                "expires": "Expires", "httponly": "HttpOnly", "samesite": "SameSite", "secure": "Secure",
                "partitioned": "Partitioned"}


def _cookie_options(cookie: Any) -> dict[str, Any] | None:
    """The session cookie's attributes: ``True``, a name, or a dict with python-engineio's keys in any
    case (``SameSite``, ``HttpOnly``, ``Secure``, ``path``, ``domain``, ``max_age``, ``expires``); a
    callable value is called at every handshake. Defaults: ``Path=/``, ``HttpOnly``, ``SameSite=Lax``."""
    if cookie is None or cookie is False:
        return None
    defaults: dict[str, Any] = {"name": "io", "Path": "/", "HttpOnly": True, "SameSite": "Lax"}
    if cookie is True:
        return defaults
    if isinstance(cookie, str):
        return {**defaults, "name": cookie}
    if isinstance(cookie, dict):
        check_options([key.lower() for key in cookie], _COOKIE_KEYS, "cookie")
        return {**defaults, **{_COOKIE_KEYS[key.lower()]: value for key, value in cookie.items()}}
    raise ConfigurationError("cookie must be None, True, a name, or a dict of cookie attributes")


def _set_cookie(sid: str, opts: dict[str, Any]) -> str:
    parts = [f"{opts['name']}={sid}"]
    for attribute, given in opts.items():
        if attribute == "name":
            continue
        value = given() if callable(given) else given
        if value is None or value is False:
            continue
        if value is True:
            parts.append(attribute)
        elif isinstance(value, datetime.datetime):
            parts.append(f"{attribute}={email.utils.format_datetime(value.astimezone(datetime.UTC), usegmt=True)}")
        elif isinstance(value, datetime.timedelta):
            parts.append(f"{attribute}={int(value.total_seconds())}")
        else:
            text = str(value)
            if any(c in text for c in ";\r\n"):
                raise ValueError(f"cookie attribute {attribute} has a value that would split the header")
            parts.append(f"{attribute}={text}")
    return "; ".join(parts)

