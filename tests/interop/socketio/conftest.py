"""Fixtures for the Socket.IO interop tests (the helpers live in sio_harness.py).

``interop_node_modules`` (npm ci of tests/interop) comes from tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sio_harness import ServerPool


@pytest.fixture(scope="module")
def sio_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPool]:
    """The module's Socket.IO test servers (shared ones live as long as the module)."""
    pool = ServerPool(tmp_path_factory.mktemp("sio-server"))
    yield pool
    pool.close()
