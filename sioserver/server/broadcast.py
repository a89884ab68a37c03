"""Broadcast operators: ``sio.to("room").except_("muted").timeout(5).emit(...)``.

Operators are immutable: every call returns a new one, so a prepared operator can be reused safely.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..exceptions import AckTimeoutError
from .adapter import BroadcastOptions

if TYPE_CHECKING:
    from .server import AsyncServer

__all__ = ["BroadcastOperator", "RemoteSocket"]


def _rooms(rooms: str | Iterable[str] | None) -> frozenset[str]:
    if rooms is None:
        return frozenset()
    if isinstance(rooms, str):
        return frozenset((rooms,))
    return frozenset(rooms)


class BroadcastOperator:
    """Targets (rooms, excluded rooms) and flags for a broadcast in one namespace."""

    __slots__ = ("_namespace", "_opts", "_server")

    def __init__(self, server: AsyncServer, namespace: str = "/", opts: BroadcastOptions | None = None) -> None:
        self._server = server
        self._namespace = namespace
        self._opts = opts or BroadcastOptions()

    def _with(self, **changes: Any) -> BroadcastOperator:
        return BroadcastOperator(self._server, self._namespace, self._opts.but(**changes))

    def to(self, rooms: str | Iterable[str]) -> BroadcastOperator:
        """Add target rooms (a sid is a room too)."""
        return self._with(rooms=self._opts.rooms | _rooms(rooms))

    in_ = to

    def except_(self, rooms: str | Iterable[str]) -> BroadcastOperator:
        """Exclude everyone in these rooms."""
        return self._with(except_rooms=self._opts.except_rooms | _rooms(rooms))

    @property
    def volatile(self) -> BroadcastOperator:
        """Drop the packet for clients that are not ready to receive it right now."""
        return self._with(volatile=True)

    @property
    def local(self) -> BroadcastOperator:
        """Only this process's clients (with a multi-process adapter)."""
        return self._with(local=True)

    def compress(self, compress: bool) -> BroadcastOperator:
        return self._with(compress=compress)

    def timeout(self, seconds: float) -> BroadcastOperator:
        """The deadline of :meth:`emit_with_ack`."""
        return self._with(timeout=seconds)

    @property
    def options(self) -> BroadcastOptions:
        return self._opts

    async def emit(self, event: str, *args: Any) -> None:
        self._server._broadcast(self._namespace, event, list(args), self._opts)

    async def send(self, data: Any) -> None:
        await self.emit("message", data)

    async def emit_with_ack(self, event: str, *args: Any) -> list[Any]:
        """Emit to every target and return the answers of those that answered before the timeout."""
        return await self._server._broadcast_with_ack(self._namespace, event, list(args), self._opts)

    async def fetch_sockets(self) -> list[RemoteSocket]:
        """The targeted sockets, on this server and (with a cluster adapter) every other one."""
        nsp = self._server._cluster_namespace(self._namespace)
        if nsp is None:
            return []
        found = await nsp.adapter.fetch_sockets(self._opts)
        return [RemoteSocket(self._server, self._namespace, item) for item in found]

    async def sockets_join(self, rooms: str | Iterable[str]) -> None:
        """Make the targeted sockets, wherever they are connected, join ``rooms``."""
        nsp = self._server._cluster_namespace(self._namespace)
        if nsp is not None:
            nsp.adapter.add_sockets(self._opts, _rooms(rooms))

    async def sockets_leave(self, rooms: str | Iterable[str]) -> None:
        """Make the targeted sockets, wherever they are connected, leave ``rooms``."""
        nsp = self._server._cluster_namespace(self._namespace)
        if nsp is not None:
            nsp.adapter.del_sockets(self._opts, _rooms(rooms))

    async def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect the targeted sockets (``close`` also closes their whole connection)."""
        nsp = self._server._cluster_namespace(self._namespace)
        if nsp is not None:
            nsp.adapter.disconnect_sockets(self._opts, close)


class RemoteSocket:
    """A socket as :meth:`BroadcastOperator.fetch_sockets` returns it, here or on another server.

    ``id`` (also ``sid``), ``handshake`` (Node's shape: headers, address, query, auth...),
    ``rooms`` (a set) and ``data`` (the socket's session; a copy for a socket of another server).
    ``local`` tells whether the socket is connected to this server. The methods act on the socket
    wherever it is (through the adapter), as Node's ``RemoteSocket``.
    """

    __slots__ = ("_server", "data", "handshake", "id", "local", "namespace", "rooms")

    def __init__(self, server: AsyncServer, namespace: str, item: Any) -> None:
        self._server = server
        self.namespace = namespace
        if isinstance(item, dict):
            self.id: str = str(item.get("id"))
            handshake = item.get("handshake")
            self.handshake: dict[str, Any] = handshake if isinstance(handshake, dict) else {}
            rooms = item.get("rooms")
            self.rooms: set[str] = {str(r) for r in rooms} if isinstance(rooms, list) else set()
            self.data: Any = item.get("data")
            self.local = False
        else:  # a local Socket
            self.id = item.sid
            self.handshake = item.handshake
            self.rooms = item.rooms
            self.data = item.session
            self.local = True

    def __repr__(self) -> str:
        return f"<RemoteSocket {self.id} {self.namespace}{' local' if self.local else ''}>"

    @property
    def sid(self) -> str:
        return self.id

    def _operator(self) -> BroadcastOperator:
        operator = BroadcastOperator(self._server, self.namespace).to(self.id)
        return operator.local if self.local else operator

    async def emit(self, event: str, *args: Any) -> None:
        await self._operator().emit(event, *args)

    async def call(self, event: str, *args: Any, timeout: float | None = None) -> Any:
        """Emit and return the client's answer (its first argument); :class:`AckTimeoutError` if none."""
        operator = self._operator()
        if timeout is not None:
            operator = operator.timeout(timeout)
        answers = await operator.emit_with_ack(event, *args)
        if not answers:
            raise AckTimeoutError(f"socket {self.id} did not acknowledge {event!r} in time")
        return answers[0]

    async def join(self, rooms: str | Iterable[str]) -> None:
        await self._operator().sockets_join(rooms)

    async def leave(self, rooms: str | Iterable[str]) -> None:
        await self._operator().sockets_leave(rooms)

    async def disconnect(self, close: bool = False) -> None:
        await self._operator().disconnect_sockets(close)
