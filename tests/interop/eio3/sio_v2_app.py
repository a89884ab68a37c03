"""sio_v2_server.py's server for ``python -m sioserver tests.interop.eio3.sio_v2_app:sio --port 0`` (sioserver's
own HTTP/1.1 front), pinging every 300 ms as the other servers of tests/interop/eio3 do."""

from __future__ import annotations

from tests.interop.eio3.sio_v2_server import build

sio = build(0.3, 1.0)
