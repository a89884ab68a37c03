"""Fixtures for the Socket.IO interop tests (the helpers live in sio_harness.py).

``interop_node_modules`` (npm ci of tests/interop) comes from tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sio_harness import ServerPool

#: every test of these modules runs against each front: aiohttp attach, and sioserver.ASGIApp (beside a
#: FastAPI app) under uvicorn with each of its WebSocket implementations and under hypercorn
FRONTS = ["aiohttp", "uvicorn", "uvicorn-wsproto", "hypercorn"]


@pytest.fixture(scope="module", params=FRONTS)
def sio_servers(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPool]:
    """The module's Socket.IO test servers (shared ones live as long as the module), on one front."""
    pool = ServerPool(tmp_path_factory.mktemp("sio-server"), front=request.param)
    yield pool
    pool.close()
