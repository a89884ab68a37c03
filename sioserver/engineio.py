"""The Engine.IO-level API, in the shape python-engineio users know.

::

    eio = sioserver.engineio.AsyncServer(ping_interval=25, cors_allowed_origins="*")

    @eio.on("connect")
    async def connect(sid, environ): ...

    @eio.on("message")
    async def message(sid, data): await eio.send(sid, data)

    @eio.on("disconnect")
    async def disconnect(sid, reason): ...

    eio.attach(app, engineio_path="engine.io")
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .engine.server import ENGINE_OPTIONS, EngineServer
from .engine.session import DisconnectReason, Session
from .exceptions import ConfigurationError, check_options

if TYPE_CHECKING:
    from .integrations.asgi import EngineASGIApp as ASGIApp

__all__ = ["ASGIApp", "AsyncServer", "DisconnectReason"]

log = logging.getLogger("sioserver.engine")

Handler = Callable[..., Any]
H = TypeVar("H", bound=Handler)

_EVENTS = ("connect", "message", "disconnect")


class AsyncServer(EngineServer):
    """An Engine.IO server with ``connect`` / ``message`` / ``disconnect`` handlers."""

    def __init__(self, *, async_handlers: bool = True, **options: Any) -> None:
        check_options(options, ENGINE_OPTIONS, "AsyncServer")
        logger = options.get("logger")
        if logger is True:
            logger = logging.getLogger("sioserver.engine")
            if logger.level == logging.NOTSET:
                logger.setLevel(logging.INFO)
        options["logger"] = logger if isinstance(logger, logging.Logger) else None
        super().__init__(**options)
        self.async_handlers = async_handlers
        self.handlers: dict[str, Handler] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def on(self, event: str, handler: H | None = None) -> Any:
        """Register a handler: ``@eio.on("message")`` or ``eio.on("message", fn)``."""
        if event not in _EVENTS:
            raise ConfigurationError(f"unknown Engine.IO event {event!r}; one of {', '.join(_EVENTS)}")

        def register(fn: H) -> H:
            self.handlers[event] = fn
            return fn

        return register if handler is None else register(handler)

    # hooks
    async def accept(self, session: Session) -> bool:
        handler = self.handlers.get("connect")
        if handler is None:
            return True
        result = handler(session.sid, session.environ)
        if inspect.isawaitable(result):
            result = await result
        return result is not False

    def handle_message(self, session: Session, data: str | bytes) -> None:
        handler = self.handlers.get("message")
        if handler is not None:
            self._run(handler, session.sid, data)

    def handle_disconnect(self, session: Session, reason: DisconnectReason) -> None:
        handler = self.handlers.get("disconnect")
        if handler is not None:
            self._run(handler, session.sid, reason.value)

    def _run(self, handler: Handler, *args: Any) -> None:
        try:
            result = handler(*args)
        except Exception:
            self.logger.exception("%s handler failed", getattr(handler, "__name__", handler))
            return
        if inspect.isawaitable(result):
            self.start_background_task(_awaited, result, self.logger)

    # API
    async def send(self, sid: str, data: str | bytes) -> None:  # type: ignore[override]
        """Send a message to one client. Unknown or closed sessions are logged, not raised."""
        if not super().send(sid, data):
            self.logger.warning("send to unknown or closed session %s: not sent", sid)

    async def disconnect(self, sid: str | None = None) -> None:
        """Close one session, or every session when ``sid`` is None."""
        if sid is None:
            for session in list(self.sessions.values()):
                session.close(DisconnectReason.SERVER_DISCONNECT)
        else:
            self.close_session(sid)

    def transport(self, sid: str) -> str:
        """The transport a session uses now: ``"polling"`` or ``"websocket"``."""
        return self.sessions[sid].transport

    def attach(self, app: Any, engineio_path: str = "engine.io") -> None:
        """Serve this server on an aiohttp ``web.Application`` at ``/<engineio_path>/``."""
        from .integrations.aiohttp import attach  # noqa: PLC0415 - the engine never imports a framework

        attach(self, app, engineio_path)

    def start_background_task(self, target: Callable[..., Awaitable[Any]] | Any, *args: Any) -> asyncio.Task[Any]:
        """Run ``target(*args)`` (or an awaitable) as a task the server keeps a reference to."""
        coro = target(*args) if callable(target) else target
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def sleep(self, seconds: float = 0) -> None:
        await asyncio.sleep(seconds)

    async def shutdown(self, grace: float = 0.0) -> None:
        """Refuse new handshakes, close every session (spread over ``grace`` seconds), then wait up to
        ``max(grace, 5)`` seconds for running handlers."""
        await super().shutdown(grace)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=max(grace, 5.0))


async def _awaited(awaitable: Awaitable[Any], logger: logging.Logger) -> None:
    try:
        await awaitable
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("handler failed")



def __getattr__(name: str) -> Any:
    """``sioserver.engineio.ASGIApp`` (python-engineio's name), loaded on first use: the engine never
    imports a front end otherwise."""
    if name == "ASGIApp":
        from .integrations.asgi import EngineASGIApp  # noqa: PLC0415 - a front end, loaded when asked for

        globals()["ASGIApp"] = EngineASGIApp
        return EngineASGIApp
    raise AttributeError(f"module 'sioserver.engineio' has no attribute {name!r}")
