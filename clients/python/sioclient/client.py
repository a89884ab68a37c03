"""The Socket.IO v5 client: ``sioclient.AsyncClient``, in the shape python-socketio users know.

::

    client = sioclient.AsyncClient()

    @client.event
    async def connect():
        print("connected as", client.sid)

    @client.on("chat", namespace="/room")
    async def chat(msg):
        return "thanks"                 # the return value answers the server's ack

    await client.connect("http://localhost:8000", auth={"token": "..."}, namespaces=["/", "/room"])
    await client.emit("chat", "hello", namespace="/room")
    answer = await client.call("sum", (1, 2), timeout=5)
    await client.wait()                 # until disconnected for good

What happens to an emit while a namespace is not connected is :mod:`sioclient.namespace`'s to say; when
and how the client reconnects, :mod:`sioclient.reconnection`'s.

Disconnect reasons (as the JavaScript client names them): "io server disconnect", "io client
disconnect", "ping timeout", "transport close", "transport error", "parse error".
Connection state recovery: ``client.recovered``; :mod:`sioclient.namespace` says how.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import aiohttp

from sioserver.exceptions import ConfigurationError, SocketIOProtocolError, check_options
from sioserver.proto.socketio import (
    ACK,
    CONNECT,
    CONNECT_ERROR,
    DISCONNECT,
    EVENT,
    Encoded,
    Packet,
    answer_of,
    args_of,
    make_parser,
)

from .engine import TRANSPORTS, EngineClient, EngineClosedError
from .exceptions import AckTimeoutError, ConnectionError, DisconnectedError, NotConnectedError
from .handlers import Handlers
from .namespace import Ack, ClientNamespace
from .options import CLIENT_OPTIONS, CONNECT_OPTIONS, auth_payload, make_logger, namespaces_option, transports_option
from .reconnection import Backoff, reconnect

__all__ = ["CLIENT_OPTIONS", "AsyncClient", "Backoff"]

H = TypeVar("H", bound=Callable[..., Any])
Auth = Mapping[str, Any] | Callable[[], Any] | None

_CLIENT_RESERVED = frozenset({"connect", "connect_error", "disconnect"})


class AsyncClient:
    """A Socket.IO v5 client for asyncio.

    Options (defaults in :data:`CLIENT_OPTIONS`): ``reconnection``, ``reconnection_attempts`` (0:
    forever), ``reconnection_delay``, ``reconnection_delay_max``, ``randomization_factor`` (see
    :class:`Backoff`), ``serializer`` ("default" or "msgpack", as the server), ``logger`` (True, False or
    a Logger), ``request_timeout`` (each HTTP request and handshake), ``max_buffered_emits`` (per
    namespace, while reconnecting), ``http_session`` (an aiohttp ClientSession to use, left open),
    ``ssl_verify``, ``websocket_compression`` (offer permessage-deflate). An unknown option raises
    :class:`~sioserver.exceptions.ConfigurationError` (a TypeError) naming the closest valid one.
    """

    def __init__(self, **options: Any) -> None:
        check_options(options, CLIENT_OPTIONS, "AsyncClient")
        opts = {**CLIENT_OPTIONS, **options}
        self.reconnection = bool(opts["reconnection"])
        self.reconnection_attempts = int(opts["reconnection_attempts"])
        if self.reconnection_attempts < 0:
            raise ConfigurationError("reconnection_attempts must be >= 0 (0: no limit)")
        self.backoff = Backoff(opts["reconnection_delay"], opts["reconnection_delay_max"], opts["randomization_factor"])
        self.parser = make_parser(opts["serializer"]) if isinstance(opts["serializer"], str) else opts["serializer"]
        self.logger = make_logger(opts["logger"])
        self.request_timeout = float(opts["request_timeout"])
        self.max_buffered_emits = int(opts["max_buffered_emits"])
        if self.max_buffered_emits < 0:
            raise ConfigurationError("max_buffered_emits must be >= 0")
        self._external_session: aiohttp.ClientSession | None = opts["http_session"]
        self._ssl = bool(opts["ssl_verify"])
        self._compression = bool(opts["websocket_compression"])
        self._handlers = Handlers(self.logger)
        self.handlers = self._handlers.table  #: ``handlers[namespace][event]``, as in python-socketio
        self._namespaces: dict[str, ClientNamespace] = {}
        self._session: aiohttp.ClientSession | None = None
        self._engine: EngineClient | None = None
        self._decoder = self.parser.decoder()
        self._url = ""
        self._headers: dict[str, str] = {}
        self._auth: Auth = None
        self._transports: list[str] = list(TRANSPORTS)
        self._path = "socket.io"
        self._wait_timeout = 5.0
        self._state = "disconnected"  # disconnected, connecting, connected, reconnecting, disconnecting
        self._establishing = False
        self._reconnect_task: asyncio.Task[None] | None = None
        self._done: asyncio.Event | None = None

    # -- handlers ----------------------------------------------------------------------------------
    def on(self, event: str, handler: H | None = None, namespace: str | None = None) -> Any:
        """Register ``handler`` for ``event`` (decorator when ``handler`` is omitted). ``"*"`` catches
        events without a handler of their own and gets the event name first. Reserved: ``connect()``,
        ``connect_error(data)``, ``disconnect(reason)``."""
        nsp = namespace or "/"

        def register(fn: H) -> H:
            return self._handlers.register(nsp, event, fn)

        if handler is None:
            return register
        return register(handler)

    def event(self, *args: Any, namespace: str | None = None) -> Any:
        """``@client.event`` or ``@client.event(namespace="/x")``: the function's name is the event."""
        if len(args) == 1 and callable(args[0]):
            fn = args[0]
            self.on(fn.__name__, fn, namespace)
            return fn

        def register(fn: H) -> H:
            self.on(fn.__name__, fn, namespace)
            return fn

        return register

    # -- properties --------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return any(ns.connected for ns in self._namespaces.values())

    @property
    def sid(self) -> str | None:
        """The session id of the ``/`` namespace (None when not connected to it)."""
        return self.get_sid("/")

    @property
    def recovered(self) -> bool:
        """Whether namespace "/" got its server-side session back on the last reconnect (JS: socket.recovered)."""
        return self.is_recovered("/")

    def is_recovered(self, namespace: str | None = None) -> bool:
        ns = self._namespaces.get(namespace or "/")
        return ns is not None and ns.connected and ns.recovered

    def get_sid(self, namespace: str | None = None) -> str | None:
        ns = self._namespaces.get(namespace or "/")
        return ns.sid if ns is not None and ns.connected else None

    @property
    def transport(self) -> str | None:
        """The transport in use, "polling" or "websocket", while connected; else None."""
        engine = self._engine
        return engine.transport if engine is not None and engine.is_open else None

    @property
    def namespaces(self) -> list[str]:
        """The namespaces currently connected."""
        return [ns.name for ns in self._namespaces.values() if ns.connected]

    # -- connecting --------------------------------------------------------------------------------
    async def connect(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: Auth = None,
        transports: Iterable[str] | str | None = None,
        namespaces: Iterable[str] | str | None = None,
        socketio_path: str = "socket.io",
        wait_timeout: float = 5.0,
        retry: bool = False,
        **unknown: Any,
    ) -> None:
        """Connect to ``url`` (``http(s)://`` or ``ws(s)://``; its path is ignored, its query is sent).

        ``auth``: the CONNECT payload, a dict or a callable (sync or async) returning one, called again
        for every CONNECT (each namespace, each reconnect). ``transports``: ``["polling",
        "websocket"]`` (the default: polling, then upgrade), ``["websocket"]`` or ``["polling"]``.
        ``namespaces``: default, those with handlers, or ``["/"]``. Returns once every namespace has
        answered; raises :class:`~sioclient.exceptions.ConnectionError` (with the refusal's
        ``{"message", "data"}`` as ``.data``) if the handshake fails or a namespace is refused or
        silent for ``wait_timeout`` s. ``retry=True`` keeps trying with the reconnection backoff.
        """
        if unknown:
            check_options(unknown, CONNECT_OPTIONS, "AsyncClient.connect()")
        if self._state != "disconnected":
            raise ConnectionError("already connected (or connecting)")
        chosen = transports_option(transports)
        names = namespaces_option(namespaces, self._handlers.namespaces())
        self._url = url
        self._headers = dict(headers or {})
        self._auth = auth
        self._transports = chosen
        self._path = socketio_path
        self._wait_timeout = float(wait_timeout)
        self._namespaces = {name: ClientNamespace(name, self.logger) for name in names}
        for ns in self._namespaces.values():
            ns.active = True
        self._done = asyncio.Event()
        self._state = "connecting"
        try:
            await self._establish(initial=True)
        except ConnectionError as exc:
            if not (retry and self.reconnection and any(ns.active for ns in self._namespaces.values())):
                await self._shutdown("io client disconnect")
                raise
            self.logger.info("connect failed (%s); retrying", exc.message)
            await self._close_engine()
            self._reset_namespaces()
            self._state = "reconnecting"
            self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect_loop())
            await asyncio.shield(self._reconnect_task)
            if not self.connected:
                await self._shutdown("io client disconnect")
                raise
            return
        except BaseException:
            await self._shutdown("io client disconnect")
            raise
        self._state = "connected"

    def _http_session(self) -> aiohttp.ClientSession:
        if self._external_session is not None:
            return self._external_session
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    def _reset_namespaces(self) -> None:
        """A failed attempt: forget the inactive namespaces' leftovers, keep the active ones' buffers."""
        for ns in self._namespaces.values():
            ns.waiter = None

    async def _establish(self, *, initial: bool) -> None:
        """One connection attempt: an Engine.IO session, then CONNECT for every active namespace.

        Initial: every namespace must connect, else ConnectionError. Reconnect: refused namespaces drop
        out; a namespace that does not answer in time fails the attempt."""
        self._establishing = True
        try:
            engine = EngineClient(
                self._http_session(),
                on_message=lambda data: self._on_engine_message(engine, data),
                on_close=lambda reason: self._on_engine_close(engine, reason),
                request_timeout=self.request_timeout,
                websocket_compression=self._compression,
                ssl=self._ssl,
                logger=self.logger,
            )
            self._engine = engine
            self._decoder = self.parser.decoder()
            try:
                await engine.connect(self._url, path=self._path, headers=self._headers, transports=self._transports)
            except BaseException:
                self._engine = None
                raise
            try:
                await self._connect_namespaces(engine, initial=initial)
            except BaseException:
                # A failed first connect is shut down gracefully by connect() (DISCONNECT for the
                # namespaces that did connect); a failed reconnection attempt just drops its session.
                if self._engine is engine and not initial:
                    self._engine = None
                    engine.terminate("transport error")
                raise
        finally:
            self._establishing = False

    async def _connect_namespaces(self, engine: EngineClient, *, initial: bool) -> None:
        """Send CONNECT for every active namespace and wait for the answers (see ``_establish``)."""
        loop = asyncio.get_running_loop()
        targets = [ns for ns in self._namespaces.values() if ns.active]
        for ns in targets:
            ns.waiter = loop.create_future()
        try:
            for ns in targets:
                await self._send_connect(ns)
        except EngineClosedError as exc:
            raise ConnectionError(f"connection lost during connect: {exc}") from None
        waiters = [ns.waiter for ns in targets if ns.waiter is not None]
        _, pending = await asyncio.wait(waiters, timeout=self._wait_timeout)
        refused: list[tuple[str, Any]] = []
        lost: str | None = None
        for ns in targets:
            waiter, ns.waiter = ns.waiter, None
            if waiter is None or not waiter.done():
                continue
            outcome = waiter.result()
            if isinstance(outcome, DisconnectedError):
                lost = outcome.reason
            elif outcome is not True:
                refused.append((ns.name, outcome))
        if lost is not None:
            raise ConnectionError(f"connection lost during connect: {lost}")
        silent = [ns.name for ns in targets if ns.active and not ns.connected]
        if pending or silent:
            for waiter in pending:
                waiter.cancel()
            raise ConnectionError(f"no answer from namespace(s) {', '.join(silent)} within {self._wait_timeout} s")
        if initial and refused:
            name, data = refused[0]
            message = data.get("message") if isinstance(data, dict) else str(data)
            raise ConnectionError(f"namespace {name} refused: {message}", data)
        if not any(ns.connected for ns in self._namespaces.values()):
            # every namespace refused on reconnect: nothing left to connect
            name, data = refused[0] if refused else ("/", None)
            await self._close_engine()
            raise ConnectionError(f"namespace {name} refused", data)

    async def _send_connect(self, ns: ClientNamespace) -> None:
        data = ns.recovery_auth(await auth_payload(self._auth))
        try:
            encoded = self.parser.encode(Packet(CONNECT, ns.name, data))
        except (ValueError, TypeError) as exc:
            raise ConnectionError(f"auth cannot be sent: {exc}") from exc
        self._send(encoded)

    def _send(self, encoded: Encoded) -> None:
        engine = self._engine
        if engine is None:
            raise EngineClosedError("no session")
        engine.send(encoded)

    # -- reconnecting ------------------------------------------------------------------------------
    async def _reconnect_loop(self) -> None:
        def failed(exc: ConnectionError) -> None:
            self._reset_namespaces()
            for ns in self._namespaces.values():
                if ns.active:
                    self._handlers.trigger(ns.name, "connect_error", {"message": exc.message})

        try:
            attempts = await reconnect(
                self.backoff,
                self.reconnection_attempts,
                wanted=lambda: any(ns.active for ns in self._namespaces.values()),
                attempt=lambda: self._establish(initial=False),
                failed=failed,
                logger=self.logger,
            )
        finally:
            self._reconnect_task = None
        if attempts is not None:
            self._state = "connected"
            self.logger.info("reconnected after %d attempt(s)", attempts)
        elif self._state == "reconnecting":
            await self._shutdown("reconnection failed")

    # -- incoming ----------------------------------------------------------------------------------
    def _on_engine_message(self, engine: EngineClient, data: str | bytes) -> None:
        if engine is not self._engine:
            return
        try:
            packet = self._decoder.feed(data)
        except SocketIOProtocolError as exc:
            self.logger.warning("bad packet from the server: %s", exc)
            engine.terminate("parse error")
            return
        if packet is None:
            return
        ns = self._namespaces.get(packet.nsp)
        if ns is None:
            self.logger.debug("packet for unknown namespace %s ignored", packet.nsp)
            return
        ptype = packet.type
        if ptype == EVENT:
            self._on_event(engine, ns, packet)
        elif ptype == ACK:
            self._on_ack(ns, packet)
        elif ptype == CONNECT:
            self._on_connect(ns, packet)
        elif ptype == CONNECT_ERROR:
            self._on_connect_error(ns, packet)
        elif ptype == DISCONNECT:
            self._on_server_disconnect(ns)

    def _on_connect(self, ns: ClientNamespace, packet: Packet) -> None:
        data = packet.data
        if not isinstance(data, dict) or not isinstance(data.get("sid"), str):
            self._on_connect_error(ns, Packet(CONNECT_ERROR, ns.name, {"message": "CONNECT without a sid"}))
            return
        if ns.connected or not ns.active:
            return
        ns.connect_reply(data["sid"], data.get("pid"))
        for encoded in ns.drain_buffer():
            self._send(encoded)
        early, ns.early = ns.early, []
        for event in early:
            self._on_event(self._engine, ns, event)
        self.logger.info("namespace %s connected (sid %s%s)", ns.name, ns.sid, ", recovered" if ns.recovered else "")
        self._handlers.trigger(ns.name, "connect")
        ns.answer(True)

    def _on_connect_error(self, ns: ClientNamespace, packet: Packet) -> None:
        data = packet.data
        if not isinstance(data, dict):
            data = {"message": str(data)}
        self.logger.info("namespace %s refused: %s", ns.name, data)
        if not ns.connected:
            ns.active = False
            ns.drop_buffer("connection refused")
        self._handlers.trigger(ns.name, "connect_error", data)
        ns.answer(data)

    def _on_server_disconnect(self, ns: ClientNamespace) -> None:
        if ns.lost("io server disconnect", give_up=True):
            self._handlers.trigger(ns.name, "disconnect", "io server disconnect")
        if not any(ns.active for ns in self._namespaces.values()) and not self._establishing:
            self._handlers.spawn(self._shutdown("io server disconnect"))

    def _on_event(self, engine: EngineClient | None, ns: ClientNamespace, packet: Packet) -> None:
        if not ns.connected and ns.active:
            ns.hold_early(packet)
            return
        event, *args = packet.data
        if ns.pid is not None and args and isinstance(args[-1], str):
            ns.offset = args[-1]  # as the JS client: the last string argument of an event is the offset
        handler, catch_all = self._handlers.lookup(ns.name, event)
        if handler is None:
            self.logger.debug("no handler for %r on %s", event, ns.name)
            if packet.id is not None:
                self.logger.info("event %r wants an ack but has no handler: not answered", event)
            return
        if catch_all:
            args = [event, *args]
        self._handlers.spawn(self._run_event(engine, ns, handler, event, args, packet.id))

    async def _run_event(
        self,
        engine: EngineClient | None,
        ns: ClientNamespace,
        handler: Callable[..., Any],
        event: Any,
        args: list[Any],
        ack_id: int | None,
    ) -> None:
        try:
            result = handler(*args)
            if inspect.isawaitable(result):
                result = await result
        except Exception:
            self.logger.exception("handler for %r on %s failed", event, ns.name)
            return
        if ack_id is None:
            return
        if engine is None or engine is not self._engine or not ns.connected:
            self.logger.debug("ack %d for %r dropped: the session is gone", ack_id, event)
            return
        try:
            engine.send(self.parser.encode(Packet(ACK, ns.name, args_of(result), ack_id)))
        except (ValueError, TypeError):
            self.logger.exception("handler for %r returned a value that cannot be sent", event)
        except EngineClosedError:
            self.logger.debug("ack %d for %r dropped: the session is gone", ack_id, event)

    def _on_ack(self, ns: ClientNamespace, packet: Packet) -> None:
        assert packet.id is not None
        entry = ns.take_ack(packet.id)
        if entry is None:
            self.logger.debug("unexpected ack %d on %s", packet.id, ns.name)
            return
        args = list(packet.data)
        if entry.future is not None:
            if not entry.future.done():
                entry.future.set_result(args)
        elif entry.callback is not None:
            self._handlers.spawn(self._handlers.call(entry.callback, args))

    def _on_engine_close(self, engine: EngineClient, reason: str) -> None:
        if engine is not self._engine:
            return
        self._engine = None
        self._decoder.reset()
        for ns in self._namespaces.values():
            ns.answer(DisconnectedError(reason))
            if ns.connected:
                ns.lost(reason, give_up=False)
                self.logger.info("namespace %s disconnected: %s", ns.name, reason)
                self._handlers.trigger(ns.name, "disconnect", reason)
        if self._establishing or self._state in ("disconnecting", "disconnected"):
            return
        if self.reconnection and any(ns.active for ns in self._namespaces.values()):
            self._state = "reconnecting"
            self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect_loop())
        else:
            self._handlers.spawn(self._shutdown(reason))

    # -- emitting ------------------------------------------------------------------------------------
    async def emit(
        self, event: str, data: Any = None, namespace: str | None = None, callback: Callable[..., Any] | None = None
    ) -> None:
        """Send ``event`` with ``data`` (a tuple for several arguments). ``callback(*answer)`` (sync or
        async) runs when the server acknowledges. See the module doc for what happens while
        disconnected; ValueError/TypeError for data that cannot be sent or a reserved event name."""
        await self._emit(event, args_of(data), namespace or "/", callback, None)

    async def send(self, data: Any, namespace: str | None = None, callback: Callable[..., Any] | None = None) -> None:
        await self.emit("message", data, namespace, callback)

    async def call(self, event: str, data: Any = None, namespace: str | None = None, timeout: float | None = 60) -> Any:
        """Emit and return the server's answer (one value, a tuple for several, None for none).

        Raises :class:`~sioclient.exceptions.AckTimeoutError` (a TimeoutError) after ``timeout`` s and
        :class:`~sioclient.exceptions.DisconnectedError` if the connection drops before the answer."""
        nsp = namespace or "/"
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        ack_id = await self._emit(event, args_of(data), nsp, None, future)
        try:
            async with asyncio.timeout(timeout):
                args = await future
        except TimeoutError:
            ns = self._namespaces.get(nsp)
            if ns is not None and ack_id is not None:
                ns.forget(ack_id)
            raise AckTimeoutError(f"no answer to {event!r} on {nsp} within {timeout} s") from None
        return answer_of(args)

    async def _emit(
        self,
        event: str,
        args: list[Any],
        nsp: str,
        callback: Callable[..., Any] | None,
        future: asyncio.Future[list[Any]] | None,
    ) -> int | None:
        ns = self._namespaces.get(nsp)
        if ns is None or not ns.active:
            raise NotConnectedError(f"namespace {nsp} is not connected")
        if event in _CLIENT_RESERVED:
            raise ValueError(f"{event!r} is a reserved event name")
        wants_ack = callback is not None or future is not None
        # encoded before the id is taken: data that cannot be sent must not use up an id
        encoded = self.parser.encode(Packet(EVENT, nsp, [event, *args], ns.next_id if wants_ack else None))
        ack_id = ns.add_ack(Ack(callback, future)) if wants_ack else None
        engine = self._engine
        if ns.connected and engine is not None and engine.is_open:
            engine.send(encoded)
            await engine.drain()
            return ack_id
        ns.buffer_emit(ack_id, encoded, self.max_buffered_emits)
        return ack_id

    # -- disconnecting -----------------------------------------------------------------------------
    async def disconnect(self) -> None:
        """Leave every namespace, close the session and stop reconnecting."""
        if self._state == "disconnected":
            return
        self._state = "disconnecting"
        task = self._reconnect_task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._shutdown("io client disconnect")

    async def _close_engine(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.close()

    async def _shutdown(self, reason: str) -> None:
        """The end: every namespace inactive, the session closed, ``wait()`` released."""
        if self._state == "disconnected":
            return
        self._state = "disconnecting"
        engine = self._engine
        for ns in self._namespaces.values():
            if ns.connected and engine is not None and engine.is_open:
                engine.send(self.parser.encode(Packet(DISCONNECT, ns.name)))  # flushed by engine.close()
            was_connected = ns.lost(reason, give_up=True)
            ns.answer(DisconnectedError(reason))
            if was_connected:
                self._handlers.trigger(ns.name, "disconnect", reason)
        await self._close_engine()
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._state = "disconnected"
        if self._done is not None:
            self._done.set()

    async def wait(self) -> None:
        """Until the client is disconnected for good (not while it is reconnecting)."""
        if self._done is not None:
            await self._done.wait()

    async def sleep(self, seconds: float = 0) -> None:
        await asyncio.sleep(seconds)
