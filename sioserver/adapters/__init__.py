"""Adapters: where rooms live and how broadcasts fan out across processes.

:class:`RedisAdapter` joins sioserver processes (and Node socket.io servers using
@socket.io/redis-adapter) into one cluster; :class:`Emitter` publishes to such a cluster from a process
that serves no clients (the wire of @socket.io/redis-emitter). :class:`AsyncRedisManager` speaks
python-socketio's Redis channel format instead, for clusters and task workers that use python-socketio's
managers (:class:`RedisManager` is its synchronous write-only emitter). :class:`ClusterAdapter` and
:class:`ClusterAdapterWithHeartbeat` (:mod:`sioserver.adapters.cluster`) run socket.io-adapter's cluster
protocol over any :class:`ClusterTransport`.

Names are imported on first use (PEP 562): a transport of one's own (``sioserver.adapters.cluster``)
does not load redis-py.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

#: public name -> the module that defines it, relative to this package
_EXPORTS: Final[dict[str, str]] = {
    "AdapterError": ".errors",
    "ClusterTimeoutError": ".errors",
    "MessageTooLargeError": ".errors",
    "RedisUnavailableError": ".errors",
    "ClusterAdapter": ".cluster",
    "ClusterAdapterWithHeartbeat": ".cluster",
    "ClusterTransport": ".cluster",
    "MessageType": ".cluster",
    "Emitter": ".emitter",
    "EmitterOperator": ".emitter",
    "AsyncRedisManager": ".pubsub",
    "PubSubAdapter": ".pubsub",
    "RedisManager": ".pubsub",
    "RedisAdapter": ".redis",
    "RedisNamespaceAdapter": ".redis",
    "ShardedRedisNamespaceAdapter": ".redis",
    "RedisStreamsAdapter": ".redis_streams",
}

__all__ = [
    "AdapterError",
    "AsyncRedisManager",
    "ClusterAdapter",
    "ClusterAdapterWithHeartbeat",
    "ClusterTimeoutError",
    "ClusterTransport",
    "Emitter",
    "EmitterOperator",
    "MessageTooLargeError",
    "MessageType",
    "PubSubAdapter",
    "RedisAdapter",
    "RedisManager",
    "RedisNamespaceAdapter",
    "RedisStreamsAdapter",
    "RedisUnavailableError",
    "ShardedRedisNamespaceAdapter",
]

if TYPE_CHECKING:
    from .cluster import ClusterAdapter, ClusterAdapterWithHeartbeat, ClusterTransport, MessageType
    from .emitter import Emitter, EmitterOperator
    from .errors import AdapterError, ClusterTimeoutError, MessageTooLargeError, RedisUnavailableError
    from .pubsub import AsyncRedisManager, PubSubAdapter, RedisManager
    from .redis import RedisAdapter, RedisNamespaceAdapter, ShardedRedisNamespaceAdapter
    from .redis_streams import RedisStreamsAdapter


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'sioserver.adapters' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name, __name__), name)
    globals()[name] = value  # later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
