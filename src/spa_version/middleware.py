"""`VersionMiddleware`: the pure ASGI middleware that stamps every response.

Per request it reads one in-memory snapshot (`spa_version.current`) and appends one
precomputed header tuple; it never waits on the store. A listener task per event loop
(`spa_version.listener`) keeps the snapshot fresh, and the process's deploy switch
(`spa_version.deploy.Deployment`) runs beside it. What the middleware answers itself,
and when, is decided in `spa_version.responses`, shared with the Django middleware:
this module is the ASGI adaptation.
"""

from __future__ import annotations

import logging
from asyncio import CancelledError, current_task
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from .asgi_scope import (
    CLIENT_QUERY_PARAM,
    accept_takes_headers,
    client_epoch,
    header,
    is_preflight,
    route_path,
)
from .asgi_types import ASGIApp, Message, Receive, Scope, Send
from .cors import asgi_cors_for_own
from .current import Snapshot
from .deploy.streams import EVENT_STREAM, Stream, is_event_stream
from .follower import Follower
from .host import Host
from .listener import Listener
from .options import OptionArgs, Options
from .pinning import PIN_HEADER, parse_pin
from .protocol import CLOSE_CODE_STALE_CLIENT
from .responses import (
    Answer,
    cut_off,
    outdated,
    refuse_handshake,
    send_answer,
    stamp_headers,
)
from .templating import ROOT_PATH_KEY

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["VersionMiddleware", "CLIENT_QUERY_PARAM"]

logger = logging.getLogger("spa_version")

PIN_HEADER_BYTES = PIN_HEADER.lower().encode("ascii")
#: The 17th byte of ``text/event-stream`` ("m"), lower and upper case, as ints.
_STREAM_M = (EVENT_STREAM[16], EVENT_STREAM[16] - 32)

# The lifespan messages after which the listener must not run on (ASGI lifespan spec).
_LIFESPAN_ENDS = frozenset(
    {"lifespan.startup.failed", "lifespan.shutdown.complete", "lifespan.shutdown.failed"}
)


def _no_stream(stream: Stream) -> None:
    """`Deployment.close_stream` where none is tracked (never called)."""


