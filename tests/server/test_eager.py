"""How coroutine handlers are run (sioserver/server/eager.py): one that cannot suspend runs inline, in a
copy of the context; any other runs in a task of its own, as before."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import sioserver
from sioserver.server import eager

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
seen: list[asyncio.Task[Any] | None] = []


def record() -> None:
    """The task a handler runs in, seen from a function it calls (the handler does not name it)."""
    seen.append(asyncio.current_task())


def server() -> sioserver.AsyncServer:
    return sioserver.AsyncServer(ping_interval=10)


async def polling_exchange(sio: sioserver.AsyncServer, body: str) -> str:
    """Connect a polling client to ``/``, POST ``body`` (packets joined by \\x1e) and return what the next
    GET brings: the server's packets in the order it wrote them."""
    app = web.Application()
    sio.attach(app)
    test_server = TestServer(app)
    await test_server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            base = "/socket.io/?EIO=4&transport=polling"
            async with http.get(test_server.make_url(base)) as resp:
                sid = json.loads((await resp.text())[1:])["sid"]
            url = test_server.make_url(f"{base}&sid={sid}")
            async with http.post(url, data="40") as resp:
                assert await resp.text() == "ok"
            async with http.get(url) as resp:
                assert (await resp.text()).startswith("40{")
            async with http.post(url, data=body) as resp:
                assert await resp.text() == "ok"
            async with http.get(url) as resp:
                return await resp.text()
    finally:
        await test_server.close()


class TestOnTheWire:
    async def test_a_handler_that_never_awaits_is_acked_before_the_next_packet_is_handled(self) -> None:
        # one POST carries two events: the coroutine's ack is written while the first is handled, before
        # the plain handler of the second answers (in a task it would come a turn later, after it)
        sio = server()

        @sio.on("echo")
        async def echo(sid: str, value: Any) -> Any:
            return value

        sio.on("plain", lambda sid: "plain")
        got = await polling_exchange(sio, '421["echo",1]\x1e422["plain"]')
        assert got == '431[1]\x1e432["plain"]'

    async def test_a_context_variable_it_sets_does_not_leak_into_the_transport(self) -> None:
        # both events are handled in the request's context: the plain handler sees what it holds
        sio = server()

        @sio.on("set")
        async def set_var(sid: str) -> str:
            var.set("set by the handler")
            return var.get()

        sio.on("get", lambda sid: var.get())
        got = await polling_exchange(sio, '421["set"]\x1e422["get"]')
        assert got == '431["set by the handler"]\x1e432["unset"]'

    async def test_an_exception_in_it_is_logged_and_sends_no_ack(self, caplog: pytest.LogCaptureFixture) -> None:
        sio = server()

        @sio.on("boom")
        async def boom(sid: str) -> None:
            raise ValueError("boom")

        sio.on("plain", lambda sid: "still here")
        with caplog.at_level(logging.ERROR, logger="sioserver.server"):
            got = await polling_exchange(sio, '421["boom"]\x1e422["plain"]')
        assert got == '432["still here"]'  # no ack for the failed one; the connection goes on
        [failure] = [r for r in caplog.records if "event handler" in r.getMessage()]
        assert failure.getMessage() == "event handler in / failed: ValueError('boom')"
        assert failure.exc_info is not None and failure.exc_info[0] is ValueError

    async def test_a_handler_that_names_current_task_runs_in_a_task_of_its_own(self) -> None:
        sio = server()
        tasks: list[asyncio.Task[Any] | None] = []

        @sio.on("task")
        async def task(sid: str) -> str:
            tasks.append(asyncio.current_task())
            return "task"

        sio.on("plain", lambda sid: tasks.append(asyncio.current_task()))  # the request's task
        got = await polling_exchange(sio, '421["task"]\x1e42["plain"]')
        assert got == '431["task"]'
        assert len(tasks) == 2 and None not in tasks and tasks[0] is not tasks[1]


async def _no_await(sid: str) -> str:
    record()
    var.set("inline")
    return "done"


async def _awaits(sid: str) -> str:
    await asyncio.sleep(0)
    record()
    async with asyncio.timeout(1):
        await asyncio.sleep(0)
    return "done"


async def _async_with(sid: str) -> str:
    async with asyncio.timeout(1):
        record()
    return "done"


async def _async_for(sid: str) -> str:
    async def gen() -> Any:
        yield 1

    async for _ in gen():
        record()
    return "done"


