"""The demo: a tiny Starlette app behind `VersionMiddleware`, on the embedded file store.

Run it with ``make demo`` (http://127.0.0.1:8000), then in another terminal::

    .venv/bin/spa-version bump

and watch ``curl -sI http://127.0.0.1:8000/`` change. No Redis needed; set
``SPA_VERSION_URL=redis://localhost:6379/0`` to use Redis instead.
"""

from __future__ import annotations

import time

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from spa_version import VersionMiddleware

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>spa-version demo</title></head>
<body>
<h1>spa-version demo</h1>
<p>Every response carries <code>X-SPA-Version</code>. Bump in another terminal:
<code>.venv/bin/spa-version bump</code></p>
<p>Current version (from <code>/__spa-version</code>): <code id="version">?</code></p>
<script>
fetch("/__spa-version").then(r => r.json()).then(v => {
  document.getElementById("version").textContent = v ? v.epoch + " (" + v.label + ")" : "none yet";
});
</script>
</body>
</html>
"""


async def home(request: Request) -> HTMLResponse:
    return HTMLResponse(PAGE)


async def api_time(request: Request) -> JSONResponse:
    return JSONResponse({"time": time.time()})


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


app = Starlette(
    routes=[Route("/", home), Route("/api/time", api_time), WebSocketRoute("/ws", echo)],
    middleware=[Middleware(VersionMiddleware)],
)
