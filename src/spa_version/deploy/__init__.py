"""The deploy switch: what one process does so that a bump moves its traffic, its
websockets and the fleet view along (docs/deploy-haproxy.md).

`Deployment` is the one entry point. Each `spa_version.host.Host` (the bundle the ASGI
`spa_version.VersionMiddleware` and Django's middleware build) holds one, beside its
follower, and the middlewares use only this: `Deployment.start` / `Deployment.stop`,
`Deployment.count_request` and `Deployment.open_stream` on the request path and
`Deployment.serve_websocket`. The
modules behind it:

- `liveness`: is this process's build live, pending or stale, and is a stale build
  still handing over (the one place that decides it);
- `drain`: tracks the websockets and event streams and closes them gently once the
  build is stale (`streams`: which responses are streams, and how one ends);
- `agent`: HAProxy's agent-check responder (also ``spa-version agent``);
- `heartbeat`: writes this process's fleet record to the store's fleet
  (`spa_version.stores.base.Store.fleet`); `fleet`: how ``spa-version status`` and
  ``bump --wait`` read the records back;
- `sigterm`: closes the websockets before the server's own shutdown cuts them.

Every process has a `Deployment`. Only one that declares its build (``build=``,
``SPA_VERSION_BUILD``: the label it was deployed with) tracks websockets and event
streams, counts
requests by client epoch and answers agent checks. Without a build it only heartbeats
(state live, build null), so its request path costs exactly what it did. One that also
declares a slot (`spa_version.options.Options.slot`) counts the requests pinned to it
(`spa_version.pinning.PinCounter`; docs/protocol.md, "Pinning") in the same call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from ..asgi_types import ASGIApp, Receive, Scope, Send
from ..current import CurrentVersion, Snapshot
from ..options import DeployOptions
from ..pinning import PinCounter
from ..release import Release
from ..stores.base import Store
from .agent import AgentServer, liveness_reply
from .drain import WebsocketDrain
from .heartbeat import EpochCounter, Heartbeat, after_first_read
from .liveness import LIVE, STALE, Liveness
from .sigterm import hook_sigterm
from .streams import Stream

__all__ = ["Deployment"]

logger = logging.getLogger("spa_version")


class Deployment:
    """This process's part in a deploy: liveness, drain, agent, heartbeat and SIGTERM.

    *current* is the version the process serves (and names its slot, if any),
    *options* the deploy options (`spa_version.options.DeployOptions`: the build, the
    agent, the drain, the heartbeat), *client_header* the request header carrying a
    client's epoch (counted by the heartbeat).
    """

    def __init__(self, current: CurrentVersion, options: DeployOptions, *, client_header: str) -> None:
        self.current = current
        self.options = options
        self.build = options.build
        #: Set on shutdown (or the first SIGTERM): the agent says "drain" from then on.
        self.stopping = False
        self.liveness: Liveness | None = None
        self.drain: WebsocketDrain | None = None
        self._counter: EpochCounter | None = None
        #: The epoch of the cutoff release this stale build is cut off by, or None
        #: (docs/protocol.md, "Security fixes"); read on the request path.
        self.cutoff_epoch: int | None = None
        #: The requests pinned to this process's slot, or None: no build or no slot.
        self.pins: PinCounter | None = None
        #: Called with each HTTP request's ASGI headers, or None: nothing is counted.
        self.count_request: Callable[[Iterable[tuple[bytes, bytes]]], None] | None = None
        #: Tracks a response that is an event stream for the drain (`spa_version.deploy.
        #: drain.WebsocketDrain.open_stream`), or None: nothing tracked (no build).
        self.open_stream: Callable[[Send, asyncio.Task[Any] | None], Stream] | None = None
        self.close_stream: Callable[[Stream], None] | None = None
        if options.build is not None:
            # The handover only means something to a balancer that asks the agent.
            handover = options.agent_handover if options.agent_port is not None else 0.0
            self.liveness = Liveness(options.build, current, handover=handover)
            self.drain = WebsocketDrain(self.liveness, current, options)
            self.open_stream = self.drain.open_stream
            self.close_stream = self.drain.close_stream
            if options.drain_grace < handover:
                # Closing before the balancer drains us: reconnects would land here again.
                logger.warning(
                    "spa-version: drain_grace (%.1f s) is shorter than agent_handover (%.1f s)",
                    options.drain_grace,
                    handover,
                )
            self._counter = EpochCounter(client_header.lower().encode("ascii"))
            self.count_request = self._counter.count
            if current.slot is not None:
                self.pins = PinCounter(current.slot)
                self.count_request = _count_both(self._counter.count, self.pins.count)
            self.liveness.add_callback(self._on_state)
            self.drain.on_empty = self._poke
            # After the liveness's own observer: it has decided the state by then.
            current.add_observer(self._on_version)
        self._agent: AgentServer | None = None
        self._heartbeat: Heartbeat | None = None
        self._task: asyncio.Task[None] | None = None
        self._restore_sigterm: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None

    # -- what the fleet sees ---------------------------------------------------

    @property
    def state(self) -> str:
        """``live``, ``pending`` or ``stale`` (`spa_version.deploy.liveness`); always live without a build."""
        return LIVE if self.liveness is None else self.liveness.state

    @property
    def websockets(self) -> int | None:
        """The websockets open right now, or None: not tracked (no build declared)."""
        return None if self.drain is None else self.drain.open_count

    @property
    def streams(self) -> int | None:
        """The event streams open right now, or None: not tracked (no build declared)."""
        return None if self.drain is None else self.drain.stream_count

    @property
    def agent_port(self) -> int | None:
        """The TCP port the agent-check responder listens on, or None while none does."""
        return None if self._agent is None else self._agent.port

    @property
    def running(self) -> bool:
        """Whether the task `start` began is still running."""
        return self._task is not None and not self._task.done()

    def describe(self) -> dict[str, Any]:
        """This process's fleet record (`Heartbeat` adds host, pid, times and request counts)."""
        release = self.current.release
        return {
            "build": self.build,
            "state": self.state,
            "stopping": self.stopping,
            "epoch": None if release is None else release.epoch,
            "label": None if release is None else release.label,
            "websockets": self.websockets,
            "streams": self.streams,
            "drained": 0 if self.drain is None else self.drain.closed_count,
            "agent_port": self.agent_port,
            **({} if self.pins is None else self.pins.describe()),
        }

    # -- the request path --------------------------------------------------------

    async def serve_websocket(
        self, scope: Scope, receive: Receive, send: Send, app: ASGIApp, *, server_send: Send | None = None
    ) -> None:
        """Run *app* for one websocket connection, tracked for the drain when a build is declared.

        *server_send* is the server's own ``send`` when *send* wraps it: the drain may
        reach the transport through it (`spa_version.deploy.drain.WebsocketDrain.serve`).
        """
        if self.drain is None:
            await app(scope, receive, send)
        else:
            await self.drain.serve(scope, receive, send, app, server_send=server_send)

    # -- life ----------------------------------------------------------------------

    def start(self, store: Store, synced: Callable[[], bool]) -> None:
        """Start `run` as a task of the running event loop (next to the listener).

        *synced* says whether the listener has read *store* once.
        """
        self._task = asyncio.get_running_loop().create_task(
            self.run(store, synced), name="spa-version deploy switch"
        )

    async def run(self, store: Store, synced: Callable[[], bool]) -> None:
        """Attach the drain, hook SIGTERM, start the agent and heartbeat; run until stopped."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self.stopping = False
        if self.drain is not None:
            self.drain.attach()
            if self.options.drain_on_sigterm:
                self._restore_sigterm = hook_sigterm(self._loop, self._before_sigterm)
        await self._start_agent(synced)
        try:
            fleet = store.fleet()
            if fleet is not None:
                interval = self.options.heartbeat_interval
                await after_first_read(synced, interval)
                self._heartbeat = Heartbeat(fleet, self.describe, interval=interval, counter=self._counter)
                await self._heartbeat.run()
            elif self._agent is not None:
                await asyncio.Event().wait()  # nothing to write to: the agent lives on
        except GeneratorExit:
            # Closed by the garbage collector, not stopped: the event loop is gone, so no
            # store I/O (the record expires after its ttl; the agent's socket goes with
            # the process). Only `stop` or a cancellation ends this task cleanly.
            raise
        except BaseException:
            await self._close_out()
            raise
        await self._close_out()

    async def stop(self) -> None:
        """Shutdown: say ``drain``, close the websockets left (bounded), let the heartbeat
        finish its write and remove the record, stop the agent. Idempotent."""
        restore, self._restore_sigterm = self._restore_sigterm, None
        if restore is not None:
            restore()
        self.stopping = True
        if self.drain is not None:
            await self.drain.aclose()
        task, self._task = self._task, None
        if task is None:
            return
        # Cancelling mid-write could leak the connection the write was using.
        if self._heartbeat is not None:
            self._heartbeat.stop()
            await asyncio.wait({task}, timeout=5.0)
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _start_agent(self, synced: Callable[[], bool]) -> None:
        port = self.options.agent_port
        if port is None or self.liveness is None:
            return
        reply = liveness_reply(self.liveness, synced, warmup=self.options.agent_warmup)

        def agent_line() -> bytes | None:
            # Shutting down: no new traffic, whatever the build.
            return b"drain\n" if self.stopping else reply()

        agent = AgentServer(agent_line, host=self.options.agent_host, port=port)
        try:
            await agent.start()
        except OSError as exc:
            logger.error("spa-version: cannot start the agent on port %d: %s", port, exc)
            return
        self._agent = agent

    async def _close_out(self) -> None:
        """Remove the fleet record and stop the agent (the end of `run`)."""
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            await heartbeat.remove()
        agent, self._agent = self._agent, None
        if agent is not None:
            await agent.aclose()

    async def _before_sigterm(self) -> None:
        self.stopping = True
        self._poke()
        if self.drain is not None:
            await self.drain.close_remaining()

    def _poke(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.poke()

    def _on_version(self, old: Snapshot, new: Snapshot) -> None:
        """A new release: is this build cut off by it (stale, and the release a cutoff)?

        Once cut off, a build stays cut off through later releases until it is live
        again (a rollback to it)."""
        if self.liveness is None:
            return
        if self.liveness.state != STALE:
            self.cutoff_epoch = None
            return
        release = new.release
        if release is None or not release.cutoff or self.cutoff_epoch is not None:
            return
        self.cutoff_epoch = release.epoch
        loop, drain = self._loop, self.drain
        if drain is None or loop is None or loop.is_closed():
            return  # not serving yet: requests are refused from the first one on
        if self._thread == threading.get_ident():
            drain.cut_off()
        else:
            loop.call_soon_threadsafe(drain.cut_off)

    def _on_state(self, old: str, new: str, release: Release | None) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if self._thread == threading.get_ident():
            self._poke()
        else:
            loop.call_soon_threadsafe(self._poke)


def _count_both(
    count_epoch: Callable[[Iterable[tuple[bytes, bytes]]], None],
    count_pin: Callable[[Iterable[tuple[bytes, bytes]]], None],
) -> Callable[[Iterable[tuple[bytes, bytes]]], None]:
    """One request-path call counting the client's epoch, then the pin (a slot is declared)."""

    def count(headers: Iterable[tuple[bytes, bytes]]) -> None:
        count_epoch(headers)
        count_pin(headers)

    return count
