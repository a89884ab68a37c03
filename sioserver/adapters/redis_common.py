"""What the classic and the sharded Redis adapters share: one namespace's use of the server's link.

A :class:`RedisEndpoint` publishes through the server's :class:`~sioserver.adapters._link.RedisLink`
with the size cap (``publish_max_bytes``) and the delivery accounting: PUBLISH answers how many
subscribers got a message; this server's own subscriber taken out, a message that reached fewer other
servers than the most seen within ``delivery_window`` is counted once per server it missed
(``stats["messages_short"]``) and logged, since those servers were reconnecting to Redis.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._link import Link
from ._resp import LossLog
from .errors import MessageTooLargeError

if TYPE_CHECKING:
    from .redis import RedisAdapter

__all__ = ["DEFAULT_PUBLISH_MAX_BYTES", "RedisEndpoint"]

#: Redis disconnects a subscriber whose output buffer passes 32 MB (8 MB for a minute) by default:
#: a few large messages in a row would cut every server off. 1 MiB leaves a wide margin.
DEFAULT_PUBLISH_MAX_BYTES = 1 << 20


class RedisEndpoint:
    """One namespace of one server on Redis: publishing, the size cap, the delivery accounting."""

    def __init__(self, factory: RedisAdapter, link: Link, namespace: str, *, sharded: bool) -> None:
        self.factory = factory
        self.link = link
        self.namespace = namespace
        self.sharded = sharded
        self.stats = factory.stats
        self.log = factory.logger
        self.max_bytes = factory.publish_max_bytes
        self._seen: dict[str, tuple[int, float]] = {}
        self._census = False
        self._short = LossLog(self.log, self.stats, "messages_short",
                              f"in {namespace} reached fewer servers than were subscribed moments before "
                              f"(those were probably reconnecting to Redis)")
        self.track_broadcast = self._tracker("broadcast")
        self.track_request = self._tracker("request")

    def check_size(self, what: str, payload: bytes) -> None:
        """Raise :class:`MessageTooLargeError` (nothing is sent, not even locally) over the cap."""
        if len(payload) > self.max_bytes:
            self.stats["too_large"] += 1
            raise MessageTooLargeError(what, len(payload), self.max_bytes)

    def fit(self, what: str, payload: bytes, fallback: Callable[[], bytes]) -> bytes:
        """An answer must go out, or a peer waits for it until its timeout: too large -> ``fallback()``."""
        if len(payload) <= self.max_bytes:
            return payload
        self.stats["too_large"] += 1
        self.log.error("redis adapter: %s is %d bytes, over publish_max_bytes=%d: an empty answer is sent instead",
                       what, len(payload), self.max_bytes)
        return fallback()

    def publish(self, channel: bytes, payload: bytes, track: Callable[[int, bool], None] | None = None) -> None:
        self.link.publish(channel, payload, sharded=self.sharded, on_result=track)

    async def numsub(self, channel: bytes) -> int:
        """Subscribers of ``channel`` (:class:`~sioserver.adapters.RedisUnavailableError` on failure)."""
        return int(await self.link.numsub(channel, sharded=self.sharded))

    def census(self, channel: bytes) -> None:
        """``channel`` has one subscriber per server of the namespace: the link's gate may count them."""
        self._census = self.link.set_census(channel, self.sharded)

    def _tracker(self, key: str) -> Callable[[int, bool], None]:
        """Compares how many other servers a message reached with the most seen lately.

        ``receivers`` is PUBLISH's answer; ``own`` says whether this server's own subscriber was
        subscribed the whole time (then it is one of them, and not a miss when it is not)."""
        window = self.factory.delivery_window

        def observed(receivers: int, own: bool) -> None:
            others = receivers - 1 if own else receivers
            if self._census and key == "broadcast":
                self.link.note_servers(others + 1)
            now = time.monotonic()
            best = self._seen.get(key)
            if best is None or others >= best[0] or now - best[1] > window:
                self._seen[key] = (others, now)
                if best is not None and others >= best[0]:
                    self._short.resolved()
                return
            self._short.add(best[0] - others, f"one reached {others} of the {best[0]} other servers seen in the "
                                              f"last {window:g}s")

        return observed
