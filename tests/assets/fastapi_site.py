"""The FastAPI set-up of docs/fastapi.md, "Serving the build yourself", as tests run it.

The build is published into ``SPA_WEB_DIR`` by ``spa-version assets publish``. The hashed
assets are served from it by Starlette's ``StaticFiles``, which looks each file up per
request: a file published later is served at once, and a pruned or unknown one is a real
404. Every other path gets the shell (the SPA fallback), read per request, so it always
matches the files on disk.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from spa_version import VersionMiddleware
from spa_version.templating import current_from_scope, meta_tag

WEB_DIR = Path(os.environ["SPA_WEB_DIR"])

app = FastAPI()
app.add_middleware(VersionMiddleware)  # store: SPA_VERSION_URL
# Before the fallback: a missing /assets/... file is a 404 from StaticFiles, never the shell.
app.mount("/assets", StaticFiles(directory=WEB_DIR / "assets", check_dir=False), name="assets")


@app.get("/{path:path}", include_in_schema=False)
async def shell(request: Request, path: str) -> HTMLResponse:
    """The SPA shell for every client-side route, with the page's baseline (docs/js.md)."""
    page = (WEB_DIR / "index.html").read_text(encoding="utf-8")
    page = page.replace("<!-- spa-version-meta -->", meta_tag(current_from_scope(request.scope)))
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})
