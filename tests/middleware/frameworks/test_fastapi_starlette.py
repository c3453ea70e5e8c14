"""FastAPI and Starlette: ``add_middleware`` / ``Middleware(...)``, lifespan, Jinja2 globals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from spa_version import VersionMiddleware, open_store
from spa_version.templating import install
from tests.support.epochs import bumped_epoch
from tests.support.frameworks import find_version_middleware, ws_echo_version
from tests.support.servers import RedisServer, ThreadedUvicorn, async_wait_for, run_cli

TEMPLATES = Path(__file__).parent / "templates"


def build_fastapi(store_url: str, app_name: str, events: list[str]) -> FastAPI:
    """A FastAPI app with its own lifespan, a template page, an API route and a websocket."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        events.append("app startup")
        yield
        events.append("app shutdown")

    app = FastAPI(lifespan=lifespan)
    templates = Jinja2Templates(directory=TEMPLATES)
    install(templates)

    @app.get("/", response_class=HTMLResponse)
    async def page(request: Request) -> Any:
        return templates.TemplateResponse(request, "page.html", {"title": "fastapi"})

    @app.get("/api/ping")
    async def ping() -> dict[str, bool]:
        return {"pong": True}

    @app.websocket("/ws")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    app.add_middleware(VersionMiddleware, store=store_url, app_name=app_name)
    return app


pytestmark = pytest.mark.redis


async def test_fastapi_under_uvicorn_with_redis(
    redis: RedisServer, app_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """add_middleware: HTTP, websocket handshake and template meta tag follow a Redis bump; clean stop."""
    first = bumped_epoch(run_cli("--url", redis.url, "--app", app_name, "bump", "--json", "fa-1"))
    events: list[str] = []
    app = build_fastapi(redis.url, app_name, events)
    with caplog.at_level(logging.WARNING), ThreadedUvicorn(app) as server:
        middleware = find_version_middleware(app)
        assert middleware.listener is not None and middleware.listener.synced.is_set()
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            response = await client.get("/api/ping")
            assert response.headers["x-spa-version"] == f"{first}; label=fa-1; policy=next-navigation"
            html = (await client.get("/")).text
            assert f'<meta name="spa-version" content="{first}; label=fa-1; policy=next-navigation">' in html
            assert '<script src="/__spa-version.js" defer></script>' in html
            assert (await ws_echo_version(server.ws_url + "/ws") or "").startswith(f"{first}; label=fa-1;")

            second = bumped_epoch(run_cli("--url", redis.url, "--app", app_name, "bump", "--json", "fa-2"))
            assert second > first
            await async_wait_for(
                lambda: (middleware.current.release or None) and middleware.current.release.epoch == second
            )
            response = await client.get("/api/ping")
            assert response.headers["x-spa-version"].startswith(f"{second}; label=fa-2;")
            assert f'content="{second}; label=fa-2;' in (await client.get("/")).text
            assert (await ws_echo_version(server.ws_url + "/ws") or "").startswith(f"{second}; label=fa-2;")
        task = None if middleware.follower is None else middleware.follower.task
    # Lifespan ran the app's own startup/shutdown, and stopped our listener with it.
    assert events == ["app startup", "app shutdown"]
    assert middleware.follower is None and task is not None and task.done()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def drive_lifespan(app: Any) -> tuple[list[str], set[asyncio.Task[Any]]]:
    """Run startup, note the tasks alive while serving, then shutdown (as a server does)."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: list[str] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    queue.put_nowait({"type": "lifespan.startup"})
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.4"}, "state": {}}
    runner = asyncio.create_task(app(scope, queue.get, send))
    await async_wait_for(lambda: "lifespan.startup.complete" in sent)
    serving = asyncio.all_tasks() - {asyncio.current_task(), runner}
    queue.put_nowait({"type": "lifespan.shutdown"})
    await asyncio.wait_for(runner, 10)
    return sent, serving


async def test_fastapi_lifespan_leaves_no_task_behind(app_name: str) -> None:
    """Startup starts exactly one listener task; shutdown cancels and awaits it (no leaked tasks)."""
    store = open_store(f"memory://{app_name}", app=app_name)
    await store.bump("life-1")
    events: list[str] = []
    before = asyncio.all_tasks()
    app = build_fastapi(f"memory://{app_name}", app_name, events)
    sent, serving = await drive_lifespan(app)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert [t.get_name() for t in serving - before] == ["spa-version listener"]
    assert all(t.done() for t in serving - before)
    assert asyncio.all_tasks() - before == {asyncio.current_task()} - before
    assert events == ["app startup", "app shutdown"]
    assert find_version_middleware(app).current.release is not None


async def test_starlette_middleware_list_and_jinja_globals(app_name: str) -> None:
    """Starlette's ``middleware=[Middleware(VersionMiddleware, ...)]`` and the Jinja2 globals."""
    from starlette.templating import Jinja2Templates as StarletteTemplates

    store = open_store(f"memory://{app_name}", app=app_name)
    release = (await store.bump("st-1", policy="prompt")).release
    templates = StarletteTemplates(directory=TEMPLATES)
    install(templates, script_path="/assets/spa.js")

    async def page(request: Any) -> Any:
        return templates.TemplateResponse(request, "page.html", {"title": "starlette"})

    app = Starlette(
        routes=[Route("/", page), Route("/plain", lambda r: PlainTextResponse("plain"))],
        middleware=[Middleware(VersionMiddleware, store=f"memory://{app_name}", app_name=app_name)],
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        # No lifespan here (httpx's transport sends none): the first request starts the listener.
        await client.get("/plain")
        await async_wait_for(lambda: find_version_middleware(app).current.release is not None)
        html = (await client.get("/")).text
        assert f'<meta name="spa-version" content="{release.epoch}; label=st-1; policy=prompt">' in html
        assert '<script src="/assets/spa.js" defer></script>' in html
        assert (await client.get("/plain")).headers[
            "x-spa-version"
        ] == f"{release.epoch}; label=st-1; policy=prompt"
    await find_version_middleware(app).shutdown()


async def test_meta_tag_without_middleware_is_a_clear_error() -> None:
    """A template rendered outside the middleware fails loudly, naming the fix."""
    templates = Jinja2Templates(directory=TEMPLATES)
    install(templates)
    app = FastAPI()

    @app.get("/")
    async def page(request: Request) -> Any:
        return templates.TemplateResponse(request, "page.html", {"title": "x"})

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with pytest.raises(RuntimeError, match="VersionMiddleware"):
            await client.get("/")


def test_install_rejects_what_is_not_a_jinja_environment() -> None:
    """install() names what it needs when given something else."""
    with pytest.raises(TypeError, match="jinja2.Environment"):
        install(object())