class VersionMiddleware:
    """Stamp the current deploy version on every HTTP response and websocket handshake.

    ::

        app = VersionMiddleware(app)                       # env or embedded file store
        app = VersionMiddleware(app, store="redis://localhost:6379/0", app_name="shop")
        app.add_middleware(VersionMiddleware)              # Starlette / FastAPI

    The keyword arguments are the fields of `spa_version.options.Options` and its
    `DeployOptions` (documented there); the environment fills what they leave out. Or
    pass *options*. A bad value raises `spa_version.options.InvalidOptions` (a
    ``ValueError``) here, never on a request. A process that declares its ``build`` runs
    the deploy switch (`spa_version.deploy.Deployment`; docs/deploy-haproxy.md).
    """

    def __init__(self, app: ASGIApp, *, options: Options | None = None, **kwargs: Unpack[OptionArgs]) -> None:
        opts = Options.from_kwargs(**kwargs) if options is None else options.replace(**kwargs)
        self._init(app, Host(opts))

    @classmethod
    def hosting(cls, app: ASGIApp, host: Host) -> VersionMiddleware:
        """The middleware around *app* serving *host* (`spa_version.host.Host`), which
        another host may share (Django's middleware behind `spa_version.django.asgi`)."""
        middleware = cls.__new__(cls)
        middleware._init(app, host)
        return middleware

    def _init(self, app: ASGIApp, host: Host) -> None:
        self.app = app
        #: This process's bundle: version, answers, deploy switch, follower (`spa_version.host`).
        self.host = host
        self.options = host.options
        self.current = host.current
        self.responses = host.responses
        self.deployment = host.deployment
        #: Following the store on the serving loop, from the first lifespan or request on.
        self.follower: Follower | None = None
        self.listener: Listener | None = None
        # What the request path reads, as plain attributes (no per-request lookups).
        self._count_request = self.deployment.count_request
        self._open_stream = self.deployment.open_stream
        self._close_stream = self.deployment.close_stream or _no_stream
        self._own_paths = host.own_paths
        self._expose = self.responses.expose
        self._merge_lengths = self.responses.merge_lengths
        self._client_header = self.responses.client_header

    @property
    def running(self) -> bool:
        """Whether the listener follows the store right now (from startup to shutdown)."""
        task = None if self.follower is None else self.follower.task
        return task is not None and not task.done()

    # -- the request path ------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope_type = scope["type"]
        if scope_type == "http":
            # The hot path: every check below is a local or attribute read; anything
            # that costs more runs only when its feature is in use.
            if self.follower is None:
                self._start()
            current = self.current
            # Lets the app render the same version, e.g. the Jinja2 meta tag
            # (spa_version.templating reads request.scope["spa_version"]).
            scope["spa_version"] = current  # templating.SCOPE_KEY, a constant here
            snapshot = current.snapshot
            path = scope["path"]
            root_path = scope.get("root_path")
            if root_path:  # mounted under a prefix: match relative to it
                path = route_path(path, root_path)
                # What the page must request: the prefix this middleware sits under
                # (routing further in may extend scope["root_path"]).
                scope[ROOT_PATH_KEY] = root_path
            if path in self._own_paths:
                await self._serve_own(scope, receive, send, path, snapshot)
                return
            if self._count_request is not None:
                self._count_request(scope["headers"])
                cutoff = self.deployment.cutoff_epoch
                if cutoff is not None and self._cut_off(scope, cutoff):
                    await self._send_own(scope, send, self.responses.stale(snapshot))
                    return
            minimum = snapshot.min_compatible
            if minimum is not None and self._refuses(scope, path, minimum):
                await self._send_own(scope, send, self.responses.stale(snapshot))
                return
            expose, merge_lengths = self._expose, self._merge_lengths
            open_stream = self._open_stream
            if open_stream is not None:
                # A build is declared: a response that is an event stream is tracked
                # for the drain from its start on (spa_version.deploy.streams). Any
                # other response costs one look at its start headers. A stream's
                # messages go to the server as the app sends them; once the drain has
                # ended it, the drain's cancellation of this task ends the app as if
                # it had returned.
                stream: Stream | None = None

                def send_tracked(message: Message) -> Awaitable[None]:
                    nonlocal stream
                    if stream is not None:
                        return stream.relay(message)
                    if message["type"] == "http.response.start":
                        headers = message.get("headers")
                        if headers.__class__ is not list:  # any iterable: read it once
                            headers = message["headers"] = [] if headers is None else list(headers)
                        # One pass for both: is it a stream, and does stamping need the
                        # slow path (send_stamped, below). Read before our own header.
                        merge = False
                        for key, value in headers:
                            size = len(key)
                            if size in merge_lengths:
                                merge = True
                            elif (
                                # Content-Type (12 bytes) whose 17th byte is the "m" of
                                # text/event-stream in either case: an int compare that rules
                                # out nearly every other media type without building a
                                # lowered copy (is_event_stream then checks in full).
                                size == 12
                                and len(value) > 16
                                and value[16] in _STREAM_M
                                and stream is None  # once, whatever the header repeats
                                and is_event_stream(headers)
                            ):
                                # The task that starts the response is the one the drain
                                # ends (spa_version.deploy.streams.Stream).
                                stream = open_stream(send, current_task())
                        snap = current.snapshot
                        stamp = snap.header
                        if stamp is not None:
                            # The same stamping as send_stamped, below.
                            if merge:
                                message["headers"] = [*stamp_headers(headers, stamp, expose), snap.timing]
                            else:
                                message["headers"] = [*headers, stamp, snap.timing]
                    return send(message)

                try:
                    await self.app(scope, receive, send_tracked)
                except CancelledError:
                    if stream is None or not stream.drain_cancelled():
                        raise
                finally:
                    if stream is not None:
                        self._close_stream(stream)
                return

            # A plain function that returns send's awaitable: the ASGI spec asks for an
            # awaitable callable, and this saves a coroutine of our own per message.
            def send_stamped(message: Message) -> Awaitable[None]:
                if message["type"] == "http.response.start":
                    # Read at response time: a bump that landed mid-request is served.
                    snap = current.snapshot
                    stamp = snap.header
                    if stamp is not None:
                        headers = message.get("headers")
                        # stamp_headers' common case, inlined: a list with no name as long
                        # as ours or ACAO's (Responses.merge_lengths) needs only the append.
                        # Server-Timing is a list: ours goes beside the app's own.
                        if headers.__class__ is list:
                            for key, _ in headers:
                                if len(key) in merge_lengths:
                                    break
                            else:
                                message["headers"] = [*headers, stamp, snap.timing]
                                return send(message)
                        message["headers"] = [*stamp_headers(headers, stamp, expose), snap.timing]
                return send(message)

            await self.app(scope, receive, send_stamped)
        elif scope_type == "websocket":
            if self.follower is None:
                self._start()
            await self._websocket(scope, receive, send)
        elif scope_type == "lifespan":
            await self._lifespan(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        snapshot = self.current.snapshot
        minimum = snapshot.min_compatible
        if minimum is not None and outdated(
            client_epoch(scope, self._client_header, websocket=True), minimum
        ):
            refusal = self.responses.stale(snapshot)
            await refuse_handshake(scope, receive, send, refusal, CLOSE_CODE_STALE_CLIENT)
            return
        stamp_accept = self.options.stamp_websocket
        if stamp_accept is None:
            stamp_accept = accept_takes_headers(scope)
        current = self.current

        async def send_stamped(message: Message) -> None:
            kind = message["type"]
            if (kind == "websocket.accept" and stamp_accept) or kind == "websocket.http.response.start":
                stamp = current.snapshot.header
                if stamp is not None:
                    message["headers"] = stamp_headers(message.get("headers"), stamp, None)
            await send(message)

        await self.deployment.serve_websocket(scope, receive, send_stamped, self.app, server_send=send)

    # -- what we answer ourselves (spa_version.responses) -----------------------

    def _cut_off(self, scope: Scope, cutoff_epoch: int) -> bool:
        """Whether this request reaches a build cut off by a security release and must be
        sent to reload (`spa_version.responses.cut_off`)."""
        pin = parse_pin(header(scope, PIN_HEADER_BYTES))
        return cut_off(client_epoch(scope, self._client_header), pin, cutoff_epoch)

    def _refuses(self, scope: Scope, path: str, minimum: int) -> bool:
        """Whether this request is enforced and comes from a stale client (docs/protocol.md)."""
        epoch = client_epoch(scope, self._client_header)
        return self.responses.enforces(scope["method"], path) and outdated(epoch, minimum)

    async def _serve_own(self, scope: Scope, receive: Receive, send: Send, path: str, snap: Snapshot) -> None:
        """The version endpoint or the script; a CORS preflight for them goes on to the app."""
        answer = None
        if not is_preflight(scope):
            answer = self.responses.own(path, scope["method"], header(scope, b"if-none-match"), snap)
        if answer is None:
            await self.app(scope, receive, send)
        else:
            await self._send_own(scope, send, answer)

    async def _send_own(self, scope: Scope, send: Send, answer: Answer) -> None:
        """Send our own *answer*, with the app's CORS decision for it (`spa_version.cors`)."""
        exposed, target = self.responses.own_cors(), self.responses.probe_path
        answer.headers.extend(await asgi_cors_for_own(self.app, scope, exposed, target))
        await send_answer(send, answer, head=scope["method"] == "HEAD")

    # -- the listener's life (spa_version.follower) ----------------------------

    def _start(self) -> bool:
        """Start following the store on this event loop (lazily, for servers without lifespan).

        False when the store could not be opened (`spa_version.host.Host.follow`: logged
        once, requests served without a new version); the next request tries again.
        """
        follower = self.host.follow()
        if follower is None:
            return False
        self.follower, self.listener = follower, follower.listener
        return True

    async def startup(self) -> None:
        """Start following the store and wait (up to ``startup_timeout``) for the first read."""
        if self.follower is None and not self._start():
            return
        assert self.follower is not None
        if not await self.follower.wait_synced(self.options.startup_timeout):
            logger.warning(
                "spa-version: store %s not read within %.1f s; serving without it for now",
                self.follower.store.display_url,
                self.options.startup_timeout,
            )

    async def shutdown(self) -> None:
        """Close the websockets left gently (bounded), remove the fleet record, stop the
        listener and close the store if we opened it."""
        if self.follower is not None:
            self.follower = None
            await self.host.unfollow()

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the app's lifespan through, starting the listener with it.

        Transparent (ASGI lifespan spec): every message and every exception of the app
        reaches the server unchanged. An app that refuses lifespan (raises, or returns
        without reading a message) refuses it for the server as well, which then says so
        ("lifespan unsupported" in uvicorn); the listener starts with the first request
        instead. Django's ``ASGIHandler`` refuses lifespan: `spa_version.django.asgi`
        speaks it on Django's behalf. The listener and heartbeat stop on
        ``lifespan.startup.failed``, on shutdown, and when the app's lifespan raises.
        """

        async def receive_wrapper() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
            return message

        async def send_wrapper(message: Message) -> None:
            if message["type"] in _LIFESPAN_ENDS:
                await self.shutdown()
            await send(message)

        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        except Exception:
            # The app's startup crashed (or its lifespan did later): stop what startup
            # started, then let the server see the exception as the app raised it.
            await self.shutdown()
            raise
