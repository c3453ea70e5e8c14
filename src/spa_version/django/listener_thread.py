"""The background thread that keeps Django's view of the current release fresh.

Under WSGI (runserver, gunicorn sync workers) there is no event loop to run the async
`spa_version.listener.Listener` in, and the request path must never wait on the store.
So each process runs one daemon thread with its own event loop, and one `Listener` task
per configured store on it. Requests only read `CurrentVersion.snapshot`, which the
thread replaces (`CurrentVersion` is thread-safe). Django under ASGI uses the same
thread: Django never sees lifespan events (its ``ASGIHandler`` refuses every scope
but ``http``), so there is no lifespan to tie a listener to.

- **Lazy**: nothing starts until the first request (or template tag) needs it, so
  ``manage.py migrate`` and friends never connect to the store.
- **Fork-safe**: a pre-fork server (gunicorn ``--preload``) may have started the thread
  in the parent; threads do not survive ``fork()``, so a child notices (pid check, and
  an ``os.register_at_fork`` hook that also renews the locks, which a thread could have
  held at the moment of the fork) and starts its own.
- **Stopped cleanly** at interpreter exit (``atexit``): the listener tasks are
  cancelled and awaited, the stores closed, the loop closed.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import threading
import time
from collections.abc import Hashable

from ..current import CurrentVersion
from ..listener import Listener
from ..pinning import resolve_slot
from ..protocol import parse_header
from ..release import Release
from ..stores import Store, open_store
from .conf import Config

__all__ = ["Followed", "ListenerThread", "listener_thread", "stop_listener_thread"]

logger = logging.getLogger("spa_version")


class Followed:
    """One store being followed: the `CurrentVersion` requests read, and its sync state."""

    __slots__ = ("current", "store", "listener", "task", "synced", "wait_until")

    def __init__(self, current: CurrentVersion, store: Store, listener: Listener, wait_until: float) -> None:
        self.current = current
        self.store = store
        self.listener = listener
        self.task: asyncio.Task[None] | None = None
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

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def follow(self, config: Config) -> Followed:
        """The `Followed` for *config*'s store, starting the thread and its listener if needed."""
        followed = self._followed.get(config.follow_key)
        if followed is not None:
            return followed
        with self._lock:
            followed = self._followed.get(config.follow_key)
            if followed is None:
                followed = self._start_following(config)
                self._followed[config.follow_key] = followed
        return followed

    def _start_following(self, config: Config) -> Followed:
        if self._stopped:
            raise RuntimeError("spa-version: the listener thread has been stopped")
        loop = self._ensure_loop()
        # The slot (docs/protocol.md, "Pinning") from SPA_VERSION_SLOT, as for ASGI.
        current = CurrentVersion(config.header_name, resolve_slot(None))
        if config.fallback is not None:
            parsed = parse_header(config.fallback)
            current.offer(
                Release(parsed.epoch, parsed.label or "fallback", parsed.policy, parsed.min_compatible)
            )
            current.provisional = True
        store = open_store(config.url, app=config.app)  # opening does no I/O
        listener = Listener(store, current, resync_interval=config.resync_interval)
        followed = Followed(current, store, listener, time.monotonic() + config.startup_timeout)

        def start() -> None:  # runs on the listener thread's loop
            followed.task = loop.create_task(self._run(followed), name=f"spa-version listener {store!r}")

        loop.call_soon_threadsafe(start)
        return followed

    @staticmethod
    async def _run(followed: Followed) -> None:
        async def mark_synced() -> None:
            await followed.listener.synced.wait()
            followed.synced.set()

        marker = asyncio.create_task(mark_synced())
        try:
            await followed.listener.run()
        except GeneratorExit:
            # Closed by the garbage collector, not cancelled: the event loop is gone,
            # so await nothing.
            marker.cancel()
            raise
        except BaseException:
            marker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await marker
            raise

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
        followed = list(self._followed.values())
        for item in followed:
            if item.task is not None:
                item.task.cancel()
        for item in followed:
            if item.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await item.task
            try:
                await item.store.aclose()
            except Exception:  # pragma: no cover - closing is best effort
                logger.exception("spa-version: closing store %s failed", item.store.display_url)

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel and await every listener, close the stores, stop the thread. Idempotent."""
        with self._lock:
            self._stopped = True
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
atexit.register(stop_listener_thread)
