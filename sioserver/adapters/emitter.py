"""Emit to a cluster's clients from a process that is not a Socket.IO server (a worker, a cron job).

::

    emitter = sioserver.Emitter("redis://localhost:6379/0")
    await emitter.emit("news", {"title": "..."})                 # everyone in "/"
    await emitter.of("/admin").to("room1").except_("muted").emit("alert", 1)
    await emitter.to("room1").sockets_join("room2")
    await emitter.server_side_emit("reload", "config")           # handlers of on_server_event
    await emitter.close()                                        # or: async with Emitter(...) as emitter

The wire is that of @socket.io/redis-emitter 5.x (uid ``"emitter"``): Node servers using
@socket.io/redis-adapter and sioserver servers using :class:`~sioserver.RedisAdapter` (classic mode)
both deliver what it sends. Operators are immutable, as the server's. Each call awaits Redis and
raises :class:`~sioserver.adapters.RedisUnavailableError` when Redis cannot be reached (an emitter
has no local clients to fall back to), :class:`~sioserver.adapters.MessageTooLargeError` above
``publish_max_bytes``. ``emit`` returns how many Redis subscribers got the message (the servers
subscribed to that namespace; 0 means none did).
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..proto.socketio import RESERVED_EVENTS
from ._link import bounded
from ._target import client_for
from ._wire import EMITTER_UID, RequestType, json_bytes, pack
from .errors import MessageTooLargeError, RedisUnavailableError
from .redis import DEFAULT_PUBLISH_MAX_BYTES

__all__ = ["Emitter", "EmitterOperator"]


def _names(rooms: str | Iterable[str]) -> tuple[str, ...]:
    if isinstance(rooms, str):
        return (rooms,)
    return tuple(rooms)


class _Target:
    """Where an emitter publishes: a Redis client, a key and a namespace."""

    __slots__ = ("broadcast_channel", "key", "max_bytes", "nsp", "redis", "request_channel", "timeout")

    def __init__(self, redis: Redis, key: str, nsp: str, max_bytes: int, timeout: float) -> None:
        self.redis = redis
        self.key = key
        self.nsp = nsp
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.broadcast_channel = f"{key}#{nsp}#"
        self.request_channel = f"{key}-request#{nsp}#"

    async def publish(self, channel: str, payload: bytes, what: str) -> int:
        if len(payload) > self.max_bytes:
            raise MessageTooLargeError(what, len(payload), self.max_bytes)
        try:
            receivers = await bounded(self.redis.publish(channel, payload), self.timeout)
        except (TimeoutError, RedisError, OSError) as exc:
            raise RedisUnavailableError(f"{what} could not be published: {type(exc).__name__}: {exc}") from exc
        return int(receivers)


class EmitterOperator:
    """Targets and flags of one emit, as the server's broadcast operator (immutable)."""

    __slots__ = ("_except", "_flags", "_rooms", "_target")

    def __init__(self, target: _Target, rooms: tuple[str, ...] = (), except_rooms: tuple[str, ...] = (),
                 flags: dict[str, Any] | None = None) -> None:
        self._target = target
        self._rooms = rooms
        self._except = except_rooms
        self._flags = flags or {}

    def to(self, rooms: str | Iterable[str]) -> EmitterOperator:
        """Add target rooms (a socket id is a room too)."""
        added = tuple(r for r in _names(rooms) if r not in self._rooms)
        return EmitterOperator(self._target, self._rooms + added, self._except, self._flags)

    in_ = to

    def except_(self, rooms: str | Iterable[str]) -> EmitterOperator:
        """Exclude everyone in these rooms."""
        added = tuple(r for r in _names(rooms) if r not in self._except)
        return EmitterOperator(self._target, self._rooms, self._except + added, self._flags)

    @property
    def volatile(self) -> EmitterOperator:
        return EmitterOperator(self._target, self._rooms, self._except, {**self._flags, "volatile": True})

    def compress(self, compress: bool) -> EmitterOperator:
        return EmitterOperator(self._target, self._rooms, self._except, {**self._flags, "compress": bool(compress)})

    async def emit(self, event: str, *args: Any) -> int:
        """Publish ``event`` with ``args`` (bytes stay binary); returns the servers reached."""
        if not isinstance(event, str):
            raise TypeError("the event name must be a str")
        if event in RESERVED_EVENTS:
            raise ValueError(f"{event!r} is a reserved event name")
        target = self._target
        packet = {"type": 2, "data": [event, *args], "nsp": target.nsp}
        opts = {"rooms": list(self._rooms), "flags": dict(self._flags), "except": list(self._except)}
        payload = pack([EMITTER_UID, packet, opts])
        channel = target.broadcast_channel
        if len(self._rooms) == 1:
            channel += self._rooms[0] + "#"
        return await target.publish(channel, payload, f"an emit of {event!r} in {target.nsp}")

    async def send(self, data: Any) -> int:
        return await self.emit("message", data)

    async def _request(self, request: dict[str, Any], what: str) -> int:
        target = self._target
        return await target.publish(target.request_channel, json_bytes(request), what)

    def _opts(self) -> dict[str, Any]:
        return {"rooms": list(self._rooms), "except": list(self._except)}

    async def sockets_join(self, rooms: str | Iterable[str]) -> int:
        """Make the targeted sockets, on every server, join ``rooms``."""
        return await self._request({"type": int(RequestType.REMOTE_JOIN), "opts": self._opts(),
                                    "rooms": list(_names(rooms))}, "sockets_join()")

    async def sockets_leave(self, rooms: str | Iterable[str]) -> int:
        """Make the targeted sockets, on every server, leave ``rooms``."""
        return await self._request({"type": int(RequestType.REMOTE_LEAVE), "opts": self._opts(),
                                    "rooms": list(_names(rooms))}, "sockets_leave()")

    async def disconnect_sockets(self, close: bool = False) -> int:
        """Disconnect the targeted sockets (``close`` closes their whole connection)."""
        return await self._request({"type": int(RequestType.REMOTE_DISCONNECT), "opts": self._opts(),
                                    "close": bool(close)}, "disconnect_sockets()")


