"""Slow consumers at scale (``scale.py``): 1,000 clients stop reading while 10,000 broadcasts go out.
Takes a minute or more and a few GB of socket buffers: runs only with SIOSERVER_SLOW=1."""

from __future__ import annotations

import os

import pytest

from .scale import run

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("SIOSERVER_SLOW") != "1", reason="slow: set SIOSERVER_SLOW=1"),
]


@pytest.mark.parametrize("policy", ["disconnect", "drop"])
async def test_1000_slow_consumers_10000_broadcasts(policy: str) -> None:
    result = await run(slow=1000, broadcasts=10_000, size=1024, max_buffered=262_144, policy=policy)
    print("\n" + result.report())
    assert result.rss_peak - result.rss_connected <= result.bound
    assert result.good_received == [10_000] * 5
    assert result.percentile(0.99) < 0.5
    if policy == "disconnect":
        assert result.stats.get("slow_consumers", 0) == 1000
        assert result.open_sessions_after == 5
    else:
        assert result.stats.get("dropped_slow_consumer", 0) > 0
        assert result.open_sessions_after == 1005
