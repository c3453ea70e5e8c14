"""A HAProxy agent-check responder: tells the balancer whether this build is live.

HAProxy connects to ``agent-port`` every ``agent-inter`` and reads one ASCII line
(HAProxy doc/configuration.txt, "agent-check"). We answer:

- ``up ready 100%`` when this process's build is live (``ready`` undoes an earlier
  ``drain``, ``up`` an earlier ``down``, ``100%`` an earlier warm-up weight);
- ``up ready N%`` while warming up (``warmup`` seconds after start, N rising from 10);
- ``drain`` when the build is stale or not released yet: no new balanced traffic,
  established connections stay (and the websocket drain closes them gently).

A stale build says ``drain`` at its next check after the bump, so HAProxy marks
blue DRAIN within one agent interval (docs/deploy-haproxy.md). HAProxy checks each server on its own schedule,
so for up to one ``agent-inter`` the old servers may be drained before the new ones are
ready; HAProxy alone would answer 503 then ("backend has no server available"; seen in
tests/drain/test_haproxy_blue_green.py). The recipe's frontend covers that moment with a fallback backend
(``nbsrv``, examples/haproxy/haproxy.cfg). Behind a balancer that cannot fall back,
``handover`` keeps a stale build saying ``up ready`` that many seconds longer; set it to
at least ``agent-inter`` plus the time a bump takes to arrive.

Before the store has been read once we close without a word: HAProxy then keeps the
server's last state, which is better than a guess.

The answer is computed from memory and written at once: no I/O but the socket's own,
so it returns within milliseconds and never blocks the event loop. It runs in-process
(`spa_version.deploy.Deployment`, started with the listener) or beside the app
(``spa-version agent --port N --build LABEL``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from ..stores.base import Store
from .liveness import LIVE, Liveness

__all__ = ["AgentServer", "agent_reply", "liveness_reply", "run_agent"]

logger = logging.getLogger("spa_version")

#: The lowest weight reported while warming up: 0% would mean "drain" to HAProxy.
_MIN_WARM_WEIGHT = 10


def agent_reply(state: str, weight: int = 100) -> bytes:
    """The agent line for *state* (``live``, ``pending``, ``stale``) and a weight in percent."""
    if state == LIVE:
        return b"up ready %d%%\n" % max(_MIN_WARM_WEIGHT, min(100, weight))
    return b"drain\n"


def liveness_reply(
    liveness: Liveness,
    synced: Callable[[], bool],
    *,
    warmup: float = 0.0,
    started: float | None = None,
) -> Callable[[], bytes | None]:
    """A reply function for `AgentServer` that reads *liveness* (None until *synced*).

    A stale build still handing over says ``up ready`` (`Liveness.announced`).
    """
    began = time.monotonic() if started is None else started

    def reply() -> bytes | None:
        if not synced():
            return None
        weight = 100
        if warmup > 0:
            weight = int(100 * (time.monotonic() - began) / warmup)
        return agent_reply(liveness.announced(), weight)

    return reply


class AgentServer:
    """A TCP server on *host*:*port* that writes ``reply()`` to each connection and closes it."""

    def __init__(
        self, reply: Callable[[], bytes | None], *, host: str, port: int, shared: bool = True
    ) -> None:
        self.reply = reply
        self.host = host
        self.port = port
        self.shared = shared
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        """Listen. When *shared*, ``reuse_port`` lets every worker of one process group
        bind the same port: they all read the same store, so whichever answers says the
        same thing. Not shared, a port something else listens on is refused (``OSError``,
        "Address already in use"), so two builds never answer on one port by turns."""
        self._server = await asyncio.start_server(self._answer, self.host, self.port, reuse_port=self.shared)
        sockname = self._server.sockets[0].getsockname()
        self.port = int(sockname[1])
        logger.info("spa-version: agent-check responder on %s:%d", self.host, self.port)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            line = self.reply()
            if line is not None:
                writer.write(line)
            # HAProxy reads until the connection closes; a peer that never reads must
            # not hold us, hence the bound.
            writer.close()
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
        finally:
            self._writers.discard(writer)

    async def aclose(self) -> None:
        """Stop listening and drop connections still open."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 2.0)


async def run_agent(
    store: Store,
    build: str,
    *,
    port: int,
    host: str | None = None,
    warmup: float = 0.0,
    handover: float = 0.0,
) -> None:
    """``spa-version agent``: follow *store* and answer agent checks for *build* until cancelled.

    For apps that do not run the middleware's in-process agent (another language, or a
    server without lifespan): it reads the same store, so it says what the app would.
    """
    from ..current import CurrentVersion
    from ..listener import Listener
    from ..options import DeployOptions, environment
    from ..protocol import HEADER

    if host is None:  # the environment's, else the default (spa_version.options)
        host = environment().get("agent_host") or DeployOptions().agent_host
    current = CurrentVersion(HEADER)
    liveness = Liveness(build, current, handover=handover)
    listener = Listener(store, current)
    reply = liveness_reply(liveness, listener.synced.is_set, warmup=warmup)
    # One process per build: a port another agent holds is an operator's mistake (two
    # builds answering by turns would make HAProxy flap), refused here in one line.
    server = AgentServer(reply, host=host, port=port, shared=False)
    try:
        await server.start()
    except OSError as exc:
        raise OSError(
            exc.errno,
            f"cannot listen on {host}:{port} ({exc.strerror or exc}): is another agent there? "
            "Each build needs its own agent port (docs/deploy-haproxy.md)",
        ) from None
    print(f"spa-version agent for build {build} on {server.host}:{server.port}", flush=True)
    try:
        await listener.run()
    finally:
        await server.aclose()
        liveness.detach()
