"""Shared bits of sioclient's tests."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import sioclient


class Recorder:
    """Registers handlers that record what the server sends: ``await rec.next("echo")`` -> args list."""

    def __init__(self, client: sioclient.AsyncClient, namespace: str = "/") -> None:
        self.client = client
        self.namespace = namespace
        self.queues: defaultdict[str, asyncio.Queue[list[Any]]] = defaultdict(asyncio.Queue)
        self.log: list[tuple[str, list[Any]]] = []

        for event in ("welcome", "echo", "connect", "connect_error", "disconnect"):
            client.on(event, self._recorder(event), namespace=namespace)

    def _recorder(self, event: str) -> Any:
        def record(*args: Any) -> None:
            self.log.append((event, list(args)))
            self.queues[event].put_nowait(list(args))

        return record

    async def next(self, event: str, timeout: float = 5.0) -> list[Any]:
        return await asyncio.wait_for(self.queues[event].get(), timeout)

    def count(self, event: str) -> int:
        return sum(1 for name, _ in self.log if name == event)
