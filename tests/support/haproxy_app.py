"""The app of the HAProxy end-to-end test, run by uvicorn as its own process.

Configured by the environment, as a deployed app would be: ``SPA_VERSION_URL``,
``SPA_VERSION_APP``, ``SPA_VERSION_BUILD`` (blue: A, green: B) and
``SPA_VERSION_AGENT_PORT`` (and ``SPA_VERSION_SLOT``: blue or green) go straight to
`VersionMiddleware`; ``E2E_SERVER`` names the process in every answer (and ``build`` its
build), so the test sees where HAProxy sent each request and socket. ``/page`` is a page
for a real browser: the meta tag, the helper's script tag, and a websocket that reconnects
after a drain close. ``/shell`` is the shell ``index.html`` of ``E2E_WEB_DIR``, a web
directory every process serves alike, read at each request (tests/pinning/tabs.py).
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from spa_version import VersionMiddleware
from spa_version.templating import current_from_scope, meta_tag

SERVER = os.environ["E2E_SERVER"]
BUILD = os.environ.get("SPA_VERSION_BUILD")


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse(SERVER)


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse(
        {"server": SERVER, "build": BUILD, "method": request.method, "pin": request.headers.get("x-spa-pin")}
    )


PAGE = """<!doctype html>
<html><head>@META@<script src="/__spa-version.js" defer></script></head>
<body><h1 id="server">@SERVER@</h1>
<script>
window.sockets = [];
function connect() {
  const ws = SpaVersion.watchSocket(new WebSocket(SpaVersion.socketUrl("/ws")));
  ws.onmessage = (e) => { if (!ws.server) { ws.server = e.data; window.sockets.push(e.data); } };
  ws.onclose = () => setTimeout(connect, 100);
}
addEventListener("DOMContentLoaded", connect);
// A steady loop of fetches, as an app's API calls: every answer's server, every failure.
window.results = [];
window.failures = [];
window.runLoop = async () => {
  for (;;) {
    try {
      const response = await fetch("/api/whoami");
      if (response.status !== 200) window.failures.push(response.status);
      else window.results.push(await response.json());
    } catch (e) {
      window.failures.push(String(e));
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};
</script></body></html>
"""


async def page(request: Request) -> HTMLResponse:
    html = PAGE.replace("@META@", meta_tag(current_from_scope(request.scope))).replace("@SERVER@", SERVER)
    return HTMLResponse(html, headers={"cache-control": "no-store"})


async def shell(request: Request) -> HTMLResponse:
    """The shared web directory's ``index.html`` as it is now (a deploy replaces it)."""
    html = (Path(os.environ["E2E_WEB_DIR"]) / "index.html").read_text()
    return HTMLResponse(html, headers={"cache-control": "no-store"})


async def ws(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(SERVER)
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


app = Starlette(
    routes=[
        Route("/", home),
        Route("/page", page),
        Route("/page/{rest:path}", page),
        Route("/shell", shell),
        Route("/api/whoami", whoami, methods=["GET", "POST"]),
        WebSocketRoute("/ws", ws),
    ],
    middleware=[
        Middleware(
            VersionMiddleware,
            agent_handover=float(os.environ.get("E2E_AGENT_HANDOVER", "0")),
            drain_grace=float(os.environ.get("E2E_DRAIN_GRACE", "10")),
            drain_window=float(os.environ.get("E2E_DRAIN_WINDOW", "60")),
            drain_shutdown_window=float(os.environ.get("E2E_SHUTDOWN_WINDOW", "5")),
            heartbeat_interval=float(os.environ.get("E2E_HEARTBEAT", "5")),
        )
    ],
)
