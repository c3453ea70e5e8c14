"""Django refuses ASGI lifespan; the Channels/ASGI wrapper answers it on Django's behalf."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from channels.routing import ProtocolTypeRouter
from django.core.asgi import get_asgi_application
from django.test import override_settings

from spa_version import open_store
from spa_version.django.asgi import wrap_asgi
from spa_version.protocol import format_header
from tests.support.lifespan import lifespan_running
from tests.support.servers import ThreadedUvicorn, wait_for

from .channels_app import build_application


async def test_wrapper_answers_lifespan_for_django_and_runs_the_listener(app_name: str) -> None:
    """Django's ASGIHandler raises on lifespan; behind the wrapper the server gets startup and
    shutdown complete, and the listener starts (reading the store first) and stops with them."""
    store_url = f"memory://{app_name}"
    release = (await open_store(store_url, app=app_name).bump("dj-1")).release
    with override_settings(SPA_VERSION={"URL": store_url, "APP": app_name}):
        application = wrap_asgi(get_asgi_application())
    async with lifespan_running(application) as sent:
        assert sent == ["lifespan.startup.complete"]
        assert application.running
        assert application.current.snapshot.header == (b"x-spa-version", format_header(release).encode())
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert application.follower is None


async def test_a_router_with_its_own_lifespan_app_gets_the_messages(app_name: str) -> None:
    """A ProtocolTypeRouter that routes "lifespan" keeps its app: the wrapper passes lifespan to it."""
    seen: list[str] = []

    async def lifespan_app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            seen.append(message["type"])
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return

    with override_settings(SPA_VERSION={"URL": f"memory://{app_name}", "APP": app_name}):
        application = wrap_asgi(
            ProtocolTypeRouter({"http": get_asgi_application(), "lifespan": lifespan_app})
        )
    async with lifespan_running(application) as sent:
        assert application.follower is not None
    assert seen == ["lifespan.startup", "lifespan.shutdown"]
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_channels_app_under_uvicorn_lifespan_auto(
    app_name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Under real uvicorn with lifespan "auto", the Channels app speaks lifespan (no
    "unsupported"), is stamped from the first request, and stops its listener on shutdown."""
    store_url = f"file://{tmp_path}"
    release = asyncio.run(open_store(store_url, app=app_name).bump("dj-1")).release
    with override_settings(SPA_VERSION={"URL": store_url, "APP": app_name}):
        application = build_application()
        with (
            caplog.at_level(logging.INFO, logger="uvicorn.error"),
            ThreadedUvicorn(application, lifespan="auto", log_level="info", log_config=None) as server,
        ):
            # Startup read the store before serving: the very first response is stamped.
            response = httpx.get(server.url + "/api/async/", timeout=10)
            assert response.status_code == 200
            assert response.headers["x-spa-version"] == format_header(release)
    wait_for(lambda: application.follower is None, timeout=5)
    messages = [r.getMessage() for r in caplog.records]
    assert not any("unsupported" in m for m in messages), messages
    assert "Application startup complete." in messages
