"""Adapters: where rooms live and how broadcasts fan out across processes.

:class:`RedisAdapter` joins sioserver processes (and Node socket.io servers using
@socket.io/redis-adapter) into one cluster; :class:`Emitter` publishes to such a cluster from a process
that serves no clients (the wire of @socket.io/redis-emitter).
"""

from .emitter import Emitter, EmitterOperator
from .errors import AdapterError, ClusterTimeoutError, MessageTooLargeError, RedisUnavailableError
from .redis import RedisAdapter, RedisNamespaceAdapter, ShardedRedisNamespaceAdapter

__all__ = [
    "AdapterError",
    "ClusterTimeoutError",
    "Emitter",
    "EmitterOperator",
    "MessageTooLargeError",
    "RedisAdapter",
    "RedisNamespaceAdapter",
    "RedisUnavailableError",
    "ShardedRedisNamespaceAdapter",
]
