"""Slow consumers at scale (``scale.py``): clients stop reading while broadcasts go out; the server's
memory stays bounded, the good clients get everything, the policy applies and is logged, and the memory is
given back once the slow clients have left.

The suite runs a smaller version (100 slow clients, 3,000 broadcasts, the bound across sessions scaled
down with them, 16 KiB kernel send buffers so that the backlogs are the server's); the full one (1,000 slow clients, 10,000 broadcasts, default options) runs with
SIOSERVER_SLOW=1.
"""

from __future__ import annotations

import os

import pytest

from .scale import MiB, run


@pytest.mark.parametrize("policy", ["disconnect", "drop"])
async def test_100_slow_consumers_3000_broadcasts(policy: str) -> None:
    result = await run(slow=100, broadcasts=3000, size=130, sndbuf=16384,
                       options={"max_buffered_bytes_total": 2 * MiB, "slow_consumer_policy": policy}, rate=0)
    print("\n" + result.report())
    assert result.good_received == [3000] * 5
    assert result.stats.get("backlog_bound_reached", 0) > 0
    assert result.policy_logged > 0
    assert result.growth <= 16 * MiB
    assert result.retained <= 8 * MiB
    if policy == "disconnect":
        # the largest backlogs go first, until the total is back under the bound: the last few slow
        # clients may owe too little by the end of the blast to be disconnected; no good client is
        disconnected = result.stats.get("slow_consumers", 0)
        assert 80 <= disconnected <= 100
        assert result.open_sessions_after == 105 - disconnected
    else:
        assert result.stats.get("dropped_slow_consumer", 0) > 0
        assert result.open_sessions_after == 105


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("SIOSERVER_SLOW") != "1", reason="slow: set SIOSERVER_SLOW=1")
async def test_1000_slow_consumers_10000_broadcasts_at_default_options() -> None:
    result = await run(slow=1000, broadcasts=10_000, size=130)
    print("\n" + result.report())
    assert result.ok(), result.report()
    assert result.open_sessions_after == 5
