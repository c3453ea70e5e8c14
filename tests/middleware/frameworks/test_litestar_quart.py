"""The pure-ASGI claim: Litestar and Quart under real uvicorn, HTTP and websocket handshakes stamped."""

from __future__ import annotations

from typing import Any

import httpx
from litestar import Litestar, WebSocket, get, websocket
from quart import Quart
from quart import websocket as quart_websocket

from spa_version import VersionMiddleware, open_store
from tests.support.frameworks import ws_echo_version
from tests.support.servers import ThreadedUvicorn, async_wait_for


def build_litestar() -> Litestar:
    """A Litestar app with one HTTP route and one websocket route."""

    @get("/api/ping")
    async def ping() -> dict[str, bool]:
        return {"pong": True}

    @websocket("/ws")
    async def echo(socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()
        await socket.send_text(await socket.receive_text())
        await socket.close()

    return Litestar(route_handlers=[ping, echo])


def build_quart() -> Quart:
    """A Quart app with one HTTP route and one websocket route."""
    app = Quart(__name__)

    @app.get("/api/ping")
    async def ping() -> dict[str, bool]:
        return {"pong": True}

    @app.websocket("/ws")
    async def echo() -> None:
        await quart_websocket.accept()
        await quart_websocket.send(await quart_websocket.receive())

    return app


async def check_served(
    server: ThreadedUvicorn, middleware: VersionMiddleware, app_name: str, first: int
) -> None:
    """The app behind *middleware* stamps HTTP and the handshake (release *first*), then follows a bump."""
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        response = await client.get("/api/ping")
        assert response.status_code == 200 and response.json() == {"pong": True}
        assert response.headers["x-spa-version"] == f"{first}; label=fw-1; policy=next-navigation"
        assert (await ws_echo_version(server.ws_url + "/ws") or "").startswith(f"{first}; label=fw-1;")

        bumped = await open_store(f"memory://{app_name}", app=app_name).bump("fw-2", policy="immediate")
        second = bumped.release.epoch
        assert second > first
        await async_wait_for(
            lambda: middleware.current.release is not None and middleware.current.release.epoch == second
        )
        response = await client.get("/api/ping")
        assert response.headers["x-spa-version"] == f"{second}; label=fw-2; policy=immediate"
        assert (await ws_echo_version(server.ws_url + "/ws") or "").startswith(f"{second}; label=fw-2;")


async def test_litestar_wrapped_app(app_name: str) -> None:
    """``VersionMiddleware(Litestar(...))``: lifespan reaches both, HTTP and websocket are stamped."""
    first = (await open_store(f"memory://{app_name}", app=app_name).bump("fw-1")).release.epoch
    middleware = VersionMiddleware(build_litestar(), store=f"memory://{app_name}", app_name=app_name)
    with ThreadedUvicorn(middleware) as server:
        assert middleware.listener is not None and middleware.listener.synced.is_set()  # lifespan startup
        await check_served(server, middleware, app_name, first)
        task = None if middleware.follower is None else middleware.follower.task
    assert middleware.follower is None and task is not None and task.done()  # lifespan shutdown


async def test_quart_asgi_app_wrapped(app_name: str) -> None:
    """``app.asgi_app = VersionMiddleware(app.asgi_app)`` (Quart's idiom): HTTP and websocket stamped."""
    first = (await open_store(f"memory://{app_name}", app=app_name).bump("fw-1")).release.epoch
    app = build_quart()
    middleware = VersionMiddleware(app.asgi_app, store=f"memory://{app_name}", app_name=app_name)
    app.asgi_app = middleware  # type: ignore[method-assign]
    with ThreadedUvicorn(app) as server:
        assert middleware.listener is not None and middleware.listener.synced.is_set()
        await check_served(server, middleware, app_name, first)
        task = None if middleware.follower is None else middleware.follower.task
    assert middleware.follower is None and task is not None and task.done()
