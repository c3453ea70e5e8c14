"""An ASGI app's lifespan run as a server runs it (ASGI spec, "Lifespan Protocol"), for the
tests of the middleware's and Django's lifespan handling."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from tests.support.servers import async_wait_for


@contextlib.asynccontextmanager
async def lifespan_running(app: Any) -> AsyncIterator[list[str]]:
    """Run *app*'s lifespan like a server: startup on entry, shutdown on exit; yields what it sent."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: list[str] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    queue.put_nowait({"type": "lifespan.startup"})
    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, queue.get, send))
    await async_wait_for(lambda: "lifespan.startup.complete" in sent or task.done())
    try:
        yield sent
    finally:
        queue.put_nowait({"type": "lifespan.shutdown"})
        await task
