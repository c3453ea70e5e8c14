"""VersionMiddleware on websockets, against a real uvicorn server and the `websockets` client."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import websockets
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.exceptions import InvalidStatus

from spa_version import VersionMiddleware, open_store
from spa_version.stores import Store
from tests.support.servers import ThreadedUvicorn


async def echo(websocket: WebSocket) -> None:
    await websocket.accept(headers=[(b"x-app", b"kept")])
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


async def refuse(websocket: WebSocket) -> None:
    # Rejects the handshake with an HTTP response (the websocket.http.response extension).
    await websocket.send_denial_response(PlainTextResponse("forbidden", 403, headers={"x-why": "nope"}))


inner = Starlette(routes=[WebSocketRoute("/ws", echo), WebSocketRoute("/refuse", refuse)])


@pytest.fixture
def store(app_name: str) -> Iterator[Store]:
    yield open_store(f"memory://{app_name}", app=app_name)


def _bump(store: Store, label: str, **kw: Any) -> int:
    """Bump from synchronous code; return the new release's epoch."""
    return asyncio.run(store.bump(label, **kw)).release.epoch


def test_accept_is_stamped_under_uvicorn(store: Store) -> None:
    """uvicorn declares ASGI spec >= 2.1, so the handshake response carries the header (and the app's own)."""
    epoch = _bump(store, "v1")

    async def check(url: str) -> None:
        async with websockets.connect(url + "/ws") as ws:
            headers = ws.response.headers
            assert headers["x-spa-version"] == f"{epoch}; label=v1; policy=next-navigation"
            assert headers["x-app"] == "kept"
            await ws.send("ping")
            assert await ws.recv() == "ping"

    with ThreadedUvicorn(VersionMiddleware(inner, store=store)) as server:
        asyncio.run(check(server.ws_url))


def test_rejected_handshake_is_stamped(store: Store) -> None:
    """An app refusing the handshake with an HTTP response still sends the version."""
    epoch = _bump(store, "v1")

    async def check(url: str) -> None:
        with pytest.raises(InvalidStatus) as excinfo:
            async with websockets.connect(url + "/refuse"):
                pass  # pragma: no cover - the handshake fails
        response = excinfo.value.response
        assert response.status_code == 403
        assert response.headers["x-spa-version"].startswith(f"{epoch};")
        assert response.headers["x-why"] == "nope"

    with ThreadedUvicorn(VersionMiddleware(inner, store=store)) as server:
        asyncio.run(check(server.ws_url))


def test_spec_2_0_server_gets_no_accept_headers(store: Store) -> None:
    """Starlette's TestClient declares no spec_version (= 2.0): sending accept headers would be an error."""
    _bump(store, "v1")
    with TestClient(VersionMiddleware(inner, store=store)) as client, client.websocket_connect("/ws") as ws:
        ws.send_text("hi")
        assert ws.receive_text() == "hi"
        assert all(name != b"x-spa-version" for name, _ in ws.extra_headers or [])


def test_stamping_can_be_forced_on(store: Store) -> None:
    """stamp_websocket=True stamps even when the server does not declare 2.1."""
    epoch = _bump(store, "v1")
    app = VersionMiddleware(inner, store=store, stamp_websocket=True)
    with TestClient(app) as client, client.websocket_connect("/ws") as ws:
        assert (b"x-spa-version", f"{epoch}; label=v1; policy=next-navigation".encode()) in [
            tuple(h) for h in ws.extra_headers or []
        ]


def test_stamping_can_be_forced_off(store: Store) -> None:
    """stamp_websocket=False never touches websocket.accept, even under uvicorn."""
    _bump(store, "v1")

    async def check(url: str) -> None:
        async with websockets.connect(url + "/ws") as ws:
            assert "x-spa-version" not in ws.response.headers

    with ThreadedUvicorn(VersionMiddleware(inner, store=store, stamp_websocket=False)) as server:
        asyncio.run(check(server.ws_url))
