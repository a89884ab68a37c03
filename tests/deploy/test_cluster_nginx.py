"""Three sioserver workers behind nginx (Debian's) with sticky sessions, fanned out through Redis.

The official socket.io-client, through nginx, with ``transports: ["polling"]`` and with the default
transports (which must upgrade), receives the broadcasts sent from every worker exactly once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests._support import node

pytestmark = pytest.mark.interop


def test_clients_through_nginx_get_broadcasts_from_every_worker(cluster: dict[str, Any]) -> None:
    run = node.run(Path(__file__).with_name("cluster_clients.mjs"), cluster["url"], *cluster["workers"], timeout=60)
    result = run.last()
    assert result["ok"], (result, run.context())
    assert result["checks"] == {
        "upgraded": True,
        "polling_stayed": True,
        "polling_got_each_once": True,
        "upgrading_got_each_once": True,
    }
