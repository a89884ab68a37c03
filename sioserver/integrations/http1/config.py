"""The limits and deadlines of the HTTP/1.1 front (:mod:`sioserver.integrations.http1`)."""

from __future__ import annotations

from dataclasses import dataclass

from ...exceptions import ConfigurationError

__all__ = ["HttpConfig"]


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """What one HTTP/1.1 connection may send, and how long it may take.

    Sizes in bytes, times in seconds. Past a size limit the request is answered 414 (request
    target), 431 (a header line, the header count, the whole head) or 413 (a body) and the connection
    is closed; every refusal is one ``INFO`` line on the ``sioserver.http`` logger.

    ``max_body_size`` bounds bodies outside the Engine.IO path (static files, the ASGI app); Engine.IO
    polling bodies are bounded by the server's ``max_http_buffer_size`` and must arrive whole within
    its ``body_timeout``, as on every front. ``head_timeout`` runs from a request's first byte to the
    end of its head (slowloris); ``keepalive_timeout`` closes a connection idle between requests
    (Node's http server closes after 5 s, and so do we). ``max_pipelined`` requests may wait behind
    the one being answered; past that the connection is not read until the queue shrinks (TCP
    pushes back on the client, nothing is refused). ``linger`` is how long a connection closed
    after an error answer keeps reading and discarding, so that the client sees the answer rather
    than a reset.
    """

    max_request_target: int = 8190
    max_header_line: int = 8190
    max_headers: int = 100
    max_head_size: int = 65_536
    max_body_size: int = 1_000_000
    head_timeout: float = 10.0
    body_timeout: float = 30.0
    keepalive_timeout: float = 5.0
    max_pipelined: int = 16
    linger: float = 2.0
    backlog: int = 2048

    def __post_init__(self) -> None:
        sizes = (self.max_request_target, self.max_header_line, self.max_headers, self.max_head_size,
                 self.max_body_size, self.max_pipelined, self.backlog)
        if min(sizes) < 1:
            raise ConfigurationError("HttpConfig sizes and counts must be positive")
        if min(self.head_timeout, self.body_timeout, self.keepalive_timeout, self.linger) <= 0:
            raise ConfigurationError("HttpConfig timeouts must be positive (seconds)")
