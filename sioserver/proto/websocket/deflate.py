"""permessage-deflate (RFC 7692): negotiation, both sides (sections 5 and 7.1), and the parameters a
:class:`~sioserver.proto.websocket.Connection` compresses and inflates with (section 7.2).

A server answers offers with :func:`negotiate_deflate` under its :class:`DeflateConfig`; a client makes
a :class:`DeflateOffer` and checks the server's answer with :meth:`DeflateOffer.accept`. Both end in
:class:`DeflateParams`, written from the server's point of view as the RFC names them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from ...exceptions import HandshakeError
from .extensions import ExtensionOffer, parse_extensions

__all__ = ["DEFLATE_TAIL", "DeflateConfig", "DeflateOffer", "DeflateParams", "negotiate_deflate"]

DEFLATE_TAIL: Final = b"\x00\x00\xff\xff"  # section 7.2.2: the end of a sync flush, left off the wire


@dataclass(frozen=True, slots=True)
class DeflateConfig:
    """What a server accepts and asks for.

    ``server_max_window_bits`` (9-15) bounds the window of our compressor; we use it silently and
    announce a value only when the client asks for one. ``client_max_window_bits`` (8-15) is requested
    from clients that allow it (browsers do); None leaves the client's window alone (15).

    Memory per connection that uses compression, allocated on first use: deflate takes about
    2**(wbits+2) + 2**(mem_level+9) bytes, inflate 2**wbits + 7 KiB. The defaults (12, 12, 5) mean
    ~40 KiB instead of ~300 KiB with zlib's (15, 15, 8), at a small cost in ratio on messages larger
    than the 4 KiB window. ``client_no_context_takeover`` also frees the inflater between messages.
    """

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 12
    client_max_window_bits: int | None = 12
    compress_level: int = 6
    mem_level: int = 5

    def __post_init__(self) -> None:
        if not 9 <= self.server_max_window_bits <= 15:
            raise ValueError("server_max_window_bits must be 9-15 (zlib cannot deflate with 8)")
        if self.client_max_window_bits is not None and not 8 <= self.client_max_window_bits <= 15:
            raise ValueError("client_max_window_bits must be 8-15")
        if not -1 <= self.compress_level <= 9 or not 1 <= self.mem_level <= 9:
            raise ValueError("compress_level must be -1-9 and mem_level 1-9")


@dataclass(frozen=True, slots=True)
class DeflateParams:
    """Negotiated permessage-deflate parameters (window bits 8-15; 15 when not negotiated)."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15
    compress_level: int = 6
    mem_level: int = 8


_WINDOW_BITS_RE: Final = re.compile(r"[89]|1[0-5]")  # RFC 7692 section 7.1.2: no leading zeros


def negotiate_deflate(offers: Sequence[ExtensionOffer], config: DeflateConfig) -> tuple[str, DeflateParams] | None:
    """Accept the first permessage-deflate offer we can honour (RFC 7692 section 5.1).

    Returns the Sec-WebSocket-Extensions response value and the parameters, or None (no
    compression). Offers with unknown, repeated or invalid parameters are declined, as is a
    ``server_max_window_bits=8`` offer: zlib cannot deflate with a 256-byte window.
    """
    for name, params in offers:
        if name != "permessage-deflate":
            continue
        seen: dict[str, str | None] = {}
        for param, value in params:
            if param in seen:
                break
            seen[param] = value
            if param in ("server_no_context_takeover", "client_no_context_takeover"):
                if value is not None:
                    break
            elif param == "server_max_window_bits":
                if value is None or not _WINDOW_BITS_RE.fullmatch(value) or value == "8":
                    break
            elif param == "client_max_window_bits":
                if value is not None and not _WINDOW_BITS_RE.fullmatch(value):
                    break
            else:
                break
        else:
            response = ["permessage-deflate"]
            server_reset = "server_no_context_takeover" in seen or config.server_no_context_takeover
            if server_reset:
                response.append("server_no_context_takeover")
            # An offered client_no_context_takeover is only a hint (clients such as Autobahn's keep
            # their context unless the response says otherwise): rely on our response alone.
            client_reset = config.client_no_context_takeover
            if client_reset:
                response.append("client_no_context_takeover")
            server_bits = config.server_max_window_bits
            if "server_max_window_bits" in seen:
                server_bits = min(server_bits, int(seen["server_max_window_bits"] or 15))
                response.append(f"server_max_window_bits={server_bits}")
            client_bits = 15
            if "client_max_window_bits" in seen:
                offered = seen["client_max_window_bits"]
                client_bits = int(offered) if offered else 15
                if config.client_max_window_bits is not None:
                    client_bits = min(client_bits, config.client_max_window_bits)
                    response.append(f"client_max_window_bits={client_bits}")
            return "; ".join(response), DeflateParams(
                server_reset,
                client_reset,
                server_bits,
                client_bits,
                config.compress_level,
                config.mem_level,
            )
    return None


