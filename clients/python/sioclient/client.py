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

Reconnection
------------
When the Engine.IO session ends for any reason other than ``disconnect()``, a server-side DISCONNECT or
a refusal, the client reconnects: attempt ``n`` (0, 1, ...) waits a time drawn uniformly from
``[(1 - randomization_factor) * c, c]`` with ``c = min(reconnection_delay_max, reconnection_delay * 2**n)``
(see :class:`Backoff`), then makes a new Engine.IO session and sends CONNECT for every active
namespace, calling ``auth`` again when it is callable. ``reconnection_attempts=0`` tries forever. A
namespace the server refuses on reconnect becomes inactive (its ``connect_error`` handler runs); when
none is left the client stops. Each failed attempt calls ``connect_error({"message": ...})``.

Disconnect reasons (as the JavaScript client names them): "io server disconnect", "io client
disconnect", "ping timeout", "transport close", "transport error", "parse error".
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import random
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
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
from .exceptions import (
    AckTimeoutError,
    ConnectionError,
    DisconnectedError,
    EmitBufferFullError,
    NotConnectedError,
)

__all__ = ["CLIENT_OPTIONS", "AsyncClient", "Backoff"]

H = TypeVar("H", bound=Callable[..., Any])
Auth = Mapping[str, Any] | Callable[[], Any] | None

#: AsyncClient options and their defaults (times in seconds).
CLIENT_OPTIONS: dict[str, Any] = {
    "reconnection": True,
    "reconnection_attempts": 0,
    "reconnection_delay": 1.0,
    "reconnection_delay_max": 5.0,
    "randomization_factor": 0.5,
    "serializer": "default",
    "logger": False,
    "request_timeout": 5.0,
    "max_buffered_emits": 100,
    "http_session": None,
    "ssl_verify": True,
    "websocket_compression": True,
}
_CONNECT_OPTIONS = ("headers", "auth", "transports", "namespaces", "socketio_path", "wait_timeout", "retry")
_CLIENT_RESERVED = frozenset({"connect", "connect_error", "disconnect"})

log = logging.getLogger("sioclient")


