"""sioserver's own HTTP/1.1 front: what ``sioserver.run`` and ``python -m sioserver`` serve with.

An :class:`asyncio.Protocol` per connection over httptools (the llhttp parser of Node and uvicorn),
with keep-alive, pipelining, limits and deadlines (:class:`HttpConfig`); Engine.IO requests go
straight to the engine and WebSocket upgrades to sioserver's own RFC 6455 connection on the same
transport; other paths to static files or an ASGI app. See ``connection.py`` for how a request runs.
"""

from __future__ import annotations

from .config import HttpConfig
from .server import Http1Server

__all__ = ["Http1Server", "HttpConfig"]
