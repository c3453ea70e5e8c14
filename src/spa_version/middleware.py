"""`VersionMiddleware`: the pure ASGI middleware that stamps every response.

Per request it reads one in-memory snapshot (`spa_version.current`) and appends one
precomputed header tuple; it never waits on the store. A listener task per event loop
(`spa_version.listener`) keeps the snapshot fresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Iterable

from .asgi_types import ASGIApp, Message, Receive, Scope, Send
from .assets import DEFAULT_SCRIPT_PATH, load_script
from .cors import PROBE_TIMEOUT, copied_headers, is_cross_origin, merge_expose, probe_headers
from .current import CurrentVersion, Snapshot
from .deploy import DeploySwitch
from .fleet import FleetReporter
from .listener import Listener
from .liveness import resolve_build
from .pinning import PinCounter, counting, resolve_slot
from .protocol import (
    CLIENT_HEADER,
    CLOSE_CODE_STALE_CLIENT,
    DEFAULT_ENDPOINT,
    HEADER,
    RELOAD_HEADER,
    parse_client_epoch,
    parse_client_query,
    parse_header,
)
from .release import Release
from .stores import Store, open_store
from .templating import ROOT_PATH_KEY

__all__ = ["VersionMiddleware", "CLIENT_QUERY_PARAM", "route_path"]

logger = logging.getLogger("spa_version")

Header = tuple[bytes, bytes]

#: Browsers cannot set headers on a websocket handshake, so a client may send its
#: epoch as this query parameter instead (docs/protocol.md).
CLIENT_QUERY_PARAM = "spa-client-version"
_CLIENT_QUERY_PARAM = CLIENT_QUERY_PARAM.encode("ascii")

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# RFC 9110 §5.6.2 token.
_TOKEN_RE = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
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


def _validate_header_name(name: str) -> str:
    if not _TOKEN_RE.fullmatch(name):
        raise ValueError(f"invalid header name {name!r}")
    return name


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

    Options (all keyword-only):

    - ``store``: a URL (``redis://``, ``rediss://``, ``file://DIR``, ``memory://``) or a
      `Store`. Default: ``SPA_VERSION_URL``, else the embedded ``file://.spa-version``.
    - ``app_name``: the namespace in the store. Default ``SPA_VERSION_APP``, else
      ``"default"``.
    - ``header_name``: the response header (default ``X-SPA-Version``).
    - ``client_header``: the request header carrying the client's epoch.
    - ``endpoint``: path of the JSON version endpoint (default ``/__spa-version``);
      None turns it off.
    - ``script_path``: path serving the JS helper's script-tag build (default
      ``/__spa-version.js``); None turns it off.

      These two and ``enforce_paths`` / ``enforce_exclude`` are relative to where the app
      is mounted: the ASGI ``root_path`` (`route_path`; docs/fastapi.md, "Mount prefixes").
    - ``stamp_websocket``: stamp ``websocket.accept``. None (default) decides per
      connection from the server's ``asgi.spec_version`` (>= 2.1); True/False force it.
    - ``expose_header``: merge the header name and ``X-SPA-Reload`` into
      ``Access-Control-Expose-Headers`` on CORS responses (default True). The responses
      the middleware makes itself carry the app's CORS decision in either middleware
      order (`spa_version.cors`); outermost is the recommended place.
    - ``fallback``: a header value (``"1; label=boot"``) to stamp until the store has
      been read; default None stamps nothing until then.
    - ``enforce_methods``: methods checked against ``min_compatible`` (default the
      unsafe ones); ``"*"`` for all.
    - ``enforce_paths`` / ``enforce_exclude``: path prefixes to check / to skip.
    - ``reload_location``: the ``X-SPA-Reload`` value sent with a 409 (default ``*``,
      "reload the current page").
    - ``resync_interval``: seconds between full re-reads of the store (default 30), the
      backstop for pub/sub messages lost while disconnected.
    - ``reconnect_max_delay``: cap of the full-jitter backoff between reconnects (30 s).
    - ``startup_timeout``: how long lifespan startup waits for the first read before
      serving anyway (default 2 s). The store being down never fails startup.

    The deploy switch (docs/deploy-haproxy.md) runs only when the process declares its
    build, ``build=`` or ``SPA_VERSION_BUILD`` (the label it was deployed with):

    - ``agent_port`` (env ``SPA_VERSION_AGENT_PORT``) / ``agent_host`` (env
      ``SPA_VERSION_AGENT_HOST``, default 127.0.0.1): serve HAProxy's agent-check;
      ``agent_warmup``: seconds of rising weight after start (default 0: none);
      ``agent_handover``: seconds a stale build still says ready after a bump (default
      0). The recipe's HAProxy frontend falls back while no server is ready; behind a
      balancer that cannot, set it above ``agent-inter`` so the new build is ready first.
    - ``drain_grace`` (10 s), ``drain_window`` (60 s): once stale, wait the grace, then
      close the websockets with 1012 spread over the window; ``drain_shutdown_window``
      (5 s): the bound for closing what is left on lifespan shutdown;
      ``drain_stale_status`` (503): the answer to handshakes at a stale process (None
      accepts them).
    - ``drain_on_sigterm``: on the first SIGTERM, close the websockets gently before the
      server's own shutdown cuts them all at once (default True; see `spa_version.deploy`).

    ``slot`` (env ``SPA_VERSION_SLOT``): the blue/green slot of this process, a token of
    1-32 characters ``A-Z a-z 0-9 _ . -``. It is stamped in the version header
    (``; slot=blue``) so the JS helper can pin the tab's requests to it (``X-SPA-Pin``,
    docs/protocol.md "Pinning"); with a build, the heartbeat counts those pinned requests.

    Every process, with or without a build, heartbeats to the fleet that ``spa-version
    status`` reads when the store can carry it (Redis, or files beside a ``file://``
    store; `spa_version.fleet`): ``heartbeat_interval`` seconds apart (default 5).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        store: str | Store | None = None,
        app_name: str | None = None,
        header_name: str = HEADER,
        client_header: str = CLIENT_HEADER,
        endpoint: str | None = DEFAULT_ENDPOINT,
        script_path: str | None = DEFAULT_SCRIPT_PATH,
        stamp_websocket: bool | None = None,
        expose_header: bool = True,
        fallback: str | None = None,
        enforce_methods: Iterable[str] | str = UNSAFE_METHODS,
        enforce_paths: Iterable[str] = ("/",),
        enforce_exclude: Iterable[str] = (),
        reload_location: str = "*",
        resync_interval: float = 30.0,
        reconnect_max_delay: float = 30.0,
        startup_timeout: float = 2.0,
        build: str | None = None,
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
        slot: str | None = None,
    ) -> None:
        self.app = app
        if isinstance(store, Store):
            self._store_factory: Callable[[], Store] = lambda: store
            self._owns_store = False
            self.store: Store = store
        else:
            url = store
            self._store_factory = lambda: open_store(url, app=app_name)
            self._owns_store = True
            self.store = self._store_factory()  # opening does no I/O
        self.current = CurrentVersion(_validate_header_name(header_name), resolve_slot(slot))
        if fallback is not None:
            parsed = parse_header(fallback)
            self.current.offer(
                Release(parsed.epoch, parsed.label or "fallback", parsed.policy, parsed.min_compatible),
            )
            self.current.provisional = True
        self._client_header = _validate_header_name(client_header).lower().encode("ascii")
        self._endpoint = endpoint
        self._script_path = script_path
        self._stamp_websocket = stamp_websocket
        # Exposed together: a page that can read the version can read the reload instruction.
        self._expose = (header_name, RELOAD_HEADER) if expose_header else None
        self._enforce_all = enforce_methods == "*"
        self._enforce_methods = frozenset(() if self._enforce_all else (m.upper() for m in enforce_methods))
        self._enforce_paths = tuple(enforce_paths)
        self._enforce_exclude = tuple(enforce_exclude)
        if any(c in reload_location for c in "\r\n\0"):
            raise ValueError("reload_location must not contain CR, LF or NUL")
        self._reload = (RELOAD_HEADER.lower().encode("ascii"), reload_location.encode("latin-1"))
        self.resync_interval = resync_interval
        self.reconnect_max_delay = reconnect_max_delay
        self.startup_timeout = startup_timeout
        self.listener: Listener | None = None
        self._task: asyncio.Task[None] | None = None
        # Issue #5: only a process that declares its build gets the deploy switch; the
        # others pay nothing for it on the request path.
        declared = resolve_build(build)
        self.deploy: DeploySwitch | None = None
        if declared is not None:
            from .agent import resolve_agent_port

            self.deploy = DeploySwitch(
                declared,
                self.current,
                self._client_header,
                agent_port=resolve_agent_port(agent_port),
                agent_host=agent_host,
                agent_warmup=agent_warmup,
                agent_handover=agent_handover,
                drain_grace=drain_grace,
                drain_window=drain_window,
                drain_shutdown_window=drain_shutdown_window,
                drain_stale_status=drain_stale_status,
                heartbeat_interval=heartbeat_interval,
                drain_on_sigterm=drain_on_sigterm,
            )
        self._count_epoch: Callable[[Iterable[Header]], None] | None = (
            None if self.deploy is None else self.deploy.counter.count
        )
        if self.deploy is not None and self.current.slot is not None:  # docs/protocol.md, "Pinning"
            self.deploy.pins = PinCounter(self.current.slot)
            self._count_epoch = counting(self._count_epoch, self.deploy.pins)
        # Every process reports to the fleet when the store can carry it;
        # without a build only a heartbeat runs: nothing per request, nothing tracked.
        self._background: DeploySwitch | FleetReporter = self.deploy or FleetReporter(
            self.current, interval=heartbeat_interval
        )
        self._deploy_task: asyncio.Task[None] | None = None

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
            if self._count_epoch is not None:
                self._count_epoch(scope["headers"])
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

        if self.deploy is not None:
            await self.deploy.drain.serve(scope, receive, send_stamped, self.app)
        else:
            await self.app(scope, receive, send_stamped)

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
            self.store = self._store_factory()
        self.listener = Listener(
            self.store,
            self.current,
            resync_interval=self.resync_interval,
            backoff_cap=self.reconnect_max_delay,
        )
        self._task = asyncio.get_running_loop().create_task(self.listener.run(), name="spa-version listener")
        self._deploy_task = self._task.get_loop().create_task(
            self._background.run(self.store, self.listener.synced.is_set), name="spa-version deploy switch"
        )

    async def startup(self) -> None:
        """Start the listener and wait (up to ``startup_timeout``) for the first read."""
        if self._task is None:
            self._start()
        assert self.listener is not None
        try:
            await asyncio.wait_for(self.listener.synced.wait(), self.startup_timeout)
        except asyncio.TimeoutError:
            logger.warning(
                "spa-version: store %s not read within %.1f s; serving without it for now",
                self.store.display_url,
                self.startup_timeout,
            )

    async def shutdown(self) -> None:
        """Cancel and await the listener, and close the store if we opened it."""
        # Close the websockets left gently (bounded) and remove the fleet record while
        # the store is still open.
        deploy_task, self._deploy_task = self._deploy_task, None
        await self._background.stop(deploy_task)
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
