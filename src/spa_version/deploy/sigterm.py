"""SIGTERM: let the process close its websockets gently before the server cuts them.

uvicorn closes every websocket at once (1012, no reason) when it shuts down, *before* it
sends ``lifespan.shutdown`` (uvicorn ``Server.shutdown``), so a lifespan hook alone is
too late. `hook_sigterm` wraps the SIGTERM handler it finds (the server's): the first
SIGTERM runs *before* (`spa_version.deploy.Deployment` makes the agent say ``drain``
and closes the open sockets with 1012 spread over ``drain_shutdown_window``) and only
then calls the server's handler, so the server's shutdown (and
``--timeout-graceful-shutdown``) finds nothing left to cut. A second SIGTERM goes
straight to the server.

Only in the main thread, and only when the handler found is a Python callable (the
server installed one: uvicorn, Daphne through Twisted) or a handler set with
``loop.add_signal_handler`` on asyncio's loop (Granian's workers, ``hypercorn --workers
0``), which is replaced on the loop the same way. Hypercorn's workers (``--workers 1``
and up) never receive SIGTERM: see docs/servers.md for the deploy order that drains them.

A host without an event loop of the server's (Django under WSGI, or under ASGI with its
listener thread) uses `hook_sigterm_for_exit` instead: the fleet record is removed when
SIGTERM arrives, then the signal does what it did before.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Awaitable, Callable, Coroutine
from types import FrameType
from typing import Any

__all__ = ["hook_sigterm", "hook_sigterm_for_exit"]

logger = logging.getLogger("spa_version")

Handler = Callable[[int, "FrameType | None"], Any]


def hook_sigterm(
    loop: asyncio.AbstractEventLoop, before: Callable[[], Awaitable[None]]
) -> Callable[[], None] | None:
    """Run ``await before()`` on *loop* at the first SIGTERM, then the server's own handler.

    Returns the function that puts the server's handler back (call it on shutdown), or
    None when nothing was hooked (not the main thread, or no server handler to wrap).
    """
    if threading.current_thread() is not threading.main_thread():
        return None  # signal handlers can only be set from the main thread
    handle = _loop_signal_handle(loop, signal.SIGTERM)
    if handle is not None:
        return _hook_loop_handler(loop, handle, before)
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous):
        return None  # SIG_DFL / SIG_IGN: no server handler to run after the drain
    fired = False
    tasks: set[asyncio.Task[None]] = set()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        if fired or loop.is_closed():
            previous(signum, frame)  # a second SIGTERM: the server's own handling, now
            return
        fired = True
        loop.call_soon_threadsafe(_spawn, loop, tasks, lambda: _then(before, previous, signum))

    def restore() -> None:
        if signal.getsignal(signal.SIGTERM) is on_sigterm:
            signal.signal(signal.SIGTERM, previous)

    signal.signal(signal.SIGTERM, on_sigterm)
    return restore


def _hook_loop_handler(
    loop: asyncio.AbstractEventLoop, handle: asyncio.Handle, before: Callable[[], Awaitable[None]]
) -> Callable[[], None]:
    """The same hook for a server that set its SIGTERM handler with
    ``loop.add_signal_handler`` (Granian's workers, ``hypercorn --workers 0``): that
    handler runs from the loop whatever Python-level handler is set, so it is replaced
    on the loop itself, and called after *before*."""
    fired = False
    tasks: set[asyncio.Task[None]] = set()

    def server_handler(signum: int, frame: FrameType | None) -> None:
        handle._run()  # the server's callback, with its arguments, as the loop runs it

    def on_sigterm() -> None:
        nonlocal fired
        if fired:
            server_handler(signal.SIGTERM, None)  # a second SIGTERM: the server's own handling
            return
        fired = True
        _spawn(loop, tasks, lambda: _then(before, server_handler, signal.SIGTERM))

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    ours = _loop_signal_handle(loop, signal.SIGTERM)

    def restore() -> None:
        if not loop.is_closed() and _loop_signal_handle(loop, signal.SIGTERM) is ours:
            callback = handle._callback  # type: ignore[attr-defined]
            loop.add_signal_handler(signal.SIGTERM, callback, *handle._args)

    return restore


async def _then(before: Callable[[], Awaitable[None]], handler: Handler, signum: int) -> None:
    logger.info("spa-version: SIGTERM; closing websockets before the server shuts down")
    try:
        await before()
    finally:
        handler(signum, None)


def _spawn(
    loop: asyncio.AbstractEventLoop,
    tasks: set[asyncio.Task[None]],
    make: Callable[[], Coroutine[Any, Any, None]],
) -> None:
    task = loop.create_task(make(), name="spa-version sigterm drain")
    # Keep a reference until it is done, or the task could be garbage collected.
    tasks.add(task)
    task.add_done_callback(tasks.discard)


def _loop_signal_handle(loop: asyncio.AbstractEventLoop, signum: int) -> asyncio.Handle | None:
    """The handler a server set for *signum* with ``loop.add_signal_handler``, or None.

    asyncio's Unix event loop keeps them in ``_signal_handlers``, and runs them from the
    loop whenever the signal arrives (``signal.set_wakeup_fd``), so wrapping the
    Python-level handler would not delay them. Loops that do not expose the table
    (uvloop) give None: the Python-level hook is then all there is.
    """
    handlers = getattr(loop, "_signal_handlers", None)
    if not isinstance(handlers, dict):
        return None
    handle = handlers.get(signum)
    return handle if isinstance(handle, asyncio.Handle) else None


_hooked_for_exit_in: int | None = None  # the pid whose SIGTERM handler `hook_sigterm_for_exit` set


def hook_sigterm_for_exit(leave: Callable[[], None]) -> None:
    """Make SIGTERM call *leave* (remove this process's fleet record), then do what it did before.

    Some servers end a process on SIGTERM without Python's exit hooks: uvicorn shuts
    down gracefully, then puts the default handler back and re-raises the signal
    (uvicorn's ``Server.capture_signals``; docs/servers.md: "killed by SIGTERM"), and
    Django's runserver leaves SIGTERM's default action, which ends the process at once.
    So *leave* runs when the signal arrives, before the handler found here: the
    server's own (uvicorn, gunicorn, Daphne) with the same arguments, or the default
    action, re-raised with the default handler back in place. The server's shutdown and
    exit status do not change. *leave* runs in a signal handler: it must take no lock
    the interrupted code may hold, and return within a bound.

    Only from the main thread (signal handlers can only be set there); once per
    process; never over ``SIG_IGN``.
    """
    global _hooked_for_exit_in
    pid = os.getpid()
    if _hooked_for_exit_in == pid or threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is None or previous is signal.SIG_IGN or getattr(previous, "_spa_version", False):
        return

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        leave()  # in a forked child too: *leave* finds what this process runs
        if callable(previous):
            previous(signum, frame)
            return
        # The default action: end the process as the signal would have.
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)

    on_sigterm._spa_version = True  # type: ignore[attr-defined]
    signal.signal(signal.SIGTERM, on_sigterm)
    _hooked_for_exit_in = pid
