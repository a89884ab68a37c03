"""The socket.io handlers of the example's ``django_io/views.py``: a client that connects with ``auth``
joins the ``feed`` room and everybody is told; ``mess`` (a JSON string) is stored through the ORM (in
``sync_to_async``) and the stored row goes to the feed; ``joined`` and ``left`` are announced to it.
``EXAMPLE_IMPL`` as in ``asgi_app.py``. The example's Redis ``client_manager`` is left out (one process).
"""

import json
import os

from asgiref.sync import sync_to_async

if os.environ.get("EXAMPLE_IMPL") == "python-socketio":
    import socketio
else:
    import sioserver as socketio

from .models import Message

sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")
#: the example announces a connection as ``"connect"``, a reserved event name: the JavaScript client's parser
#: (socket.io-parser 4.2) takes such an EVENT for a malformed packet and closes the connection, and sioserver
#: refuses to send it (ValueError), so the announcement here has a name every client can receive
ANNOUNCE = "connected"


@sio.on("connect")
async def connect(sid, env, auth):
    if auth:
        print("SocketIO connect", flush=True)
        await sio.enter_room(sid, "feed")
        await sio.emit(ANNOUNCE, f"Connected as {sid}")


def store_message(data):
    fields = json.loads(data)
    row = Message.objects.create(author=fields["username"], message=fields["message"])
    stored = Message.objects.get(pk=row.pk)
    return {"author": stored.author, "message": stored.message}


@sio.on("mess")
async def print_message(sid, data):
    print("Socket ID", sid, flush=True)
    message = await sync_to_async(store_message, thread_sensitive=True)(data)
    print(message, flush=True)
    await sio.emit("new_message", message, room="feed")


@sio.on("disconnect")
async def disconnect(sid):
    print("SocketIO disconnect", flush=True)


@sio.on("left")
async def left_room(sid, data):
    await sio.leave_room(sid, "feed")
    await sio.emit("user_left", f"{data} left", room="feed")
    print(f"{sid} Left", flush=True)


@sio.on("joined")
async def joined(sid, data):
    await sio.emit("user_joined", f"{data} connected", room="feed")
    print(f"{data} connected", flush=True)
