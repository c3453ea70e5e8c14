"""The deploy switch of one process: liveness, websocket drain, agent-check and heartbeat.

`VersionMiddleware` creates a `DeploySwitch` only when the process declares its build
(``build=`` or ``SPA_VERSION_BUILD``); without one, nothing here runs and the request
path is unchanged (only `spa_version.fleet.FleetReporter` heartbeats, off the request
path). The switch lives and dies with the listener: `run` is started next
to it, and `stop` runs on lifespan shutdown.

SIGTERM: uvicorn closes every websocket at once (1012, no reason) when it shuts down,
*before* it sends ``lifespan.shutdown`` (uvicorn ``Server.shutdown``),
so a lifespan hook alone is too late. With ``drain_on_sigterm`` (the default) the
switch wraps the SIGTERM handler it finds at startup (the server's): the first SIGTERM
makes the agent say ``drain``, closes the open sockets with 1012 spread over
``drain_shutdown_window``, and only then calls the server's handler, so the server's
shutdown (and ``--timeout-graceful-shutdown``) finds nothing left to cut. A second
SIGTERM goes straight to the server. Only in the main thread, and only when the
handler found is a Python callable (the server installed one: uvicorn, Daphne through
Twisted) or a handler set with ``loop.add_signal_handler`` on asyncio's loop (Granian's
workers, ``hypercorn --workers 0``), which is replaced on the loop the same way.
Hypercorn's workers (``--workers 1`` and up) never receive SIGTERM: see docs/servers.md
for the deploy order that drains them.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from .agent import AgentServer, liveness_reply
from .current import CurrentVersion
from .drain import WebsocketDrain
from .fleet import EpochCounter, Heartbeat, after_first_read, stop_heartbeat_task, supports_fleet
from .liveness import Liveness
from .pinning import PinCounter
from .release import Release
from .stores.base import Store

__all__ = ["DeploySwitch"]

logger = logging.getLogger("spa_version")


class DeploySwitch:
    """Everything a process with a declared build does on top of stamping versions."""

    def __init__(
        self,
        build: str,
        current: CurrentVersion,
        client_header: bytes,
        *,
        agent_port: int | None = None,
        agent_host: str | None = None,
        agent_warmup: float = 0.0,
        agent_handover: float = 0.0,
        drain_grace: float = 10.0,
        drain_window: float = 60.0,
        drain_shutdown_window: float = 5.0,
        drain_stale_status: int | None = 503,
        heartbeat_interval: float = 5.0,
        drain_on_sigterm: bool = True,
    ) -> None:
        self.build = build
        self.drain_on_sigterm = drain_on_sigterm
        self._sigterm_restore: Callable[[], None] | None = None
        self.current = current
        self.liveness = Liveness(build, current)
        self.drain = WebsocketDrain(
            self.liveness,
            current,
            grace=drain_grace,
            window=drain_window,
            shutdown_window=drain_shutdown_window,
            stale_status=drain_stale_status,
            handover=agent_handover if agent_port is not None else 0.0,
        )
        if agent_port is not None and drain_grace < agent_handover:
            # Closing before the balancer drains us: reconnects would land here again.
            logger.warning(
                "spa-version: drain_grace (%.1f s) is shorter than agent_handover (%.1f s)",
                drain_grace,
                agent_handover,
            )
        self.counter = EpochCounter(client_header)
        #: Requests pinned to this process's slot, when it declares one (the middleware sets it).
        self.pins: PinCounter | None = None
        self.agent_port = agent_port
        self.agent_host = agent_host
        self.agent_warmup = agent_warmup
        self.agent_handover = agent_handover
        if not heartbeat_interval > 0:
            raise ValueError(f"heartbeat_interval must be > 0 seconds, not {heartbeat_interval!r}")
        self.heartbeat_interval = heartbeat_interval
        self.agent: AgentServer | None = None
        self.heartbeat: Heartbeat | None = None
        #: Set on shutdown: the agent says "drain" from then on.
        self.stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self.liveness.add_callback(self._on_state)
        self.drain.on_empty = self._poke

    def describe(self) -> dict[str, Any]:
        """This process's fleet record (without host/pid/counts: `Heartbeat` adds those)."""
        release = self.current.release
        return {
            "build": self.build,
            "state": self.liveness.state,
            "stopping": self.stopping,
            "epoch": None if release is None else release.epoch,
            "label": None if release is None else release.label,
            "websockets": self.drain.open_count,
            "drained": self.drain.closed_count,
            "agent_port": None if self.agent is None else self.agent.port,
            **({} if self.pins is None else self.pins.describe()),
        }

    def _poke(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.poke()

    def _on_state(self, old: str, new: str, release: Release | None) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if self._thread == threading.get_ident():
            self._poke()
        else:
            loop.call_soon_threadsafe(self._poke)

    async def run(self, store: Store, synced: Callable[[], bool]) -> None:
        """Start the agent and heartbeat beside the listener; run until cancelled."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self.stopping = False
        self.drain.attach()
        if self.drain_on_sigterm:
            self._hook_sigterm()
        if self.agent_port is not None:
            reply = liveness_reply(
                self.liveness, synced, warmup=self.agent_warmup, handover=self.agent_handover
            )

            def agent_line() -> bytes | None:
                # Shutting down: no new traffic, whatever the build.
                return b"drain\n" if self.stopping else reply()

            self.agent = AgentServer(agent_line, host=self.agent_host, port=self.agent_port)
            try:
                await self.agent.start()
            except OSError as exc:
                logger.error("spa-version: cannot start the agent on port %d: %s", self.agent_port, exc)
                self.agent = None
        try:
            if supports_fleet(store):
                await after_first_read(synced, self.heartbeat_interval)
                self.heartbeat = Heartbeat(
                    store, self.describe, interval=self.heartbeat_interval, counter=self.counter
                )
                await self.heartbeat.run()
            else:
                await asyncio.Event().wait()  # nothing to write to: just live as long as the listener
        except GeneratorExit:
            # Closed by the garbage collector, not stopped: the event loop is gone, so no
            # store I/O (the record expires after its ttl; the agent's socket goes with
            # the process). Only `stop` or a cancellation ends this task cleanly.
            raise
        except BaseException:
            await self._close_out()
            raise
        await self._close_out()

    async def _close_out(self) -> None:
        """Remove the fleet record and stop the agent (the end of `run`)."""
        heartbeat, self.heartbeat = self.heartbeat, None
        if heartbeat is not None:
            await heartbeat.remove()
        agent, self.agent = self.agent, None
        if agent is not None:
            await agent.aclose()

    def _hook_sigterm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        loop = self._loop
        assert loop is not None
        handle = _loop_signal_handle(loop, signal.SIGTERM)
        if handle is not None:
            self._hook_loop_sigterm(loop, handle)
            return
        previous = signal.getsignal(signal.SIGTERM)
        if not callable(previous):
            return  # SIG_DFL / SIG_IGN: no server handler to run after the drain
        fired = False
        tasks: set[asyncio.Task[None]] = set()

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            nonlocal fired
            if fired or loop.is_closed():
                previous(signum, frame)  # a second SIGTERM: the server's own handling, now
                return
            fired = True
            loop.call_soon_threadsafe(start, signum)

        def start(signum: int) -> None:
            task = loop.create_task(self._drain_then(previous, signum), name="spa-version sigterm drain")
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        def restore() -> None:
            if signal.getsignal(signal.SIGTERM) is on_sigterm:
                signal.signal(signal.SIGTERM, previous)

        signal.signal(signal.SIGTERM, on_sigterm)
        self._sigterm_restore = restore

    def _hook_loop_sigterm(self, loop: asyncio.AbstractEventLoop, handle: asyncio.Handle) -> None:
        """The same hook for a server that set its SIGTERM handler with
        ``loop.add_signal_handler`` (Granian's workers, ``hypercorn --workers 0``): that
        handler runs from the loop whatever Python-level handler is set, so it is
        replaced on the loop itself, and called after the drain."""
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
            task = loop.create_task(
                self._drain_then(server_handler, signal.SIGTERM), name="spa-version sigterm drain"
            )
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
        ours = _loop_signal_handle(loop, signal.SIGTERM)

        def restore() -> None:
            if not loop.is_closed() and _loop_signal_handle(loop, signal.SIGTERM) is ours:
                callback = handle._callback  # type: ignore[attr-defined]
                loop.add_signal_handler(signal.SIGTERM, callback, *handle._args)

        self._sigterm_restore = restore

    async def _drain_then(self, handler: Callable[[int, FrameType | None], Any], signum: int) -> None:
        logger.info("spa-version: SIGTERM; closing websockets before the server shuts down")
        self.stopping = True
        self._poke()
        try:
            await self.drain.close_remaining()
        finally:
            handler(signum, None)

    async def stop(self, task: asyncio.Task[None] | None) -> None:
        """Shutdown: say ``drain``, close the sockets left (bounded), then stop *task* (`run`)."""
        restore, self._sigterm_restore = self._sigterm_restore, None
        if restore is not None:
            restore()
        self.stopping = True
        await self.drain.aclose()
        if task is not None:
            await stop_heartbeat_task(self.heartbeat, task)


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