async def _async_comprehension(sid: str) -> str:
    async def gen() -> Any:
        yield 1

    [record() for _ in [i async for i in gen()]]
    return "done"


class TestRun:
    async def test_a_coroutine_that_cannot_suspend_runs_within_the_call_in_a_copy_of_the_context(self) -> None:
        seen.clear()
        results: list[Any] = []
        assert eager.call(_no_await, ("sid",), results.append, pytest.fail) is None
        assert results == ["done"]  # before any turn of the loop
        assert seen == [asyncio.current_task()]  # the one visible difference: the caller's task
        assert var.get() == "unset"

    @pytest.mark.parametrize("handler", [_awaits, _async_with, _async_for, _async_comprehension])
    async def test_one_with_an_await_point_runs_in_a_task_of_its_own(self, handler: Any) -> None:
        seen.clear()
        results: list[Any] = []
        tasks: set[asyncio.Task[Any]] = set()
        eager.call(handler, ("sid",), results.append, pytest.fail, tasks)
        for _ in range(10):
            if results:
                break
            await asyncio.sleep(0)
        assert results == ["done"]
        assert seen and seen[0] is not None and seen[0] is not asyncio.current_task()
        assert not tasks

    async def test_an_awaitable_that_is_not_a_coroutine_still_runs_in_a_task(self) -> None:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        results: list[Any] = []
        task = eager.call(lambda sid: future, ("sid",), results.append, pytest.fail)
        assert task is not None
        future.set_result("later")
        await task
        assert results == ["later"]

    async def test_a_cancellation_raised_inline_goes_to_failed_as_from_a_task(self) -> None:
        async def cancelled(sid: str) -> None:
            raise asyncio.CancelledError

        failures: list[BaseException] = []
        assert eager.call(cancelled, ("sid",), pytest.fail, failures.append) is None
        assert len(failures) == 1 and isinstance(failures[0], asyncio.CancelledError)

    async def test_the_verdicts_kept_per_code_object_stay_bounded(self) -> None:
        # handlers made by exec() each have a code object of their own
        for i in range(3000):
            namespace: dict[str, Any] = {}
            exec(f"async def h(sid):\n    return {i}", namespace)  # a fresh code object each time
            results: list[Any] = []
            eager.call(namespace["h"], ("sid",), results.append, pytest.fail)
            assert results == [i]
        assert len(eager._inline) <= 1024


class TestAckCallbacks:
    async def test_an_async_ack_callback_is_run_with_the_answer(self, sio_app: Any) -> None:
        sio, client = await sio_app(server())
        answers: list[Any] = []
        answered = asyncio.Event()

        async def got(*answer: Any) -> None:
            answers.append(answer)
            await asyncio.sleep(0)  # one that awaits: in a task
            answered.set()

        async def got_inline(*answer: Any) -> None:
            answers.append(answer)

        c = await client()
        sid = await c.connect()
        await sio.emit("question", 1, to=sid, callback=got)
        await sio.emit("question", 2, to=sid, callback=got_inline)
        assert await c.recv() == '421["question",1]'
        assert await c.recv() == '422["question",2]'
        await c.send('431["yes"]')
        await c.send('432["no"]')
        await asyncio.wait_for(answered.wait(), 2)
        for _ in range(10):  # the second answer may still be on its way
            if len(answers) == 2:
                break
            await asyncio.sleep(0.01)
        assert sorted(answers) == [("no",), ("yes",)]  # the one without an await may run first

    async def test_an_exception_in_an_ack_callback_is_logged(self, sio_app: Any,
                                                             caplog: pytest.LogCaptureFixture) -> None:
        sio, client = await sio_app(server())

        async def broken(*answer: Any) -> None:
            raise ValueError("bad answer")

        c = await client()
        sid = await c.connect()
        await sio.emit("question", to=sid, callback=broken)
        assert await c.recv() == '421["question"]'
        with caplog.at_level(logging.ERROR, logger="sioserver.server"):
            await c.send('431["yes"]')
            for _ in range(100):
                if any("ack callback failed" in r.getMessage() for r in caplog.records):
                    break
                await asyncio.sleep(0.01)
        [failure] = [r for r in caplog.records if "ack callback failed" in r.getMessage()]
        assert failure.exc_info is not None and failure.exc_info[0] is ValueError
