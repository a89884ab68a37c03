"""A WebSocket peer written for tests: raw asyncio streams and sioserver's client-role ``Connection``
(``sioserver.proto.websocket``), so a test sends and reads exact frames."""

from __future__ import annotations

import asyncio

from sioserver.proto.websocket import Connection, DeflateParams, Event


class WSPeer:
    """``send(core.send_text(...))`` writes frames; ``await recv()`` gives the next event the core decoded."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 deflate: DeflateParams | None = None, head: bytes = b"", max_message_size: int = 1 << 24) -> None:
        self.reader, self.writer, self.head = reader, writer, head
        self.core = Connection(client=True, deflate=deflate, max_message_size=max_message_size,
                               compression_threshold=0)
        self.events: list[Event] = []

    async def recv(self, timeout: float = 2.0) -> Event:
        """The next event; EOFError when the server closes the connection first."""
        while not self.events:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                raise EOFError
            self.events += self.core.receive_data(data)
        return self.events.pop(0)

    async def eof(self, timeout: float = 2.0) -> bool:
        """Whether the server closes the connection within ``timeout`` (the rest of the input is ignored)."""
        try:
            while await asyncio.wait_for(self.reader.read(65536), timeout):
                pass
        except ConnectionResetError:
            pass
        except TimeoutError:
            return False
        return True

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    def close(self) -> None:
        self.writer.close()