class Backoff:
    """Exponential backoff with jitter.

    Attempt ``n`` (from 0) may wait up to ``c(n) = min(delay_max, delay * 2**n)``; the wait is drawn
    uniformly from ``[(1 - randomization_factor) * c(n), c(n)]``. ``randomization_factor=1`` is
    "full jitter" (anywhere from 0 to the ceiling), 0 no jitter (exactly the ceiling), the default
    0.5 keeps every wait within the upper half. No wait is ever longer than ``delay_max``.
    """

    def __init__(
        self,
        delay: float = 1.0,
        delay_max: float = 5.0,
        randomization_factor: float = 0.5,
        *,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if delay < 0 or delay_max < delay:
            raise ConfigurationError("need 0 <= reconnection_delay <= reconnection_delay_max")
        if not 0 <= randomization_factor <= 1:
            raise ConfigurationError("randomization_factor must be between 0 and 1")
        self.delay = float(delay)
        self.delay_max = float(delay_max)
        self.randomization_factor = float(randomization_factor)
        self._rng = rng

    def ceiling(self, attempt: int) -> float:
        return min(self.delay_max, math.ldexp(self.delay, min(attempt, 64)))  # delay * 2**attempt

    def bounds(self, attempt: int) -> tuple[float, float]:
        """The interval attempt ``attempt``'s wait is drawn from."""
        high = self.ceiling(attempt)
        return high * (1 - self.randomization_factor), high

    def duration(self, attempt: int) -> float:
        low, high = self.bounds(attempt)
        return high - (high - low) * float(self._rng())


@dataclass(slots=True)
class _Ack:
    callback: Callable[..., Any] | None
    future: asyncio.Future[list[Any]] | None


class _Namespace:
    """The client's side of one namespace."""

    __slots__ = ("acks", "active", "buffer", "connected", "name", "next_id", "sid", "waiter")

    def __init__(self, name: str) -> None:
        self.name = name
        self.sid: str | None = None
        self.connected = False
        self.active = False  # should be connected: connecting, connected or reconnecting
        self.buffer: deque[tuple[int | None, Encoded]] = deque()
        self.acks: dict[int, _Ack] = {}
        self.next_id = 0
        self.waiter: asyncio.Future[Any] | None = None  # the answer to our CONNECT


def _make_logger(logger: Any) -> logging.Logger:
    if isinstance(logger, logging.Logger):
        return logger
    if logger is True:
        log.setLevel(logging.INFO)
        if not log.hasHandlers():
            log.addHandler(logging.StreamHandler())
    elif logger is not False:
        raise ConfigurationError("logger must be True, False or a logging.Logger")
    return log


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
        self.logger = _make_logger(opts["logger"])
        self.request_timeout = float(opts["request_timeout"])
        self.max_buffered_emits = int(opts["max_buffered_emits"])
        if self.max_buffered_emits < 0:
            raise ConfigurationError("max_buffered_emits must be >= 0")
        self._external_session: aiohttp.ClientSession | None = opts["http_session"]
        self._ssl = bool(opts["ssl_verify"])
        self._compression = bool(opts["websocket_compression"])
        self.handlers: dict[str, dict[Any, Callable[..., Any]]] = {}
        self._namespaces: dict[str, _Namespace] = {}
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
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- handlers ----------------------------------------------------------------------------------
    def on(self, event: str, handler: H | None = None, namespace: str | None = None) -> Any:
        """Register ``handler`` for ``event`` (decorator when ``handler`` is omitted). ``"*"`` catches
        events without a handler of their own and gets the event name first. Reserved: ``connect()``,
        ``connect_error(data)``, ``disconnect(reason)``."""
        nsp = namespace or "/"

        def register(fn: H) -> H:
            self.handlers.setdefault(nsp, {})[event] = fn
            return fn

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
            check_options(unknown, _CONNECT_OPTIONS, "AsyncClient.connect()")
        if self._state != "disconnected":
            raise ConnectionError("already connected (or connecting)")
        if isinstance(transports, str):
            transports = [transports]
        chosen = list(transports) if transports is not None else list(TRANSPORTS)
        if not chosen or any(t not in TRANSPORTS for t in chosen) or len(set(chosen)) != len(chosen):
            raise ValueError(f"transports must be a non-empty list drawn from {list(TRANSPORTS)}, not {chosen!r}")
        if isinstance(namespaces, str):
            namespaces = [namespaces]
        if namespaces is None:
            names = sorted(n for n in self.handlers if n != "*") or ["/"]
        else:
            names = list(dict.fromkeys(namespaces))
        for name in names:
            if not isinstance(name, str) or not name.startswith("/"):
                raise ValueError(f"namespace must start with '/': {name!r}")
        self._url = url
        self._headers = dict(headers or {})
        self._auth = auth
        self._transports = chosen
        self._path = socketio_path
        self._wait_timeout = float(wait_timeout)
        self._namespaces = {name: _Namespace(name) for name in names}
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

    async def _auth_payload(self) -> Any:
        auth = self._auth
        if callable(auth):
            try:
                auth = auth()
                if inspect.isawaitable(auth):
                    auth = await auth
            except Exception as exc:
                raise ConnectionError(f"the auth callable failed: {exc!r}") from exc
        if auth is not None and not isinstance(auth, Mapping):
            raise ConnectionError(f"auth must be a dict (or return one), not {type(auth).__name__}")
        return dict(auth) if auth is not None else None

    async def _send_connect(self, ns: _Namespace) -> None:
        data = await self._auth_payload()
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
        attempt = 0
        try:
            while any(ns.active for ns in self._namespaces.values()):
                if self.reconnection_attempts and attempt >= self.reconnection_attempts:
                    self.logger.warning("giving up after %d reconnection attempts", attempt)
                    break
                delay = self.backoff.duration(attempt)
                attempt += 1
                self.logger.info("reconnection attempt %d in %.2f s", attempt, delay)
                await asyncio.sleep(delay)
                try:
                    await self._establish(initial=False)
                except ConnectionError as exc:
                    self.logger.info("reconnection attempt %d failed: %s", attempt, exc.message)
                    self._reset_namespaces()
                    for ns in self._namespaces.values():
                        if ns.active:
                            self._trigger(ns.name, "connect_error", {"message": exc.message})
                    continue
                self._state = "connected"
                self.logger.info("reconnected after %d attempt(s)", attempt)
                return
        finally:
            self._reconnect_task = None
        if self._state == "reconnecting":
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

    def _on_connect(self, ns: _Namespace, packet: Packet) -> None:
        data = packet.data
        if not isinstance(data, dict) or not isinstance(data.get("sid"), str):
            self._on_connect_error(ns, Packet(CONNECT_ERROR, ns.name, {"message": "CONNECT without a sid"}))
            return
        if ns.connected or not ns.active:
            return
        ns.sid = data["sid"]
        ns.connected = True
        while ns.buffer:
            _, encoded = ns.buffer.popleft()
            self._send(encoded)
        self.logger.info("namespace %s connected (sid %s)", ns.name, ns.sid)
        self._trigger(ns.name, "connect")
        if ns.waiter is not None and not ns.waiter.done():
            ns.waiter.set_result(True)

    def _on_connect_error(self, ns: _Namespace, packet: Packet) -> None:
        data = packet.data
        if not isinstance(data, dict):
            data = {"message": str(data)}
        self.logger.info("namespace %s refused: %s", ns.name, data)
        if not ns.connected:
            ns.active = False
            self._drop_buffer(ns, "connection refused")
        self._trigger(ns.name, "connect_error", data)
        if ns.waiter is not None and not ns.waiter.done():
            ns.waiter.set_result(data)

    def _on_server_disconnect(self, ns: _Namespace) -> None:
        was_connected = ns.connected
        ns.connected = False
        ns.active = False
        ns.sid = None
        self._fail_acks(ns, "io server disconnect")
        self._drop_buffer(ns, "io server disconnect")
        if was_connected:
            self._trigger(ns.name, "disconnect", "io server disconnect")
        if not any(ns.active for ns in self._namespaces.values()) and not self._establishing:
            self._spawn(self._shutdown("io server disconnect"))

    def _handler(self, nsp: str, event: Any) -> tuple[Callable[..., Any] | None, bool]:
        handlers = self.handlers.get(nsp)
        if handlers is None:
            return None, False
        handler = handlers.get(event)
        if handler is not None:
            return handler, False
        return handlers.get("*"), True

    def _on_event(self, engine: EngineClient, ns: _Namespace, packet: Packet) -> None:
        event, *args = packet.data
        handler, catch_all = self._handler(ns.name, event)
        if handler is None:
            self.logger.debug("no handler for %r on %s", event, ns.name)
            if packet.id is not None:
                self.logger.info("event %r wants an ack but has no handler: not answered", event)
            return
        if catch_all:
            args = [event, *args]
        self._spawn(self._run_event(engine, ns, handler, event, args, packet.id))

    async def _run_event(
        self,
        engine: EngineClient,
        ns: _Namespace,
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
        if engine is not self._engine or not ns.connected:
            self.logger.debug("ack %d for %r dropped: the session is gone", ack_id, event)
            return
        try:
            engine.send(self.parser.encode(Packet(ACK, ns.name, args_of(result), ack_id)))
        except (ValueError, TypeError):
            self.logger.exception("handler for %r returned a value that cannot be sent", event)
        except EngineClosedError:
            self.logger.debug("ack %d for %r dropped: the session is gone", ack_id, event)

    def _on_ack(self, ns: _Namespace, packet: Packet) -> None:
        assert packet.id is not None
        entry = ns.acks.pop(packet.id, None)
        if entry is None:
            self.logger.debug("unexpected ack %d on %s", packet.id, ns.name)
            return
        args = list(packet.data)
        if entry.future is not None:
            if not entry.future.done():
                entry.future.set_result(args)
        elif entry.callback is not None:
            self._spawn(self._call(entry.callback, args))

    async def _call(self, fn: Callable[..., Any], args: list[Any]) -> None:
        try:
            result = fn(*args)
            if inspect.isawaitable(result):
                await result
        except Exception:
            self.logger.exception("callback %r failed", fn)

    def _on_engine_close(self, engine: EngineClient, reason: str) -> None:
        if engine is not self._engine:
            return
        self._engine = None
        self._decoder.reset()
        for ns in self._namespaces.values():
            if ns.waiter is not None and not ns.waiter.done():
                ns.waiter.set_result(DisconnectedError(reason))
            if ns.connected:
                ns.connected = False
                ns.sid = None
                self._fail_acks(ns, reason)
                self.logger.info("namespace %s disconnected: %s", ns.name, reason)
                self._trigger(ns.name, "disconnect", reason)
        if self._establishing or self._state in ("disconnecting", "disconnected"):
            return
        if self.reconnection and any(ns.active for ns in self._namespaces.values()):
            self._state = "reconnecting"
            self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect_loop())
        else:
            self._spawn(self._shutdown(reason))

    # -- handlers' execution -----------------------------------------------------------------------
    def _trigger(self, nsp: str, event: str, *args: Any) -> None:
        handler = self.handlers.get(nsp, {}).get(event)
        if handler is None:
            return
        if event == "disconnect" and args:
            with contextlib.suppress(TypeError, ValueError):
                inspect.signature(handler).bind(*args)
                self._spawn(self._call(handler, list(args)))
                return
            self._spawn(self._call(handler, []))  # a disconnect handler that takes no reason
            return
        self._spawn(self._call(handler, list(args)))

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- acks ----------------------------------------------------------------------------------------
    def _fail_acks(self, ns: _Namespace, reason: str) -> None:
        """Acks that were sent can never be answered now; buffered packets keep theirs."""
        buffered = {ack_id for ack_id, _ in ns.buffer}
        for ack_id in [i for i in ns.acks if i not in buffered]:
            entry = ns.acks.pop(ack_id)
            if entry.future is not None:
                if not entry.future.done():
                    entry.future.set_exception(DisconnectedError(reason))
            else:
                self.logger.debug("ack %d on %s forgotten: %s", ack_id, ns.name, reason)

    def _drop_buffer(self, ns: _Namespace, reason: str) -> None:
        for ack_id, _ in ns.buffer:
            entry = ns.acks.pop(ack_id, None) if ack_id is not None else None
            if entry is not None and entry.future is not None and not entry.future.done():
                entry.future.set_exception(DisconnectedError(reason))
        if ns.buffer:
            self.logger.info("%d buffered packet(s) on %s dropped: %s", len(ns.buffer), ns.name, reason)
        ns.buffer.clear()

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
                ns.acks.pop(ack_id, None)
                ns.buffer = deque(entry for entry in ns.buffer if entry[0] != ack_id)
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
        ack_id = None
        if callback is not None or future is not None:
            ack_id = ns.next_id
        encoded = self.parser.encode(Packet(EVENT, nsp, [event, *args], ack_id))
        if ack_id is not None:
            ns.next_id += 1
            ns.acks[ack_id] = _Ack(callback, future)
        engine = self._engine
        if ns.connected and engine is not None and engine.is_open:
            engine.send(encoded)
            await engine.drain()
            return ack_id
        if len(ns.buffer) >= self.max_buffered_emits:
            if ack_id is not None:
                del ns.acks[ack_id]
            raise EmitBufferFullError(
                f"namespace {nsp} is reconnecting and {len(ns.buffer)} packets are buffered already"
            )
        ns.buffer.append((ack_id, encoded))
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
            was_connected = ns.connected
            ns.connected = False
            ns.active = False
            ns.sid = None
            self._fail_acks(ns, reason)
            self._drop_buffer(ns, reason)
            if ns.waiter is not None and not ns.waiter.done():
                ns.waiter.set_result(DisconnectedError(reason))
            if was_connected:
                self._trigger(ns.name, "disconnect", reason)
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
