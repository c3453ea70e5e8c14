"""Helpers shared by the framework integration tests."""

from __future__ import annotations

import asyncio
from typing import Any

import websockets

from spa_version import VersionMiddleware


def find_version_middleware(app: Any) -> VersionMiddleware:
    """The `VersionMiddleware` inside a built Starlette/FastAPI middleware stack."""
    node = getattr(app, "middleware_stack", None) or app
    for _ in range(50):  # bounded walk down the ``.app`` chain
        if isinstance(node, VersionMiddleware):
            return node
        node = getattr(node, "app", None)
        if node is None:
            break
    raise AssertionError(f"no VersionMiddleware in {app!r}")


async def ws_echo_version(url: str, text: str = "ping") -> str | None:
    """Open a websocket, check one echo round trip, return the handshake's version header."""
    async with websockets.connect(url, open_timeout=10) as ws:
        await ws.send(text)
        assert await asyncio.wait_for(ws.recv(), 10) == text
        return ws.response.headers.get("X-SPA-Version")
