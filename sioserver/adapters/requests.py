"""Requests between the servers of a cluster, whatever carries them: correlation, counting, deadlines.

A server that asks the others something (fetch_sockets, server_side_emit_with_ack, all_rooms) opens a
:class:`Request` under a fresh id and waits until it has every answer it expects, counted either as a
number (the servers a transport counts, minus this one) or as the set of node ids still to answer
(heartbeat-based clusters, where a node that goes away stops being waited for). A broadcast with acks
registers an :class:`AckRequest`: the other servers report how many clients they reached, then relay
each client's answer (:class:`RelayAck` on their side).

Shared by :mod:`sioserver.adapters.cluster` (socket.io-adapter's ClusterAdapter protocol) and the
classic Redis adapter (@socket.io/redis-adapter's own request format).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal, TypeVar

from ..server.protocols import AckHandler
from .errors import AdapterError, ClusterTimeoutError

__all__ = ["AckRequest", "AckRequests", "RelayAck", "Request", "RequestKind", "Requests", "bounded"]

log = logging.getLogger("sioserver.cluster")

T = TypeVar("T")


async def bounded(awaitable: Awaitable[T], timeout: float) -> T:
    """Await with a deadline (``TimeoutError``), from any context.

    Not ``asyncio.timeout()``: it needs the current task, and sioserver runs a handler's first step
    eagerly, outside its own task. Not ``asyncio.wait_for()``: on 3.11 it can swallow a cancellation.
    """
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait((task,), timeout=timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        raise TimeoutError(f"no answer within {timeout:g}s")
    return task.result()

RequestKind = Literal["sockets", "rooms", "answers"]
"""How answers add up: socket details (dicts) into a list, room names into a set, any value into a list."""


class Request:
    """One request of this server waiting for answers."""

    __slots__ = ("expected", "future", "kind", "missing", "received", "results")

    def __init__(self, kind: RequestKind, results: Any, expected: int, missing: set[str] | None,
                 future: asyncio.Future[None]) -> None:
        self.kind = kind
        self.results = results
        self.expected = expected
        self.missing = missing
        self.future = future
        self.received = 0

    def add(self, value: Any, sender: Any = None) -> None:
        """One server's answer (``sender``: its node id, for the heartbeat-based count)."""
        missing = self.missing
        if missing is not None:
            if sender not in missing:
                return  # a node not asked, or one that answered already
            missing.discard(sender)
        kind = self.kind
        if kind == "sockets":
            if isinstance(value, list):
                self.results.extend(s for s in value if isinstance(s, dict))
        elif kind == "rooms":
            if isinstance(value, list):
                self.results.update(r if isinstance(r, str) else str(r) for r in value)
        else:
            self.results.append(value)
        self.received += 1
        self._check()

    def node_gone(self, uid: str) -> None:
        if self.missing is not None and uid in self.missing:
            self.missing.discard(uid)
            self.expected -= 1
            self._check()

    def _check(self) -> None:
        done = not self.missing if self.missing is not None else self.received >= self.expected
        if done and not self.future.done():
            self.future.set_result(None)


class Requests:
    """The open requests of one namespace adapter, by id."""

    def __init__(self, new_id: Callable[[], str], stats: Counter[str]) -> None:
        self.new_id = new_id
        self.stats = stats
        self._open: dict[str, Request] = {}

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._open

    def __len__(self) -> int:
        return len(self._open)

    async def ask(self, kind: RequestKind, what: str, results: Any, publish: Callable[[str], object],
                  timeout: float, *, expected: int = 0, missing: Iterable[str] | None = None) -> Any:
        """Open a request, ``publish(request_id)`` it, and wait for ``expected`` answers (or one from
        each node of ``missing``). Returns ``results`` with every answer added; raises
        :class:`ClusterTimeoutError` (holding what came) after ``timeout`` seconds."""
        pending = None if missing is None else set(missing)
        if pending is not None:
            expected = len(pending)
        if expected <= 0:
            return results
        request_id = self.new_id()
        request = Request(kind, results, expected, pending, asyncio.get_running_loop().create_future())
        self._open[request_id] = request
        try:
            publish(request_id)
            try:
                await bounded(asyncio.shield(request.future), timeout)
            except TimeoutError:
                self.stats["request_timeouts"] += 1
                raise ClusterTimeoutError(what, request.expected + 1, request.received + 1,
                                          request.results) from None
            return request.results
        finally:
            self._open.pop(request_id, None)

    def answered(self, request_id: Any, value: Any, sender: Any = None) -> None:
        request = self._open.get(request_id) if isinstance(request_id, str) else None
        if request is not None:
            request.add(value, sender)

    def kind_of(self, request_id: Any) -> RequestKind | None:
        request = self._open.get(request_id) if isinstance(request_id, str) else None
        return None if request is None else request.kind

    def node_gone(self, uid: str) -> None:
        """A node left the cluster: stop waiting for its answers."""
        for request in list(self._open.values()):
            request.node_gone(uid)

    def close(self, reason: str) -> None:
        """Fail every open request (the adapter is closing)."""
        for request in self._open.values():
            if not request.future.done():
                request.future.set_exception(AdapterError(reason))


class AckRequest:
    """A broadcast with acks of this server: other servers report counts, then relay answers."""

    __slots__ = ("ack", "client_count")

    def __init__(self, client_count: Callable[[int], None], ack: AckHandler) -> None:
        self.client_count = client_count
        self.ack = ack


class AckRequests:
    """The broadcasts with acks of one namespace adapter, by request id."""

    def __init__(self) -> None:
        self._open: dict[str, AckRequest] = {}

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._open

    def open(self, request_id: str, timeout: float, client_count: Callable[[int], None], ack: AckHandler) -> None:
        self._open[request_id] = AckRequest(client_count, ack)
        # nobody tells when every client has answered: forget the request after its deadline
        asyncio.get_running_loop().call_later(timeout + 1, self._open.pop, request_id, None)

    def discard(self, request_id: str) -> None:
        self._open.pop(request_id, None)

    def count(self, request_id: Any, count: Any) -> None:
        """A server reached ``count`` clients."""
        request = self._open.get(request_id) if isinstance(request_id, str) else None
        if request is not None and isinstance(count, int) and not isinstance(count, bool):
            request.client_count(count)

    def answer(self, request_id: Any, answer: Any) -> None:
        """One client's answer, relayed by the server it is connected to."""
        request = self._open.get(request_id) if isinstance(request_id, str) else None
        if request is not None:
            request.ack([answer])

    def clear(self) -> None:
        self._open.clear()


class RelayAck:
    """On a server serving another's broadcast with acks: each client's answer goes back to the asker
    (its first argument, as Node relays it). A deadline or a disconnect sends nothing: the asker's own
    deadline ends its wait."""

    __slots__ = ("relay",)

    def __init__(self, relay: Callable[[Any], None]) -> None:
        self.relay = relay

    def __call__(self, answer: list[Any]) -> None:
        self.relay(answer[0] if answer else None)

    def expire(self) -> None:
        pass

    def fail(self, reason: str) -> None:
        pass
