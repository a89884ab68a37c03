"""What waits for acknowledgements: every pending ack of a socket is an :class:`~.protocols.AckHandler`.

* :class:`CallbackAck`: ``sio.emit(..., to=sid, callback=fn)`` (``fn(*answer)``, run as a handler is when it is
  a coroutine function; on timeout a log line, and ``fn(AckTimeoutError)`` when the emit gave its own
  ``timeout=``, as Node's ``socket.timeout()``).
* :class:`AckWaiter`: ``sio.call()``: a future that gets the answer, :class:`AckTimeoutError` or
  :class:`DisconnectedError`.
* :class:`BroadcastAck`: ``emit_with_ack()`` on an operator: the answers of every client on every
  server, done when every server has reported its client count and that many answers came (or a
  target left).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ..exceptions import AckTimeoutError, DisconnectedError
from . import eager

log = logging.getLogger("sioserver.server")

__all__ = ["AckWaiter", "BroadcastAck", "CallbackAck"]


class CallbackAck:
    """A user callback, called with the answer's arguments."""

    __slots__ = ("callback", "event", "sid", "timeout_error")

    def __init__(self, callback: Callable[..., Any], event: str = "", sid: str = "",
                 timeout_error: bool = False) -> None:
        self.callback = callback
        self.event = event
        self.sid = sid
        self.timeout_error = timeout_error

    def __call__(self, answer: list[Any]) -> None:
        # an ``async def`` callback is run as a handler is (python-socketio awaits it): inline when it
        # cannot suspend, else in a task; an exception in it is logged
        eager.call(self.callback, tuple(answer), None, self._failed)

    def expire(self) -> None:
        if self.timeout_error:
            error = AckTimeoutError(f"{self.sid} did not acknowledge {self.event!r} in time")
            eager.call(self.callback, (error,), None, self._failed)
        else:
            log.warning("%s did not acknowledge %r within the ack timeout: its callback is not called",
                        self.sid, self.event)

    def fail(self, reason: str) -> None:
        pass

    def _failed(self, exc: BaseException) -> None:
        log.error("ack callback failed on socket %s: %r", self.sid, exc, exc_info=exc)


class AckWaiter:
    """Turns one client's answer into a future's result."""

    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[list[Any]]) -> None:
        self.future = future

    def __call__(self, answer: list[Any]) -> None:
        if not self.future.done():
            self.future.set_result(answer)

    def expire(self) -> None:
        if not self.future.done():
            self.future.set_exception(AckTimeoutError("the client did not acknowledge in time"))

    def fail(self, reason: str) -> None:
        if not self.future.done():
            self.future.set_exception(DisconnectedError(reason))


class BroadcastAck:
    """Collects the answers of a broadcast with acks, across every node that reports a count."""

    __slots__ = ("answers", "expected", "future", "reported")

    def __init__(self, future: asyncio.Future[list[Any]], nodes: int = 1) -> None:
        self.future = future
        self.answers: list[Any] = []
        self.expected = 0
        self.reported = nodes  # how many client counts are still to come

    def client_count(self, count: int) -> None:
        self.expected += count
        self.reported -= 1
        self._check()

    def __call__(self, answer: list[Any]) -> None:
        self.answers.append(answer[0] if len(answer) == 1 else answer)
        self._check()

    def fail(self, reason: str) -> None:
        self.expected -= 1  # a target went away: one answer fewer to wait for
        self._check()

    def expire(self) -> None:
        pass  # the broadcast's own deadline ends the wait with the answers that came

    def _check(self) -> None:
        if self.reported <= 0 and len(self.answers) >= self.expected and not self.future.done():
            self.future.set_result(self.answers)
