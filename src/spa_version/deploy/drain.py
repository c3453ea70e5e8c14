"""Websocket and stream drain: when this process's build goes stale, close its
long-lived connections gently.

HAProxy's ``drain`` keeps established websockets open forever, and uvicorn's shutdown
closes every socket with 1012 at the same instant, a reconnect stampede
(HAProxy docs, "drain"; uvicorn Server.shutdown). `WebsocketDrain` does the missing part:

- It tracks the process's open websockets: one set insertion at accept and one removal
  when the connection ends. Per message it checks one flag, nothing more.
- When the process becomes stale (`spa_version.deploy.liveness`), it waits ``grace`` seconds,
  then closes each socket with **1012** and the new release's header value as the reason
  (docs/protocol.md, "Websocket drain"), spread uniformly with jitter over ``window``
  seconds: socket *i* of *n* (in random order) closes at ``window * (i + U(0, 1)) / n``.
  Each close is its own task, started at its own moment whatever the others do.
  A server that refuses to send 1012 (Daphne: autobahn sends only 1000 and 3000-4999)
  gets **4012** with the same reason instead, from then on (docs/servers.md).
- A close the server did not send does not count: the socket stays tracked (and
  counted in ``spa-version status``) until its connection really ends.
- Each close has a time limit, ``close_timeout`` (``drain_close_timeout``, 1 s). A
  client that stops reading fills its TCP window and then the server's buffer, and
  the server's ``send`` blocks (uvicorn, Hypercorn, Granian). Past the limit the drain
  stops waiting and cancels that connection's handler, which `serve` turns into an
  ordinary return, so the server ends the connection its own way; where the server's
  ``send`` leads to an asyncio transport (uvicorn), that transport is aborted too
  (`transport_abort`). Such a socket counts as aborted (``aborted_count``), not
  closed (docs/protocol.md, "A client that stops reading"; docs/servers.md).
- The close is a real close frame sent through the server (``websocket.close``), so
  the client sees 1012 and the app's handler gets an ordinary ``websocket.disconnect``
  once the client answers. Anything the app sends after that raises `DrainedError`
  (an `OSError`, as the ASGI spec asks of sends on a closed connection).
- New handshakes at a stale process (once its handover is over, `Liveness.announced`)
  are refused with ``stale_status`` (default 503; by
  HTTP where the server supports the ``websocket.http.response`` extension, else a
  close before accept with 1013 Try Again Later), or accepted when it is None.
- `aclose` (lifespan shutdown) closes what is left the same way over
  ``shutdown_window`` seconds, and never takes longer than that plus ``close_timeout``.
- Server-sent event streams (`spa_version.deploy.streams`: responses of type
  ``text/event-stream``, tracked by `serve_http`) are drained on the same schedule, in
  the same spread as the websockets: each gets one last event carrying the new
  release's header value (`spa_version.protocol.stream_final_event`) as the end of its
  response, within ``close_timeout``; then the app's further sends are dropped and its
  handler is cancelled, which the middleware turns into an ordinary return
  (`spa_version.deploy.streams.Stream.drain_cancelled`). Past the time limit the
  stream is aborted like a websocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections.abc import Callable
from typing import Any

from ..asgi_types import ASGIApp, Message, Receive, Scope, Send
from ..current import CurrentVersion
from ..options import DeployOptions
from ..protocol import CLOSE_CODE_DRAIN, CLOSE_CODE_DRAIN_FALLBACK, close_reason
from ..release import Release
from ..responses import draining, refuse_handshake
from .liveness import LIVE, STALE, Liveness
from .streams import Stream

__all__ = ["CLOSE_CODE_TRY_AGAIN", "DrainedError", "WebsocketDrain", "spread_delays", "transport_abort"]

logger = logging.getLogger("spa_version")


# RFC 6455 §7.4.1 / IANA: 1013 "Try Again Later", for a handshake refused at a stale
# process by a server without the websocket.http.response extension.
CLOSE_CODE_TRY_AGAIN = 1013


class DrainedError(OSError):
    """The app sent on a websocket that the drain has closed already."""


def spread_delays(count: int, window: float, rng: random.Random | None = None) -> list[float]:
    """Close times (seconds from now) for *count* sockets, uniform with jitter over *window*.

    Stratified jitter: one random instant inside each of *count* equal slices, so the
    closes never bunch up (plain uniform sampling can), and never all fall at once.
    """
    uniform = (rng or random).random
    if count <= 0:
        return []
    step = window / count
    return [step * (i + uniform()) for i in range(count)]


def transport_abort(send: Send) -> Callable[[], object] | None:
    """The ``abort`` of the asyncio transport behind a server's ASGI ``send``, or None:
    not reachable.

    The ASGI spec gives an app no transport and no abort. uvicorn's websocket
    protocols (``websockets-sansio``, ``websockets``, ``wsproto``) hand the app a bound
    method of their asyncio protocol, which keeps its transport as ``transport``; that
    transport's ``abort`` ends the connection at once (asyncio docs,
    "BaseTransport.abort"), where ``close`` would wait forever for a buffer that a
    client that stopped reading never drains. Other servers give no such way in: the
    handler's cancellation is all the drain does there (docs/servers.md).
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    # Duck-typed: any transport that has an abort (asyncio's, uvloop's).
    abort = getattr(transport, "abort", None)
    return abort if callable(abort) else None


