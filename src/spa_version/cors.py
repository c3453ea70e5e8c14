"""CORS for the responses spa-version makes itself, shared by the ASGI and Django middlewares.

spa-version implements no CORS policy: which origins may read what is the app's CORS layer's
decision (Starlette's ``CORSMiddleware``, django-cors-headers, a proxy). It only makes sure
that decision reaches the responses it makes itself (the 409, the version endpoint, the
script) and that a page allowed to read them can read its headers (docs/fastapi.md, "CORS"):

- Every response that carries ``Access-Control-Allow-Origin``, and every response of its
  own to a request with an ``Origin``, lists ``X-SPA-Version`` and ``X-SPA-Reload`` in
  ``Access-Control-Expose-Headers`` (`merge_expose`): a cross-origin page reads only the
  safelisted response headers and those listed there (Fetch standard, "CORS-safelisted
  response-header name").
- With the CORS layer *outside* the version middleware, its own responses pass through that
  layer like any other: nothing more to do.
- With the CORS layer *inside* (the version middleware outermost), its own responses never
  pass through it. So, for a request from another origin, the middleware asks the app what
  a CORS preflight for the version endpoint gets (`probe_headers`: ``OPTIONS`` with
  ``Origin`` and ``Access-Control-Request-Method``, Fetch standard, "CORS-preflight
  request"); a CORS layer answers that itself, without calling any view. If the answer is
  a 2xx with ``Access-Control-Allow-Origin``, its ``Access-Control-Allow-Origin``,
  ``Access-Control-Allow-Credentials`` and ``Vary`` are copied onto the response
  (`copied_headers`). Otherwise nothing is added, and the browser hides the response from
  the page, as the app's CORS layer would have.
- A preflight for the endpoint or the script (the browser's, or this question, which
  another spa-version layer further in may see first) is passed on to the app: its CORS
  layer answers preflights.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from .asgi_types import ASGIApp, Message, Scope
from .protocol import HEADER, RELOAD_HEADER

__all__ = [
    "COPIED_HEADERS",
    "EXPOSE_HEADERS",
    "PROBE_TIMEOUT",
    "ask_asgi_app",
    "asgi_cors_for_own",
    "copied_headers",
    "is_cross_origin",
    "merge_expose",
    "probe_headers",
]

logger = logging.getLogger("spa_version")

#: The response headers a cross-origin page must be able to read, for a CORS layer that
#: owns the expose list: ``CORSMiddleware(expose_headers=EXPOSE_HEADERS)``,
#: ``CORS_EXPOSE_HEADERS = [*EXPOSE_HEADERS]`` (with the default header name).
EXPOSE_HEADERS = (HEADER, RELOAD_HEADER)

#: What a CORS layer's preflight answer decides for the actual response too (Fetch
#: standard, "CORS check": the origin and credentials; ``Vary`` keeps caches honest).
COPIED_HEADERS = ("access-control-allow-origin", "access-control-allow-credentials", "vary")

#: Seconds to wait for the app's answer to the preflight; a CORS layer answers at once.
PROBE_TIMEOUT = 2.0


def merge_expose(existing: str | None, names: Iterable[str]) -> str:
    """*existing* ``Access-Control-Expose-Headers`` value with *names* added, each once.

    Names already listed (any case) or covered by ``*`` are not repeated; the order of the
    existing list is kept.
    """
    listed = {item.strip().lower() for item in (existing or "").split(",")}
    if "*" in listed:
        # "*" exposes every header on requests without credentials only (Fetch standard);
        # naming ours too keeps them readable with credentials.
        listed.discard("*")
    out = (existing or "").strip()
    for name in names:
        if name.lower() not in listed:
            out = f"{out}, {name}" if out else name
            listed.add(name.lower())
    return out


def is_cross_origin(origin: str, scheme: str, host: str | None) -> bool:
    """Whether a request with this ``Origin`` comes from a page of another origin.

    Compares the origin with the request's own scheme and ``Host``; when in doubt (no
    ``Host``, a proxy that changed the scheme), says True: the only cost is a question to
    the app's CORS layer.
    """
    if host is None:
        return True
    return origin.lower() != f"{scheme}://{host}".lower()


def probe_headers(origin: str, method: str, host: str | None) -> list[tuple[str, str]]:
    """The request headers of the preflight sent into the app (lowercase names)."""
    headers = [("origin", origin), ("access-control-request-method", method)]
    if host is not None:
        headers.insert(0, ("host", host))
    return headers


def copied_headers(status: int, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """From the app's answer to the preflight, the headers to copy onto our own response.

    Only a 2xx answer that allows an origin counts: a CORS layer that refuses the origin or
    the method (or no CORS layer at all, a 404 or 405) leaves the response without CORS
    headers, so the browser keeps it from the page.
    """
    if not 200 <= status < 300:
        return []
    found = [(name.lower(), value) for name, value in headers if name.lower() in COPIED_HEADERS]
    if not any(name == COPIED_HEADERS[0] for name, _ in found):
        return []
    return found


async def ask_asgi_app(
    app: ASGIApp, scope: Scope, target: str, origin: str, host: str | None
) -> list[tuple[bytes, bytes]]:
    """Ask an ASGI app's CORS layer for its decision: a preflight for our own path *target*.

    The request in *scope* came from *origin* (for *host*). A CORS layer inside the
    middleware answers preflights itself, without calling a view; the answer's origin
    decision is copied (`copied_headers`). *target* is a path of ours (relative to the
    mount), never the request's own, so no view of the app ever gets this request.
    """
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
        await asyncio.wait_for(app(probe, probe_receive, probe_send), PROBE_TIMEOUT)
    except Exception:  # the client never sent this request: its failure is not the client's
        logger.debug("spa-version: the CORS preflight for our own response failed", exc_info=True)
    if not answer:
        return []
    start = answer[0]
    pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", [])]
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in copied_headers(start["status"], pairs)]


async def asgi_cors_for_own(
    app: ASGIApp, scope: Scope, exposed: list[tuple[bytes, bytes]], target: str
) -> list[tuple[bytes, bytes]]:
    """The CORS headers of an answer of our own to the ASGI request in *scope*.

    None without an ``Origin`` (not a CORS request). With one, *exposed* (our names in
    ``Access-Control-Expose-Headers``), and for another origin what the app's CORS layer
    decides for a preflight to *target* (`ask_asgi_app`).
    """
    origin = host = None
    for key, value in scope["headers"]:
        if key == b"origin":
            origin = value.decode("latin-1")
        elif key == b"host":
            host = value.decode("latin-1")
    if origin is None:
        return []
    if not is_cross_origin(origin, scope.get("scheme", "http"), host):
        return exposed
    return exposed + await ask_asgi_app(app, scope, target, origin, host)
