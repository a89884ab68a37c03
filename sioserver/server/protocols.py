"""The seams between the Socket.IO server and its adapters, declared.

An adapter (the in-memory one, the Redis ones, one of your own) is handed an
:class:`AdapterNamespace` and reaches its sockets as :class:`Recipient` objects; acknowledgements
are awaited through :class:`AckHandler` objects. Nothing else of the server is an adapter's business:
an adapter that needs a private name of ``Namespace``, ``Socket`` or ``AsyncServer`` is a bug here.

::

    namespace.name                     "/chat"
    namespace.sockets[sid]             -> Recipient (this process's sockets only)
    namespace.encode(packet)           the packet in the server's serializer, ready for write_shared
    namespace.next_ack_id()            the id a broadcast with acks uses for every recipient
    namespace.ack_timeout              the deadline of an ack that has none of its own (seconds)
    namespace.server_side_event(data, respond)
                                       run the handler of a server-side event another server sent
    namespace.server                   an opaque key: one per AsyncServer (what a per-server link is keyed by)
    namespace.start_background_task(fn, *args)
    namespace.observer                 the operations hooks (sioserver.server.observer), or None
    namespace.recovery                 RecoveryOptions when connection state recovery is on, else None
    namespace.stats                    the server's counters (a collections.Counter) an adapter may add to

    recipient.sid / rooms / handshake / session
    recipient.write_shared(message, volatile)
    recipient.expect_ack(ack_id, handler, timeout)
    recipient.disconnect_from_server(close)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from ..proto.socketio import Encoded, Packet

if TYPE_CHECKING:
    from .adapter import SharedMessage
    from .observer import Observer
    from .recovery import RecoveryOptions

__all__ = ["AckHandler", "AdapterNamespace", "Recipient", "ServerEventResponder"]


class AckHandler(Protocol):
    """What waits for one client's acknowledgement (``Recipient.expect_ack``).

    Exactly one of the three is called, once: the answer, the deadline passing, or the socket going
    away first (with the disconnect reason).
    """

    def __call__(self, answer: list[Any]) -> None:
        """The client answered; ``answer`` is the ACK packet's argument list."""

    def expire(self) -> None:
        """No answer within the deadline."""

    def fail(self, reason: str) -> None:
        """The socket disconnected before answering."""


class Recipient(Protocol):
    """A socket of this process, as an adapter sees it."""

    @property
    def sid(self) -> str: ...

    @property
    def rooms(self) -> set[str]: ...

    @property
    def handshake(self) -> dict[str, Any]:
        """Node's ``socket.handshake`` shape (what ``fetch_sockets()`` answers carry)."""

    @property
    def session(self) -> dict[str, Any]:
        """The user session (``socket.data`` in Node)."""

    def write_shared(self, shared: SharedMessage, volatile: bool) -> None:
        """Write one encoded packet shared by many recipients (encoded once, framed once)."""

    def expect_ack(self, ack_id: int, handler: AckHandler, timeout: float | None) -> None:
        """Wait for the ack ``ack_id`` (``timeout`` None: the server's ``ack_timeout``)."""

    def disconnect_from_server(self, close: bool = False) -> None:
        """Disconnect from the namespace (the client is told); ``close``: the whole connection too."""


ServerEventResponder = Callable[[Any], None]
"""Called once with the answer of a server-side event's handler (``None`` when nobody handles it)."""


class AdapterNamespace(Protocol):
    """What an adapter may use of its namespace."""

    @property
    def name(self) -> str: ...

    @property
    def server(self) -> object:
        """The server this namespace belongs to: only an identity (hashable, weakly referenceable)."""

    @property
    def sockets(self) -> Mapping[str, Recipient]: ...

    @property
    def ack_timeout(self) -> float: ...

    def next_ack_id(self) -> int: ...

    def encode(self, packet: Packet) -> Encoded: ...

    def server_side_event(self, data: list[Any], respond: ServerEventResponder | None) -> None:
        """Run the handler of ``[event, *args]`` sent by another server; ``respond(answer)`` follows."""

    def start_background_task(self, target: Callable[..., Awaitable[Any]], *args: Any) -> Any: ...

    @property
    def observer(self) -> Observer | None:
        """The operations hooks (Admin UI, metrics): room joins and leaves, broadcasts. None: unobserved."""

    @property
    def recovery(self) -> RecoveryOptions | None:
        """``connection_state_recovery`` (:class:`~.recovery.RecoveryOptions`), or None when it is off:
        then an adapter keeps no session and adds no offset."""

    @property
    def stats(self) -> Counter[str]:
        """The server's counters (``sio.stats``): an adapter counts what it keeps there."""