class Emitter(EmitterOperator):
    """Publishes to a Socket.IO cluster through Redis (see the module docstring).

    ``redis_url`` is a ``redis://`` URL, a ``redis+sentinel://h1:26379,h2/mymaster/0`` URL (the
    master of that Sentinel service), or an existing ``redis.asyncio.Redis`` client (then the caller
    closes it). ``key`` is the adapters' channel prefix. ``timeout`` bounds each publish (seconds).
    """

    __slots__ = ("_owns_client",)

    def __init__(self, redis_url: str | Redis = "redis://localhost:6379/0", key: str = "socket.io", *,
                 namespace: str = "/", publish_max_bytes: int = DEFAULT_PUBLISH_MAX_BYTES, timeout: float = 5.0,
                 **redis_options: Any) -> None:
        if isinstance(redis_url, str):
            options: dict[str, Any] = {"socket_connect_timeout": 2.0, "socket_timeout": timeout,
                                       "retry": Retry(NoBackoff(), 0), **redis_options, "protocol": 2}
            client: Redis = client_for(redis_url, options, "Emitter")
            self._owns_client = True
        else:
            client = redis_url
            self._owns_client = False
        nsp = namespace if namespace.startswith("/") else "/" + namespace
        super().__init__(_Target(client, key, nsp, publish_max_bytes, timeout))

    @property
    def namespace(self) -> str:
        return self._target.nsp

    def of(self, namespace: str) -> Emitter:
        """An emitter for another namespace, on the same Redis client."""
        target = self._target
        other = Emitter.__new__(Emitter)
        other._owns_client = False
        nsp = namespace if namespace.startswith("/") else "/" + namespace
        EmitterOperator.__init__(other, _Target(target.redis, target.key, nsp, target.max_bytes, target.timeout))
        return other

    async def server_side_emit(self, event: str, *args: Any) -> int:
        """Send a server-side event to every server of the namespace (no acknowledgement possible)."""
        if not isinstance(event, str):
            raise TypeError("the event name must be a str")
        return await self._request({"uid": EMITTER_UID, "type": int(RequestType.SERVER_SIDE_EMIT),
                                    "data": [event, *args]}, f"server_side_emit({event!r})")

    async def close(self) -> None:
        """Close the Redis client, if this emitter made it."""
        if self._owns_client:
            await self._target.redis.aclose()

    async def __aenter__(self) -> Emitter:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()
