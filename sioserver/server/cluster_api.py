"""The cluster API of :class:`~sioserver.AsyncServer`.

With a multi-process adapter (``sioserver.RedisAdapter``) these act on every server of the cluster; with
the default memory adapter, on this one. ``sio.to(room)`` / ``sio.of(nsp)`` operators have the same
methods, restricted to their targets; ``.local`` restricts them to this server.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from ..exceptions import ConfigurationError
from .broadcast import BroadcastOperator, RemoteSocket

if TYPE_CHECKING:
    from .namespace import Handlers, Namespace, NamespaceMatcher
    from .server import AsyncServer

__all__ = ["ClusterAPI"]

H = TypeVar("H", bound=Callable[..., Any])


class ClusterAPI:
    """``fetch_sockets``, ``sockets_join`` / ``sockets_leave``, ``disconnect_sockets``, ``all_rooms``,
    ``server_count`` and server-side events, for the whole cluster."""

    if TYPE_CHECKING:
        logger: logging.Logger
        _server_events: dict[str, dict[str, Callable[..., Any]]]

        def _handlers(self, namespace: NamespaceMatcher | None) -> Handlers: ...

        def _namespace(self, name: str, create: bool = False, auth: Any = None) -> Namespace | None: ...

        def _cluster_namespace(self, name: str) -> Namespace | None: ...

    def _sio(self) -> AsyncServer:
        return self  # type: ignore[return-value]  # a mixin of AsyncServer only

    @property
    def local(self) -> BroadcastOperator:
        """An operator for this server's clients only (``await sio.local.emit(...)``)."""
        return BroadcastOperator(self._sio(), "/").local

    async def fetch_sockets(self, namespace: str = "/") -> list[RemoteSocket]:
        """Every socket of ``namespace``, on every server: :class:`~sioserver.server.broadcast.RemoteSocket`
        objects (``id``, ``handshake``, ``rooms``, ``data``, ``local``; ``emit``, ``call``, ``join``,
        ``leave``, ``disconnect``). Raises :class:`~sioserver.adapters.ClusterTimeoutError` when a
        server does not answer within the adapter's ``request_timeout``."""
        return await BroadcastOperator(self._sio(), namespace).fetch_sockets()

    async def sockets_join(self, rooms: str | Iterable[str], namespace: str = "/") -> None:
        """Make every socket of ``namespace``, on every server, join ``rooms``."""
        await BroadcastOperator(self._sio(), namespace).sockets_join(rooms)

    async def sockets_leave(self, rooms: str | Iterable[str], namespace: str = "/") -> None:
        """Make every socket of ``namespace``, on every server, leave ``rooms``."""
        await BroadcastOperator(self._sio(), namespace).sockets_leave(rooms)

    async def disconnect_sockets(self, close: bool = False, namespace: str = "/") -> None:
        """Disconnect every socket of ``namespace``, on every server (``close``: their connections too)."""
        await BroadcastOperator(self._sio(), namespace).disconnect_sockets(close)

    async def all_rooms(self, namespace: str = "/") -> set[str]:
        """The rooms of ``namespace`` on every server (sids included, as Node's ``allRooms()``)."""
        nsp = self._cluster_namespace(namespace)
        return set() if nsp is None else await nsp.adapter.all_rooms()

    async def server_count(self, namespace: str = "/") -> int:
        """How many servers share ``namespace`` (1 without a cluster adapter, or while Redis is away)."""
        nsp = self._cluster_namespace(namespace)
        return 1 if nsp is None else await nsp.adapter.server_count()

    def on_server_event(self, event: str, handler: H | None = None, namespace: str = "/") -> Any:
        """Register a handler for the events other servers send with :meth:`server_side_emit`.

        ::

            @sio.on_server_event("reload")
            async def reload(what):           # the arguments, as sent
                ...
                return {"reloaded": what}     # the answer server_side_emit_with_ack() collects

        ``"*"`` catches every event without a handler of its own (called with the event name
        first). The handler may be sync or async; its return value answers an emit with ack (an
        event nobody handles is answered ``None``, so that Node peers never wait for it). Events
        come from other sioserver processes, Node servers (``io.serverSideEmit``) and emitters.
        Registering creates the namespace, so that its adapter listens (as Node's ``io.of(nsp)``).
        """
        if not isinstance(namespace, str) or not namespace.startswith("/"):
            raise ConfigurationError(f"namespace {namespace!r} must start with '/'")

        def register(fn: H) -> H:
            self._server_events.setdefault(namespace, {})[event] = fn
            self._handlers(namespace)
            self._namespace(namespace, create=True)
            return fn

        return register if handler is None else register(handler)

    async def server_side_emit(self, event: str, *args: Any, namespace: str = "/") -> None:
        """Send ``event`` to the handlers registered with :meth:`on_server_event` on the *other*
        servers of the cluster (never this one), and to Node servers' ``io.on(event)``."""
        nsp = self._cluster_namespace(namespace)
        if nsp is not None:
            await nsp.adapter.server_side_emit([event, *args])

    async def server_side_emit_with_ack(self, event: str, *args: Any, timeout: float | None = None,
                                        namespace: str = "/") -> list[Any]:
        """As :meth:`server_side_emit`, and return the answer of every other server (one each).

        Raises :class:`~sioserver.adapters.ClusterTimeoutError` (its ``responses`` holds the answers
        that came) when some server does not answer within ``timeout`` (default: the adapter's
        ``request_timeout``). Without other servers the list is empty.
        """
        nsp = self._cluster_namespace(namespace)
        return [] if nsp is None else await nsp.adapter.server_side_emit_with_ack([event, *args], timeout)

    async def _server_event(self, namespace: str, data: list[Any]) -> Any:
        """Run the handler of a server-side event from another server; its return value is the answer."""
        handlers = self._server_events.get(namespace, {})
        event, args = data[0], data[1:]
        handler = handlers.get(event)
        if handler is None:
            handler = handlers.get("*")
            if handler is None:
                self.logger.debug("no handler for server-side event %r in %s", event, namespace)
                return None
            args = data
        result = handler(*args)
        if inspect.isawaitable(result):
            result = await result
        return result
