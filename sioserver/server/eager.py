"""Call event handlers with as little machinery as correctness allows.

A plain ``def`` handler is called inline: no task, no extra turn of the event loop. So is an
``async def`` handler that has no await point at all (no ``await``, ``async with`` or ``async for``,
seen once per code object in its bytecode) and does not mention ``current_task``: it is run to the end
by hand, ``coro.send(None)`` in a copy of the context as a task would use, so a context variable it
sets does not leak into the transport's context; its return value is the ack and an exception in it is
logged as from any handler, exactly as on the task path. This is safe because a coroutine without
an await point cannot suspend, so nothing in it can need a task of its own: ``asyncio.timeout()`` and
any ``async with`` cannot appear in it, nor can an await of a timeout-bound call. The only difference
that shows is ``asyncio.current_task()`` inside it, which returns the caller's task (a packet
middleware's, say) or None instead of a task of its own; a handler that names ``current_task`` itself
is given a task to be safe, so only a function it calls can see that. Such a handler's ack goes out
in the same turn of the loop as the event came in, on every Python version.

Any other coroutine handler runs as an ``asyncio.Task`` of its own, so ``asyncio.current_task()``,
``asyncio.timeout()``, aiohttp's client timeouts and context variables behave exactly as in any task.
On Python 3.12+ the task starts eagerly (``eager_start=True``): a handler that finishes without
suspending completes within the call, and its ack goes out in the same turn of the loop. On 3.11 the
task starts on the next turn.

(Stepping a coroutine that can suspend by hand outside a task is not done: code before its first
``await`` would see no current task, or the transport's task, which breaks timeouts.)
"""

from __future__ import annotations

import asyncio
import contextvars
import dis
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

#: the opcodes of an await point (``await``, ``async with``, ``async for``, async comprehensions) on
#: 3.11 to 3.13: a coroutine whose own code has none of them cannot suspend. Names a version lacks are
#: left out (ASYNC_GEN_WRAP is 3.11's; CLEANUP_THROW, END_SEND and the instrumented ones 3.12's).
_SUSPENDING = frozenset(name for name in (
    "GET_AWAITABLE", "SEND", "YIELD_VALUE", "BEFORE_ASYNC_WITH", "GET_AITER", "GET_ANEXT", "END_ASYNC_FOR",
    "ASYNC_GEN_WRAP", "CLEANUP_THROW", "END_SEND", "INSTRUMENTED_YIELD_VALUE", "INSTRUMENTED_END_SEND",
    "INSTRUMENTED_END_ASYNC_FOR",
) if name in dis.opmap)
_INLINE_CACHE_MAX = 1024  # code objects made by exec() could be unbounded: the cache is cleared past this
_inline: dict[types.CodeType, bool] = {}


def _judge(code: types.CodeType) -> bool:
    """True if a coroutine of ``code`` has no await point and does not name ``current_task`` (nor does
    any function or lambda defined in it); kept in ``_inline`` (callers look there first)."""
    verdict = not any(instr.opname in _SUSPENDING for instr in dis.get_instructions(code)) \
        and not _names_current_task(code)
    if len(_inline) >= _INLINE_CACHE_MAX:
        _inline.clear()
    _inline[code] = verdict
    return verdict


def _names_current_task(code: types.CodeType) -> bool:
    return "current_task" in code.co_names or any(
        isinstance(const, types.CodeType) and _names_current_task(const) for const in code.co_consts)


def _run_inline(coro: types.CoroutineType[Any, Any, Any], done: Done | None, failed: Failed) -> None:
    """Run a coroutine that cannot suspend to its end, in a copy of the context as its task would."""
    try:
        contextvars.copy_context().run(coro.send, None)
    except StopIteration as stop:
        result = stop.value
    except (Exception, asyncio.CancelledError) as exc:  # the task path hands both to ``failed``
        failed(exc)
        return
    else:
        _suspended(coro, failed)
        return
    if done is not None:
        done(result)


def _suspended(coro: types.CoroutineType[Any, Any, Any], failed: Failed) -> None:
    """Cannot happen for a coroutine without an await point: never left suspended unseen."""
    coro.close()
    failed(RuntimeError(f"{coro.__qualname__} suspended although it has no await point"))


def run(coro: Coroutine[Any, Any, Any], done: Done | None, failed: Failed,
        tasks: set[asyncio.Task[Any]] | None = None) -> asyncio.Task[Any] | None:
    """Run ``coro``: inline if it cannot suspend (None is returned), else as a task, which is returned
    while it runs; ``done(result)`` or ``failed(exc)`` follows.

    ``tasks`` (the server's running handlers, which shutdown waits for) holds the task until it ends.
    On 3.11 the task takes itself out in its last step, without a done-callback: one ``call_soon``
    and one callback less per event.
    """
    if coro.__class__ is _COROUTINE:
        code = coro.cr_code
        verdict = _inline.get(code)
        if verdict or (verdict is None and _judge(code)):
            _run_inline(coro, done, failed)
            return None
    return _run_task(coro, done, failed, tasks)


def _run_task(coro: Coroutine[Any, Any, Any], done: Done | None, failed: Failed,
              tasks: set[asyncio.Task[Any]] | None) -> asyncio.Task[Any] | None:
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
    if result.__class__ is _COROUTINE:  # run(), without a call on the hot path
        code = result.cr_code
        verdict = _inline.get(code)
        if verdict or (verdict is None and _judge(code)):
            try:  # (_run_inline)
                contextvars.copy_context().run(result.send, None)
            except StopIteration as stop:
                value = stop.value
            except (Exception, asyncio.CancelledError) as exc:
                failed(exc)
                return None
            else:
                _suspended(result, failed)
                return None
            if done is not None:
                done(value)
            return None
        return _run_task(result, done, failed, tasks)
    if inspect.isawaitable(result):
        return _run_task(_await(result), done, failed, tasks)  # not a coroutine: always a task
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
