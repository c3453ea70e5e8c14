"""The demo: a tiny single-page app behind `VersionMiddleware`, on the embedded file store.

``make demo`` serves it at http://127.0.0.1:8000 (no Redis, no build step). Click around,
then publish a new version in another terminal::

    .venv/bin/spa-version bump                      # moves the tab at its next click
    .venv/bin/spa-version bump --policy prompt      # shows a "new version" toast
    .venv/bin/spa-version bump --min-compatible current   # "Save" now gets a 409 and reloads

The page (``index.html`` + ``static/app.js``) is a vanilla history-router SPA. It loads
the JS helper from the middleware (``<script src="/__spa-version.js">``), and its
``<meta name="spa-version">`` baseline is rendered here, server-side, from the version the
middleware serves. ``curl -sI http://127.0.0.1:8000/`` shows the ``X-SPA-Version`` header.
``SPA_VERSION_URL=redis://localhost:6379/0`` uses Redis instead of the file store.

tests/browser drives this same app in Chromium (docs/js.md).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from spa_version import VersionMiddleware
from spa_version.middleware import CLIENT_QUERY_PARAM
from spa_version.templating import current_from_scope, meta_tag

# Show which store the middleware follows and each version it picks up. (The library
# never configures logging itself; this is the app's job.)
logging.basicConfig(format="%(levelname)s:     %(message)s")
logging.getLogger("spa_version").setLevel(logging.INFO)

HERE = Path(__file__).parent
SHELL = (HERE / "index.html").read_text(encoding="utf-8")
#: The SPA's client-side routes: each is served the same shell, so a full page load of
#: any of them (a reload at a route change lands on the *target* route) works.
SPA_ROUTES = ("/", "/reports", "/about")


async def shell(request: Request) -> HTMLResponse:
    """The SPA shell, with the version this page is rendered with as its baseline."""
    meta = meta_tag(current_from_scope(request.scope))
    # no-store: a cached shell would carry an old baseline (the loop guard would cope,
    # but there is no reason to make it).
    page = SHELL.replace("<!-- spa-version-meta -->", meta)
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


async def api_time(request: Request) -> JSONResponse:
    """Any API call: the response carries X-SPA-Version, which the helper watches."""
    return JSONResponse({"time": time.time()})


async def api_notes(request: Request) -> Response:
    """Save the notes: a POST, so a stale client gets the middleware's 409 instead."""
    try:
        payload = json.loads(await request.body() or b"{}")
    except ValueError:
        return JSONResponse({"error": "invalid JSON"}, status_code=400)
    text = payload.get("text") if isinstance(payload, dict) else None
    if not isinstance(text, str) or len(text) > 10_000:
        return JSONResponse({"error": "text must be a string of at most 10000 characters"}, status_code=400)
    request.app.state.notes = text
    return JSONResponse({"saved": len(text)})


async def live(websocket: WebSocket) -> None:
    """Say which client epoch the handshake carried (``?spa-client-version=``), then echo."""
    await websocket.accept()
    await websocket.send_json({"client_epoch": websocket.query_params.get(CLIENT_QUERY_PARAM)})
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


def create_app(store: str | None = None, app_name: str | None = None) -> VersionMiddleware:
    """The demo app behind the middleware; *store*/*app_name* default to the environment."""
    inner = Starlette(
        routes=[
            *(Route(path, shell) for path in SPA_ROUTES),
            Route("/api/time", api_time),
            Route("/api/notes", api_notes, methods=["POST"]),
            WebSocketRoute("/ws", live),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
    )
    inner.state.notes = ""
    return VersionMiddleware(inner, store=store, app_name=app_name)


app = create_app()
