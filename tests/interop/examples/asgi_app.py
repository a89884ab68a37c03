"""An app in the shape of python-socketio's ``examples/server/asgi/app.py``: the same handlers and calls
(its ``ASGIApp`` with ``static_files``, its event names with spaces, the background task started by the
first connection), served as ``uvicorn asgi_app:app``.

``EXAMPLE_IMPL=python-socketio`` runs it on python-socketio (the reference), anything else on sioserver;
the only difference is the import. ``EXAMPLE_TICK`` is the background task's period (10 s in the original).
"""

import os

if os.environ.get("EXAMPLE_IMPL") == "python-socketio":
    import socketio
else:
    import sioserver as socketio

TICK = float(os.environ.get("EXAMPLE_TICK", "10"))

sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins=None)
app = socketio.ASGIApp(sio, static_files={"/": "app.html"})
background_task_started = False


async def background_task():
    """Server generated events, as in the original."""
    count = 0
    while True:
        await sio.sleep(TICK)
        count += 1
        await sio.emit("my_response", {"data": "Server generated event"})


@sio.on("my_event")
async def test_message(sid, message):
    await sio.emit("my_response", {"data": message["data"]}, room=sid)


@sio.on("my_broadcast_event")
async def test_broadcast_message(sid, message):
    await sio.emit("my_response", {"data": message["data"]})


@sio.on("join")
async def join(sid, message):
    await sio.enter_room(sid, message["room"])
    await sio.emit("my_response", {"data": "Entered room: " + message["room"]}, room=sid)


@sio.on("leave")
async def leave(sid, message):
    await sio.leave_room(sid, message["room"])
    await sio.emit("my_response", {"data": "Left room: " + message["room"]}, room=sid)


@sio.on("close room")
async def close(sid, message):
    await sio.emit("my_response", {"data": "Room " + message["room"] + " is closing."}, room=message["room"])
    await sio.close_room(message["room"])


@sio.on("my_room_event")
async def send_room_message(sid, message):
    await sio.emit("my_response", {"data": message["data"]}, room=message["room"])


@sio.on("disconnect request")
async def disconnect_request(sid):
    await sio.disconnect(sid)


@sio.on("connect")
async def test_connect(sid, environ):
    global background_task_started
    if not background_task_started:
        sio.start_background_task(background_task)
        background_task_started = True
    await sio.emit("my_response", {"data": "Connected", "count": 0}, room=sid)


@sio.on("disconnect")
def test_disconnect(sid):
    print("Client disconnected", flush=True)


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "5000")))