# -- the client's side -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DeflateOffer:
    """The permessage-deflate offer a client makes (RFC 7692 section 7.1).

    ``client_no_context_takeover`` promises that we compress every message on its own (the server may
    then keep less state); ``client_max_window_bits`` lets the server pick our window size;
    ``server_no_context_takeover`` / ``server_max_window_bits`` (8-15) ask the server to limit its own.
    ``compress_level`` and ``mem_level`` are zlib's, for our compressor.
    """

    client_no_context_takeover: bool = False
    client_max_window_bits: bool = True
    server_no_context_takeover: bool = False
    server_max_window_bits: int | None = None
    compress_level: int = 6
    mem_level: int = 8

    def __post_init__(self) -> None:
        if self.server_max_window_bits is not None and not 8 <= self.server_max_window_bits <= 15:
            raise ValueError("server_max_window_bits must be 8-15")
        if not -1 <= self.compress_level <= 9 or not 1 <= self.mem_level <= 9:
            raise ValueError("compress_level must be -1-9 and mem_level 1-9")

    def header(self) -> str:
        """The Sec-WebSocket-Extensions value of the request."""
        parts = ["permessage-deflate"]
        if self.client_no_context_takeover:
            parts.append("client_no_context_takeover")
        if self.client_max_window_bits:
            parts.append("client_max_window_bits")
        if self.server_no_context_takeover:
            parts.append("server_no_context_takeover")
        if self.server_max_window_bits is not None:
            parts.append(f"server_max_window_bits={self.server_max_window_bits}")
        return "; ".join(parts)

    def accept(self, values: Iterable[str]) -> DeflateParams | None:
        """Check the server's Sec-WebSocket-Extensions values against this offer (section 5.1).

        Returns the parameters to use, or None when the server declined (no values). Raises
        HandshakeError for a response on which a client must fail the connection.
        """
        extensions = parse_extensions(values)
        if not extensions:
            return None
        if len(extensions) > 1:
            raise _bad("more than one extension accepted, only permessage-deflate was offered")
        name, params = extensions[0]
        if name != "permessage-deflate":
            raise _bad(f"extension {name!r} accepted but not offered")
        seen: dict[str, str | None] = {}
        for param, value in params:
            if param in seen:
                raise _bad(f"repeated permessage-deflate parameter {param!r}")
            seen[param] = value
        server_reset = client_reset = False
        server_bits = client_bits = 15
        for param, value in seen.items():
            if param in ("server_no_context_takeover", "client_no_context_takeover"):
                if value is not None:
                    raise _bad(f"{param} takes no value")
                if param == "server_no_context_takeover":
                    server_reset = True
                else:
                    client_reset = True
            elif param in ("server_max_window_bits", "client_max_window_bits"):
                if value is None or not _WINDOW_BITS_RE.fullmatch(value):
                    raise _bad(f"invalid {param} value {value!r}")
                if param == "server_max_window_bits":
                    if self.server_max_window_bits is not None and int(value) > self.server_max_window_bits:
                        raise _bad("server_max_window_bits larger than offered")
                    server_bits = int(value)
                else:
                    if not self.client_max_window_bits:
                        raise _bad("client_max_window_bits in the response but not in the offer")
                    client_bits = int(value)
            else:
                raise _bad(f"unknown permessage-deflate parameter {param!r}")
        if self.server_no_context_takeover and not server_reset:
            raise _bad("server_no_context_takeover offered but not accepted")
        if self.server_max_window_bits is not None and "server_max_window_bits" not in seen:
            raise _bad("server_max_window_bits offered but not accepted")
        # We promised to reset our context per message when we offered client_no_context_takeover.
        client_reset = client_reset or self.client_no_context_takeover
        return DeflateParams(server_reset, client_reset, server_bits, client_bits, self.compress_level, self.mem_level)


def _bad(reason: str) -> HandshakeError:
    return HandshakeError(f"bad Sec-WebSocket-Extensions: {reason}")
