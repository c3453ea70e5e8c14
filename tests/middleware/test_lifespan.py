"""The listener's life: started and stopped by lifespan, or lazily for apps that refuse lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from spa_version import VersionMiddleware, open_store
from spa_version.protocol import format_header
from tests.support.lifespan import lifespan_running
from tests.support.servers import ThreadedUvicorn, async_wait_for, free_port, wait_for


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
        task = None if mw.follower is None else mw.follower.task
        assert task is not None and not task.done()
        assert mw.current.release is not None and mw.current.release.label == "v1"  # read before serving
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert task.done() and task.cancelled()
    assert mw.follower is None


async def test_app_that_raises_on_lifespan_refuses_it_for_the_server_too(app_name: str) -> None:
    """An app that refuses lifespan by raising (Django's ASGIHandler) raises to the server
    unchanged, so the server can say "lifespan unsupported"; nothing is started for it."""
    store = open_store(f"memory://{app_name}", app=app_name)
    mw = VersionMiddleware(django_like, store=store)
    with pytest.raises(ValueError, match="not lifespan"):
        await lifespan_messages(mw, "lifespan.startup", "lifespan.shutdown")
    assert mw.follower is None and not mw.deployment.running


async def test_app_that_ignores_lifespan_returns_at_once(app_name: str) -> None:
    """An app that returns from lifespan without reading a message: the middleware returns
    too, without answering lifespan in its place."""

    async def ignores_lifespan(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return
        await django_like(scope, receive, send)

    mw = VersionMiddleware(ignores_lifespan, store=open_store(f"memory://{app_name}", app=app_name))
    sent = await asyncio.wait_for(lifespan_messages(mw, "lifespan.startup", "lifespan.shutdown"), 10)
    assert sent == []
    assert mw.follower is None


async def test_app_failing_startup_is_not_masked(app_name: str) -> None:
    """An app that reads the startup message and then fails is a real failure: it propagates,
    and what startup started (listener, heartbeat) is stopped."""

    async def broken(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        raise RuntimeError("database is down")

    mw = VersionMiddleware(broken, store=open_store(f"memory://{app_name}", app=app_name))
    with pytest.raises(RuntimeError, match="database is down"):
        await lifespan_messages(mw, "lifespan.startup")
    assert mw.follower is None and not mw.deployment.running


async def test_startup_failed_stops_the_listener_agent_and_heartbeat(tmp_path: Path, app_name: str) -> None:
    """After ``lifespan.startup.failed`` (Starlette sends it when a startup handler raises)
    the listener, the agent and the heartbeat are stopped and the fleet record removed."""
    store_url = f"file://{tmp_path}"
    await open_store(store_url, app=app_name).bump("A")
    records = tmp_path / f"{app_name}.fleet"
    agent_port = free_port()
    started: list[asyncio.Task[None] | None] = []
    deployment_ran: list[bool] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        # The middleware's startup ran before this: its heartbeat and agent are up.
        started.append(None if mw.follower is None else mw.follower.task)
        deployment_ran.append(mw.deployment.running)
        await async_wait_for(lambda: any(records.glob("*.json")))
        await async_wait_for(lambda: mw.deployment.agent_port is not None)
        raise RuntimeError("database is down")
        yield  # pragma: no cover

    inner = Starlette(routes=[Route("/", lambda r: PlainTextResponse("ok"))], lifespan=lifespan)
    mw = VersionMiddleware(
        inner, store=store_url, app_name=app_name, build="A", agent_port=agent_port, heartbeat_interval=0.2
    )
    sent: list[str] = []
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    queue.put_nowait({"type": "lifespan.startup"})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    with pytest.raises(RuntimeError, match="database is down"):
        await mw({"type": "lifespan", "asgi": {"version": "3.0"}}, queue.get, send)
    assert sent == ["lifespan.startup.failed"]
    assert all(task is not None and task.done() for task in started) and deployment_ran == [True]
    assert mw.follower is None and not mw.deployment.running
    assert mw.deployment.agent_port is None
    assert list(records.glob("*.json")) == []
    with pytest.raises(OSError):  # nothing answers agent checks any more
        await asyncio.open_connection("127.0.0.1", agent_port)


async def test_without_lifespan_the_listener_starts_on_first_request(app_name: str) -> None:
    """Servers that never send lifespan still get a listener, started lazily by the first request."""
    store = open_store(f"memory://{app_name}", app=app_name)
    epoch = (await store.bump("v1")).release.epoch
    mw = VersionMiddleware(django_like, store=store)
    assert mw.follower is None
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mw), base_url="http://t") as client:
        assert (await client.get("/")).text == "django"
        assert mw.follower is not None
        await asyncio.wait_for(mw.listener.synced.wait(), 5)  # type: ignore[union-attr]
        assert (await client.get("/")).headers["x-spa-version"].startswith(f"{epoch};")
    await mw.shutdown()


def test_django_like_app_under_uvicorn_lifespan_auto(app_name: str, tmp_path: Any) -> None:
    """Under real uvicorn (lifespan=auto) an app that refuses lifespan is still stamped: the
    listener starts with the first request."""
    store_url = f"file://{tmp_path}"
    release = asyncio.run(open_store(store_url, app=app_name).bump("v1")).release
    mw = VersionMiddleware(django_like, store=store_url, app_name=app_name)
    with ThreadedUvicorn(mw, lifespan="auto") as server:
        assert httpx.get(server.url + "/").text == "django"
        wait_for(lambda: httpx.get(server.url + "/").headers.get("x-spa-version") == format_header(release))


async def test_a_task_closed_by_the_garbage_collector_does_no_store_io(tmp_path: Path, app_name: str) -> None:
    """A heartbeat task left pending when its loop goes away (a server without lifespan) is
    closed by the garbage collector, at any moment, maybe while another loop runs. That
    close must not await store I/O: it raised "coroutine ignored GeneratorExit" (and could
    hang in asyncio.to_thread on the wrong loop). The record is left to expire by its ttl."""
    store_url = f"file://{tmp_path}"
    await open_store(store_url, app=app_name).bump("A")
    records = tmp_path / f"{app_name}.fleet"
    for build in ("A", None):  # the deploy switch, and the plain fleet reporter
        mw = VersionMiddleware(django_like, store=store_url, app_name=app_name, build=build)
        left: list[Any] = []

        def serve_then_vanish(mw: VersionMiddleware = mw, left: list[Any] = left) -> None:
            loop = asyncio.new_event_loop()
            try:
                task = loop.create_task(mw.deployment.run(mw.options.open_store(), lambda: True))
                loop.run_until_complete(async_wait_for(lambda: any(records.glob("*.json"))))
                left.append(task.get_coro())
            finally:
                loop.close()  # with the task still pending

        thread = threading.Thread(target=serve_then_vanish)
        thread.start()
        thread.join(30)
        assert left, "the heartbeat never wrote its record"
        left.pop().close()  # what the garbage collector does, here with this test's loop running
        assert list(records.glob("*.json")) != []  # no I/O ran
        for record in records.glob("*.json"):
            record.unlink()


async def test_a_store_that_cannot_be_reopened_never_fails_a_request(
    app_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """After a lifespan closed the store, the next request reopens it; if that raises (a
    fault past validation), the request is served with what the process held (the first
    lifespan read the empty store: the unreleased value) and the failure is logged once,
    never a 5xx; the next lifespan starts anyway."""
    inner = Starlette(routes=[Route("/", lambda r: PlainTextResponse("ok"))])
    mw = VersionMiddleware(inner, store=f"memory://{app_name}", app_name=app_name)
    async with lifespan_running(mw):
        pass

    def broken(options: object) -> None:
        raise RuntimeError("store code fault")

    transport = httpx.ASGITransport(app=mw)
    with (
        mock.patch("spa_version.options.Options.open_store", broken),
        caplog.at_level("ERROR", "spa_version"),
    ):
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for _ in range(3):
                response = await client.get("/")
                assert response.status_code == 200 and response.text == "ok"
                assert response.headers["x-spa-version"] == "0; label=unreleased; policy=next-navigation"
        async with lifespan_running(mw) as sent:
            assert sent == ["lifespan.startup.complete"]
    assert [r.getMessage() for r in caplog.records].count(
        "spa-version: cannot open the store; serving without it"
    ) == 1
