"""The client's side of the opening handshake (RFC 6455 section 4.1, 4.2.2) and of permessage-deflate
negotiation (RFC 7692 section 5.1, 7.1): sioserver.proto.websocket.handshake and .deflate.

The server's side is in test_websocket.py; here each client helper is also checked against it: what our
server answers, our client accepts, with the same parameters on both ends.
"""

from __future__ import annotations

import base64

import pytest

from sioserver.exceptions import HandshakeError
from sioserver.proto.websocket import (
    Connection,
    DeflateConfig,
    DeflateOffer,
    DeflateParams,
    accept_key,
    client_key,
    client_request_headers,
    handshake_response,
    negotiate_deflate,
    parse_extensions,
    validate_handshake,
    validate_handshake_response,
)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # the RFC's example
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def response_headers(raw: bytes) -> list[tuple[str, str]]:
    """The header fields of a 101 as bytes, the way an HTTP client hands them over."""
    head, _, _ = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0] == "HTTP/1.1 101 Switching Protocols"
    return [(name, value.strip()) for name, _, value in (line.partition(":") for line in lines[1:])]


def switching(accept: str = ACCEPT, **extra: str) -> list[tuple[str, str]]:
    headers = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept)]
    return headers + [(name.replace("_", "-"), value) for name, value in extra.items()]


class TestRequest:
    def test_client_key_is_16_random_bytes(self) -> None:
        keys = {client_key() for _ in range(50)}
        assert len(keys) == 50
        assert all(len(base64.b64decode(key, validate=True)) == 16 for key in keys)

    def test_request_headers_pass_our_server(self) -> None:
        key = client_key()
        offer = DeflateOffer()
        headers = [("Host", "example.com"), *client_request_headers(key, offer)]
        assert validate_handshake("GET", (1, 1), headers) == (
            key,
            [("permessage-deflate", [("client_max_window_bits", None)])],
        )
        assert ("Sec-WebSocket-Extensions", offer.header()) in headers
        assert not any(name == "Sec-WebSocket-Extensions" for name, _ in client_request_headers(key))