class _Socket:
    """One tracked websocket: the server's send, whether it was closed, and the task
    running its handler (cancelled by `WebsocketDrain._abort`)."""

    __slots__ = ("send", "closed", "task", "aborted", "server_send")

    def __init__(self, send: Send, task: asyncio.Task[Any] | None, server_send: Send) -> None:
        self.send = send
        self.closed = False
        self.task = task
        self.server_send = server_send
        #: Set when the drain cancelled the handler: that cancellation ends `serve` quietly.
        self.aborted = False


class WebsocketDrain:
    """Tracks this process's websockets and closes them gracefully once its build is stale.

    Timing and the refusal status come from *options* (``drain_grace``,
    ``drain_window``, ``drain_shutdown_window``, ``drain_stale_status``).
    """

    def __init__(self, liveness: Liveness, current: CurrentVersion, options: DeployOptions) -> None:
        self.liveness = liveness
        self.current = current
        self.grace = options.drain_grace
        self.window = options.drain_window
        self.shutdown_window = options.drain_shutdown_window
        self.close_timeout = options.drain_close_timeout
        self.stale_status = options.drain_stale_status
        self.sockets: set[_Socket] = set()
        #: The server-sent event streams open right now (`spa_version.deploy.streams`).
        self.streams: set[Stream] = set()
        #: How many sockets this drain closed (with 1012, or 4012 where the server
        #: refuses 1012), and streams it ended with their last event.
        self.closed_count = 0
        #: How many closes did not go out within ``close_timeout`` (clients that stopped
        #: reading), and had their handler cancelled instead.
        self.aborted_count = 0
        #: The close code the drain sends: 1012 until the server refuses it, then 4012.
        self.close_code = CLOSE_CODE_DRAIN
        #: Called (on the event loop) whenever the drain closes its last socket.
        self.on_empty: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._swept = False
        #: Set once the process is shutting down: new handshakes are refused.
        self.closing = False
        self._stragglers: set[asyncio.Future[None]] = set()
        liveness.add_callback(self._on_state)

    @property
    def open_count(self) -> int:
        """How many websockets of this process are open right now."""
        return len(self.sockets)

    @property
    def stream_count(self) -> int:
        """How many server-sent event streams of this process are open right now."""
        return len(self.streams)

    @property
    def started(self) -> bool:
        """Whether a drain has begun since the build last went stale (it may be over:
        see `swept`). False again once the build is live or the process shuts down."""
        return self._task is not None

    @property
    def swept(self) -> bool:
        """Whether the drain has been through every socket that was open after the grace
        (each closed, or still tracked where the server refused the close)."""
        return self._swept

    # -- the event loop's side -------------------------------------------------

    def attach(self) -> None:
        """Bind to the running event loop (lifespan startup or the first connection)."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self.closing = False
        if self.liveness.state == STALE:
            self._begin()

    def _on_state(self, old: str, new: str, release: Release | None) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # not serving yet: `attach` looks at the state when it is
        if threading.get_ident() == self._thread:
            self._react(new)
        else:
            loop.call_soon_threadsafe(self._react, new)

    def _react(self, state: str) -> None:
        if state == STALE:
            self._begin()
        elif state == LIVE and self._task is not None:
            # Rolled back to our build: keep the sockets that are still open.
            logger.info("spa-version: build is live again; drain stopped")
            self._task.cancel()
            self._task = None
            self._swept = False

    def _begin(self) -> None:
        if self._task is None or self._task.done():
            self._swept = False
            assert self._loop is not None
            self._task = self._loop.create_task(self._drain(), name="spa-version drain")

    def cut_off(self) -> None:
        """A security cutoff (docs/protocol.md, "Security fixes"): close every socket and
        end every stream now, with no grace and no spread. On the event loop."""
        if self._loop is None:
            return
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        logger.info(
            "spa-version: cut off; closing %d websocket(s) and %d stream(s) now",
            len(self.sockets),
            len(self.streams),
        )
        self._swept = False
        self._task = self._loop.create_task(self._sweep_now(), name="spa-version cutoff")

    async def _sweep_now(self) -> None:
        await self._close_spread(0.0)
        self._swept = True

    async def _drain(self) -> None:
        logger.info(
            "spa-version: build stale; closing %d websocket(s) and %d stream(s) over %.1f s "
            "after a %.1f s grace",
            len(self.sockets),
            len(self.streams),
            self.window,
            self.grace,
        )
        await asyncio.sleep(self.grace)
        await self._close_spread(self.window)
        self._swept = True

    async def _close_spread(self, window: float) -> None:
        """Close every tracked socket, socket *i* of *n* at its own moment of *window*.

        At each moment the close starts as a task of its own and the schedule moves on:
        no close waits for another, and each is bounded by ``close_timeout`` (`_close`),
        so a client that stops reading holds up its own close and nothing else.
        """
        assert self._loop is not None
        loop = self._loop
        victims: list[_Socket | Stream] = [*self.sockets, *self.streams]
        random.shuffle(victims)
        aborted = self.aborted_count
        closes: list[asyncio.Task[None]] = []
        try:
            start = loop.time()
            for sock, delay in zip(victims, spread_delays(len(victims), window), strict=True):
                wait = start + delay - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                closes.append(loop.create_task(self._close(sock), name="spa-version drain close"))
            if closes:
                await asyncio.wait(closes)
            # Handshakes that completed meanwhile (stale_status=None, or one in flight).
            # Handshakes and streams that began meanwhile.
            opened: list[_Socket | Stream] = [*self.sockets, *self.streams]
            late = [loop.create_task(self._close(sock)) for sock in opened if not sock.closed]
            closes += late
            if late:
                await asyncio.wait(late)
        finally:
            # Cancelled (a rollback, the shutdown's bound): the closes under way stop, and
            # mark their sockets open again before the next drain looks at them.
            for task in closes:
                task.cancel()
            if closes:
                await asyncio.wait(closes)
        if self.aborted_count > aborted:
            logger.warning(
                "spa-version: %d websocket(s) or stream(s) did not take the drain's close within %.1f s "
                "(clients that stopped reading); their handlers were cancelled",
                self.aborted_count - aborted,
                self.close_timeout,
            )

    async def _close(self, sock: _Socket | Stream) -> None:
        """Send *sock* the drain's close, within ``close_timeout``; past it, `_abort`."""
        if sock.closed:
            return
        if isinstance(sock, Stream):
            await self._end_stream(sock)
            return
        # From here on the app's own sends raise DrainedError (see `serve`).
        sock.closed = True
        release = self.current.release
        reason = "" if release is None else close_reason(release)
        try:
            # The server's send blocks while its buffer for a client that stopped reading
            # is full (uvicorn, Hypercorn): the time limit is what keeps the drain going.
            sent = await asyncio.wait_for(self._send_close(sock, reason), self.close_timeout)
        except TimeoutError:
            self._abort(sock)
            return
        except BaseException:
            sock.closed = False  # cancelled (rollback, shutdown): not closed
            raise
        if not sent:
            # Not closed (the client left at the same moment, or the server refused):
            # the socket stays tracked until its connection really ends.
            sock.closed = False
            return
        self.closed_count += 1
        self.sockets.discard(sock)
        self._emptied()

    def _emptied(self) -> None:
        if not self.sockets and not self.streams and self.on_empty is not None:
            self.on_empty()

    async def _end_stream(self, stream: Stream) -> None:
        """Send *stream* its last event, within ``close_timeout``, then end its handler.

        Past the time limit (a client that stopped reading), `_abort` instead. A send
        that fails (the client left at that moment) ends the handler all the same: the
        response is over either way, and the app's further sends are dropped.
        """
        # From here on the app's own sends are dropped (`Stream.relay`).
        stream.closed = True
        # No release yet (the unreleased value stamped, or nothing): no news to announce.
        snapshot = self.current.snapshot
        value = b"" if snapshot.header is None or snapshot.release is None else snapshot.header[1]
        try:
            await asyncio.wait_for(stream.send_final(value), self.close_timeout)
        except TimeoutError:
            self._abort(stream)
        except Exception as exc:
            logger.debug("spa-version: a stream's last event failed: %r", exc)
        else:
            self.closed_count += 1
        finally:
            # Also when cancelled mid-send (a rollback, the shutdown's bound): the end of
            # the response may be out, so the stream cannot go on.
            if not stream.aborted:
                stream.ended_by_drain = True
                if stream.task is not None and not stream.task.done():
                    # The handler ends as an app that is done (`Stream.drain_cancelled`); the stream
                    # stays tracked until it has.
                    stream.task.cancel()

    async def _send_close(self, sock: _Socket, reason: str) -> bool:
        """Send the close frame (1012, or 4012 where refused); whether the server took it."""
        code = self.close_code
        try:
            await sock.send({"type": "websocket.close", "code": code, "reason": reason})
        except Exception as exc:
            if code == CLOSE_CODE_DRAIN and await self._close_with_fallback(sock, reason, exc):
                return True
            logger.debug("spa-version: drain close failed: %r", exc)
            return False
        return True

    def _abort(self, sock: _Socket | Stream) -> None:
        """The close did not go out within ``close_timeout``: the client stopped reading.

        The ASGI spec has no abort, so the drain ends the connection the one way every
        server honours: it cancels the connection's handler (`serve` then returns, as an
        app that is done does), and the server ends the transport (docs/servers.md says
        how each one does). The drain does not wait for that: the socket stays tracked
        until its handler has really ended.
        """
        self.aborted_count += 1
        sock.aborted = True
        if sock.task is not None and not sock.task.done():
            sock.task.cancel()
        abort = transport_abort(sock.server_send)
        if abort is not None:
            # Closing would wait for the buffer to drain, which the client never lets happen.
            abort()

    async def _close_with_fallback(self, sock: _Socket, reason: str, refused: Exception) -> bool:
        """Retry a refused 1012 with 4012 (same reason); keep 4012 if the server takes it."""
        try:
            await sock.send({"type": "websocket.close", "code": CLOSE_CODE_DRAIN_FALLBACK, "reason": reason})
        except Exception:
            return False
        if self.close_code != CLOSE_CODE_DRAIN_FALLBACK:
            self.close_code = CLOSE_CODE_DRAIN_FALLBACK
            logger.info(
                "spa-version: the server refused close code %d (%s); the drain closes with %d instead",
                CLOSE_CODE_DRAIN,
                refused,
                CLOSE_CODE_DRAIN_FALLBACK,
            )
        return True

    def _close_later(self, sock: _Socket | Stream) -> None:
        task = asyncio.ensure_future(self._close(sock))
        # Keep a reference until it is done, or the task could be garbage collected.
        self._stragglers.add(task)
        task.add_done_callback(self._stragglers.discard)

    async def aclose(self) -> None:
        """Stop draining, and close the sockets still open over ``shutdown_window`` (bounded)."""
        # The liveness keeps following the version: a later lifespan reuses this drain.
        await self.close_remaining()

    async def close_remaining(self) -> None:
        """The process is going away: refuse new handshakes, close every open socket with
        1012 spread over ``shutdown_window``, and return within that window plus
        ``close_timeout`` (the time limit of the last close)."""
        self.closing = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if (self.sockets or self.streams) and self._loop is not None:
            logger.info(
                "spa-version: shutting down; closing %d websocket(s) and %d stream(s) over %.1f s",
                len(self.sockets),
                len(self.streams),
                self.shutdown_window,
            )
            # Each close has its own time limit; this one bounds the whole, in-flight
            # handshakes closed after the spread included.
            try:
                await asyncio.wait_for(
                    self._close_spread(self.shutdown_window), self.shutdown_window + self.close_timeout
                )
            except TimeoutError:
                logger.warning(
                    "spa-version: %d websocket(s) and %d stream(s) did not close in time",
                    len(self.sockets),
                    len(self.streams),
                )

    # -- one websocket connection ----------------------------------------------

    async def serve(
        self, scope: Scope, receive: Receive, send: Send, app: ASGIApp, *, server_send: Send | None = None
    ) -> None:
        """Run *app* for one websocket connection, tracked so that the drain can close it.

        *server_send* is the server's own ``send`` when *send* wraps it (the middleware's
        stamping): where it belongs to an asyncio protocol, a close past its time limit
        aborts that protocol's transport (`transport_abort`).
        """
        if self._loop is None:
            self.attach()
        if self.stale_status is not None and (self.closing or self.liveness.announced() == STALE):
            await refuse_handshake(scope, receive, send, draining(self.stale_status), CLOSE_CODE_TRY_AGAIN)
            return
        sock = _Socket(send, asyncio.current_task(), send if server_send is None else server_send)

        async def tracked_send(message: Message) -> None:
            if sock.closed:
                # The drain closed this socket: the close frame is out, the client's
                # answer will reach the app as websocket.disconnect.
                if message["type"] == "websocket.close":
                    return
                raise DrainedError("the websocket was closed by the spa-version drain")
            if message["type"] == "websocket.close":
                sock.closed = True
                self.sockets.discard(sock)
            await send(message)
            if message["type"] == "websocket.accept":
                self.sockets.add(sock)
                if self._swept and self.liveness.state == STALE:
                    # Accepted after the drain swept (stale_status=None): same grace.
                    assert self._loop is not None
                    self._loop.call_later(self.grace, self._close_later, sock)

        try:
            await app(scope, receive, tracked_send)
        except asyncio.CancelledError:
            if not sock.aborted or sock.task is None:
                raise
            # The drain's own cancellation (`_abort`): the handler is over, and returning
            # as a finished app does lets the server end the connection without logging
            # an error. Python 3.11+ counts cancellations: a second one (the server's own
            # shutdown) still propagates.
            uncancel = getattr(sock.task, "uncancel", None)
            if uncancel is not None and uncancel() > 0:
                raise
        finally:
            if sock in self.sockets:
                self.sockets.discard(sock)
                if self.liveness.state == STALE:
                    self._emptied()

    # -- event streams (the middleware's request path) ------------------------------

    def open_stream(self, send: Send, task: asyncio.Task[Any] | None) -> Stream:
        """Track the event stream a response just started (its ``http.response.start``
        declared ``text/event-stream``: `spa_version.deploy.streams.is_event_stream`).

        *send* is the server's own ``send`` (the stream's body goes out through it, and
        a send past its time limit aborts its transport: `transport_abort`); *task* runs
        the request's handler (the drain ends it: `Stream.drain_cancelled`). The caller
        passes the app's further messages through `Stream.relay` and calls
        `close_stream` when the handler is over.
        """
        if self._loop is None:
            self.attach()
        stream = Stream(send, task, send)
        self._track(stream)
        return stream

    def close_stream(self, stream: Stream) -> None:
        """The handler of *stream* is over: stop tracking it."""
        if stream in self.streams:
            self.streams.discard(stream)
            if self.liveness.state == STALE or self.closing:
                self._emptied()

    def _track(self, stream: Stream) -> None:
        self.streams.add(stream)
        if self.closing:
            # Opened while shutting down, after the last spread looked: end it now.
            self._close_later(stream)
        elif self._swept and self.liveness.state == STALE:
            # Opened after the drain swept: the same grace as a late websocket.
            assert self._loop is not None
            self._loop.call_later(self.grace, self._close_later, stream)
