"""What operations tools (the Admin UI, metrics) see of a running server: one hook per fact.

``AsyncServer.observer`` is ``None`` until a tool calls :meth:`AsyncServer.observe`; every hook site
reads it once and does nothing more when it is ``None``, so an unobserved server pays one attribute
load and one comparison per site. Hooks run synchronously inside the server's own call: they must be
quick and must not raise (what they raise reaches the code that made the event).

Every hook is a no-op here; a tool subclasses :class:`Observer` and overrides what it needs.

The sites that run once per message have slots of their own (:func:`hot_hooks`), filled only for the
observers that want those facts: ``AsyncServer.tap_received`` and ``tap_sent`` (every MESSAGE received,
every MESSAGE written to one client) and ``observer_events`` (:meth:`Observer.event_received`,
:meth:`Observer.event_sent`). So metrics pay no call to a no-op ``event_received`` per event, and an
observer that only counts gives lists instead of hooks (``received_log``, ``sent_log``): the server
appends each message to them (one C call), and the observer folds them when it wants its figures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..engine.session import DisconnectReason, Session
    from .protocols import AdapterNamespace
    from .socket import Socket

__all__ = ["Observer", "ObserverSet", "Tap", "hot_hooks"]

Tap = Callable[[Any], object]
"""What a per-message site calls with the message (``str`` or ``bytes``)."""

class Observer:
    """The hooks. ``session`` is the Engine.IO session (``sid``, ``transport``, ``environ``)."""

    #: whether :meth:`event_sent` is wanted with the sids of a broadcast's recipients (a list built
    #: per broadcast); False: broadcasts are only counted (:meth:`message_sent`)
    wants_recipients = False
    #: a list the server appends every received MESSAGE to, instead of calling :meth:`message_received`
    received_log: list[str | bytes] | None = None
    #: a list the server appends every MESSAGE written to one client to, instead of calling
    #: :meth:`message_sent` (a broadcast is still reported through ``message_sent(data, count)``)
    sent_log: list[str | bytes] | None = None

    # ------------------------------------------------------------- Engine.IO sessions

    def session_opened(self, session: Session) -> None:
        """A handshake was accepted (``session.transport`` is where it started)."""

    def session_upgraded(self, session: Session) -> None:
        """The session moved to WebSocket (``session.transport`` is now ``"websocket"``)."""

    def session_closed(self, session: Session, reason: DisconnectReason) -> None:
        """The session ended (once per opened session)."""

    def message_received(self, data: str | bytes) -> None:
        """A MESSAGE from a client (a Socket.IO packet or one binary attachment)."""

    def message_sent(self, data: str | bytes, count: int = 1) -> None:
        """``data`` written to ``count`` clients: one, or a broadcast's recipients, reported once per
        broadcast."""

    # -------------------------------------------------------------- Socket.IO sockets

    def socket_connected(self, socket: Socket) -> None:
        """A socket joined its namespace (its CONNECT was answered)."""

    def socket_disconnected(self, socket: Socket, reason: DisconnectReason) -> None:
        """A connected socket left its namespace."""

    def room_joined(self, namespace: AdapterNamespace, room: str, sid: str) -> None:
        """``sid`` joined ``room`` (its own room at connect included)."""

    def room_left(self, namespace: AdapterNamespace, room: str, sid: str) -> None:
        """``sid`` left ``room`` (every room when it disconnects)."""

    def event_received(self, socket: Socket, data: list[Any]) -> None:
        """An EVENT from the client: ``data`` is ``[event, *args]``."""

    def event_sent(self, namespace: AdapterNamespace, sids: list[str], data: list[Any]) -> None:
        """An EVENT of this server written to these local sockets: ``data`` is ``[event, *args]``."""

    # --------------------------------------------------------------------- acks

    def ack_answered(self, socket: Socket, seconds: float) -> None:
        """The client answered an ack the server waited for, ``seconds`` after the emit."""

    def ack_failed(self, socket: Socket, timed_out: bool) -> None:
        """An ack the server waited for never came: it timed out, or the socket went away first."""

    # --------------------------------------------------------------------- server

    def shutdown(self) -> None:
        """The server begins to shut down: stop timers and tasks."""


class ObserverSet(Observer):
    """Several observers behind the one ``AsyncServer.observer`` slot, called in order."""

    def __init__(self, observers: list[Observer]) -> None:
        self.observers: list[Observer] = []
        for observer in observers:
            self.add(observer)

    def add(self, observer: Observer) -> None:
        self.observers.append(observer)
        self.wants_recipients = any(o.wants_recipients for o in self.observers)


def _fan_out(name: str) -> Any:
    def hook(self: ObserverSet, *args: Any) -> None:
        for observer in self.observers:
            getattr(observer, name)(*args)

    hook.__name__ = name
    return hook


for _name in [name for name, value in vars(Observer).items() if not name.startswith("_") and callable(value)]:
    setattr(ObserverSet, _name, _fan_out(_name))


def _overrides(observer: Observer, name: str) -> bool:
    return getattr(type(observer), name) is not getattr(Observer, name)


def _fan(taps: list[Tap]) -> Tap | None:
    if len(taps) <= 1:
        return taps[0] if taps else None

    def tap(data: Any) -> None:
        for one in taps:
            one(data)

    return tap


def hot_hooks(observers: list[Observer]) -> tuple[Observer | None, Tap | None, Tap | None]:
    """The per-message slots for these observers: who gets ``event_received``/``event_sent``, and what
    every received MESSAGE and every MESSAGE written to one client is given to (None: nobody)."""
    events = [o for o in observers if _overrides(o, "event_received") or _overrides(o, "event_sent")]
    received: list[Tap] = []
    sent: list[Tap] = []
    for o in observers:
        if o.received_log is not None:
            received.append(o.received_log.append)
        elif _overrides(o, "message_received"):
            received.append(o.message_received)
        if o.sent_log is not None:
            sent.append(o.sent_log.append)
        elif _overrides(o, "message_sent"):
            sent.append(o.message_sent)
    event_observer = (events[0] if len(events) == 1 else ObserverSet(events)) if events else None
    return event_observer, _fan(received), _fan(sent)
