"""A blocking Socket.IO client for scripts and tests: one namespace, events pulled with ``receive()``.

::

    with sioclient.SimpleClient() as client:
        client.connect("http://localhost:8000", auth={"token": "..."})
        client.emit("hello", {"name": "sam"})
        print(client.call("sum", (1, 2), timeout=5))
        event, *args = client.receive(timeout=5)

An :class:`~sioclient.AsyncClient` runs on an event loop in a background (daemon) thread; every method
hands its work to that loop and waits for the result. Events from the server queue up until
``receive()`` takes them; an event that asks for an ack is acknowledged with no arguments when it
arrives. Emits while the connection is down follow the AsyncClient's policy (buffered while
reconnecting, up to ``max_buffered_emits``).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Coroutine, Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar

from sioserver.exceptions import check_options

from .client import AsyncClient, Auth
from .exceptions import DisconnectedError

__all__ = ["SimpleClient"]

T = TypeVar("T")
_GONE = object()  # queued when the client is disconnected for good: receive() raises


class SimpleClient:
    """Blocking client; ``client_options`` are :class:`~sioclient.AsyncClient`'s."""

    def __init__(self, **client_options: Any) -> None:
        self.client = AsyncClient(**client_options)
        self.namespace = "/"
        self._events: queue.Queue[Any] = queue.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- the background loop -------------------------------------------------------------------------
    def _start(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

            self._thread = threading.Thread(target=run, name="sioclient-simple", daemon=True)
            self._thread.start()
            ready.wait()
            self._loop = loop
        return self._loop

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        loop = self._loop
        if loop is None:
            coro.close()
            raise DisconnectedError("not connected")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    def _stop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    # -- API -----------------------------------------------------------------------------------------
    def connect(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: Auth = None,
        transports: Iterable[str] | str | None = None,
        namespace: str = "/",
        socketio_path: str = "socket.io",
        wait_timeout: float = 5.0,
        **unknown: Any,
    ) -> None:
        """Connect to ``url`` and ``namespace``; raises sioclient.ConnectionError."""
        if unknown:
            check_options(
                unknown,
                ("headers", "auth", "transports", "namespace", "socketio_path", "wait_timeout"),
                "SimpleClient.connect()",
            )
        self.namespace = namespace
        self._events = queue.Queue()
        client = self.client

        def on_event(event: Any, *args: Any) -> None:
            self._events.put([event, *args])

        async def connect() -> None:
            await client.connect(
                url,
                headers=headers,
                auth=auth,
                transports=transports,
                namespaces=[namespace],
                socketio_path=socketio_path,
                wait_timeout=wait_timeout,
            )
            asyncio.get_running_loop().create_task(watch())

        async def watch() -> None:  # receive() raises once the client is disconnected for good
            await client.wait()
            self._events.put(_GONE)

        client.on("*", on_event, namespace=namespace)
        self._start()
        try:
            self._run(connect())
        except BaseException:
            self._stop()
            raise

    @property
    def sid(self) -> str | None:
        return self.client.get_sid(self.namespace)

    @property
    def transport(self) -> str | None:
        return self.client.transport

    @property
    def connected(self) -> bool:
        return self.client.connected

    def emit(self, event: str, data: Any = None) -> None:
        """Send an event (``data``: a tuple for several arguments)."""
        self._run(self.client.emit(event, data, namespace=self.namespace))

    def call(self, event: str, data: Any = None, timeout: float = 60) -> Any:
        """Send an event and return the server's answer; raises AckTimeoutError after ``timeout`` s."""
        return self._run(self.client.call(event, data, namespace=self.namespace, timeout=timeout))

    def receive(self, timeout: float | None = None) -> list[Any]:
        """The next event from the server as ``[event, *args]``. Raises TimeoutError after ``timeout``
        seconds, DisconnectedError once the client is disconnected for good."""
        try:
            item = self._events.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no event within {timeout} s") from None
        if item is _GONE:
            self._events.put(_GONE)
            raise DisconnectedError("disconnected")
        result: list[Any] = item
        return result

    def disconnect(self) -> None:
        """Disconnect and stop the background loop."""
        if self._loop is not None:
            try:
                self._run(self.client.disconnect(), timeout=10)
            finally:
                self._events.put(_GONE)
                self._stop()

    def __enter__(self) -> SimpleClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.disconnect()
