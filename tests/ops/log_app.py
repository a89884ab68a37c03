"""A server for ``python -m sioserver tests.ops.log_app:sio`` (tests/ops/test_logs.py)."""

import sioserver

sio = sioserver.AsyncServer(ping_interval=1, ping_timeout=0.5)
sio.instrument(auth={"username": "admin", "password": "right"})


@sio.event
async def connect(sid: str, environ: dict[str, object], auth: object) -> None:
    if auth == {"token": "refuse me"}:
        raise sioserver.ConnectionRefusedError("not you")
