"""`VersionMiddleware`: the pure ASGI middleware that stamps every response.

Per request it reads one in-memory snapshot (`spa_version.current`) and appends one
precomputed header tuple; it never waits on the store. A listener task per event loop
(`spa_version.listener`) keeps the snapshot fresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .asgi_types import ASGIApp, Message, Receive, Scope, Send
from .assets import load_script
from .cors import PROBE_TIMEOUT, copied_headers, is_cross_origin, merge_expose, probe_headers
from .current import CurrentVersion, Snapshot
from .deploy import Deployment
from .listener import Listener
from .options import OptionArgs, Options
from .protocol import (
    CLOSE_CODE_STALE_CLIENT,
    DEFAULT_ENDPOINT,
    RELOAD_HEADER,
    parse_client_epoch,
    parse_client_query,
)
from .stores import Store
from .templating import ROOT_PATH_KEY

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["VersionMiddleware", "CLIENT_QUERY_PARAM", "route_path"]

logger = logging.getLogger("spa_version")

Header = tuple[bytes, bytes]

#: Browsers cannot set headers on a websocket handshake, so a client may send its
#: epoch as this query parameter instead (docs/protocol.md).
CLIENT_QUERY_PARAM = "spa-client-version"
_CLIENT_QUERY_PARAM = CLIENT_QUERY_PARAM.encode("ascii")

_ACAO = b"access-control-allow-origin"
_ACEH = b"access-control-expose-headers"
_ACAO_LENGTH = len(_ACAO)
# The lifespan messages after which the listener must not run on (ASGI lifespan spec).
_LIFESPAN_ENDS = frozenset(
    {"lifespan.startup.failed", "lifespan.shutdown.complete", "lifespan.shutdown.failed"}
)


def route_path(path: str, root_path: str) -> str:
    """*path* relative to *root_path*, the prefix an ASGI app is mounted at.

    The ASGI spec (HTTP connection scope) has ``path`` include ``root_path``, and uvicorn
    does so since 0.26 (``--root-path``), as Starlette's ``Mount`` does; older servers and
    frameworks passed the path with the prefix already removed. Both are handled like
    Starlette's own routing (``starlette._utils.get_route_path``): the prefix is removed
    only where *path* starts with it at a segment boundary, and any other *path* is taken
    as relative already. ``/api`` under ``/api`` is the mount's root, ``/``.
    """
    if root_path[-1] == "/":  # "/api/" names the same mount as "/api"
        root_path = root_path.rstrip("/")
    if path.startswith(root_path):
        size = len(root_path)
        if len(path) == size:
            return "/"
        if path[size] == "/":
            return path[size:]
    return path


def _for_cors_layer(scope: Scope) -> bool:
    """Whether a request for the endpoint or the script is a CORS preflight (Fetch standard).

    A browser's preflight, or our own question to the app's CORS layer (`spa_version.cors`),
    is for the app's CORS layer to answer, not for us.
    """
    if scope["method"] != "OPTIONS":
        return False
    return any(key == b"access-control-request-method" for key, _ in scope["headers"])


def _spec_allows_accept_headers(scope: Scope) -> bool:
    # "If a server tells you it only supports version 2.0 of this spec, then sending
    # headers with a WebSocket Accept message is an error" (ASGI spec 2.1); a missing
    # spec_version means 2.0.
    version = scope.get("asgi", {}).get("spec_version", "2.0")
    try:
        major, minor = (int(part) for part in str(version).split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (2, 1)


def _replace_header(
    headers: Iterable[Header] | None, header: Header, expose: tuple[str, ...] | None
) -> list[Header]:
    """*headers* with *header* set (replaced, never duplicated).

    If *expose* (header names) is given and the response carries
    ``Access-Control-Allow-Origin``, the names are merged into
    ``Access-Control-Expose-Headers`` too, or a browser page on another origin could not
    read them (Fetch standard, CORS-safelisted response headers; `spa_version.cors`).
    """
    if type(headers) is not list:  # (cheaper than isinstance on the hot path)
        if headers is None:
            return [header]
        headers = list(headers)  # any iterable is allowed; we read it twice
    # Fast path, run on every response. ASGI asks for lowercase names, but Django's
    # ASGIHandler sends them as written ("X-SPA-Version"), so compare lengths first and
    # .lower() only a name of our length; the slow path runs only for a real match or a
    # CORS response. (Common 13-byte names such as cache-control, last-modified or
    # accept-ranges took the slow path before: ~0.45 µs per response, docs/benchmarks.md.)
    name = header[0]
    size = len(name)
    for pair in headers:
        key = pair[0]
        length = len(key)
        if length == size:
            if key == name or key.lower() == name:
                return _merge_header(headers, header, expose)
        elif length == _ACAO_LENGTH:
            return _merge_header(headers, header, expose)
    return [*headers, header]


def _merge_header(headers: Iterable[Header], header: Header, expose: tuple[str, ...] | None) -> list[Header]:
    # The slow path: compare case-insensitively, for apps that break the lowercase rule.
    name = header[0]
    out: list[Header] = []
    cors = False
    expose_at = -1
    for pair in headers:
        key = pair[0].lower()
        if key == name:
            continue
        if key == _ACAO:
            cors = True
        elif key == _ACEH:
            expose_at = len(out)
        out.append(pair)
    out.append(header)
    if cors and expose is not None:
        if expose_at < 0:
            out.append((_ACEH, ", ".join(expose).encode("ascii")))
        else:
            key, value = out[expose_at]
            out[expose_at] = (key, merge_expose(value.decode("latin-1"), expose).encode("latin-1"))
    return out


class VersionMiddleware:
    """Stamp the current deploy version on every HTTP response and websocket handshake.

    ::

        app = VersionMiddleware(app)                       # env or embedded file store
        app = VersionMiddleware(app, store="redis://localhost:6379/0", app_name="shop")
        app.add_middleware(VersionMiddleware)              # Starlette / FastAPI

    The keyword arguments are the options of `spa_version.options.Options` and its
    `DeployOptions` part (all documented there); the environment fills what they leave
    out (``SPA_VERSION_URL``, ``SPA_VERSION_APP``, ``SPA_VERSION_BUILD``, ...). Or pass
    *options* built already. A bad value raises `spa_version.options.InvalidOptions` (a
    ``ValueError``) here, never on a request.

    Every process heartbeats to the fleet that ``spa-version status`` reads, and one that
    declares its ``build`` runs the deploy switch (`spa_version.deploy.Deployment`;
    docs/deploy-haproxy.md).
    """

    def __init__(self, app: ASGIApp, *, options: Options | None = None, **kwargs: Unpack[OptionArgs]) -> None:
        self.app = app
        self.options = opts = Options.from_kwargs(**kwargs) if options is None else options.replace(**kwargs)
        self._owns_store = not isinstance(opts.store, Store)
        self.store = opts.open_store()
        self.current = CurrentVersion(opts.header_name)
        if opts.fallback is not None:
            self.current.offer_fallback(opts.fallback)
        self.deployment = Deployment(self.current, opts.deploy, client_header=opts.client_header)
        self.listener: Listener | None = None
        self._task: asyncio.Task[None] | None = None
        # What the request path reads, as plain attributes (no per-request lookups).
        self._count_request = self.deployment.count_request
        self._client_header = opts.client_header.lower().encode("ascii")
        self._endpoint = opts.endpoint
        self._script_path = opts.script_path
        self._stamp_websocket = opts.stamp_websocket
        # Exposed together: a page that can read the version can read the reload instruction.
        self._expose = (opts.header_name, RELOAD_HEADER) if opts.expose_header else None
        self._enforce_all = opts.enforce_methods is None
        self._enforce_methods = opts.enforce_methods or frozenset()
        self._enforce_paths = opts.enforce_paths
        self._enforce_exclude = opts.enforce_exclude
        self._reload = (RELOAD_HEADER.lower().encode("ascii"), opts.reload_location.encode("ascii"))

    # -- the request path ------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope_type = scope["type"]
        if scope_type == "http":
            # The hot path: every check below is a local or attribute read; anything
            # that costs more runs only when its feature is in use.
            if self._task is None:
                self._start()
            current = self.current
            # Lets the app render the same version, e.g. the Jinja2 meta tag
            # (spa_version.templating reads request.scope["spa_version"]). Issue #4.
            scope["spa_version"] = current
            snapshot = current.snapshot
            path = scope["path"]
            root_path = scope.get("root_path")
            if root_path:  # mounted under a prefix: match relative to it
                path = route_path(path, root_path)
                # What the page must request: the prefix this middleware sits under
                # (routing further in may extend scope["root_path"]).
                scope[ROOT_PATH_KEY] = root_path
            if path == self._endpoint:
                await self._serve_endpoint(scope, receive, send, snapshot)
                return
            if path == self._script_path:
                await self._serve_script(scope, receive, send, snapshot)
                return
            if self._count_request is not None:
                self._count_request(scope["headers"])
            minimum = snapshot.min_compatible
            if minimum is not None and self._is_stale_http(scope, path, minimum):
                await self._reject_http(scope, send, snapshot)
                return
            expose = self._expose

            async def send_stamped(message: Message) -> None:
                if message["type"] == "http.response.start":
                    # Read at response time: a bump that landed mid-request is served.
                    header = current.snapshot.header
                    if header is not None:
                        message["headers"] = _replace_header(message.get("headers"), header, expose)
                await send(message)

            await self.app(scope, receive, send_stamped)
        elif scope_type == "websocket":
            if self._task is None:
                self._start()
            await self._websocket(scope, receive, send)
        elif scope_type == "lifespan":
            await self._lifespan(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    # -- websockets ------------------------------------------------------------

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        snapshot = self.current.snapshot
        if snapshot.min_compatible is not None:
            client = self._client_epoch_ws(scope)
            if client is not None and client < snapshot.min_compatible:
                await self._reject_websocket(scope, receive, send, snapshot)
                return
        stamp_accept = self._stamp_websocket
        if stamp_accept is None:
            stamp_accept = _spec_allows_accept_headers(scope)
        current = self.current

        async def send_stamped(message: Message) -> None:
            kind = message["type"]
            if (kind == "websocket.accept" and stamp_accept) or kind == "websocket.http.response.start":
                header = current.snapshot.header
                if header is not None:
                    message["headers"] = _replace_header(message.get("headers"), header, None)
            await send(message)

        await self.deployment.serve_websocket(scope, receive, send_stamped, self.app)

    # -- stale-client enforcement (docs/protocol.md) ------------------

    def _is_stale_http(self, scope: Scope, path: str, min_compatible: int) -> bool:
        if not self._enforce_all and scope["method"] not in self._enforce_methods:
            return False
        if not path.startswith(self._enforce_paths) or (
            self._enforce_exclude and path.startswith(self._enforce_exclude)
        ):
            return False
        client = self._client_epoch_headers(scope)
        # A missing or malformed header (curl, other services) is never rejected.
        return client is not None and client < min_compatible

    def _client_epoch_headers(self, scope: Scope) -> int | None:
        # Repeated field lines are one comma-separated list (RFC 9110 §5.3): the highest
        # valid epoch over all of them counts, as within one value (docs/protocol.md).
        wanted = self._client_header
        best: int | None = None
        for key, value in scope["headers"]:
            if key == wanted:
                client = parse_client_epoch(value)
                if client is not None and (best is None or client > best):
                    best = client
        return best

    def _client_epoch_ws(self, scope: Scope) -> int | None:
        header = self._client_epoch_headers(scope)
        query = parse_client_query(scope.get("query_string", b""), _CLIENT_QUERY_PARAM)
        if header is None or query is None:
            return query if header is None else header
        return max(header, query)

    def _stale_response(self, snapshot: Snapshot) -> tuple[list[Header], bytes]:
        body = b'{"error":"stale-client","reload":true,"current":' + snapshot.body + b"}"
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode("ascii")),
            (b"cache-control", b"no-store"),
            self._reload,
        ]
        if snapshot.header is not None:
            headers.append(snapshot.header)
        return headers, body

    async def _reject_http(self, scope: Scope, send: Send, snapshot: Snapshot) -> None:
        headers, body = self._stale_response(snapshot)
        headers += await self._cors_for_own(scope)
        await send({"type": "http.response.start", "status": 409, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _reject_websocket(self, scope: Scope, receive: Receive, send: Send, snapshot: Snapshot) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":  # the client left already
            return
        if "websocket.http.response" in scope.get("extensions", {}):
            headers, body = self._stale_response(snapshot)
            await send({"type": "websocket.http.response.start", "status": 409, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": CLOSE_CODE_STALE_CLIENT})

    # -- the version endpoint --------------------------------------------------

    async def _serve_endpoint(self, scope: Scope, receive: Receive, send: Send, snapshot: Snapshot) -> None:
        if _for_cors_layer(scope):
            await self.app(scope, receive, send)
            return
        headers: list[Header] = [(b"cache-control", b"no-store")]
        if scope["method"] not in ("GET", "HEAD"):
            status, body = 405, b""
            headers.append((b"allow", b"GET, HEAD"))
        else:
            status, body = 200, snapshot.body
            headers.append((b"content-type", b"application/json"))
        headers.append((b"content-length", str(len(body)).encode("ascii")))
        if snapshot.header is not None:
            headers.append(snapshot.header)
        headers += await self._cors_for_own(scope)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

    async def _serve_script(self, scope: Scope, receive: Receive, send: Send, snapshot: Snapshot) -> None:
        asset = load_script()
        # A source checkout whose JS was never built: let the app 404. And our own CORS
        # question goes on to the app's CORS layer.
        if asset is None or _for_cors_layer(scope):
            await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            status, body, headers = 405, b"", [(b"allow", b"GET, HEAD")]
        elif any(k == b"if-none-match" and asset.etag in v for k, v in scope["headers"]):
            status, body, headers = 304, b"", [asset.headers[1], asset.headers[2]]
        else:
            status, body, headers = 200, asset.body, list(asset.headers)
        if status != 304:
            headers.append((b"content-length", str(len(body)).encode("ascii")))
        if snapshot.header is not None:
            headers.append(snapshot.header)
        headers += await self._cors_for_own(scope)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

    # -- CORS for our own responses (spa_version.cors) ---------------------------

    async def _cors_for_own(self, scope: Scope) -> list[Header]:
        """The CORS headers of a response we make ourselves (409, endpoint, script)."""
        origin = host = None
        for key, value in scope["headers"]:
            if key == b"origin":
                origin = value.decode("latin-1")
            elif key == b"host":
                host = value.decode("latin-1")
        if origin is None:  # not a CORS request: nothing to add
            return []
        out: list[Header] = []
        if self._expose is not None:
            out.append((_ACEH, ", ".join(self._expose).encode("ascii")))
        if is_cross_origin(origin, scope.get("scheme", "http"), host):
            out += await self._ask_app_cors(scope, origin, host)
        return out

    async def _ask_app_cors(self, scope: Scope, origin: str, host: str | None) -> list[Header]:
        """Ask the app's CORS layer for its decision: a preflight for the version endpoint.

        A CORS layer inside us answers preflights itself, without calling a view; the
        answer's origin decision is copied (`spa_version.cors`). The version endpoint's
        path, never the request's own, so no view of the app ever gets this request.
        """
        target = self._endpoint or self._script_path or DEFAULT_ENDPOINT
        path: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        if root_path and path.startswith(root_path):  # the same form the request came in
            target = root_path.rstrip("/") + target
        asked = probe_headers(origin, scope["method"], host)
        probe: Scope = {
            **scope,
            "method": "OPTIONS",
            "path": target,
            "raw_path": target.encode("utf-8"),
            "query_string": b"",
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in asked],
        }
        answer: list[Message] = []
        body_sent = False

        async def probe_receive() -> Message:
            nonlocal body_sent
            if body_sent:
                return {"type": "http.disconnect"}
            body_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}

        async def probe_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer.append(message)

        try:
            await asyncio.wait_for(self.app(probe, probe_receive, probe_send), PROBE_TIMEOUT)
        except Exception:  # the client never sent this request: its failure is not the client's
            logger.debug("spa-version: the CORS preflight for our own response failed", exc_info=True)
        if not answer:
            return []
        start = answer[0]
        pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", [])]
        return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in copied_headers(start["status"], pairs)]

    # -- the listener's life ---------------------------------------------------

    def _start(self) -> None:
        """Start this event loop's listener (lazily, for servers without lifespan)."""
        if self._owns_store and self.listener is not None:
            # A previous lifespan closed the old store: open a fresh one.
            self.store = self.options.open_store()
        self.listener = Listener(
            self.store,
            self.current,
            resync_interval=self.options.resync_interval,
            backoff_cap=self.options.reconnect_max_delay,
        )
        self._task = asyncio.get_running_loop().create_task(self.listener.run(), name="spa-version listener")
        self.deployment.start(self.store, self.listener.synced.is_set)

    async def startup(self) -> None:
        """Start the listener and wait (up to ``startup_timeout``) for the first read."""
        if self._task is None:
            self._start()
        assert self.listener is not None
        try:
            await asyncio.wait_for(self.listener.synced.wait(), self.options.startup_timeout)
        except asyncio.TimeoutError:
            logger.warning(
                "spa-version: store %s not read within %.1f s; serving without it for now",
                self.store.display_url,
                self.options.startup_timeout,
            )

    async def shutdown(self) -> None:
        """Cancel and await the listener, and close the store if we opened it."""
        # Close the websockets left gently (bounded) and remove the fleet record while
        # the store is still open.
        await self.deployment.stop()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._owns_store:
            try:
                await self.store.aclose()
            except Exception:  # pragma: no cover - closing is best effort
                logger.exception("spa-version: closing the store failed")

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
            if self._task is not None:
                await self.shutdown()
            raise
