"""What the ASGI middleware reads from a connection scope (ASGI spec, "HTTP" and
"WebSocket" connection scopes): the path under a mount prefix, a request header, a CORS
preflight, the client's epoch, and whether the server takes headers on a websocket accept.

Client-controlled input never raises here: a bad value reads as absent.
"""

from __future__ import annotations

from .asgi_types import Scope
from .protocol import parse_client_epoch, parse_client_query

__all__ = [
    "CLIENT_QUERY_PARAM",
    "accept_takes_headers",
    "client_epoch",
    "header",
    "is_preflight",
    "route_path",
]

#: Browsers cannot set headers on a websocket handshake, so a client may send its
#: epoch as this query parameter instead (docs/protocol.md).
CLIENT_QUERY_PARAM = "spa-client-version"
_CLIENT_QUERY_PARAM = CLIENT_QUERY_PARAM.encode("ascii")


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


def header(scope: Scope, name: bytes) -> bytes:
    """The request header *name* (lowercase bytes), its repeated lines joined into one
    list (RFC 9110 §5.3); ``b""`` when absent."""
    return b", ".join(value for key, value in scope["headers"] if key == name)


def is_preflight(scope: Scope) -> bool:
    """Whether a request is a CORS preflight (Fetch standard: ``OPTIONS`` with
    ``Access-Control-Request-Method``).

    A browser's preflight for the endpoint or the script, or our own question to the
    app's CORS layer (`spa_version.cors`), is for the app's CORS layer to answer, not for us.
    """
    if scope["method"] != "OPTIONS":
        return False
    return any(key == b"access-control-request-method" for key, _ in scope["headers"])


def client_epoch(scope: Scope, header_name: bytes, *, websocket: bool = False) -> int | None:
    """The client's epoch: the highest valid one over its *header_name* lines and, for a
    websocket, the `CLIENT_QUERY_PARAM` too (docs/protocol.md, "Client epoch"); None
    when it sent none."""
    epoch = parse_client_epoch(header(scope, header_name))
    if websocket:
        query = parse_client_query(scope.get("query_string", b""), _CLIENT_QUERY_PARAM)
        if query is not None and (epoch is None or query > epoch):
            epoch = query
    return epoch


def accept_takes_headers(scope: Scope) -> bool:
    """Whether the server takes headers on ``websocket.accept`` (ASGI spec 2.1 and later).

    "If a server tells you it only supports version 2.0 of this spec, then sending headers
    with a WebSocket Accept message is an error" (ASGI spec); a missing ``spec_version``
    means 2.0.
    """
    version = scope.get("asgi", {}).get("spec_version", "2.0")
    try:
        major, minor = (int(part) for part in str(version).split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (2, 1)
