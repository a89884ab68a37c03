"""An app in the shape of python-socketio's ``examples/server/asgi/litestar-fiddle.py``: a Litestar app
(its ``/`` page, ``/hello`` route and ``/static`` files) as ``ASGIApp``'s ``other_asgi_app``, run as that
example runs (``python asgi_litestar_fiddle.py``: ``uvicorn.run``). ``latency.py``'s handler is here too,
so the fiddle scenario (hello, then ping and pong) drives it whole. ``EXAMPLE_IMPL`` as in ``asgi_app.py``;
``PORT`` (0: any free port, which uvicorn prints) from the environment.
"""

import os

import uvicorn
from litestar import Litestar, MediaType, get
from litestar.response import File
from litestar.static_files import create_static_files_router

if os.environ.get("EXAMPLE_IMPL") == "python-socketio":
    import socketio
else:
    import sioserver as socketio

sio = socketio.AsyncServer(async_mode="asgi")


@get("/", media_type=MediaType.HTML)
async def index() -> File:
    return File("asgi_fiddle.html", content_disposition_type="inline")


@get("/hello")
async def hello() -> dict[str, str]:
    return {"message": "Hello, World!"}


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


app = Litestar([index, hello, create_static_files_router(path="/static", directories=["asgi_static"])])
combined_asgi_app = socketio.ASGIApp(sio, app)


if __name__ == "__main__":
    uvicorn.run(combined_asgi_app, host="127.0.0.1", port=int(os.environ.get("PORT", "5000")))
