"""The background thread that keeps Django's view of the current release fresh.

Under WSGI (runserver, gunicorn sync workers) there is no event loop to run the async
`spa_version.listener.Listener` in, and the request path must never wait on the store.
So each process runs one daemon thread with its own event loop, and one
`spa_version.follower.Follower` (the listener task and the deploy switch) per
configured store on it. Requests only read `CurrentVersion.snapshot`, which the
thread replaces (`CurrentVersion` is thread-safe). Django under ASGI uses the same
thread: Django never sees lifespan events (its ``ASGIHandler`` refuses every scope
but ``http``), so there is no lifespan to tie a listener to.

Beside each listener the thread hosts the process's `spa_version.deploy.Deployment`,
as the ASGI middleware does beside its own: the process heartbeats to the fleet, so
WSGI and ASGI Django processes show in ``spa-version status`` and ``bump --wait`` waits
for them, and with a declared build (``BUILD`` / ``SPA_VERSION_BUILD``) it reports live,
pending or stale and answers HAProxy's agent-check (``AGENT_PORT``). SIGTERM stays the
server's: `hook_sigterm_for_exit` only removes the fleet record before the handler it
found runs (docs/django.md, "Fleet status and the deploy switch").

- **Lazy**: nothing starts until the first request (or template tag) needs it, so
  ``manage.py migrate`` and friends never connect to the store.
- **Fork-safe**: a pre-fork server (gunicorn ``--preload``) may have started the thread
  in the parent; threads do not survive ``fork()``, so a child notices (pid check, and
  an ``os.register_at_fork`` hook that also renews the locks, which a thread could have
  held at the moment of the fork) and starts its own.
- **Stopped cleanly** at interpreter exit (``threading``'s exit hooks, see
  `_register_exit_stop`): the fleet records removed, the listener tasks cancelled and
  awaited, the stores closed, the loop closed.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import signal
import threading
import time
from collections.abc import Hashable
from types import FrameType

from ..current import CurrentVersion
from ..deploy import Deployment
from ..follower import Follower
from ..options import Options

__all__ = ["Followed", "ListenerThread", "hook_sigterm_for_exit", "listener_thread", "stop_listener_thread"]

logger = logging.getLogger("spa_version")


class Followed:
    """One store being followed: the `CurrentVersion` requests read, and its sync state."""

    __slots__ = ("current", "follower", "synced", "wait_until")

    def __init__(self, current: CurrentVersion, follower: Follower, wait_until: float) -> None:
        self.current = current
        #: The listener and this process's deploy switch for the store (`spa_version.follower`).
        self.follower = follower
        #: Set (from the listener thread) once the store has been read, even if empty.
        self.synced = threading.Event()
        #: Until this `time.monotonic()` instant, requests may wait for the first read.
        self.wait_until = wait_until

    def wait_first_read(self) -> None:
        """Block until the first read or the startup deadline (only early in a process's life)."""
        remaining = self.wait_until - time.monotonic()
        if remaining > 0 and not self.synced.is_set():
            self.synced.wait(remaining)

    async def async_wait_first_read(self) -> None:
        """`wait_first_read` for the async request path (never blocks the event loop)."""
        remaining = self.wait_until - time.monotonic()
        if remaining > 0 and not self.synced.is_set():
            await asyncio.to_thread(self.synced.wait, remaining)


class ListenerThread:
    """One daemon thread with one event loop, following every configured store of this process."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._followed: dict[Hashable, Followed] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False
        #: The last (options, Followed) pair asked for: settings rarely change, so most
        #: requests are answered by one identity check.
        self._last: tuple[Options, Followed] | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def follow(self, config: Options) -> Followed:
        """The `Followed` for *config*'s store, starting the thread and its listener if needed."""
        last = self._last
        if last is not None and last[0] is config:
            return last[1]
        key = _follow_key(config)
        with self._lock:
            followed = self._followed.get(key)
            if followed is None:
                followed = self._start_following(config)
                self._followed[key] = followed
            self._last = (config, followed)
        return followed

    def _start_following(self, config: Options) -> Followed:
        if self._stopped:
            raise RuntimeError("spa-version: the listener thread has been stopped")
        loop = self._ensure_loop()
        current = CurrentVersion(config.header_name, config.slot, deployed=config.deploy.build)
        if config.fallback is not None:
            current.offer_fallback(config.fallback)
        deployment = Deployment(current, config.deploy, client_header=config.client_header)
        follower = Follower(config.open_store(), deployment, config, owns_store=True)  # no I/O yet
        followed = Followed(current, follower, time.monotonic() + config.startup_timeout)
        loop.call_soon_threadsafe(follower.start, followed.synced.set)
        return followed

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is not None:
            return self._loop
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            finally:
                # Anything still pending (only after an unclean stop) is cancelled and
                # awaited, so no "Task was destroyed but it is pending" at exit.
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        thread = threading.Thread(target=run, name="spa-version listener", daemon=True)
        thread.start()
        ready.wait(10)
        self._loop, self._thread = loop, thread
        return loop

    async def _close_all(self) -> None:
        for item in list(self._followed.values()):
            await item.follower.stop()

    def leave_fleet(self, timeout: float = 2.0) -> None:
        """Stop every deploy switch (heartbeat, record, agent), and keep following the store.

        For `_on_sigterm`: it runs in a signal handler, so it takes no lock (the
        interrupted code may hold one), and it waits at most *timeout* seconds.
        """
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or self.pid != os.getpid() or not thread.is_alive():
            return
        deployments = [item.follower.deployment for item in list(self._followed.values())]
        if not deployments:
            return

        async def stop_all() -> None:
            await asyncio.gather(*(deployment.stop() for deployment in deployments))

        future = asyncio.run_coroutine_threadsafe(stop_all(), loop)
        try:
            future.result(timeout)
        except Exception:
            future.cancel()
            logger.warning("spa-version: removing the fleet record at SIGTERM did not finish")

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel and await every listener, close the stores, stop the thread. Idempotent."""
        with self._lock:
            self._stopped = True
            self._last = None
            loop, thread = self._loop, self._thread
            if loop is None or thread is None or self.pid != os.getpid():
                return
            if thread.is_alive():
                future = asyncio.run_coroutine_threadsafe(self._close_all(), loop)
                try:
                    future.result(timeout)
                except Exception:
                    logger.exception("spa-version: stopping the listeners failed")
                loop.call_soon_threadsafe(loop.stop)
                thread.join(timeout)
            self._followed.clear()


def _follow_key(config: Options) -> Hashable:
    """What identifies one followed store: settings that share it share a listener."""
    return (
        config.store,
        config.app_name,
        config.header_name.lower(),
        config.fallback,
        config.slot,  # stamped in the header (docs/protocol.md, "Pinning")
        config.resync_interval,
        config.client_header.lower(),
        config.deploy,
    )


_instance: ListenerThread | None = None
_instance_lock = threading.Lock()


def listener_thread() -> ListenerThread:
    """This process's `ListenerThread` (a new one after a fork)."""
    global _instance
    instance = _instance
    if instance is not None and instance.pid == os.getpid():
        return instance
    with _instance_lock:
        if _instance is None or _instance.pid != os.getpid():
            _instance = ListenerThread()
        return _instance


def stop_listener_thread(timeout: float = 5.0) -> None:
    """Stop this process's listener thread, if it runs; the next request starts a new one."""
    global _instance
    with _instance_lock:
        instance, _instance = _instance, None
    if instance is not None:
        instance.stop(timeout)


def _after_fork_in_child() -> None:
    # The parent's thread does not exist here, and its locks may have been held by it
    # at the moment of the fork: forget them all (the pid check covers the rest).
    global _instance, _instance_lock
    _instance = None
    _instance_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _register_exit_stop() -> None:
    """Stop the thread when the interpreter exits, while threads still run.

    `atexit` is too late: by then `concurrent.futures` refuses new work ("cannot schedule
    new futures after interpreter shutdown"), so a store doing its I/O through
    `asyncio.to_thread` (the file store) could not remove the fleet record. The hooks of
    ``threading._register_atexit`` run earlier, when the main thread ends (the same
    hook `concurrent.futures` itself uses); `atexit` remains the fallback.
    """
    register = getattr(threading, "_register_atexit", None)
    if callable(register):
        try:
            register(stop_listener_thread)
            return
        except RuntimeError:  # already shutting down
            pass
    atexit.register(stop_listener_thread)


_register_exit_stop()

# -- SIGTERM -----------------------------------------------------------------------------

_sigterm_hooked_in: int | None = None  # the pid whose SIGTERM handler is `_on_sigterm`


def hook_sigterm_for_exit() -> None:
    """Make SIGTERM remove this process's fleet record, then do what it did before.

    Some servers end a process on SIGTERM without Python's exit hooks: uvicorn shuts
    down gracefully, then puts the default handler back and re-raises the signal
    (uvicorn's ``Server.capture_signals``; docs/servers.md: "killed by SIGTERM"), and
    runserver leaves SIGTERM's default action, which ends the process at once. So the
    record is removed when the signal arrives (`ListenerThread.leave_fleet`, bounded),
    before the handler found here runs: the server's own (uvicorn, gunicorn) with the same
    arguments, or the default action, re-raised with the default handler back in place.
    The server's shutdown and exit status do not change; requests in flight are still
    stamped (the listener keeps following). Called from the middleware's ``__init__``,
    which runs where the server loads Django: in the main thread under uvicorn,
    gunicorn and ``runserver --noreload`` (signal handlers can only be set there), after
    uvicorn has installed its handler. Once per process; never over ``SIG_IGN``.
    """
    global _sigterm_hooked_in
    pid = os.getpid()
    if _sigterm_hooked_in == pid or threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is None or previous is signal.SIG_IGN or getattr(previous, "_spa_version", False):
        return

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        instance = _instance
        if instance is not None and instance.pid == os.getpid():
            instance.leave_fleet()
        if callable(previous):
            previous(signum, frame)
            return
        # The default action: end the process as the signal would have.
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)

    on_sigterm._spa_version = True  # type: ignore[attr-defined]
    signal.signal(signal.SIGTERM, on_sigterm)
    _sigterm_hooked_in = pid
