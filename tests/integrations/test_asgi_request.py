"""The ASGI request's own parsing (sioserver/integrations/asgi/request.py): the query and the headers read
as the standard library and the WSGI environ read them."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from hypothesis import given
from hypothesis import strategies as st

from sioserver.integrations.asgi.request import Headers, _parse_query


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
