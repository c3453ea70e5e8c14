"""Django + Channels under real uvicorn: HTTP and websocket handshakes are stamped."""

from __future__ import annotations

import logging
import threading

import httpx
import pytest
import websockets
from django.test import override_settings

from spa_version.django.listener_thread import stop_listener_thread
from tests.support.epochs import bumped_epoch
from tests.support.servers import RedisServer, ThreadedUvicorn, async_wait_for, run_cli

from .channels_app import build_application

pytestmark = pytest.mark.redis


async def handshake_version(url: str) -> str | None:
    async with websockets.connect(url, open_timeout=10) as ws:
        await ws.send("ping")
        assert await ws.recv() == "ping"
        return ws.response.headers.get("X-SPA-Version")


async def test_channels_websocket_handshake_is_stamped(
    redis: RedisServer, app_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The handshake of a Channels consumer carries the version, and follows a Redis bump."""
    stop_listener_thread()  # whatever ran before: the thread must not exist, to see it is not started
    first = bumped_epoch(run_cli("--url", redis.url, "--app", app_name, "bump", "--json", "ch-1"))
    with (
        override_settings(SPA_VERSION={"URL": redis.url, "APP": app_name}),
        caplog.at_level(logging.WARNING, logger="spa_version"),
        ThreadedUvicorn(build_application()) as server,
    ):
        ws_url = server.ws_url + "/ws/echo/"
        assert (await handshake_version(ws_url) or "").startswith(f"{first}; label=ch-1;")

        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(server.url + "/")
            assert response.status_code == 200
            # Django's middleware and the ASGI wrapper both stamp: still one header.
            assert response.headers.get_list("x-spa-version") == [
                f"{first}; label=ch-1; policy=next-navigation"
            ]
            # ...from one source: Django's side uses the wrapper's version (scope), so the meta
            # tag agrees with the header and no listener thread is started.
            assert f'content="{first}; label=ch-1; policy=next-navigation">' in response.text
            assert "spa-version listener" not in [t.name for t in threading.enumerate()]

        second = bumped_epoch(run_cli("--url", redis.url, "--app", app_name, "bump", "--json", "ch-2"))
        assert second > first

        seen: list[str | None] = []

        async def handshake_stamped() -> bool:  # a fresh handshake each round
            seen.append(await handshake_version(ws_url))
            return (seen[-1] or "").startswith(f"{second}; label=ch-2;")

        await async_wait_for(
            handshake_stamped, timeout=10, interval=0.05, message=lambda: f"last: {seen[-1:]}"
        )
    # The wrapper ran lifespan itself (Django refuses it) without complaint.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_plain_django_asgi_under_uvicorn(redis: RedisServer, app_name: str) -> None:
    """Django's own ASGI handler (no Channels, no wrapper): the async path stamps from the listener thread."""
    from django.core.asgi import get_asgi_application

    epoch = bumped_epoch(run_cli("--url", redis.url, "--app", app_name, "bump", "--json", "asgi-1"))
    expected = f"{epoch}; label=asgi-1; policy=next-navigation"
    with (
        override_settings(SPA_VERSION={"URL": redis.url, "APP": app_name}),
        # Django refuses lifespan; uvicorn's "auto" would log that, so turn it off as users do.
        ThreadedUvicorn(get_asgi_application(), lifespan="off") as server,
    ):
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            sync_view = await client.get("/")
            async_view = await client.get("/api/async/")
            assert sync_view.headers.get_list("x-spa-version") == [expected]
            assert async_view.headers.get_list("x-spa-version") == [expected]
            assert f'content="{expected}">' in sync_view.text
            assert "spa-version listener" in [t.name for t in threading.enumerate()]