class TestResponse:
    def test_valid_101(self) -> None:
        assert validate_handshake_response(KEY, switching()) is None
        # a mapping too, and tokens are case-insensitive, among others
        headers = {"upgrade": "WebSocket", "CONNECTION": "keep-alive, upgrade", "sec-websocket-accept": ACCEPT}
        assert validate_handshake_response(KEY, headers, DeflateOffer()) is None

    def test_our_servers_101_is_accepted(self) -> None:
        key = client_key()
        raw = handshake_response(key, "permessage-deflate; client_max_window_bits=12", [("Set-Cookie", "a=b")])
        params = validate_handshake_response(key, response_headers(raw), DeflateOffer())
        assert params == DeflateParams(client_max_window_bits=12)

    @pytest.mark.parametrize(
        ("headers", "match"),
        [
            ([("Connection", "Upgrade"), ("Sec-WebSocket-Accept", ACCEPT)], "Upgrade: websocket"),
            ([("Upgrade", "h2c"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", ACCEPT)], "Upgrade"),
            ([("Upgrade", "websocket"), ("Sec-WebSocket-Accept", ACCEPT)], "Connection: upgrade"),
            ([("Upgrade", "websocket"), ("Connection", "Upgrade")], "Sec-WebSocket-Accept"),
            (switching(accept_key("x" + KEY)), "Sec-WebSocket-Accept"),
            ([*switching(), ("Sec-WebSocket-Accept", ACCEPT)], "Sec-WebSocket-Accept"),  # twice
            (switching(Sec_WebSocket_Protocol="chat"), "subprotocol"),
            (switching(Sec_WebSocket_Extensions="permessage-deflate"), "none offered"),
        ],
    )
    def test_a_client_must_fail_the_connection(self, headers: list[tuple[str, str]], match: str) -> None:
        with pytest.raises(HandshakeError, match=match):
            validate_handshake_response(KEY, headers)

    def test_an_empty_extensions_header_accepts_nothing(self) -> None:
        assert validate_handshake_response(KEY, switching(Sec_WebSocket_Extensions=""), DeflateOffer()) is None


class TestDeflateOffer:
    def test_header(self) -> None:
        assert DeflateOffer().header() == "permessage-deflate; client_max_window_bits"
        offer = DeflateOffer(
            client_no_context_takeover=True,
            client_max_window_bits=False,
            server_no_context_takeover=True,
            server_max_window_bits=10,
        )
        assert offer.header() == (
            "permessage-deflate; client_no_context_takeover; server_no_context_takeover; server_max_window_bits=10"
        )

    def test_accept(self) -> None:
        offer = DeflateOffer(compress_level=1, mem_level=4)
        params = offer.accept(["permessage-deflate; server_no_context_takeover; client_max_window_bits=10"])
        assert params == DeflateParams(True, False, 15, 10, 1, 4)
        assert offer.accept([]) is None
        assert DeflateOffer(server_max_window_bits=12).accept(["permessage-deflate; server_max_window_bits=9"]) == (
            DeflateParams(server_max_window_bits=9)
        )
        accepted = DeflateOffer().accept(["permessage-deflate; client_no_context_takeover"])
        assert accepted == DeflateParams(client_no_context_takeover=True)

    def test_a_promise_to_reset_is_kept_even_when_not_confirmed(self) -> None:
        promised = DeflateOffer(client_no_context_takeover=True).accept(["permessage-deflate"])
        assert promised is not None and promised.client_no_context_takeover

    @pytest.mark.parametrize(
        ("offer", "response", "match"),
        [
            (DeflateOffer(), "x-webkit-deflate-frame", "not offered"),
            (DeflateOffer(), "permessage-deflate; foo", "unknown permessage-deflate parameter"),
            (DeflateOffer(), "permessage-deflate; server_max_window_bits=16", "invalid"),
            (DeflateOffer(), "permessage-deflate; server_max_window_bits=09", "invalid"),
            (DeflateOffer(), "permessage-deflate; server_max_window_bits", "invalid"),
            (DeflateOffer(), "permessage-deflate; client_no_context_takeover=1", "takes no value"),
            (DeflateOffer(), "permessage-deflate; server_no_context_takeover; server_no_context_takeover", "repeated"),
            (DeflateOffer(), "permessage-deflate, permessage-deflate", "more than one"),
            (DeflateOffer(), "permessage-deflate;", "malformed"),
            (
                DeflateOffer(client_max_window_bits=False),
                "permessage-deflate; client_max_window_bits=9",
                "not in the offer",
            ),
            (DeflateOffer(server_max_window_bits=10), "permessage-deflate; server_max_window_bits=12", "larger"),
            (DeflateOffer(server_max_window_bits=10), "permessage-deflate", "offered but not accepted"),
            (DeflateOffer(server_no_context_takeover=True), "permessage-deflate", "offered but not accepted"),
        ],
    )
    def test_responses_to_fail_on(self, offer: DeflateOffer, response: str, match: str) -> None:
        with pytest.raises(HandshakeError, match=match):
            offer.accept([response])

    @pytest.mark.parametrize(
        "kwargs",
        [{"server_max_window_bits": 7}, {"server_max_window_bits": 16}, {"compress_level": 10}, {"mem_level": 0}],
    )
    def test_validation(self, kwargs: dict[str, int]) -> None:
        with pytest.raises(ValueError):
            DeflateOffer(**kwargs)  # type: ignore[arg-type]


OFFERS = [
    DeflateOffer(),
    DeflateOffer(client_max_window_bits=False),
    DeflateOffer(client_no_context_takeover=True),
    DeflateOffer(server_no_context_takeover=True),
    DeflateOffer(server_max_window_bits=9),
    DeflateOffer(server_max_window_bits=15, client_no_context_takeover=True),
]
CONFIGS = [
    DeflateConfig(),
    DeflateConfig(server_max_window_bits=15, client_max_window_bits=None, mem_level=8),
    DeflateConfig(server_no_context_takeover=True, client_no_context_takeover=True, client_max_window_bits=9),
]


@pytest.mark.parametrize("offer", OFFERS)
@pytest.mark.parametrize("config", CONFIGS)
def test_both_ends_agree_and_talk(offer: DeflateOffer, config: DeflateConfig) -> None:
    """Our server negotiates an offer of our client; the client accepts the answer with the parameters the
    server chose (only its own zlib settings differ), and compressed messages cross both ways."""
    negotiated = negotiate_deflate(parse_extensions([offer.header()]), config)
    assert negotiated is not None
    response, server_params = negotiated
    client_params = offer.accept([response])
    assert client_params is not None
    assert client_params.server_no_context_takeover == server_params.server_no_context_takeover
    assert client_params.client_max_window_bits == server_params.client_max_window_bits
    # a promise the client keeps whatever the server answers
    assert client_params.client_no_context_takeover == (
        server_params.client_no_context_takeover or offer.client_no_context_takeover
    )
    if "server_max_window_bits" in response:
        assert client_params.server_max_window_bits == server_params.server_max_window_bits
    else:  # the server uses a smaller window silently; a larger inflater window is always right
        assert client_params.server_max_window_bits == 15 >= server_params.server_max_window_bits
    server = Connection(deflate=server_params, compression_threshold=0)
    client = Connection(client=True, deflate=client_params, compression_threshold=0)
    for text in ("hello " * 200, "again " * 300, "é" * 1000):
        assert server.receive_data(client.send_text(text)) == [text]
        assert client.receive_data(server.send_text(text)) == [text]
