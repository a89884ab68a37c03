"""Run a handler's coroutine synchronously until its first real suspension.

Most event handlers never await anything that blocks (``async def echo(sid, data): return data``).
Wrapping each call in an ``asyncio.Task`` would cost a task, a loop iteration and a context copy per
message. :func:`run` steps the coroutine itself; only if it suspends on a future does the rest go to a
task (the behaviour of Python 3.12's eager tasks, available here on 3.11 too). Exceptions and
cancellation reach the coroutine exactly as they would in a task.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine
from types import CoroutineType
from typing import Any

__all__ = ["call", "run"]

Done = Callable[[Any], None]
Failed = Callable[[BaseException], None]


def run(coro: Coroutine[Any, Any, Any], done: Done | None, failed: Failed) -> asyncio.Task[Any] | None:
    """Step ``coro``; call ``done(result)`` or ``failed(exc)``. Returns the task if it had to suspend."""
    try:
        yielded = coro.send(None)
    except StopIteration as stop:
        if done is not None:
            done(stop.value)
        return None
    except BaseException as exc:
        failed(exc)
        return None
    task = asyncio.get_running_loop().create_task(_resume(coro, yielded))
    task.add_done_callback(lambda t: _finish(t, done, failed))
    return task


def call(fn: Callable[..., Any], args: tuple[Any, ...], done: Done | None, failed: Failed) -> asyncio.Task[Any] | None:
    """Call a sync or async handler; its result (or error) goes to ``done`` (or ``failed``)."""
    try:
        result = fn(*args)
    except Exception as exc:
        failed(exc)
        return None
    if isinstance(result, CoroutineType):  # inspect.iscoroutine(), without its frame
        return run(result, done, failed)
    if inspect.isawaitable(result):
        return run(_await(result), done, failed)
    if done is not None:
        done(result)
    return None


async def _await(awaitable: Any) -> Any:
    return await awaitable


async def _resume(coro: Coroutine[Any, Any, Any], yielded: Any) -> Any:
    while True:
        throw: BaseException | None = None
        if yielded is None:
            try:
                await asyncio.sleep(0)  # a bare yield: give the loop one turn
            except asyncio.CancelledError as exc:
                throw = exc
        elif asyncio.isfuture(yielded):
            # as Task.__step does: the coroutine marked the future as awaited-on; we wait for it
            yielded._asyncio_future_blocking = False
            try:
                await yielded
            except BaseException as exc:
                # The coroutine awaits this future itself and gets its result or error when it
                # resumes; if this task was cancelled, the future was cancelled with it.
                if not yielded.done():
                    throw = exc
        else:
            throw = RuntimeError(f"coroutine yielded {yielded!r}, not a future")
        try:
            yielded = coro.send(None) if throw is None else coro.throw(throw)
        except StopIteration as stop:
            return stop.value


def _finish(task: asyncio.Task[Any], done: Done | None, failed: Failed) -> None:
    if task.cancelled():
        failed(asyncio.CancelledError())
        return
    exc = task.exception()
    if exc is not None:
        failed(exc)
    elif done is not None:
        done(task.result())
