"""The deploy-switch tests' app (tests/drain, tests/pinning, tests/servers): a Starlette app with
an echoing websocket, behind `VersionMiddleware` with a declared build, and websocket
clients that record when and how their connection closed."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import websockets
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from spa_version import VersionMiddleware
from spa_version.stores import Store
from tests.support.stalled import flood


@dataclass
class AppLog:
    """What the app itself saw: the disconnect codes its websocket handlers got."""

    disconnects: list[int] = field(default_factory=list)


def make_app(log: AppLog) -> Starlette:
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hello")
        try:
            while True:
                await websocket.send_text(await websocket.receive_text())
        except WebSocketDisconnect as exc:
            log.disconnects.append(exc.code)

    async def home(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/", home, methods=["GET", "POST"]),
            WebSocketRoute("/ws", ws),
            WebSocketRoute("/flood", flood),  # for clients that stop reading
        ]
    )


def build_middleware(store: Store | str, **options: Any) -> tuple[VersionMiddleware, AppLog]:
    """The test app behind the middleware. Pass a URL (and app_name) for Redis, so the
    middleware opens, and on shutdown closes, its own client on the server's loop."""
    log = AppLog()
    options.setdefault("build", "A")
    return VersionMiddleware(make_app(log), store=store, **options), log


@dataclass
class Client:
    """One websocket client: when and how its connection ended."""

    conn: Any
    closed_at: float | None = None
    code: int | None = None
    reason: str | None = None
    watcher: asyncio.Task[None] | None = None


async def open_clients(url: str, count: int) -> list[Client]:
    """Open *count* websockets (each got the app's hello) and watch them close."""

    async def one() -> Client:
        conn = await websockets.connect(url, open_timeout=10)
        assert await asyncio.wait_for(conn.recv(), 10) == "hello"
        client = Client(conn)

        async def watch() -> None:
            await conn.wait_closed()
            client.closed_at = time.monotonic()
            client.code = conn.close_code
            client.reason = conn.close_reason

        client.watcher = asyncio.get_running_loop().create_task(watch())
        return client

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def close_clients(clients: list[Client]) -> None:
    await asyncio.gather(*(c.conn.close() for c in clients), return_exceptions=True)
    await asyncio.gather(*(c.watcher for c in clients if c.watcher is not None), return_exceptions=True)
