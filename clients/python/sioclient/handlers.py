"""The client's event handlers: registered per namespace, looked up with the ``"*"`` catch-all, and run
in tasks of their own so that a slow or failing handler never holds up the connection.

Reserved handlers: ``connect()``, ``connect_error(data)`` and ``disconnect(reason)`` (a ``disconnect``
that takes no argument is called without the reason, as python-socketio allows).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["Handlers"]

H = TypeVar("H", bound=Callable[..., Any])


class Handlers:
    """``table[namespace][event] -> handler``, and the tasks running them (kept until they finish)."""

    __slots__ = ("logger", "table", "tasks")

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.table: dict[str, dict[Any, Callable[..., Any]]] = {}
        self.tasks: set[asyncio.Task[Any]] = set()

    def register(self, nsp: str, event: str, handler: H) -> H:
        self.table.setdefault(nsp, {})[event] = handler
        return handler

    def namespaces(self) -> list[str]:
        """The namespaces with handlers, ``"*"`` left out."""
        return sorted(n for n in self.table if n != "*")

    def lookup(self, nsp: str, event: Any) -> tuple[Callable[..., Any] | None, bool]:
        """The handler of ``event`` on ``nsp`` and whether it is the catch-all (it then gets the name)."""
        handlers = self.table.get(nsp)
        if handlers is None:
            return None, False
        handler = handlers.get(event)
        if handler is not None:
            return handler, False
        return handlers.get("*"), True

    def trigger(self, nsp: str, event: str, *args: Any) -> None:
        """Run the reserved handler ``event`` of ``nsp``, if there is one."""
        handler = self.table.get(nsp, {}).get(event)
        if handler is None:
            return
        if event == "disconnect" and args:
            with contextlib.suppress(TypeError, ValueError):
                inspect.signature(handler).bind(*args)
                self.spawn(self.call(handler, list(args)))
                return
            self.spawn(self.call(handler, []))  # a disconnect handler that takes no reason
            return
        self.spawn(self.call(handler, list(args)))

    async def call(self, fn: Callable[..., Any], args: list[Any]) -> None:
        """Run a handler or an ack callback (sync or async); its exception is logged, not raised."""
        try:
            result = fn(*args)
            if inspect.isawaitable(result):
                await result
        except Exception:
            self.logger.exception("callback %r failed", fn)

    def spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
