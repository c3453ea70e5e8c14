"""The answers spa-version gives itself, and the rules behind them, for every framework.

Both middlewares, the ASGI `spa_version.VersionMiddleware` and Django's
`spa_version.django.VersionMiddleware`, decide with `Responses` (built once from the
`spa_version.options.Options`) and differ only in how they read a request and send an
`Answer`:

- the enforcement rule: which requests are checked against ``min_compatible``
  (`Responses.enforces`) and when a client counts as stale (`outdated`; docs/protocol.md,
  "Stale clients");
- the ``409`` answer to a stale client, with ``X-SPA-Reload`` (`Responses.stale`);
- the version endpoint and the JS helper's script (`Responses.own`);
- the CORS expose merge: our header names added to ``Access-Control-Expose-Headers``
  (`stamp_headers` for ASGI header lists, `Responses.exposed` for one value; the CORS
  rules themselves are in `spa_version.cors`);
- which ``Content-Type`` values name a document, whose response must carry the
  Server-Timing metric (`is_document`; applied by Django's
  `spa_version.django.stamping.Stamping.stamp`, the ASGI middleware stamps every response);
- the refusal of a websocket handshake, by HTTP where the server can send one
  (`refuse_handshake`; the drain's ``503`` answer is `draining`).

Header names are lowercase bytes, as ASGI has them; Django sets them as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .asgi_types import Receive, Scope, Send
from .assets import load_script
from .cors import merge_expose
from .current import Snapshot
from .options import Options
from .protocol import DEFAULT_ENDPOINT, RELOAD_HEADER

__all__ = [
    "ACAO",
    "ACEH",
    "Answer",
    "Header",
    "Responses",
    "draining",
    "is_document",
    "outdated",
    "refuse_handshake",
    "send_answer",
    "stamp_headers",
]

Header = tuple[bytes, bytes]

ACAO = b"access-control-allow-origin"
ACEH = b"access-control-expose-headers"
_ACAO_LENGTH = len(ACAO)
_NO_STORE = (b"cache-control", b"no-store")
_JSON = (b"content-type", b"application/json")
_ALLOW = (b"allow", b"GET, HEAD")
#: The media types of the documents a browser makes navigation entries of, where a
#: page's script reads the metric (HTML, and XHTML, its XML syntax).
_DOCUMENT_TYPES = frozenset({"text/html", "application/xhtml+xml"})


@dataclass(frozen=True, slots=True)
class Answer:
    """One response of our own: status, headers (lowercase byte names), body.

    Built fresh for each request, so an adapter may append to ``headers`` (CORS).
    """

    status: int
    headers: list[Header]
    body: bytes = b""


def _answer(status: int, headers: list[Header], body: bytes, snapshot: Snapshot, *extra: Header) -> Answer:
    """*headers*, ``content-length`` (but on a 304), *extra*, and the version header."""
    if status != 304:
        headers.append((b"content-length", str(len(body)).encode("ascii")))
    headers.extend(extra)
    if snapshot.header is not None:
        headers.append(snapshot.header)
    return Answer(status, headers, body)


def outdated(client: int | None, min_compatible: int) -> bool:
    """Whether a client with epoch *client* is stale. A missing or malformed client epoch
    (curl, other services: *client* None) is never refused."""
    return client is not None and client < min_compatible


def cut_off(client: int | None, pin: str | None, cutoff_epoch: int) -> bool:
    """Whether a request reaching a build cut off by the release *cutoff_epoch* gets the
    stale answer (docs/protocol.md, "Security fixes"), whatever its method: it is pinned
    (*pin*, any slot: `spa_version.pinning.parse_pin`), or its client's epoch is below
    the cutoff. A request with neither (a page load, curl) is served."""
    return pin is not None or outdated(client, cutoff_epoch)


class _DocumentTypes(dict[str | None, bool]):
    """`is_document`: the answer for a ``Content-Type`` value computed when first met,
    then remembered (for 256 values: an app answers with a handful)."""

    def __missing__(self, content_type: str | None) -> bool:
        document = content_type is not None and _media_type(content_type) in _DOCUMENT_TYPES
        if len(self) < 256:
            self[content_type] = document
        return document


def _media_type(content_type: str) -> str:
    """The media type of a ``Content-Type`` value, without parameters, lowercased: it is
    compared case-insensitively (RFC 9110 §8.3.1)."""
    return content_type.split(";", 1)[0].strip().lower()


#: Whether a ``Content-Type`` value (a ``str``, or None for none) names a document a
#: navigation entry describes, HTML or XHTML: ``is_document[content_type]``.
#:
#: A page reads the Server-Timing metric from its own navigation entry only (W3C
#: Navigation Timing; docs/js.md, "The baseline"), so a response that is such a document
#: must carry it, and so must a ``304``, whose fields replace those of the document a
#: browser stored (RFC 9111 §4.3.4): without the metric, a revalidated page would report
#: the version it was first stored with. Any other response may carry it: the ASGI
#: middleware adds it to every response (appending a precomputed pair is cheaper than
#: this look); Django's adds it only to these (each header Django sets is validated,
#: about 0.6 µs; docs/benchmarks.md). A mapping, not a function: a value met before costs
#: one dict lookup, and no Python call, on every Django response.
is_document: Mapping[str | None, bool] = _DocumentTypes()


def draining(status: int) -> Answer:
    """The answer to a websocket handshake at a stale process (docs/deploy-haproxy.md)."""
    body = b'{"error":"draining","retry":true}'
    headers = [_JSON, (b"content-length", str(len(body)).encode("ascii")), _NO_STORE, (b"retry-after", b"1")]
    return Answer(status, headers, body)


class Responses:
    """The rules and answers of one configuration (precomputed from *options*)."""

    __slots__ = (
        "header_name",
        "endpoint",
        "script_path",
        "client_header",
        "expose",
        "probe_path",
        "merge_lengths",
        "_methods",
        "_paths",
        "_exclude",
        "_reload",
        "_expose_value",
    )

    def __init__(self, options: Options) -> None:
        #: The response header, as the user spelled it.
        self.header_name = options.header_name
        #: The paths we answer ourselves (None: off), relative to the mount.
        self.endpoint = options.endpoint
        self.script_path = options.script_path
        #: The request header carrying the client's epoch, as ASGI names it.
        self.client_header = options.client_header.lower().encode("ascii")
        # Exposed together: a page that can read the version can read the reload instruction.
        #: The names a cross-origin page must be able to read, or None (``expose_header``).
        self.expose = (options.header_name, RELOAD_HEADER) if options.expose_header else None
        #: Where the app's CORS layer is asked about our own answers (`spa_version.cors`):
        #: a path of ours, so that no view of the app ever runs for the question.
        self.probe_path = options.endpoint or options.script_path or DEFAULT_ENDPOINT
        #: The name lengths for which `stamp_headers` must look closer: ours (to replace
        #: it) and ``Access-Control-Allow-Origin`` (to merge the expose list). A header list
        #: with no name of these lengths only gets the header appended: the hot path's
        #: shortcut in `spa_version.VersionMiddleware`.
        self.merge_lengths = frozenset((len(options.header_name), _ACAO_LENGTH))
        self._methods = options.enforce_methods
        self._paths = options.enforce_paths
        self._exclude = options.enforce_exclude
        self._reload = (RELOAD_HEADER.lower().encode("ascii"), options.reload_location.encode("ascii"))
        self._expose_value = None if self.expose is None else ", ".join(self.expose).encode("ascii")

    def enforces(self, method: str, path: str) -> bool:
        """Whether a request is checked against ``min_compatible`` (``enforce_methods``,
        ``enforce_paths`` and ``enforce_exclude``; *path* relative to the mount)."""
        if self._methods is not None and method not in self._methods:
            return False
        return path.startswith(self._paths) and not (self._exclude and path.startswith(self._exclude))

    def stale(self, snapshot: Snapshot) -> Answer:
        """``409`` for a stale client: reload (``X-SPA-Reload``), and here is the current release."""
        body = b'{"error":"stale-client","reload":true,"current":' + snapshot.body + b"}"
        return _answer(409, [_JSON], body, snapshot, _NO_STORE, self._reload)

    def own(self, path: str, method: str, if_none_match: bytes, snapshot: Snapshot) -> Answer | None:
        """The answer at `endpoint` or `script_path` (*path*), or None: the app answers
        (the script is not in this build of the package, a source checkout).

        *if_none_match* is the request's ``If-None-Match`` (b"" without one).
        """
        safe = method in ("GET", "HEAD")
        if path == self.endpoint:
            if not safe:
                return _answer(405, [_NO_STORE, _ALLOW], b"", snapshot)
            return _answer(200, [_NO_STORE, _JSON], snapshot.body, snapshot)
        asset = load_script()
        if asset is None:
            return None
        if not safe:
            return _answer(405, [_ALLOW], b"", snapshot)
        if asset.etag in if_none_match:
            return _answer(304, [asset.headers[1], asset.headers[2]], b"", snapshot)
        return _answer(200, list(asset.headers), asset.body, snapshot)

    def own_cors(self) -> list[Header]:
        """What our own answer to a request with an ``Origin`` carries before the app's
        CORS layer is asked (`spa_version.cors`): our names in the expose list."""
        return [] if self._expose_value is None else [(ACEH, self._expose_value)]

    def exposed(self, existing: str | None) -> str:
        """*existing* ``Access-Control-Expose-Headers`` with our names merged in (if exposed)."""
        return (existing or "") if self.expose is None else merge_expose(existing, self.expose)


def stamp_headers(
    headers: Iterable[Header] | None, header: Header, expose: tuple[str, ...] | None
) -> list[Header]:
    """ASGI *headers* with *header* set (replaced, never duplicated).

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
        if key == ACAO:
            cors = True
        elif key == ACEH:
            expose_at = len(out)
        out.append(pair)
    out.append(header)
    if cors and expose is not None:
        if expose_at < 0:
            out.append((ACEH, ", ".join(expose).encode("ascii")))
        else:
            key, value = out[expose_at]
            out[expose_at] = (key, merge_expose(value.decode("latin-1"), expose).encode("latin-1"))
    return out


# -- sending answers over ASGI -------------------------------------------------------


async def send_answer(send: Send, answer: Answer, *, head: bool = False, websocket: bool = False) -> None:
    """Send *answer* as an HTTP response, or as the denial of a websocket handshake
    (the ``websocket.http.response`` extension of the ASGI spec). *head*: no body."""
    kind = "websocket.http.response" if websocket else "http.response"
    await send({"type": kind + ".start", "status": answer.status, "headers": answer.headers})
    await send({"type": kind + ".body", "body": b"" if head else answer.body})


async def refuse_handshake(
    scope: Scope, receive: Receive, send: Send, answer: Answer, close_code: int
) -> None:
    """Refuse a websocket handshake: *answer* by HTTP where the server supports the
    ``websocket.http.response`` extension (ASGI spec), else a close before accept with
    *close_code* (RFC 6455 §7.4)."""
    message = await receive()
    if message["type"] != "websocket.connect":  # the client left already
        return
    if "websocket.http.response" in scope.get("extensions", {}):
        await send_answer(send, answer, websocket=True)
    else:
        await send({"type": "websocket.close", "code": close_code})
