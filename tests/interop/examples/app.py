"""An app in the shape of python-socketio's ``examples/server/aiohttp/app.py``: the same handlers and calls.

``EXAMPLE_IMPL=python-socketio`` runs it on python-socketio (the reference), anything else on sioserver;
the only difference is the import. ``PORT`` and ``EXAMPLE_TICK`` (the background task's period, 10 s in
the original) come from the environment.
"""

import os

from aiohttp import web

if os.environ.get("EXAMPLE_IMPL") == "python-socketio":
    import socketio
else:
    import sioserver as socketio

HERE = os.path.dirname(os.path.abspath(__file__))
TICK = float(os.environ.get("EXAMPLE_TICK", "10"))

sio = socketio.AsyncServer(async_mode="aiohttp")
app = web.Application()
sio.attach(app)


async def background_task():
    """Server generated events, as in the original."""
    count = 0
    while True:
        await sio.sleep(TICK)
        count += 1
        await sio.emit("my_response", {"data": "Server generated event"})


async def index(request):
    with open(os.path.join(HERE, "app.html")) as f:
        return web.Response(text=f.read(), content_type="text/html")


@sio.event
async def my_event(sid, message):
    await sio.emit("my_response", {"data": message["data"]}, room=sid)


@sio.event
async def my_broadcast_event(sid, message):
    await sio.emit("my_response", {"data": message["data"]})


@sio.event
async def join(sid, message):
    await sio.enter_room(sid, message["room"])
    await sio.emit("my_response", {"data": "Entered room: " + message["room"]}, room=sid)


@sio.event
async def leave(sid, message):
    await sio.leave_room(sid, message["room"])
    await sio.emit("my_response", {"data": "Left room: " + message["room"]}, room=sid)


@sio.event
async def close_room(sid, message):
    await sio.emit("my_response", {"data": "Room " + message["room"] + " is closing."}, room=message["room"])
    await sio.close_room(message["room"])


@sio.event
async def my_room_event(sid, message):
    await sio.emit("my_response", {"data": message["data"]}, room=message["room"])


@sio.event
async def disconnect_request(sid):
    await sio.disconnect(sid)


@sio.event
async def connect(sid, environ):
    await sio.emit("my_response", {"data": "Connected", "count": 0}, room=sid)


@sio.event
def disconnect(sid):
    print("Client disconnected", flush=True)


app.router.add_get("/", index)


async def init_app():
    sio.start_background_task(background_task)
    return app


if __name__ == "__main__":
    web.run_app(init_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080")))
