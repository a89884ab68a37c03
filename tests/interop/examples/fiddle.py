"""An app in the shape of python-socketio's ``examples/server/aiohttp/fiddle.py`` and ``latency.py`` (one
server for both; the handlers and calls are theirs). ``EXAMPLE_IMPL`` and ``PORT`` as in ``app.py``."""

import os

from aiohttp import web

if os.environ.get("EXAMPLE_IMPL") == "python-socketio":
    import socketio
else:
    import sioserver as socketio

sio = socketio.AsyncServer(async_mode="aiohttp")
app = web.Application()
sio.attach(app)


@sio.event
async def connect(sid, environ, auth):
    print(f"connected auth={auth} sid={sid}", flush=True)
    await sio.emit("hello", (1, 2, {"hello": "you"}), to=sid)


@sio.event
def disconnect(sid):
    print("disconnected", sid, flush=True)


@sio.event
async def ping_from_client(sid):
    await sio.emit("pong_from_server", room=sid)


if __name__ == "__main__":
    web.run_app(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8080")))
