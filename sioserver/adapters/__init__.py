"""Adapters: where rooms live and how broadcasts fan out across processes.

:class:`RedisAdapter` joins sioserver processes (and Node socket.io servers using
@socket.io/redis-adapter) into one cluster; :class:`Emitter` publishes to such a cluster from a process
that serves no clients (the wire of @socket.io/redis-emitter). :class:`AsyncRedisManager` speaks
python-socketio's Redis channel format instead, for clusters and task workers that use python-socketio's
managers (:class:`RedisManager` is its synchronous write-only emitter).
"""

from .emitter import Emitter, EmitterOperator
from .errors import AdapterError, ClusterTimeoutError, MessageTooLargeError, RedisUnavailableError
from .pubsub import AsyncRedisManager, PubSubAdapter, RedisManager
from .redis import RedisAdapter, RedisNamespaceAdapter, ShardedRedisNamespaceAdapter

__all__ = [
    "AdapterError",
    "AsyncRedisManager",
    "ClusterTimeoutError",
    "Emitter",
    "EmitterOperator",
    "MessageTooLargeError",
    "PubSubAdapter",
    "RedisAdapter",
    "RedisManager",
    "RedisNamespaceAdapter",
    "RedisUnavailableError",
    "ShardedRedisNamespaceAdapter",
]
