"""An app in the shape of python-socketio's ``examples/server/asgi/fastapi-fiddle.py``: a FastAPI app
(its ``/``, ``/hello`` and ``/static`` mount) as ``ASGIApp``'s ``other_asgi_app``, served as ``uvicorn
asgi_fastapi_fiddle:combined_asgi_app``. ``latency.py``'s handler is here too, so the fiddle scenario
(hello, then ping and pong) drives it whole. ``EXAMPLE_IMPL`` as in ``asgi_app.py``.
"""

import os

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

if os.environ.get("EXAMPLE_IMPL") == "python-socketio":
    import socketio
else:
    import sioserver as socketio

app = FastAPI()
app.mount("/static", StaticFiles(directory="asgi_static"), name="static")

sio = socketio.AsyncServer(async_mode="asgi")
combined_asgi_app = socketio.ASGIApp(sio, app)


@app.get("/")
async def index():
    return FileResponse("asgi_fiddle.html")


@app.get("/hello")
async def hello():
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


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(combined_asgi_app, host="127.0.0.1", port=int(os.environ.get("PORT", "5000")))
