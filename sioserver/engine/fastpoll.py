"""The polls and posts of an open long-polling session, answered without a coroutine.

:meth:`EngineServer.handle_request <sioserver.engine.server.EngineServer.handle_request>` is a coroutine
because some requests wait (a parked GET, a body still arriving, a handshake running ``allow_request``).
A front that has a POST's body whole when it dispatches (``sioserver.run``'s own) answers the common
requests of an open polling session through :func:`answer_now` instead: the same checks and the same
answers, without a coroutine, its frames and its ``StopIteration`` per request. Everything it does not
answer (``None``) goes to ``handle_request``, which answers it as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .http import HttpRequest, HttpResponse
from .polling import PollWaiter
from .session import Session

if TYPE_CHECKING:
    from .server import EngineServer

__all__ = ["PARKED", "answer_now"]

#: :func:`answer_now`'s answer for a GET that parked
PARKED = HttpResponse(0)


def answer_now(engine: EngineServer, request: HttpRequest, body: bytes,
               waiter: Callable[[Session, list[tuple[str, str]]], PollWaiter]) -> HttpResponse | None:
    """Answer a GET or a POST (``body``: its whole body, within the engine's ``max_http_buffer_size``) of an
    open polling session now; :data:`PARKED` for a GET that waits (``session.poll_waiter`` is then
    ``waiter(session, cors)``: see :meth:`~sioserver.engine.polling.Polling.get_now`); None for anything else."""
    method = request.method
    if method not in ("GET", "POST"):
        return None
    query = request.query
    sid = query.get("sid")
    if sid is None or query.get("transport") != "polling" or "polling" not in engine.transports:
        return None
    session = engine.sessions.get(sid)
    if session is None or session.state != Session.OPEN or session.transport != "polling" or session.ws is not None:
        return None
    headers = request.headers
    origin = headers.get("Origin")
    if origin is None:
        cors: list[tuple[str, str]] = []
    elif engine.cors.allows(origin, headers.get("Host"), request.environ):
        cors = engine.cors.headers(origin)
    else:
        return None  # refused, and logged, by handle_request
    polling = engine.polling
    if method == "GET":
        response = polling.get_now(request, session, cors, waiter)
        return PARKED if response is None else response
    if session.posting:
        return None
    return polling.deliver(body, request, session, cors)
