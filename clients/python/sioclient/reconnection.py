"""Reconnection: the backoff between attempts and the loop that makes them.

When the Engine.IO session ends for any reason other than ``disconnect()``, a server-side DISCONNECT or
a refusal, the client reconnects: attempt ``n`` (0, 1, ...) waits a time drawn uniformly from
``[(1 - randomization_factor) * c, c]`` with ``c = min(reconnection_delay_max, reconnection_delay * 2**n)``
(see :class:`Backoff`), then makes a new Engine.IO session and sends CONNECT for every active
namespace, calling ``auth`` again when it is callable. ``reconnection_attempts=0`` tries forever. A
namespace the server refuses on reconnect becomes inactive (its ``connect_error`` handler runs); when
none is left the client stops. Each failed attempt calls ``connect_error({"message": ...})``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Awaitable, Callable

from sioserver.exceptions import ConfigurationError

from .exceptions import ConnectionError

__all__ = ["Backoff", "reconnect"]


class Backoff:
    """Exponential backoff with jitter.

    Attempt ``n`` (from 0) may wait up to ``c(n) = min(delay_max, delay * 2**n)``; the wait is drawn
    uniformly from ``[(1 - randomization_factor) * c(n), c(n)]``. ``randomization_factor=1`` is
    "full jitter" (anywhere from 0 to the ceiling), 0 no jitter (exactly the ceiling), the default
    0.5 keeps every wait within the upper half. No wait is ever longer than ``delay_max``.
    """

    def __init__(
        self,
        delay: float = 1.0,
        delay_max: float = 5.0,
        randomization_factor: float = 0.5,
        *,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if delay < 0 or delay_max < delay:
            raise ConfigurationError("need 0 <= reconnection_delay <= reconnection_delay_max")
        if not 0 <= randomization_factor <= 1:
            raise ConfigurationError("randomization_factor must be between 0 and 1")
        self.delay = float(delay)
        self.delay_max = float(delay_max)
        self.randomization_factor = float(randomization_factor)
        self._rng = rng

    def ceiling(self, attempt: int) -> float:
        return min(self.delay_max, math.ldexp(self.delay, min(attempt, 64)))  # delay * 2**attempt

    def bounds(self, attempt: int) -> tuple[float, float]:
        """The interval attempt ``attempt``'s wait is drawn from."""
        high = self.ceiling(attempt)
        return high * (1 - self.randomization_factor), high

    def duration(self, attempt: int) -> float:
        low, high = self.bounds(attempt)
        return high - (high - low) * float(self._rng())


async def reconnect(
    backoff: Backoff,
    max_attempts: int,
    *,
    wanted: Callable[[], bool],
    attempt: Callable[[], Awaitable[None]],
    failed: Callable[[ConnectionError], None],
    logger: logging.Logger,
) -> int | None:
    """Make attempts, each after its backoff, while ``wanted()`` (some namespace is still active).

    ``attempt()`` makes one connection (raising ConnectionError when it fails, after which ``failed(exc)``
    runs); ``max_attempts=0`` means no limit. Returns how many attempts it took, or None when it gave up or
    nothing is wanted any more. Cancelling the task cancels the attempt in progress.
    """
    made = 0
    while wanted():
        if max_attempts and made >= max_attempts:
            logger.warning("giving up after %d reconnection attempts", made)
            return None
        delay = backoff.duration(made)
        made += 1
        logger.info("reconnection attempt %d in %.2f s", made, delay)
        await asyncio.sleep(delay)
        try:
            await attempt()
        except ConnectionError as exc:
            logger.info("reconnection attempt %d failed: %s", made, exc.message)
            failed(exc)
            continue
        return made
    return None
