"""The background thread that follows the store for Django, which has no event loop of its own.

Under WSGI (runserver, gunicorn sync workers) there is no event loop to run the async
`spa_version.follower.Follower` in, and the request path must never wait on the store.
So each process runs one daemon thread with its own event loop, on which the
`spa_version.host.Host` of the ``SPA_VERSION`` settings (`spa_version.django.conf`)
follows the store and runs its deploy switch. Requests only read
`CurrentVersion.snapshot`, which the thread replaces (`CurrentVersion` is thread-safe).
Django under ASGI uses the same thread: Django never sees lifespan events (its
``ASGIHandler`` refuses every scope but ``http``), so there is no lifespan to tie a
listener to. Behind `spa_version.django.asgi.wrap_asgi` the ASGI middleware follows the
shared host instead, and this thread never starts.

- **Lazy**: nothing starts until the first request (or template tag) needs it, so
  ``manage.py migrate`` and friends never connect to the store.
- **Fork-safe**: a pre-fork server (gunicorn ``--preload``) may have started the thread
  in the parent; threads do not survive ``fork()``, so a child notices (pid check, and
  an ``os.register_at_fork`` hook, set when the thread first starts, that renews the
  lock, which a thread could have held at the moment of the fork) and starts its own.
- **Stopped cleanly** at interpreter exit (`atexit`, registered when the thread first
  starts): the fleet records removed, the listener tasks cancelled and awaited, the
  stores closed, the loop closed. By then `concurrent.futures` refuses new work, so the
  loop runs blocking store calls (`asyncio.to_thread`) on threads of its own
  (`_ThreadPerCall`). A SIGTERM that skips the exit hooks removes the fleet record
  first (`spa_version.deploy.sigterm.hook_sigterm_for_exit`, with `leave_fleet`).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..host import Host

__all__ = ["ListenerThread", "leave_fleet", "listener_thread", "stop_listener_thread"]

logger = logging.getLogger("spa_version")

T = TypeVar("T")


class _ThreadPerCall(concurrent.futures.ThreadPoolExecutor):
    """The loop's default executor: each call on a daemon thread of its own.

    A `concurrent.futures.ThreadPoolExecutor` refuses work once the interpreter has
    begun to exit, which is when `atexit` stops the thread and a store still needs
    `asyncio.to_thread` (the file store removing the fleet record). Store calls are few
    (a heartbeat every few seconds), so a thread each costs nothing that matters. A
    subclass only because ``loop.set_default_executor`` asks for one; it keeps no pool.
    """

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)

        try:
            threading.Thread(target=run, name="spa-version store call", daemon=True).start()
        except RuntimeError:
            # Python 3.12.0 and 3.12.1 start no thread from `atexit` ("can't create new
            # thread at interpreter shutdown"): run the call here, on the loop's thread.
            run()
        return future


class ListenerThread:
    """One daemon thread with one event loop, following the hosts of this process."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._lock = threading.Lock()
        #: The hosts followed here, with the `time.monotonic()` instant until which their
        #: first requests may wait for the first read.
        self._hosts: dict[Host, float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False
        #: Hosts released (`release`) whose unfollowing may still run on the loop: `stop`
        #: waits for them, so the loop never closes on a store left open.
        self._releasing: set[concurrent.futures.Future[None]] = set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def serve(self, host: Host) -> None:
        """Block until *host* may serve: follow it here unless another host (the ASGI
        wrapper) does, and wait for its first read until its startup deadline. Sets
        ``host.ready`` once nothing is left to wait for. Never raises: a host that
        cannot be followed serves what it has (docs/django.md)."""
        deadline = self._follow(host)
        if deadline is None:
            host.ready = True
            return
        remaining = deadline - time.monotonic()
        if remaining > 0:
            host.synced.wait(remaining)
        host.ready = True

    async def async_serve(self, host: Host) -> None:
        """`serve` for the async request path (never blocks the event loop)."""
        deadline = self._follow(host)
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining > 0 and not host.synced.is_set():
                await asyncio.to_thread(host.synced.wait, remaining)
        host.ready = True

    def _follow(self, host: Host) -> float | None:
        """The startup deadline of *host*, following it here from now on if nothing does;
        None when another host follows it (the ASGI wrapper's middleware), or when it
        cannot be followed (logged)."""
        try:
            return self._start_following(host)
        except Exception:
            logger.exception("spa-version: cannot follow the store; serving without the version")
            return None

    def _start_following(self, host: Host) -> float | None:
        deadline = self._hosts.get(host)
        if deadline is not None:
            return deadline
        with self._lock:
            deadline = self._hosts.get(host)
            if deadline is not None:
                return deadline
            if host.follower is not None:
                return None
            if self._stopped:
                raise RuntimeError("spa-version: the listener thread has been stopped")
            loop = self._ensure_loop()
            deadline = time.monotonic() + host.options.startup_timeout
            self._hosts[host] = deadline

            def follow() -> None:
                if host.follow() is None:  # the store could not be opened (logged): wait no more
                    host.synced.set()

            loop.call_soon_threadsafe(follow)
            return deadline

    def release(self, host: Host) -> None:
        """Stop following *host* here, if it is (settings replaced): its fleet record is
        removed, its listener stopped and its store closed, on the thread, without waiting."""
        with self._lock:
            followed = self._hosts.pop(host, None) is not None
            loop = self._loop
            if not followed or loop is None or self.pid != os.getpid() or loop.is_closed():
                return
            future = asyncio.run_coroutine_threadsafe(host.unfollow(), loop)
            self._releasing.add(future)
        # Outside the lock: a future already done calls back at once, on this thread.
        future.add_done_callback(self._released)

    def _released(self, future: concurrent.futures.Future[None]) -> None:
        with self._lock:
            self._releasing.discard(future)

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is not None:
            return self._loop
        _register_process_hooks()
        loop = asyncio.new_event_loop()
        loop.set_default_executor(_ThreadPerCall())
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

    def leave_fleet(self, timeout: float = 2.0) -> None:
        """Stop the deploy switch (heartbeat, record, agent) of every host followed here,
        and keep following the store.

        For SIGTERM (`spa_version.deploy.sigterm.hook_sigterm_for_exit`): it runs in a
        signal handler, so it takes no lock (the interrupted code may hold one), and it
        waits at most *timeout* seconds.
        """
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or self.pid != os.getpid() or not thread.is_alive():
            return
        deployments = [host.deployment for host in list(self._hosts)]
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
        """Stop following every host, close the stores, stop the thread. Idempotent.

        Hosts released just before (`release`) finish closing first: the loop stops only
        once every store opened on it is closed, or after *timeout* seconds.
        """
        with self._lock:
            self._stopped = True
            hosts = list(self._hosts)
            self._hosts.clear()
            releasing = list(self._releasing)
            loop, thread = self._loop, self._thread
        if loop is None or thread is None or self.pid != os.getpid() or not thread.is_alive():
            return

        async def unfollow_all() -> None:
            for host in hosts:
                await host.unfollow()

        future = asyncio.run_coroutine_threadsafe(unfollow_all(), loop)
        done, pending = concurrent.futures.wait([future, *releasing], timeout)
        if pending:
            logger.warning("spa-version: stopping the listeners did not finish in %g s", timeout)
        for each in done:
            if not each.cancelled() and each.exception() is not None:
                logger.error("spa-version: stopping a listener failed", exc_info=each.exception())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)


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


def leave_fleet() -> None:
    """`ListenerThread.leave_fleet` of this process's thread, if it runs (for SIGTERM)."""
    instance = _instance
    if instance is not None and instance.pid == os.getpid():
        instance.leave_fleet()


def _after_fork_in_child() -> None:
    # The parent's thread does not exist here, and its locks may have been held by it
    # at the moment of the fork: forget them all (the pid check covers the rest).
    global _instance, _instance_lock
    _instance = None
    _instance_lock = threading.Lock()


_hooks_registered = False


def _register_process_hooks() -> None:
    """Once per interpreter, when a thread first starts (never at import): the fork hook
    and the exit stop. A forked child inherits both; they act on its own thread."""
    global _hooks_registered
    if _hooks_registered:
        return
    _hooks_registered = True
    os.register_at_fork(after_in_child=_after_fork_in_child)
    atexit.register(stop_listener_thread)
