"""The listener's life: started and stopped by lifespan, or lazily for apps that refuse lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from spa_version import VersionMiddleware, open_store
from tests.support.servers import ThreadedUvicorn, async_wait_for, wait_for


async def lifespan_messages(app: Any, *messages: str) -> list[str]:
    """Drive the lifespan protocol by hand, the way a server does; return what the app sent."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for message in messages:
        queue.put_nowait({"type": message})
    sent: list[str] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    await app({"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}, queue.get, send)
    return sent


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


async def django_like(scope: Any, receive: Any, send: Any) -> None:
    # Django's ASGIHandler: "Django can only handle ASGI/HTTP connections, not lifespan."
    if scope["type"] != "http":
        raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"django"})


async def test_starlette_lifespan_starts_and_stops_the_listener(app_name: str) -> None:
    """With a lifespan-aware app, startup starts the listener and shutdown cancels and awaits it."""
    store = open_store(f"memory://{app_name}", app=app_name)
    await store.bump("v1")
    inner = Starlette(routes=[Route("/", lambda r: PlainTextResponse("ok"))])
    mw = VersionMiddleware(inner, store=store)
    async with lifespan_running(mw) as sent:
        assert sent == ["lifespan.startup.complete"]
        task = mw._task
        assert task is not None and not task.done()
        assert mw.current.release is not None and mw.current.release.label == "v1"  # read before serving
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert task.done() and task.cancelled()
    assert mw._task is None


async def test_app_that_raises_on_lifespan_still_gets_clean_start_and_stop(app_name: str) -> None:
    """An app that refuses lifespan (Django) does not break it: the middleware answers lifespan itself."""
    store = open_store(f"memory://{app_name}", app=app_name)
    await store.bump("v1")
    mw = VersionMiddleware(django_like, store=store)
    sent = await lifespan_messages(mw, "lifespan.startup", "lifespan.shutdown")
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert mw._task is None


async def test_app_that_ignores_lifespan_still_gets_clean_start_and_stop(app_name: str) -> None:
    """An app that returns from lifespan without reading a message is covered the same way."""

    async def ignores_lifespan(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return
        await django_like(scope, receive, send)

    store = open_store(f"memory://{app_name}", app=app_name)
    await store.bump("v1")
    mw = VersionMiddleware(ignores_lifespan, store=store)
    async with lifespan_running(mw) as sent:
        # Started by lifespan, and the first release read before any request.
        assert sent == ["lifespan.startup.complete"]
        assert mw._task is not None and mw.current.release is not None
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert mw._task is None


async def test_app_failing_startup_is_not_masked(app_name: str) -> None:
    """An app that reads the startup message and then fails is a real failure: it propagates."""

    async def broken(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        raise RuntimeError("database is down")

    mw = VersionMiddleware(broken, store=open_store(f"memory://{app_name}", app=app_name))
    with pytest.raises(RuntimeError, match="database is down"):
        await lifespan_messages(mw, "lifespan.startup")
    await mw.shutdown()


async def test_without_lifespan_the_listener_starts_on_first_request(app_name: str) -> None:
    """Servers that never send lifespan still get a listener, started lazily by the first request."""
    store = open_store(f"memory://{app_name}", app=app_name)
    epoch = (await store.bump("v1")).release.epoch
    mw = VersionMiddleware(django_like, store=store)
    assert mw._task is None
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mw), base_url="http://t") as client:
        assert (await client.get("/")).text == "django"
        assert mw._task is not None
        await asyncio.wait_for(mw.listener.synced.wait(), 5)  # type: ignore[union-attr]
        assert (await client.get("/")).headers["x-spa-version"].startswith(f"{epoch};")
    await mw.shutdown()


def test_django_like_app_under_uvicorn_lifespan_auto(app_name: str, tmp_path: Any) -> None:
    """Under real uvicorn (lifespan=auto) a Django-like app is stamped and shuts down cleanly."""
    store_url = f"file://{tmp_path}"
    epoch = asyncio.run(open_store(store_url, app=app_name).bump("v1")).release.epoch
    mw = VersionMiddleware(django_like, store=store_url, app_name=app_name)
    with ThreadedUvicorn(mw, lifespan="auto") as server:
        response = httpx.get(server.url + "/")
        assert response.text == "django"
        assert response.headers["x-spa-version"] == f"{epoch}; label=v1; policy=next-navigation"
    wait_for(lambda: mw._task is None, timeout=5)
