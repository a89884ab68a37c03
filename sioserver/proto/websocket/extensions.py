"""The Sec-WebSocket-Extensions header grammar (RFC 6455 section 9.1), for both sides of the handshake."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from ...exceptions import HandshakeError

__all__ = ["ExtensionOffer", "parse_extensions"]

_TOKEN: Final = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_TOKEN_RE: Final = re.compile(_TOKEN)
# one extension parameter: token [ "=" ( token | quoted-string ) ], then ";" "," or the end
_PARAM_RE: Final = re.compile(rf'[ \t]*({_TOKEN})[ \t]*(?:=[ \t]*(?:({_TOKEN})|"((?:[^"\\]|\\.)*)")[ \t]*)?')
_QUOTED_PAIR_RE: Final = re.compile(r"\\(.)")

ExtensionOffer = tuple[str, list[tuple[str, str | None]]]


def parse_extensions(values: Iterable[str]) -> list[ExtensionOffer]:
    """Parse Sec-WebSocket-Extensions header values (section 9.1) into ``[(name, [(param, value)])]``.

    Raises HandshakeError (400) on a malformed value.
    """
    offers: list[ExtensionOffer] = []
    for value in values:
        pos, end = 0, len(value)
        while pos < end:
            match = _PARAM_RE.match(value, pos)
            if match is None or match.group(2) or match.group(3) is not None:
                raise HandshakeError(f"malformed Sec-WebSocket-Extensions: {value!r}")
            name, params = match.group(1), []
            pos = match.end()
            while pos < end and value[pos] == ";":
                match = _PARAM_RE.match(value, pos + 1)
                if match is None:
                    raise HandshakeError(f"malformed Sec-WebSocket-Extensions: {value!r}")
                param, token, quoted = match.groups()
                if quoted is not None:
                    token = _QUOTED_PAIR_RE.sub(r"\1", quoted)
                    if not _TOKEN_RE.fullmatch(token):  # section 9.1: a quoted value is a token
                        raise HandshakeError(f"malformed Sec-WebSocket-Extensions: {value!r}")
                params.append((param, token))
                pos = match.end()
            offers.append((name, params))
            if pos < end:
                if value[pos] != ",":
                    raise HandshakeError(f"malformed Sec-WebSocket-Extensions: {value!r}")
                pos += 1
                while pos < end and value[pos] in " \t":
                    pos += 1
                if pos == end:
                    raise HandshakeError(f"malformed Sec-WebSocket-Extensions: {value!r}")
    return offers
