"""A sioserver process instrumented for the Admin UI, for tests/browser/test_admin_ui_browser.py.

    python admin_app.py --ui-origin http://127.0.0.1:PORT --password PW --server-id ID [--redis URL]

Listens on a free port and prints ``READY <port>`` (tests/_support/serving.py). ``/`` and ``/chat``
accept anyone; ``join`` (in /chat) puts the sender in a room and acks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import sioserver
from tests._support.serving import run, serve


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ui-origin", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--server-id", required=True)
    parser.add_argument("--redis", default=None)
    args = parser.parse_args()
    options: dict[str, Any] = {"cors_allowed_origins": [args.ui_origin], "namespaces": ["/chat"]}
    if args.redis:
        options["adapter"] = sioserver.RedisAdapter(args.redis)
    sio = sioserver.AsyncServer(**options)

    @sio.on("join", namespace="/chat")
    async def join(sid: str, room: str) -> str:
        await sio.enter_room(sid, room, namespace="/chat")
        return room

    sio.instrument(auth={"username": "admin", "password": args.password}, server_id=args.server_id,
                   server_stats_interval=1)
    app = web.Application()
    sio.attach(app)
    await serve(app)


if __name__ == "__main__":
    run(main())
