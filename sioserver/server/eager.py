"""Call event handlers with as little machinery as correctness allows.

A plain ``def`` handler is called inline: no task, no extra turn of the event loop. A coroutine
handler runs as an ``asyncio.Task`` of its own, so ``asyncio.current_task()``, ``asyncio.timeout()``,
aiohttp's client timeouts and context variables behave exactly as in any task. On Python 3.12+ the
task starts eagerly (``eager_start=True``): a handler that finishes without suspending completes
within the call, and its ack goes out in the same turn of the loop. On 3.11 the task starts on the
next turn.

(Stepping the coroutine by hand outside a task would be faster on 3.11, but code before the first
``await`` would then see no current task, or the transport's task, which breaks timeouts.)
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import types
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["call", "run"]

Done = Callable[[Any], None]
Failed = Callable[[BaseException], None]

_EAGER = sys.version_info >= (3, 12)
_COROUTINE = types.CoroutineType


def run(coro: Coroutine[Any, Any, Any], done: Done | None, failed: Failed,
        tasks: set[asyncio.Task[Any]] | None = None) -> asyncio.Task[Any] | None:
    """Run ``coro`` as a task; ``done(result)`` or ``failed(exc)`` follows. Returns the task while it runs.

    ``tasks`` (the server's running handlers, which shutdown waits for) holds the task until it ends.
    On 3.11 the task takes itself out in its last step, without a done-callback: one ``call_soon``
    and one callback less per event.
    """
    loop = asyncio.get_running_loop()
    if _EAGER:
        task: asyncio.Task[Any] = asyncio.Task(coro, loop=loop, eager_start=True)  # type: ignore[call-arg,unused-ignore]
        if task.done():
            _finish(task, done, failed)
            return None
        if tasks is not None:
            tasks.add(task)
        task.add_done_callback(lambda t: _finish(t, done, failed, tasks))
        return task
    # 3.11: the handler runs inside the task (current_task(), timeouts and context variables as in
    # any task) and its result is handed on in the same step, not by a done-callback a turn later.
    task = loop.create_task(_step(coro, done, failed, tasks, loop))
    if tasks is not None:
        tasks.add(task)
    return task


async def _step(coro: Coroutine[Any, Any, Any], done: Done | None, failed: Failed,
                tasks: set[asyncio.Task[Any]] | None, loop: asyncio.AbstractEventLoop) -> None:
    # A task cancelled before its first step never runs this body (the CancelledError is raised where
    # the coroutine starts) and would stay in ``tasks``, done: nothing hands a handler's task out before
    # it runs, and shutdown only waits on them, so that costs at most a reference.
    try:
        try:
            result = await coro
        except asyncio.CancelledError as exc:
            failed(exc)
            raise  # the task ends cancelled, as the handler's own task would
        except Exception as exc:
            failed(exc)
            return
        if done is not None:
            done(result)
    finally:
        if tasks is not None:
            tasks.discard(asyncio.current_task(loop))  # type: ignore[arg-type,unused-ignore]


def call(fn: Callable[..., Any], args: tuple[Any, ...], done: Done | None, failed: Failed,
         tasks: set[asyncio.Task[Any]] | None = None) -> asyncio.Task[Any] | None:
    """Call a sync or async handler; its result (or error) goes to ``done`` (or ``failed``); a task it
    needs is in ``tasks`` while it runs."""
    try:
        result = fn(*args)
    except Exception as exc:
        failed(exc)
        return None
    if result.__class__ is _COROUTINE or inspect.iscoroutine(result):  # the first test, without a call
        return run(result, done, failed, tasks)
    if inspect.isawaitable(result):
        return run(_await(result), done, failed, tasks)
    if done is not None:
        done(result)
    return None


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _finish(task: asyncio.Task[Any], done: Done | None, failed: Failed,
            tasks: set[asyncio.Task[Any]] | None = None) -> None:
    if tasks is not None:
        tasks.discard(task)
    if task.cancelled():
        failed(asyncio.CancelledError())
        return
    exc = task.exception()
    if exc is not None:
        failed(exc)
    elif done is not None:
        done(task.result())
