"""The Socket.IO server: ``sio = sioserver.AsyncServer()``, in the shape python-socketio users know."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from ..engine.http import HttpRequest, HttpResponse
from ..engine.server import ENGINE_OPTIONS, EngineServer
from ..engine.session import Session
from ..exceptions import ConfigurationError, DisconnectedError, UnknownSidError, check_options
from ..proto.socketio import EVENT, Packet, answer_of, args_of, make_parser
from .acks import AckWaiter, BroadcastAck, CallbackAck
from .adapter import Adapter, BroadcastOptions, MemoryAdapter
from .broadcast import BroadcastOperator
from .client import Client
from .client_v2 import client_for
from .cluster_api import ClusterAPI
from .compat import EnvironView, Manager, ServerCompat
from .namespace import AsyncNamespace, Handlers, Namespace, NamespaceMatcher
from .observer import Observer, ObserverSet, hot_hooks
from .options import SOCKETIO_OPTIONS, async_mode, logger_for, resolve_adapter, room_set, short
from .protocols import AdapterNamespace
from .recovery import RecoveryOptions
from .socket import Socket

if TYPE_CHECKING:
    from .metrics import Metrics

__all__ = ["SOCKETIO_OPTIONS", "AsyncServer"]

log = logging.getLogger("sioserver.server")

H = TypeVar("H", bound=Callable[..., Any])
AdapterFactory = Callable[[AdapterNamespace], Adapter]
"""``adapter=``: called once per namespace, with what an adapter may use of it."""

class _Engine(EngineServer):
    """The Engine.IO server underneath, with each session carrying its Socket.IO :class:`Client`."""

    def __init__(self, sio: AsyncServer, **options: Any) -> None:
        super().__init__(**options)
        self.sio = sio

    #: the handshake request is released once a namespace's connect handler has run (Socket.accept)
    release_after_accept = False

    async def accept(self, session: Session) -> bool:
        session.receiver = client_for(self.sio, session)  # its on_message / on_close get the session's events
        return True

    def endpoints(self) -> dict[str, Callable[[], HttpResponse]]:
        endpoints = super().endpoints()
        metrics = self.sio.metrics
        if metrics is not None:
            endpoints[metrics.path] = metrics.response
        return endpoints

    def health(self) -> tuple[bool, str]:
        ok, status = super().health()
        if ok:
            for nsp in list(self.sio._namespaces.values()):
                if not getattr(nsp.adapter, "healthy", True):
                    return False, f"adapter down: {nsp.name}"
        return ok, status

    def handle_open(self, session: Session) -> None:
        observer = self.sio.observer
        if observer is not None:
            observer.session_opened(session)

    def handle_upgrade(self, session: Session) -> None:
        observer = self.sio.observer
        if observer is not None:
            observer.session_upgraded(session)


class AsyncServer(ClusterAPI, ServerCompat):
    """A Socket.IO v5 server.

    Options: the Engine.IO ones (``ping_interval``, ``ping_timeout``, ``max_http_buffer_size``,
    ``cors_allowed_origins``, ``cors_credentials``, ``transports``, ``allow_upgrades``, ``cookie``,
    ``compression``, ``http_compression``, ``max_buffered_bytes``...) and ``connect_timeout``,
    ``serializer`` ("default", "msgpack" or a parser object), ``json``, ``always_connect``,
    ``async_handlers``, ``namespaces`` (extra namespaces accepted without handlers, or "*"),
    ``adapter`` (a factory taking a namespace), ``ack_timeout``, ``logger``, ``engineio_logger``.
    An unknown option raises :class:`~sioserver.exceptions.ConfigurationError` (a ``TypeError``)
    naming the closest valid one.

    python-socketio's attributes are there too: ``reason`` (the disconnect reasons), ``reserved_events``,
    ``environ`` (environs by sid), ``manager`` (``get_participants``, ``is_connected``, ``rooms``...).
    """

    def __init__(self, **options: Any) -> None:
        valid = {**ENGINE_OPTIONS, **SOCKETIO_OPTIONS}
        check_options(options, valid, "AsyncServer")
        opts = {**SOCKETIO_OPTIONS, **options}
        self.async_mode = async_mode(opts.pop("async_mode"))
        resolve_adapter(opts)
        # logger=True (or a Logger): one INFO line per event received and emitted, as python-socketio
        self.event_logger = logger_for(opts.pop("logger", None), "sioserver.server")
        self.logger = self.event_logger or log
        engine_logger = logger_for(opts.pop("engineio_logger", None), "sioserver.engine")
        engine_opts = {k: v for k, v in opts.items() if k in ENGINE_OPTIONS}
        engine_opts["logger"] = engine_logger
        self.eio = _Engine(self, **engine_opts)
        self.connect_timeout = float(opts["connect_timeout"])
        self.always_connect = bool(opts["always_connect"])
        self.async_handlers = bool(opts["async_handlers"])
        self.ack_timeout = float(opts["ack_timeout"])
        self.max_backlog = int(opts["max_backlog"])
        self.shutdown_grace = float(opts["shutdown_grace"])
        #: ``connection_state_recovery`` (:mod:`.recovery`), None when off
        self.recovery = RecoveryOptions.parse(opts["connection_state_recovery"])
        serializer = opts["serializer"]
        if isinstance(serializer, str):
            parser_opts: dict[str, Any] = {"max_depth": opts["max_depth"]}
            if serializer == "default":
                parser_opts.update(json=_default_json() if opts["json"] is None else opts["json"],
                                   max_attachments=opts["max_attachments"])
            self.parser = make_parser(serializer, **parser_opts)
        else:
            self.parser = serializer
        namespaces = opts["namespaces"]
        self._accept_any = namespaces == "*"
        self._extra_namespaces = set() if namespaces in (None, "*") else set(namespaces)
        self.adapter_factory: AdapterFactory = opts["adapter"] or MemoryAdapter
        self._specs: dict[str, Handlers] = {}
        self._dynamic: list[Handlers] = []
        self._namespaces: dict[str, Namespace] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        #: running coroutine handlers (shutdown waits for them): each task leaves it as its last step (eager.run)
        self._handler_tasks: set[asyncio.Task[Any]] = set()
        self._server_events: dict[str, dict[str, Callable[..., Any]]] = {}
        self._deferred_inits: list[Namespace] = []
        self.stats: Counter[str] = self.eio.stats
        self.environ = EnvironView(self)
        self.manager = Manager(self)
        #: what operations tools watch (:mod:`sioserver.server.observer`); None costs nothing
        self.observer: Observer | None = None
        self.observer_events, self.tap_received, self.tap_sent = hot_hooks([])  # per-message slots: None
        self._deferred_starts: list[Callable[[], Any]] = []
        #: the Prometheus metrics (``metrics=True``, or the path to serve them at instead of /metrics)
        self.metrics: Metrics | None = None
        if opts["metrics"]:
            from .metrics import Metrics  # noqa: PLC0415 - prometheus-client only for servers that ask

            path = opts["metrics"] if isinstance(opts["metrics"], str) else "/metrics"
            if not path.startswith("/"):
                raise ConfigurationError(f"metrics={path!r}: True, or a path starting with '/'")
            self.metrics = Metrics(self, path)

    # ---------------------------------------------------------------- registry

    def _handlers(self, namespace: NamespaceMatcher | None) -> Handlers:
        namespace = "/" if namespace is None else namespace
        if isinstance(namespace, str):
            if namespace != "*" and not namespace.startswith("/"):
                raise ConfigurationError(f"namespace {namespace!r} must start with '/'")
            handlers = self._specs.get(namespace)
            if handlers is None:
                handlers = self._specs[namespace] = Handlers(namespace)
            return handlers
        for handlers in self._dynamic:
            if handlers.matcher is namespace:
                return handlers
        handlers = Handlers(namespace)
        self._dynamic.append(handlers)
        return handlers

    def on(self, event: str, handler: H | None = None, namespace: NamespaceMatcher | None = None) -> Any:
        """Register an event handler: ``@sio.on("chat")``, ``@sio.on("*")`` (catch-all), or
        ``sio.on("chat", fn, namespace="/room")``. ``namespace`` may be a name, ``"*"``, a compiled
        regular expression or a callable ``(name, auth) -> bool`` (dynamic namespaces)."""
        handlers = self._handlers(namespace)

        def register(fn: H) -> H:
            handlers.set(event, fn)
            return fn

        return register if handler is None else register(handler)

    def event(self, *args: Any, **kwargs: Any) -> Any:
        """``@sio.event`` registers a handler under its function's name."""
        if len(args) == 1 and not kwargs and callable(args[0]):
            fn = args[0]
            self.on(fn.__name__, fn)
            return fn

        def register(fn: H) -> H:
            self.on(fn.__name__, fn, *args, **kwargs)
            return fn

        return register

    def use(self, middleware: H, namespace: NamespaceMatcher | None = None) -> H:
        """Run ``middleware(sid, environ, auth)`` before every connect of a namespace; it refuses by
        raising :class:`~sioserver.ConnectionRefusedError` (message and data reach the client) or
        returning False."""
        self._handlers(namespace).middlewares.append(middleware)
        return middleware

    def middleware(self, namespace: NamespaceMatcher | None = None) -> Callable[[H], H]:
        return lambda fn: self.use(fn, namespace)

    def register_namespace(self, namespace_handler: AsyncNamespace) -> None:
        """Register a class-based namespace (``on_<event>`` methods)."""
        if not isinstance(namespace_handler, AsyncNamespace):
            raise ConfigurationError("register_namespace() takes an AsyncNamespace instance")
        namespace_handler._set_server(self)
        handlers = self._handlers(namespace_handler.namespace)
        handlers.instance = namespace_handler
        if type(namespace_handler).trigger_event is not AsyncNamespace.trigger_event:
            # python-socketio's hook: an overridden trigger_event sees every event, connect included
            handlers.dispatch = namespace_handler.trigger_event
            for event in ("connect", "disconnect", "disconnecting"):
                handlers.set(event, functools.partial(namespace_handler.trigger_event, event))
        for event in () if handlers.dispatch is not None else ("connect", "disconnect", "disconnecting"):
            method = getattr(namespace_handler, "on_" + event, None)
            if method is not None:
                handlers.set(event, method)
        catch_all = getattr(namespace_handler, "on_*", None)
        if catch_all is not None:
            handlers.set("*", catch_all)

    # ---------------------------------------------------------------- namespaces

    def _namespace(self, name: str, create: bool = False, auth: Any = None) -> Namespace | None:
        nsp = self._namespaces.get(name)
        if nsp is not None or not create:
            return nsp
        handlers = self._specs.get(name)
        dynamic = False
        if handlers is None:
            dynamic = True
            for candidate in self._dynamic:
                try:
                    if candidate.matches(name, auth):
                        handlers = candidate
                        break
                except Exception:
                    self.logger.exception("namespace matcher %r failed", candidate.matcher)
            else:
                handlers = self._specs.get("*")
                if handlers is None:
                    if name == "/" or name in self._extra_namespaces:
                        handlers = self._handlers(name)
                        dynamic = False
                    elif self._accept_any:
                        # namespaces="*": a namespace with no handlers, gone with its last socket
                        handlers = Handlers(name)
        if handlers is None:
            return None
        nsp = self._namespaces[name] = Namespace(self, name, handlers, dynamic)
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # attach() before the loop runs: init() then waits for the app's startup
            self._deferred_inits.append(nsp)
        else:
            self._start_adapters()
            self.start_background_task(nsp.adapter.init)
        return nsp

    def observe(self, observer: Observer) -> None:
        """Give ``observer`` every hook of :class:`~sioserver.server.observer.Observer` from now on."""
        current = self.observer
        if current is None:
            self.observer = observer
        elif isinstance(current, ObserverSet):
            current.add(observer)
        else:
            self.observer = ObserverSet([current, observer])
        watching = self.observer.observers if isinstance(self.observer, ObserverSet) else [observer]
        self.observer_events, self.tap_received, self.tap_sent = hot_hooks(watching)

    def when_running(self, start: Callable[[], Any]) -> None:
        """Call ``start()`` now if the event loop runs, else when the front end starts serving."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self._deferred_starts.append(start)
        else:
            start()

    def instrument(self, auth: Any = None, mode: str = "development", read_only: bool = False,
                   server_id: str | None = None, namespace: str = "/admin",
                   server_stats_interval: float = 2) -> Any:
        """Serve the official Socket.IO Admin UI (``@socket.io/admin-ui``) in ``namespace``.

        python-socketio's signature: ``auth`` is ``{"username": .., "password": ..}``, a list of
        them, a callable ``(auth) -> bool`` (sync or async), or ``False`` (no authentication: say
        so explicitly). ``mode="production"`` sends only the server statistics; ``read_only``
        refuses the UI's actions. Returns the :class:`~sioserver.server.admin.AdminUI`.
        """
        from .admin import AdminUI  # noqa: PLC0415 - only servers that ask for it

        return AdminUI(self, auth=auth, mode=mode, read_only=read_only, server_id=server_id,
                       namespace=namespace, server_stats_interval=server_stats_interval)

    def _start_adapters(self) -> None:
        """Run the init() of adapters whose namespace was made before the event loop ran."""
        starts, self._deferred_starts = self._deferred_starts, []
        for start in starts:
            start()
        deferred, self._deferred_inits = self._deferred_inits, []
        for nsp in deferred:
            if self._namespaces.get(nsp.name) is nsp:
                self.start_background_task(nsp.adapter.init)

    def _cluster_namespace(self, name: str) -> Namespace | None:
        """The namespace to broadcast or run cluster operations in: with a multi-process adapter it is
        created when needed, since other servers may have clients in it even if this one has none."""
        nsp = self._namespaces.get(name)
        if nsp is None and self.adapter_factory is not MemoryAdapter:
            nsp = self._namespace(name, create=True)
        return nsp

    def adapter(self, namespace: str = "/") -> Adapter:
        """The adapter of ``namespace`` (as Node's ``io.of(namespace).adapter``), creating the namespace
        if the server serves it: ``sio.adapter().rooms``, ``sio.adapter("/chat").healthy``...
        Raises ``KeyError`` for a namespace this server does not serve."""
        nsp = self._namespace(namespace, create=True)
        if nsp is None:
            raise KeyError(f"namespace {namespace!r} is not served (no handlers, not in namespaces=)")
        return nsp.adapter

    def connect_namespace(self, client: Client, packet: Packet) -> None:
        nsp = self._namespace(packet.nsp, create=True, auth=packet.data)
        if nsp is None:
            self.stats["invalid_namespace"] += 1
            self.logger.info("client %s asked for unknown namespace %r", client.session.sid, short(packet.nsp))
            client.refuse_namespace(packet.nsp)
            return
        nsp.connect(client, packet)

    def remove_namespace(self, nsp: Namespace) -> None:
        if self._namespaces.get(nsp.name) is nsp:
            del self._namespaces[nsp.name]
            self.start_background_task(nsp.adapter.close)

    def _socket(self, sid: str, namespace: str | None) -> Socket:
        """The socket of ``sid`` (also while its disconnect handlers run); :class:`UnknownSidError`
        (a ``KeyError``, as python-socketio raises) when there is none."""
        nsp = self._namespaces.get(namespace or "/")
        socket = None if nsp is None else nsp.sockets.get(sid) or nsp.departing.get(sid)
        if socket is None:
            raise UnknownSidError(f"no client {sid!r} connected to namespace {namespace or '/'!r}")
        return socket

    # ------------------------------------------------------------------ emitting

    def to(self, room: str | Iterable[str], namespace: str = "/") -> BroadcastOperator:
        return BroadcastOperator(self, namespace).to(room)

    in_ = to

    def except_(self, room: str | Iterable[str], namespace: str = "/") -> BroadcastOperator:
        return BroadcastOperator(self, namespace).except_(room)

    def of(self, namespace: str) -> BroadcastOperator:
        """A broadcast operator for every client of ``namespace``."""
        return BroadcastOperator(self, namespace)

    def timeout(self, seconds: float, namespace: str = "/") -> BroadcastOperator:
        return BroadcastOperator(self, namespace).timeout(seconds)

    async def emit(
        self,
        event: str,
        data: Any = None,
        to: str | Iterable[str] | None = None,
        room: str | Iterable[str] | None = None,
        skip_sid: str | Iterable[str] | None = None,
        namespace: str | None = None,
        callback: Callable[..., Any] | None = None,
        *,
        exclude: str | Iterable[str] | None = None,
        volatile: bool = False,
        compress: bool = True,
        timeout: float | None = None,
        ignore_queue: bool = False,
    ) -> None:
        """Emit ``event`` to one client (``to=sid``), rooms, or everyone in ``namespace``.

        ``data`` as in python-socketio: a tuple for several arguments. ``skip_sid`` and ``exclude``
        leave out clients and rooms. ``callback(*answer)`` is called with each recipient's answer
        (this server's recipients); when ``timeout`` is given and a recipient does not answer in time,
        it is called once with an :class:`~sioserver.AckTimeoutError` instead (Node's
        ``socket.timeout(s).emit(..., cb)``). ``ignore_queue=True`` reaches this server's clients only.
        """
        namespace = namespace or "/"
        target = to if to is not None else room
        opts = BroadcastOptions(
            rooms=room_set(target),
            except_rooms=room_set(skip_sid) | room_set(exclude),
            volatile=volatile,
            compress=compress,
            local=ignore_queue,
        )
        if callback is not None:
            remote = None if ignore_queue or not isinstance(target, str) else self._remote_callbacks(target, namespace)
            if remote is not None:
                remote(target, event, args_of(data), CallbackAck(callback, event, str(target), timeout is not None),
                       timeout)
                return
            nsp = self._namespaces.get(namespace)
            if nsp is None:
                return
            for sid in self._local_targets(nsp, opts):
                socket = nsp.sockets.get(sid)
                if socket is not None:
                    socket.emit(event, args_of(data), callback, timeout, volatile, timeout_error=timeout is not None)
            return
        self._broadcast(namespace, event, args_of(data), opts)

    async def send(self, data: Any, to: str | Iterable[str] | None = None, room: str | Iterable[str] | None = None,
                   skip_sid: str | Iterable[str] | None = None, namespace: str | None = None,
                   callback: Callable[..., Any] | None = None, **kwargs: Any) -> None:
        await self.emit("message", data, to=to, room=room, skip_sid=skip_sid, namespace=namespace, callback=callback,
                        **kwargs)

    async def call(self, event: str, data: Any = None, to: str | None = None, sid: str | None = None,
                   namespace: str | None = None, timeout: float | None = 60, ignore_queue: bool = False) -> Any:
        """Emit to one client and return its answer; raises :class:`~sioserver.AckTimeoutError` after
        ``timeout`` seconds, :class:`~sioserver.DisconnectedError` if the client leaves first."""
        target = sid or to
        if target is None:
            raise ValueError("call() needs to=<sid>")
        remote = None if ignore_queue else self._remote_callbacks(target, namespace)
        if remote is not None:  # a client of another server, through an adapter that can ask it
            waiter: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
            remote(target, event, args_of(data), AckWaiter(waiter), timeout if timeout else self.ack_timeout)
            return answer_of(await waiter)
        socket = self._socket(target, namespace)
        if socket.disconnected:  # its disconnect handler is running
            raise DisconnectedError(socket.close_reason or "disconnected")
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        nsp = socket.namespace
        if nsp.handlers.any_outgoing:
            nsp.notify_outgoing((socket.sid,), event, args_of(data))
        if self.event_logger is not None:
            self.event_logger.info('emitting event "%s" to %s [%s]', short(str(event)), socket.sid, nsp.name)
        ack_id = nsp.next_ack_id()
        socket.expect_ack(ack_id, AckWaiter(future), timeout if timeout else self.ack_timeout)
        socket.send_packet(Packet(EVENT, nsp.name, [event, *args_of(data)], ack_id))
        return answer_of(await future)

    def _broadcast(self, namespace: str, event: str, args: list[Any], opts: BroadcastOptions) -> None:
        nsp = self._cluster_namespace(namespace)
        if nsp is None:
            return
        if nsp.handlers.any_outgoing:
            nsp.notify_outgoing(self._local_targets(nsp, opts), event, args)
        if self.event_logger is not None:
            self.event_logger.info('emitting event "%s" to %s [%s]', short(str(event)),
                                   ", ".join(sorted(opts.rooms)) or "all", namespace)
        nsp.adapter.broadcast(Packet(EVENT, namespace, [event, *args]), opts)

    async def _broadcast_with_ack(self, namespace: str, event: str, args: list[Any],
                                  opts: BroadcastOptions) -> list[Any]:
        nsp = self._cluster_namespace(namespace)
        if nsp is None:
            return []
        timeout = opts.timeout if opts.timeout is not None else self.ack_timeout
        opts = opts.but(timeout=timeout)
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        collector = BroadcastAck(future, 1 if opts.local else await nsp.adapter.server_count())
        nsp.adapter.broadcast_with_ack(Packet(EVENT, namespace, [event, *args]), opts,
                                       collector.client_count, collector)
        # asyncio.wait, not wait_for: on 3.11 wait_for can swallow a cancellation of the caller
        await asyncio.wait((future,), timeout=timeout)
        return future.result() if future.done() else list(collector.answers)

    # -------------------------------------------------------------------- rooms

    async def enter_room(self, sid: str, room: str, namespace: str | None = None) -> None:
        """Put ``sid`` in ``room``; with a multi-process adapter ``sid`` may be on another server."""
        remote = self._elsewhere(sid, namespace)
        if remote is not None:
            remote.adapter.add_sockets(BroadcastOptions(rooms=frozenset((sid,))), (room,))
            return
        socket = self._socket(sid, namespace)
        if socket.disconnected:
            return  # its disconnect handlers are running: it is in no room any more
        other = socket.namespace.sockets.get(room)
        if other is not None and other is not socket:
            raise ValueError(f"room {room!r} is the private room of another client")
        if self.event_logger is not None:
            self.event_logger.info("%s is entering room %s [%s]", sid, short(room), socket.namespace.name)
        socket.namespace.adapter.add_all(sid, (room,))

    async def leave_room(self, sid: str, room: str, namespace: str | None = None) -> None:
        remote = self._elsewhere(sid, namespace)
        if remote is not None:
            remote.adapter.del_sockets(BroadcastOptions(rooms=frozenset((sid,))), (room,))
            return
        try:
            socket = self._socket(sid, namespace)
        except UnknownSidError:
            return  # as python-socketio: leaving is a no-op for a client that is gone
        if room == sid:
            raise ValueError("a client cannot leave its own room")
        socket.namespace.adapter.delete(sid, room)

    async def close_room(self, room: str, namespace: str | None = None) -> None:
        nsp = self._namespaces.get(namespace or "/")
        if nsp is not None:
            nsp.adapter.del_sockets(BroadcastOptions(rooms=frozenset((room,))), (room,))

    # --------------------------------------------------------------- lifecycle

    async def disconnect(self, sid: str, namespace: str | None = None, ignore_queue: bool = False) -> None:
        """Disconnect a client from a namespace (it sees "io server disconnect"); with a
        multi-process adapter the client may be on another server."""
        remote = None if ignore_queue else self._elsewhere(sid, namespace)
        if remote is not None:
            remote.adapter.disconnect_sockets(BroadcastOptions(rooms=frozenset((sid,))), False)
            return
        with contextlib.suppress(DisconnectedError):
            self._socket(sid, namespace).disconnect_from_server()

    def transport(self, sid: str, namespace: str | None = None) -> str:
        return self._socket(sid, namespace).client.session.transport

    async def handle_request(self, request: HttpRequest) -> HttpResponse | None:
        return await self.eio.handle_request(request)

    def attach(self, app: Any, socketio_path: str = "socket.io") -> None:
        """Serve on an aiohttp ``web.Application`` at ``/<socketio_path>/``, next to the app's routes
        (:func:`sioserver.integrations.aiohttp.attach_server`)."""
        from ..integrations.aiohttp import attach_server  # noqa: PLC0415 - loaded only when asked for

        attach_server(self, app, socketio_path)

    async def startup(self) -> None:
        """What a front end calls once its event loop runs, before serving: every namespace registered
        so far exists and its adapter is started (a cluster adapter subscribes)."""
        self.prepare()
        self._start_adapters()

    def prepare(self) -> None:
        """Create the registered namespaces now (their adapters start at :meth:`startup`)."""
        for name in self._specs:
            if name != "*":
                self._namespace(name, create=True)

    async def close_adapters(self) -> None:
        """Close the adapter of every namespace (:meth:`shutdown` does it too; closing twice is harmless)."""
        for nsp in list(self._namespaces.values()):
            await nsp.adapter.close()

    async def shutdown(self, grace: float | None = None) -> None:
        """Stop gracefully: new handshakes get 503; clients are disconnected with the reason
        "server shutting down", spread over ``grace`` seconds (default: the ``shutdown_grace`` option)
        so they do not all reconnect elsewhere at once; pending acks fail; running handlers get up to
        ``max(grace, 5)`` seconds to finish; adapters are closed. aiohttp's shutdown (SIGTERM under
        ``sioserver.run`` or ``web.run_app``) calls this."""
        grace = self.shutdown_grace if grace is None else grace
        if self.observer is not None:
            self.observer.shutdown()
        await self.eio.shutdown(grace)  # closing sessions closes their sockets with SERVER_SHUTDOWN
        if self._handler_tasks:
            await asyncio.wait(list(self._handler_tasks), timeout=max(grace, 5.0))
        await self.close_adapters()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)

    def start_background_task(self, target: Callable[..., Awaitable[Any]], *args: Any,
                              **kwargs: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(target(*args, **kwargs))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.logger.error("background task failed: %r", task.exception(), exc_info=task.exception())

    async def sleep(self, seconds: float = 0) -> None:
        await asyncio.sleep(seconds)


def _default_json() -> Any:
    """orjson when installed (a dependency of the default install: 5-12% more echoes per CPU-second in
    bench/), else the standard library. Both write what ``JSON.parse`` reads: the parser falls back to
    the standard library for what orjson refuses (see :class:`~sioserver.proto.socketio.JSONParser`)."""
    try:
        import orjson  # noqa: PLC0415 - optional at import time
    except ImportError:
        return None
    return orjson
