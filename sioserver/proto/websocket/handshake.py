"""The opening handshake (RFC 6455 section 4), both sides. Pure functions over header values: the
HTTP itself is the caller's.

Server: :func:`validate_handshake` checks a client's request (section 4.2.1) and
:func:`handshake_response` writes the 101 (section 4.2.2); :func:`~.deflate.negotiate_deflate` picks the
extension response. Client: :func:`client_key` and :func:`client_request_headers` make the request
(section 4.1), :func:`validate_handshake_response` checks the server's 101 and returns the
permessage-deflate parameters it accepted (section 4.2.2 item 5, RFC 7692 section 5.1). Every failure is
a :class:`~sioserver.exceptions.HandshakeError`; on the client side the connection must then be failed
(section 4.1: "the client MUST _Fail the WebSocket Connection_").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from ...exceptions import HandshakeError
from .deflate import DeflateOffer, DeflateParams
from .extensions import _TOKEN_RE, ExtensionOffer, parse_extensions

__all__ = [
    "accept_key",
    "client_key",
    "client_request_headers",
    "handshake_response",
    "validate_handshake",
    "validate_handshake_response",
]

Headers = Mapping[str, str] | Iterable[tuple[str, str]]

_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (section 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + _GUID).digest()).decode("ascii")


def _header_tokens(values: list[str]) -> set[str]:
    return {t.strip().lower() for v in values for t in v.split(",")}


def _fields(headers: Headers) -> dict[str, list[str]]:
    """Header values by lower-cased name; a multidict's ``items()`` gives repeated headers."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    fields: dict[str, list[str]] = {}
    for name, value in items:
        fields.setdefault(name.lower(), []).append(value)
    return fields


def validate_handshake(
    method: str, version: tuple[int, int] | str, headers: Headers
) -> tuple[str, list[ExtensionOffer]]:
    """Check a client's opening handshake (section 4.2.1); return its key and extension offers.

    ``headers`` is a mapping (a multidict's ``items()`` gives repeated headers) or ``(name, value)``
    pairs. Raises HandshakeError with status 400, or 426 and ``Sec-WebSocket-Version: 13`` for a
    version this server does not speak (section 4.4).
    """
    if method != "GET":
        raise HandshakeError(f"method {method} is not GET")
    if isinstance(version, str):
        major, _, minor = version.removeprefix("HTTP/").partition(".")
        try:
            version = (int(major), int(minor or "0"))
        except ValueError:
            raise HandshakeError(f"invalid HTTP version {version!r}") from None
    if tuple(version) < (1, 1):
        raise HandshakeError("HTTP/1.1 or later is required")
    fields = _fields(headers)
    if "host" not in fields:
        raise HandshakeError("missing Host header")
    if "websocket" not in _header_tokens(fields.get("upgrade", [])):
        raise HandshakeError("missing or invalid Upgrade header")
    if "upgrade" not in _header_tokens(fields.get("connection", [])):
        raise HandshakeError("missing or invalid Connection header")
    versions = fields.get("sec-websocket-version")
    if versions is None:
        raise HandshakeError("missing Sec-WebSocket-Version header")
    if versions != ["13"]:
        raise HandshakeError("unsupported WebSocket version", 426, {"Sec-WebSocket-Version": "13"})
    keys = fields.get("sec-websocket-key", [])
    if len(keys) != 1:
        raise HandshakeError("missing or repeated Sec-WebSocket-Key header")
    key = keys[0].strip()
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise HandshakeError("invalid Sec-WebSocket-Key header")
    return key, parse_extensions(fields.get("sec-websocket-extensions", []))


def handshake_response(key: str, extensions: str | None = None, extra_headers: Sequence[tuple[str, str]] = ()) -> bytes:
    """The server's ``101 Switching Protocols`` response (section 4.2.2), ready for the wire."""
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept_key(key)}",
    ]
    if extensions:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    for name, value in extra_headers:
        if not _TOKEN_RE.fullmatch(name) or any(c in value for c in "\r\n\0"):
            raise ValueError(f"invalid header {name!r}: {value!r}")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# -- the client's side (section 4.1) -----------------------------------------------------------------
def client_key() -> str:
    """A fresh Sec-WebSocket-Key: 16 random bytes, base64 (section 4.1, item 7 of the request)."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def client_request_headers(key: str, offer: DeflateOffer | None = None) -> list[tuple[str, str]]:
    """The headers that make a GET an opening handshake (section 4.1), plus the deflate offer."""
    headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
    ]
    if offer is not None:
        headers.append(("Sec-WebSocket-Extensions", offer.header()))
    return headers


def validate_handshake_response(key: str, headers: Headers, offer: DeflateOffer | None = None) -> DeflateParams | None:
    """Check the headers of the server's ``101 Switching Protocols`` (section 4.2.2, as section 4.1
    requires of a client) to the request made with ``key`` and ``offer``.

    Returns the permessage-deflate parameters the server accepted, or None (no compression). Raises
    HandshakeError when the client must fail the connection: Upgrade or Connection missing, a wrong
    Sec-WebSocket-Accept, a subprotocol although none was offered, an extension that was not offered,
    or a deflate response that does not fit the offer (RFC 7692 section 5.1).
    """
    fields = _fields(headers)
    if "websocket" not in _header_tokens(fields.get("upgrade", [])):
        raise HandshakeError("101 without Upgrade: websocket")
    if "upgrade" not in _header_tokens(fields.get("connection", [])):
        raise HandshakeError("101 without Connection: upgrade")
    if fields.get("sec-websocket-accept", []) != [accept_key(key)]:
        raise HandshakeError("wrong Sec-WebSocket-Accept")
    if "sec-websocket-protocol" in fields:
        raise HandshakeError("subprotocol selected but none offered")
    extensions = fields.get("sec-websocket-extensions")
    if not extensions:
        return None
    if offer is None:
        raise HandshakeError("extension accepted but none offered")
    return offer.accept(extensions)
