"""sioserver.proto.websocket.handshake and .extensions, the server's side: the opening handshake
(RFC 6455 section 4.2) and the Sec-WebSocket-Extensions grammar (section 9.1). The client's side is in
test_client_handshake.py."""

from __future__ import annotations

import base64

import pytest

from sioserver.exceptions import HandshakeError
from sioserver.proto.websocket import (
    accept_key,
    handshake_response,
    parse_extensions,
    validate_handshake,
)


# -- RFC 6455 section 4.2: the opening handshake ---------------------------------------------------
def request_headers(**overrides: str | None) -> dict[str, str]:
    headers = {
        "Host": "example.com",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
    }
    for key, value in overrides.items():
        name = key.replace("_", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return headers


class TestHandshake:
    def test_accept_key_rfc_example(self) -> None:
        assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

    def test_valid_request(self) -> None:
        key, offers = validate_handshake("GET", (1, 1), request_headers())
        assert key == "dGhlIHNhbXBsZSBub25jZQ=="
        assert offers == []

    def test_header_names_and_tokens_are_case_insensitive(self) -> None:
        headers = [
            ("host", "x"),
            ("UPGRADE", "WebSocket"),
            ("connection", "keep-alive, Upgrade"),
            ("sec-websocket-key", " dGhlIHNhbXBsZSBub25jZQ== "),
            ("SEC-WEBSOCKET-VERSION", "13"),
            ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
            ("Sec-WebSocket-Extensions", "x-foo"),
        ]
        key, offers = validate_handshake("GET", "HTTP/2.0", headers)
        assert key == "dGhlIHNhbXBsZSBub25jZQ=="
        assert offers == [("permessage-deflate", [("client_max_window_bits", None)]), ("x-foo", [])]

    @pytest.mark.parametrize("version", ["1.1", "HTTP/1.1", "2", (1, 1), (2, 0)])
    def test_versions(self, version: tuple[int, int] | str) -> None:
        validate_handshake("GET", version, request_headers())

    @pytest.mark.parametrize("version", ["1.0", (1, 0), (0, 9), "HTTP/x.y"])
    def test_old_or_bad_http_version(self, version: tuple[int, int] | str) -> None:
        with pytest.raises(HandshakeError) as info:
            validate_handshake("GET", version, request_headers())
        assert info.value.status == 400

    @pytest.mark.parametrize(
        "overrides",
        [
            {"Host": None},
            {"Upgrade": None},
            {"Upgrade": "h2c"},
            {"Connection": None},
            {"Connection": "keep-alive"},
            {"Sec-WebSocket-Key": None},
            {"Sec-WebSocket-Key": "not base64!"},
            {"Sec-WebSocket-Key": base64.b64encode(b"15 bytes only!!").decode()},
            {"Sec-WebSocket-Version": None},
            {"Sec-WebSocket-Extensions": "permessage-deflate;"},
        ],
    )
    def test_bad_request_is_400(self, overrides: dict[str, str | None]) -> None:
        with pytest.raises(HandshakeError) as info:
            validate_handshake("GET", (1, 1), request_headers(**overrides))
        assert info.value.status == 400
        assert info.value.code == 1002

    def test_method_must_be_get(self) -> None:
        with pytest.raises(HandshakeError, match="POST"):
            validate_handshake("POST", (1, 1), request_headers())

    def test_repeated_key_is_400(self) -> None:
        headers = [*request_headers().items(), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")]
        with pytest.raises(HandshakeError):
            validate_handshake("GET", (1, 1), headers)

    @pytest.mark.parametrize("version", ["8", "12", "13, 8", ""])
    def test_other_version_is_426_naming_13(self, version: str) -> None:
        with pytest.raises(HandshakeError) as info:
            validate_handshake("GET", (1, 1), request_headers(Sec_WebSocket_Version=version))
        assert info.value.status == 426
        assert info.value.headers == {"Sec-WebSocket-Version": "13"}

    def test_response(self) -> None:
        response = handshake_response(
            "dGhlIHNhbXBsZSBub25jZQ==", "permessage-deflate", [("Set-Cookie", "io=abc; Path=/")]
        )
        assert response == (
            b"HTTP/1.1 101 Switching Protocols\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
            b"Set-Cookie: io=abc; Path=/\r\n"
            b"\r\n"
        )
        assert b"Extensions" not in handshake_response("dGhlIHNhbXBsZSBub25jZQ==")

    @pytest.mark.parametrize("header", [("X-A", "b\r\nEvil: 1"), ("Bad Name", "x"), ("X", "a\0")])
    def test_response_refuses_header_injection(self, header: tuple[str, str]) -> None:
        with pytest.raises(ValueError):
            handshake_response("dGhlIHNhbXBsZSBub25jZQ==", None, [header])


class TestExtensionHeader:
    """RFC 6455 section 9.1 grammar."""

    def test_parse(self) -> None:
        assert parse_extensions(
            ['permessage-deflate ; client_max_window_bits=10;server_no_context_takeover , x-y; a="b"', ""]
        ) == [
            ("permessage-deflate", [("client_max_window_bits", "10"), ("server_no_context_takeover", None)]),
            ("x-y", [("a", "b")]),
        ]

    def test_quoted_pair(self) -> None:
        assert parse_extensions(['x; a="1\\0"']) == [("x", [("a", "10")])]

    @pytest.mark.parametrize(
        "value",
        [
            "a=b",  # the extension name takes no value
            '"quoted"',
            "x; =1",
            "x; a=",
            'x; a="not a token"',
            "x,",
            "x, ",
            "x y",
            "x; a=1 b",
            ",x",
        ],
    )
    def test_malformed(self, value: str) -> None:
        with pytest.raises(HandshakeError):
            parse_extensions([value])
