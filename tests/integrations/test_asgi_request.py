"""The ASGI request's own parsing (sioserver/integrations/asgi/request.py): the query and the headers read
as the standard library and the WSGI environ read them; the body read whole, or not, within its deadline."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sioserver.engine.http import BodyTooLarge, IncompleteBody
from sioserver.integrations.asgi.request import AsgiRequest, Headers, _parse_query


def first_values(query: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        found.setdefault(key, value)
    return found


def test_an_engine_io_query() -> None:
    assert _parse_query("EIO=4&transport=polling&t=PxY-z1&sid=abc_DEF-1") == {
        "EIO": "4", "transport": "polling", "t": "PxY-z1", "sid": "abc_DEF-1"}


@given(st.lists(st.tuples(st.text(min_size=1, max_size=8), st.text(max_size=8)), max_size=6))
def test_the_query_reads_as_parse_qsl(pairs: list[tuple[str, str]]) -> None:
    query = urlencode(pairs)
    assert _parse_query(query) == first_values(query)


@given(st.text(alphabet="ab=&%+2 ", max_size=20))
def test_any_query_text_reads_as_parse_qsl(query: str) -> None:
    assert _parse_query(query) == first_values(query)


def test_headers_case_insensitive_and_repeated_joined() -> None:
    headers = Headers([(b"host", b"example.com"), (b"x-tag", b"a"), (b"x-tag", b"b"), (b"Origin", b"http://o")])
    assert headers.get("Host") == "example.com"
    assert headers["X-TAG"] == "a,b"
    assert headers.get("origin") == "http://o"  # a mixed-case name (the spec asks servers to lowercase)
    assert headers.get("accept-encoding") is None
    assert "HOST" in headers and len(headers) == 3


def test_headers_decode_latin1() -> None:
    assert Headers([(b"x-name", "zoë".encode("latin-1"))]).get("X-Name") == "zoë"


class Body:
    """An ASGI ``receive`` fed by the test: messages already queued are taken without suspending, as an ASGI
    server hands a body it read with the head; a later one makes ``receive()`` wait."""

    def __init__(self, *messages: dict[str, Any]) -> None:
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for message in messages:
            self.queue.put_nowait(message)
        self.cancelled = False

    async def receive(self) -> dict[str, Any]:
        try:
            return await self.queue.get()
        except asyncio.CancelledError:
            self.cancelled = True
            raise


def post(body: Body, length: int | None = None) -> AsgiRequest:
    headers = [(b"content-length", str(length).encode())] if length is not None else []
    scope = {"type": "http", "method": "POST", "headers": headers, "query_string": b""}

    async def send(message: dict[str, Any]) -> None:
        pass

    return AsgiRequest(scope, body.receive, send)


def chunk(data: bytes, more: bool = False) -> dict[str, Any]:
    return {"type": "http.request", "body": data, "more_body": more}


async def test_a_body_already_received_is_read_without_a_timer() -> None:
    loop = asyncio.get_running_loop()
    timers = []
    real = loop.call_later
    loop.call_later = lambda *a, **k: timers.append(a) or real(*a, **k)  # type: ignore[method-assign]
    try:
        assert await post(Body(chunk(b"4hello")), 6).read_body(100, 5.0) == b"4hello"
    finally:
        del loop.call_later  # type: ignore[method-assign]
    assert timers == []


async def test_a_body_that_comes_later_and_in_parts_is_read_whole() -> None:
    body = Body()
    reading = asyncio.ensure_future(post(body, 6).read_body(100, 5.0))
    for _ in range(3):
        await asyncio.sleep(0)
    assert not reading.done()  # suspended in the first receive()
    body.queue.put_nowait(chunk(b"4he", more=True))
    body.queue.put_nowait(chunk(b"llo"))
    assert await reading == b"4hello"


async def test_a_body_not_complete_within_the_deadline_is_incomplete() -> None:
    body = Body(chunk(b"4he", more=True))
    started = asyncio.get_running_loop().time()
    with pytest.raises(IncompleteBody, match="body not complete"):
        await post(body, 6).read_body(100, 0.1)
    assert 0.09 <= asyncio.get_running_loop().time() - started < 1.0
    assert body.cancelled  # the waiting receive() was cancelled, not left behind


async def test_a_first_receive_that_waits_past_the_deadline_is_incomplete() -> None:
    body = Body()

    async def read() -> bytes:
        return await post(body, 6).read_body(100, 0.1)

    task = asyncio.ensure_future(read())
    with pytest.raises(IncompleteBody):
        await task
    assert body.cancelled and not task.cancelled()
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_cancel_from_outside_reaches_the_waiting_receive() -> None:
    body = Body()
    task = asyncio.ensure_future(post(body, 6).read_body(100, 5.0))
    for _ in range(3):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert body.cancelled


async def test_the_client_going_away_or_too_much_is_refused() -> None:
    with pytest.raises(IncompleteBody, match="went away"):
        await post(Body(chunk(b"4he", more=True), {"type": "http.disconnect"}), 6).read_body(100, 5.0)
    with pytest.raises(BodyTooLarge):
        await post(Body(chunk(b"x" * 10)), 10).read_body(5, 5.0)
    with pytest.raises(BodyTooLarge):
        await post(Body(chunk(b"x" * 10))).read_body(5, 5.0)  # no Content-Length: counted as it comes
    with pytest.raises(IncompleteBody, match="3 of 6"):
        await post(Body(chunk(b"4he")), 6).read_body(100, 5.0)
