"""The 500 of an unhandled exception: stamped when the middleware wraps the whole app.

Starlette (and so FastAPI) puts ``ServerErrorMiddleware`` outside every middleware added
with ``add_middleware``; the 500 it sends for an unhandled exception never passes through
them. docs/fastapi.md therefore recommends ``VersionMiddleware(app)`` around the app.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from fastapi import FastAPI

from spa_version import VersionMiddleware, open_store
from spa_version.protocol import format_header
from spa_version.release import Release
from tests.support.servers import ThreadedUvicorn


def _fastapi() -> FastAPI:
    app = FastAPI()

    @app.get("/ok")
    async def ok() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("unhandled")

    return app


def _bump(tmp_path: Path, app_name: str) -> Release:
    return asyncio.run(open_store(f"file://{tmp_path}", app=app_name).bump("v1")).release


def test_wrapping_the_app_stamps_the_500_of_an_unhandled_exception(tmp_path: Path, app_name: str) -> None:
    """``VersionMiddleware(app)`` sees every response, ServerErrorMiddleware's 500 included,
    and lets the exception through to the server unchanged."""
    release = _bump(tmp_path, app_name)
    application = VersionMiddleware(_fastapi(), store=f"file://{tmp_path}", app_name=app_name)
    with ThreadedUvicorn(application) as server:
        response = httpx.get(server.url + "/boom", timeout=10)
        assert response.status_code == 500
        assert response.headers["x-spa-version"] == format_header(release)
        assert httpx.get(server.url + "/ok", timeout=10).headers["x-spa-version"] == format_header(release)


def test_add_middleware_cannot_see_the_500_of_server_error_middleware(tmp_path: Path, app_name: str) -> None:
    """Why docs/fastapi.md recommends wrapping: with ``add_middleware`` every other response
    is stamped, but the 500 goes out from ServerErrorMiddleware, outside the middleware."""
    release = _bump(tmp_path, app_name)
    app = _fastapi()
    app.add_middleware(VersionMiddleware, store=f"file://{tmp_path}", app_name=app_name)
    with ThreadedUvicorn(app) as server:
        assert httpx.get(server.url + "/ok", timeout=10).headers["x-spa-version"] == format_header(release)
        response = httpx.get(server.url + "/boom", timeout=10)
        assert response.status_code == 500
        assert "x-spa-version" not in response.headers
