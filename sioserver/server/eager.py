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
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["call", "run"]

Done = Callable[[Any], None]
Failed = Callable[[BaseException], None]

_EAGER = sys.version_info >= (3, 12)


def run(coro: Coroutine[Any, Any, Any], done: Done | None, failed: Failed) -> asyncio.Task[Any] | None:
    """Run ``coro`` as a task; ``done(result)`` or ``failed(exc)`` follows. Returns the task while it runs."""
    loop = asyncio.get_running_loop()
    if _EAGER:
        task: asyncio.Task[Any] = asyncio.Task(coro, loop=loop, eager_start=True)  # type: ignore[call-arg,unused-ignore]
        if task.done():
            _finish(task, done, failed)
            return None
        task.add_done_callback(lambda t: _finish(t, done, failed))
        return task
    # 3.11: the handler runs inside the task (current_task(), timeouts and context variables as in
    # any task) and its result is handed on in the same step, not by a done-callback a turn later.
    return loop.create_task(_step(coro, done, failed))


async def _step(coro: Coroutine[Any, Any, Any], done: Done | None, failed: Failed) -> None:
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


def call(fn: Callable[..., Any], args: tuple[Any, ...], done: Done | None, failed: Failed) -> asyncio.Task[Any] | None:
    """Call a sync or async handler; its result (or error) goes to ``done`` (or ``failed``)."""
    try:
        result = fn(*args)
    except Exception as exc:
        failed(exc)
        return None
    if inspect.iscoroutine(result):
        return run(result, done, failed)
    if inspect.isawaitable(result):
        return run(_await(result), done, failed)
    if done is not None:
        done(result)
    return None


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _finish(task: asyncio.Task[Any], done: Done | None, failed: Failed) -> None:
    if task.cancelled():
        failed(asyncio.CancelledError())
        return
    exc = task.exception()
    if exc is not None:
        failed(exc)
    elif done is not None:
        done(task.result())
