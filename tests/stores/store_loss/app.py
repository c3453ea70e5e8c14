"""The demo SPA for the store-loss scenarios, set up from the environment for ``uvicorn --workers 4``.

``uvicorn tests.stores.store_loss.app:app --workers 4`` (from the repository root) serves the
demo of examples/starlette_app (its shell, API, websocket and the JS helper) behind a
`VersionMiddleware` whose timings come from the environment, so a scenario runs in
seconds: ``STORE_LOSS_RESYNC`` (the resync interval, also the reconnect backoff cap)
and ``STORE_LOSS_HEARTBEAT`` (the fleet heartbeat interval). The store and app come
from ``SPA_VERSION_URL`` / ``SPA_VERSION_APP`` as in production.

``GET /__pid`` answers this worker's pid; its ``X-SPA-Version`` header is what this
worker stamps, so a test can tell the workers apart.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from spa_version import VersionMiddleware

DEMO = Path(__file__).resolve().parents[3] / "examples" / "starlette_app" / "app.py"


def _load_demo() -> Any:
    spec = importlib.util.spec_from_file_location("spa_version_store_loss_demo", DEMO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The demo's own middleware is never started (opening a store does no I/O); only the
# Starlette app inside it is served, behind the middleware configured here.
_demo_inner = _load_demo().create_app().app


async def _with_pid(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http" and scope["path"] == "/__pid":
        headers = [(b"content-type", b"text/plain"), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
        return
    await _demo_inner(scope, receive, send)


_resync = float(os.environ.get("STORE_LOSS_RESYNC", "2"))
app = VersionMiddleware(
    _with_pid,
    resync_interval=_resync,
    reconnect_max_delay=_resync,
    heartbeat_interval=float(os.environ.get("STORE_LOSS_HEARTBEAT", "0.5")),
)
