"""An app in the shape of python-socketio's ``examples/server/asgi/fiddle.py`` and ``latency.py`` (one
server for both; the handlers, calls and ``static_files`` are theirs), run as their README runs them
(``python asgi_fiddle.py``: ``uvicorn.run``). ``EXAMPLE_IMPL`` as in ``asgi_app.py``; ``PORT`` (0: any
free port, which uvicorn prints) from the environment.
"""

import os

import uvicorn

if os.environ.get("EXAMPLE_IMPL") == "python-socketio":
    import socketio
else:
    import sioserver as socketio

sio = socketio.AsyncServer(async_mode="asgi")
app = socketio.ASGIApp(sio, static_files={"/": "asgi_fiddle.html", "/static": "asgi_static"})


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
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "5000")))
