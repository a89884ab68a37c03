"""Socket.IO protocol v4, what socket.io-client 2.x speaks (over Engine.IO v3, ``allow_eio3=True``).

The packets are those of v5; what differs is how namespaces are joined, as Node's socket.io 4 serves them
with ``allowEIO3``:

* the client never sends a CONNECT for ``/``: the server connects it at the handshake (:meth:`V2Client.open`);
* a custom namespace's CONNECT carries no payload; its query string rides on the namespace
  (``40/custom?token=abc,``), and that query is the connection's ``auth``. For ``/`` the ``auth`` is the query
  string of the handshake (the client's ``query`` option; Node gives ``{}`` there and the query in
  ``socket.handshake.query``), so one ``connect(sid, environ, auth)`` serves v2 and v4 clients alike;
* the CONNECT reply has no payload (``40``, ``40/custom,``) and a socket's id is the Engine.IO sid in ``/``
  and ``/custom#<sid>`` in a namespace;
* a refused connection's CONNECT_ERROR carries the refusal's data, or its message when there is no data
  (Node: ``err.data || err.message``, which v2 clients get as the ``error`` event's argument); an unknown
  namespace still gets ``{"message":"Invalid namespace"}``. There is no connection state recovery.
"""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any

from ..proto.socketio import CONNECT, CONNECT_ERROR, Packet
from .client import Client

if TYPE_CHECKING:
    from ..engine.session import Session
    from .server import AsyncServer
    from .socket import Socket

__all__ = ["V2Client", "client_for"]

#: query parameters of Engine.IO itself, not the client's
_ENGINE_PARAMS = frozenset({"EIO", "transport", "t", "sid", "b64", "j"})


class V2Client(Client):
    """A socket.io-client 2.x connection."""

    __slots__ = ()

    protocol = 4

    def open(self) -> None:
        """Connect ``/``, as the handshake does for a v2 client."""
        query = self.session.environ.get("QUERY_STRING", "")
        auth = {k: v for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True) if k not in _ENGINE_PARAMS}
        self.server.connect_namespace(self, Packet(CONNECT, "/", auth))

    def connect(self, packet: Packet) -> None:
        name, _, query = packet.nsp.partition("?")
        if name in self.sockets:
            self._violation(f"duplicate CONNECT for namespace {name!r}")
            return
        auth = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        self.server.connect_namespace(self, Packet(CONNECT, name, auth))

    def socket_id(self, nsp: str) -> str:
        sid = self.session.sid
        return sid if nsp == "/" else f"{nsp}#{sid}"

    def connect_reply(self, socket: Socket) -> Any:
        return None

    def refuse(self, nsp: str, message: str, data: Any = None) -> None:
        falsy = data is None or data is False or data == "" or (type(data) in (int, float) and not data)
        self.write(self.server.parser.encode(Packet(CONNECT_ERROR, nsp, message if falsy else data)), False)


def client_for(server: AsyncServer, session: Session) -> Client:
    """The Socket.IO side of a new Engine.IO session: a v5 :class:`Client`, or for an Engine.IO v3 session
    (socket.io-client 2.x) a :class:`V2Client` already connecting ``/``."""
    if session.protocol == 4:
        return Client(server, session)
    client = V2Client(server, session)
    client.open()
    return client
