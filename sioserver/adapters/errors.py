"""What the cluster adapters and the emitter raise. All are :class:`~sioserver.SioserverError`\\ s."""

from __future__ import annotations

from typing import Any

from ..exceptions import SioserverError

__all__ = ["AdapterError", "ClusterTimeoutError", "MessageTooLargeError", "RedisUnavailableError"]


class AdapterError(SioserverError):
    """A cluster adapter or an emitter could not do what was asked."""


class MessageTooLargeError(AdapterError, ValueError):
    """A message to publish is larger than ``publish_max_bytes``. Nothing was sent, not even locally."""

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(
            f"{what} is {size} bytes once encoded, over publish_max_bytes={limit}: not sent "
            f"(send less, or raise the limit of the adapter / emitter)"
        )
        self.size = size
        self.limit = limit


class ClusterTimeoutError(AdapterError, TimeoutError):
    """Not every server of the cluster answered a request in time.

    ``responses`` holds what did arrive (this server's own part included, where it has one);
    ``expected`` and ``received`` count the answering servers.
    """

    def __init__(self, what: str, expected: int, received: int, responses: Any) -> None:
        super().__init__(f"{what}: only {received} of {expected} servers answered in time")
        self.expected = expected
        self.received = received
        self.responses = responses


class RedisUnavailableError(AdapterError, ConnectionError):
    """Redis could not be reached (raised by :class:`~sioserver.Emitter`, which has no local fallback)."""
