"""The scenarios the example apps are driven through, for any client with python-socketio's API
(python-socketio's ``AsyncClient`` and ``sioclient.AsyncClient``). ``examples_client.mjs`` runs the same
steps with the official JavaScript client; each returns the same transcript when the server behaves
as python-socketio does.
"""

from __future__ import annotations

import asyncio
from typing import Any

STEP = 5.0  # seconds for any one expected message


class Recorder:
    """A client that queues every ``my_response`` (or the events named) and its disconnect."""

    def __init__(self, client: Any, events: tuple[str, ...] = ("my_response",)) -> None:
        self.client = client
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        for event in events:
            client.on(event, self._recorder(event))
        client.on("disconnect", lambda *reason: self.queue.put_nowait(("disconnect", None)))

    def _recorder(self, event: str) -> Any:
        def record(*args: Any) -> None:
            self.queue.put_nowait((event, args[0] if len(args) == 1 else list(args)))

        return record

    async def next(self, ticks: bool = False) -> tuple[str, Any]:
        """The next message; the background task's ticks (which come at any moment) are skipped
        unless ``ticks``."""
        while True:
            event, data = await asyncio.wait_for(self.queue.get(), STEP)
            is_tick = event == "my_response" and data == {"data": "Server generated event"}
            if ticks or not is_tick:
                return event, data

    async def data(self) -> Any:
        event, data = await self.next()
        assert event == "my_response", (event, data)
        return data["data"]


async def app_scenario(make_client: Any, url: str, transports: list[str] | None) -> dict[str, list[Any]]:
    """``app.py``: rooms, broadcasts, close_room, disconnect_request and the background task."""
    a, b = Recorder(make_client()), Recorder(make_client())
    seen: dict[str, list[Any]] = {"a": [], "b": []}
    for name, rec in (("a", a), ("b", b)):
        await rec.client.connect(url, transports=transports)
        seen[name].append(await rec.next())
    await a.client.emit("my_event", {"data": "to myself"})
    seen["a"].append(await a.data())
    for name, rec in (("a", a), ("b", b)):
        await rec.client.emit("join", {"room": "r"})
        seen[name].append(await rec.data())
    await a.client.emit("my_room_event", {"data": "to r", "room": "r"})
    seen["a"].append(await a.data())
    seen["b"].append(await b.data())
    await b.client.emit("my_broadcast_event", {"data": "to all"})
    seen["a"].append(await a.data())
    seen["b"].append(await b.data())
    await a.client.emit("leave", {"room": "r"})
    seen["a"].append(await a.data())
    # a left r: b's room event reaches b only; a's next message is the broadcast that follows it
    await b.client.emit("my_room_event", {"data": "r without a", "room": "r"})
    seen["b"].append(await b.data())
    await b.client.emit("my_broadcast_event", {"data": "fence 1"})
    seen["a"].append(await a.data())
    seen["b"].append(await b.data())
    await b.client.emit("close_room", {"room": "r"})
    seen["b"].append(await b.data())
    # r is closed: b's room event reaches nobody; b's next message is its own my_event
    await b.client.emit("my_room_event", {"data": "to a closed room", "room": "r"})
    await b.client.emit("my_event", {"data": "fence 2"})
    seen["b"].append(await b.data())
    await a.client.emit("disconnect_request")
    seen["a"].append(await a.next())
    seen["b"].append(await b.next(ticks=True))  # the background task's tick
    await b.client.disconnect()
    return seen


APP_TRANSCRIPT = {
    "a": [("my_response", {"data": "Connected", "count": 0}), "to myself", "Entered room: r", "to r", "to all",
          "Left room: r", "fence 1", ("disconnect", None)],
    "b": [("my_response", {"data": "Connected", "count": 0}), "Entered room: r", "to r", "to all", "r without a",
          "fence 1", "Room r is closing.", "fence 2", ("my_response", {"data": "Server generated event"})],
}


async def fiddle_scenario(make_client: Any, url: str, transports: list[str] | None) -> dict[str, list[Any]]:
    """``fiddle.py`` and ``latency.py``: several arguments from the connect handler, ping and pong."""
    rec = Recorder(make_client(), events=("hello", "pong_from_server"))
    await rec.client.connect(url, transports=transports, auth={"token": "t"})
    seen = [await rec.next()]
    for _ in range(3):
        await rec.client.emit("ping_from_client")
        seen.append(await rec.next())
    await rec.client.disconnect()
    return {"a": seen}


FIDDLE_TRANSCRIPT = {"a": [("hello", [1, 2, {"hello": "you"}])] + [("pong_from_server", [])] * 3}


DJANGO_EVENTS = ("connected", "user_joined", "new_message", "user_left")


async def django_scenario(make_client: Any, url: str, transports: list[str] | None) -> dict[str, list[Any]]:
    """``django_example``'s handlers: a connects with ``auth`` (it joins the feed; every client hears of it),
    then b; ``joined`` and a ``mess`` stored through the ORM go to the whole feed; after a's ``left`` the feed
    is b alone (b's ``joined`` reaches only b). The sids in the announcements are written as ``<a>``, ``<b>``."""
    a = Recorder(make_client(), events=DJANGO_EVENTS)
    b = Recorder(make_client(), events=DJANGO_EVENTS)
    seen: dict[str, list[Any]] = {"a": [], "b": []}

    async def next_of(rec: Recorder, name: str) -> None:
        event, data = await rec.next()
        if event == "connected":
            data = data.replace(a.client.get_sid(), "<a>").replace(str(b.client.get_sid()), "<b>")
        seen[name].append((event, data))

    await a.client.connect(url, transports=transports, auth={"token": "t"})
    await next_of(a, "a")
    await b.client.connect(url, transports=transports, auth={"token": "t"})
    await next_of(a, "a")
    await next_of(b, "b")
    await a.client.emit("joined", "alice")
    await next_of(a, "a")
    await next_of(b, "b")
    await b.client.emit("mess", '{"username": "bob", "message": "hi \\u00e9"}')
    await next_of(a, "a")
    await next_of(b, "b")
    await a.client.emit("left", "alice")
    await next_of(b, "b")
    await b.client.emit("joined", "bob")
    await next_of(b, "b")
    await a.client.disconnect()
    await b.client.disconnect()
    rest = [a.queue.get_nowait() for _ in range(a.queue.qsize())]
    assert set(rest) <= {("disconnect", None)}, rest  # after a left the feed, nothing more reached a
    return seen


DJANGO_TRANSCRIPT = {
    "a": [("connected", "Connected as <a>"), ("connected", "Connected as <b>"), ("user_joined", "alice connected"),
          ("new_message", {"author": "bob", "message": "hi \u00e9"})],
    "b": [("connected", "Connected as <b>"), ("user_joined", "alice connected"),
          ("new_message", {"author": "bob", "message": "hi \u00e9"}), ("user_left", "alice left"),
          ("user_joined", "bob connected")],
}
