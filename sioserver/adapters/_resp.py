"""Small pieces of the Redis adapters: a fast RESP2 reader, a loss log, URLs without passwords."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter
from typing import Any, TypeVar

from redis.exceptions import ResponseError

__all__ = ["LossLog", "RespReader", "encode_command", "retry_delay", "safe_url"]

T = TypeVar("T")


def encode_command(*args: Any) -> bytes:
    """A command as a RESP2 array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else str(arg).encode() if isinstance(arg, int) else arg
        out.append(b"$%d\r\n" % len(data))
        out.append(data)
        out.append(b"\r\n")
    return b"".join(out)


def retry_delay(failures: int, delays: tuple[float, float]) -> float:
    """Before attempt ``failures + 1``: none after the first failure (a dropped connection is reopened at
    once), then ``delays[0]``, doubling up to ``delays[1]``."""
    if failures <= 1:
        return 0.0
    return float(min(delays[1], delays[0] * 2.0 ** min(failures - 2, 16)))


def safe_url(url: str) -> str:
    """The URL without its password, for logs."""
    return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", url)


class LossLog:
    """Counts messages that did not reach every server, and logs them without flooding the log.

    The first one of a streak is logged with its reason; then one summary line at most every
    ``every`` seconds; when the streak ends (:meth:`resolved`), one line with the streak's total.
    """

    def __init__(self, logger: logging.Logger, stats: Counter[str], counter: str, what: str,
                 every: float = 5.0) -> None:
        self.logger = logger
        self.stats = stats
        self.counter = counter
        self.what = what
        self.every = every
        self.started: float | None = None
        self.total = 0
        self._logged_at = 0.0
        self._unlogged = 0

    def add(self, count: int, reason: str) -> None:
        if count <= 0:
            return
        now = time.monotonic()
        self.stats[self.counter] += count
        self.total += count
        if self.started is None:
            self.started = self._logged_at = now
            self.logger.warning("redis adapter: %d message(s) %s: %s", count, self.what, reason)
            return
        self._unlogged += count
        if now - self._logged_at >= self.every:
            self.logger.warning("redis adapter: %d more message(s) %s in the last %.1fs (%d since %.1fs ago): %s",
                                self._unlogged, self.what, now - self._logged_at, self.total,
                                now - self.started, reason)
            self._logged_at = now
            self._unlogged = 0

    def resolved(self) -> None:
        if self.started is None:
            return
        elapsed = time.monotonic() - self.started
        self.logger.warning("redis adapter: streak over: in total %d message(s) %s during %.1fs",
                            self.total, self.what, elapsed)
        self.started = None
        self.total = 0
        self._unlogged = 0


class RespReader:
    """An incremental RESP2 parser over a stream: every complete reply in the buffer, per read."""

    __slots__ = ("_buf", "_pending", "_stream")

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self._stream = stream
        self._buf = bytearray()  # appended to in place: a large message in many chunks stays linear
        self._pending: list[Any] = []

    def at_eof(self) -> bool:
        """The server closed the connection and every reply was read."""
        return not self._pending and self._stream.at_eof()

    async def read_n(self, count: int) -> list[Any]:
        """Exactly ``count`` replies (those read beyond are kept for the next call)."""
        got = self._pending
        while len(got) < count:
            got += await self._read()
        self._pending = got[count:]
        return got[:count]

    async def read(self) -> list[Any]:
        """At least one reply (bulk strings as bytes, errors as ``ResponseError``); ConnectionError at EOF."""
        if self._pending:
            got, self._pending = self._pending, []
            return got
        return await self._read()

    async def _read(self) -> list[Any]:
        buf = self._buf
        while True:
            replies: list[Any] = []
            pos = 0
            while True:
                parsed = _parse(buf, pos)
                if parsed is None:
                    break
                value, pos = parsed
                replies.append(value)
            if pos:
                del buf[:pos]
            if replies:
                return replies
            chunk = await self._stream.read(1 << 16)
            if not chunk:
                raise ConnectionError("Connection closed by server.")
            buf += chunk


def _parse(buf: bytearray, pos: int) -> tuple[Any, int] | None:
    """One RESP2 reply at ``pos``: ``(value, end)``, or None when the buffer does not hold all of it."""
    eol = buf.find(b"\r\n", pos)
    if eol < 0:
        return None
    kind = buf[pos]
    if kind == 0x24:  # $ bulk string
        size = int(buf[pos + 1:eol])
        if size < 0:
            return None, eol + 2
        end = eol + 2 + size
        if len(buf) < end + 2:
            return None
        return bytes(buf[eol + 2:end]), end + 2
    if kind == 0x2A:  # * array
        count = int(buf[pos + 1:eol])
        if count < 0:
            return None, eol + 2
        items = []
        pos = eol + 2
        for _ in range(count):
            parsed = _parse(buf, pos)
            if parsed is None:
                return None
            item, pos = parsed
            items.append(item)
        return items, pos
    if kind == 0x3A:  # : integer
        return int(buf[pos + 1:eol]), eol + 2
    if kind == 0x2B:  # + simple string
        return bytes(buf[pos + 1:eol]), eol + 2
    if kind == 0x2D:  # - error
        return ResponseError(buf[pos + 1:eol].decode("utf-8", "replace")), eol + 2
    raise ConnectionError(f"unexpected RESP type byte {kind:#x} from Redis")
