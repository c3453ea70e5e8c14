"""The apps the server matrix runs, each server started as its own process.

Configured by the environment, as a deployed app is: ``SPA_VERSION_URL``,
``SPA_VERSION_APP`` and ``SPA_VERSION_BUILD`` reach `VersionMiddleware` as they are;
``MATRIX_DRAIN_GRACE``, ``MATRIX_DRAIN_WINDOW`` and ``MATRIX_SHUTDOWN_WINDOW`` set its
drain. The app prints ``lifespan: startup`` and ``lifespan: shutdown`` to stderr when
its own lifespan runs, so a test sees whether the server ran lifespan at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from spa_version import VersionMiddleware
from tests.support.stalled import flood


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@contextlib.asynccontextmanager
async def _lifespan(app: Any) -> AsyncIterator[None]:
    _say("lifespan: startup")
    yield
    _say("lifespan: shutdown")


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def ws(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("hello")
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


async def events(request: Request) -> EventSourceResponse:
    """A notification stream as sse-starlette serves one: a ``tick`` event every 0.1 s,
    forever (only the drain, the client or the server ends it)."""

    async def ticks() -> AsyncIterator[dict[str, str]]:
        n = 0
        while True:
            n += 1
            yield {"event": "tick", "data": str(n)}
            await asyncio.sleep(0.1)

    return EventSourceResponse(ticks())


def _drain_options() -> dict[str, float]:
    return {
        "drain_grace": float(os.environ.get("MATRIX_DRAIN_GRACE", "0")),
        "drain_window": float(os.environ.get("MATRIX_DRAIN_WINDOW", "0.5")),
        "drain_shutdown_window": float(os.environ.get("MATRIX_SHUTDOWN_WINDOW", "1")),
        "heartbeat_interval": 0.5,
    }


#: The whole app wrapped, as docs/servers.md recommends for every server.
app = VersionMiddleware(
    Starlette(
        routes=[
            Route("/", home),
            Route("/events", events),
            WebSocketRoute("/ws", ws),
            WebSocketRoute("/flood", flood),
        ],
        lifespan=_lifespan,
    ),
    **_drain_options(),
)


async def _django_like(scope: Any, receive: Any, send: Any) -> None:
    # Django's ASGIHandler: "Django can only handle ASGI/HTTP connections, not lifespan."
    if scope["type"] != "http":
        raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"django"})


#: An app that refuses lifespan by raising, as Django's ASGIHandler does.
refuses_lifespan = VersionMiddleware(_django_like, **_drain_options())


@contextlib.asynccontextmanager
async def _crashing_lifespan(app: Any) -> AsyncIterator[None]:
    raise RuntimeError("database is down")
    yield  # pragma: no cover


#: An app whose startup crashes.
crashes_at_startup = VersionMiddleware(
    Starlette(routes=[Route("/", home)], lifespan=_crashing_lifespan), **_drain_options()
)


async def _opens_database(scope: Any, receive: Any, send: Any) -> None:
    # A raw ASGI app that sets up on lifespan before reading its first message.
    if scope["type"] == "lifespan":
        raise RuntimeError("database is down")
    await _django_like(scope, receive, send)


#: An app whose lifespan raises before it reads the startup message.
crashes_before_reading = VersionMiddleware(_opens_database, **_drain_options())
