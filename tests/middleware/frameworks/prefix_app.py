"""Apps served under a mount prefix, for `uvicorn --root-path` run as a real process.

``top``: a FastAPI app with `VersionMiddleware` added the documented way. ``mounted``: the
same app inside a Starlette ``Mount("/app", ...)``. The store comes from the environment
(``SPA_VERSION_URL``, ``SPA_VERSION_APP``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from starlette.applications import Starlette
from starlette.routing import Mount

from spa_version import VersionMiddleware
from spa_version.templating import install

TEMPLATES = Path(__file__).parent / "templates"


def build(**options: Any) -> FastAPI:
    """A page rendering the template globals, and API routes to enforce (or exclude)."""
    app = FastAPI()
    templates = Jinja2Templates(directory=TEMPLATES)
    install(templates)

    @app.get("/", response_class=HTMLResponse)
    async def page(request: Request) -> Any:
        return templates.TemplateResponse(request, "page.html", {"title": "prefixed"})

    @app.post("/items")
    async def items() -> dict[str, bool]:
        return {"created": True}

    @app.post("/public/items")
    async def public_items() -> dict[str, bool]:
        return {"created": True}

    app.add_middleware(
        VersionMiddleware, enforce_paths=("/items", "/public"), enforce_exclude=("/public",), **options
    )
    return app


top = build()
mounted = Starlette(routes=[Mount("/app", app=build())])
