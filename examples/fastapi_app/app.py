"""spa-version with FastAPI: the header, the meta tag, the JS helper and a websocket.

Run it from the repository root (no Redis needed: the embedded file store, ./.spa-version)::

    .venv/bin/uvicorn --app-dir examples/fastapi_app app:app --port 8001

then open http://127.0.0.1:8001 and, in another terminal, publish a new version::

    .venv/bin/spa-version bump

The open tab notices on its next request (the "Call the API" button), and the websocket
echo shows the handshake was stamped. ``SPA_VERSION_URL=redis://localhost:6379/0`` uses
Redis instead (docs/fastapi.md).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from spa_version import VersionMiddleware
from spa_version.templating import install

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
# Adds spa_version_meta() and spa_version_script() to the templates' globals.
install(templates)

app = FastAPI(title="spa-version FastAPI example")


@app.get("/", response_class=HTMLResponse)
async def index(request: Request) -> Any:
    """The page: its <meta name="spa-version"> is the version it was rendered with."""
    return templates.TemplateResponse(request, "index.html", {"title": "spa-version + FastAPI"})


@app.get("/api/time")
async def api_time() -> dict[str, float]:
    """Any API call: its response carries X-SPA-Version, which the JS helper watches."""
    return {"time": time.time()}


@app.websocket("/ws")
async def echo(websocket: WebSocket) -> None:
    """Echo: the handshake response carries X-SPA-Version (ASGI spec >= 2.1 servers)."""
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


# Store and app name come from SPA_VERSION_URL / SPA_VERSION_APP (default: the embedded
# file store). The listener starts and stops with the app's lifespan.
app.add_middleware(VersionMiddleware)
