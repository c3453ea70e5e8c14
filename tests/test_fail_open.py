"""Fail-open: Redis going away never fails a request, and the app catches up when it returns."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from spa_version import VersionMiddleware, open_store, parse_header
from tests.support.servers import RedisServer, ThreadedUvicorn, run_cli, wait_for

inner = Starlette(routes=[Route("/", lambda r: PlainTextResponse("ok"))])


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis of this test's own, which it may stop and start (it snapshots to disk on SAVE)."""
    server = RedisServer()
    server.start()
    yield server
    server.close()


def header(url: str) -> str | None:
    response = httpx.get(url + "/")
    assert response.status_code == 200
    return response.headers.get("x-spa-version")


def test_redis_outage_and_recovery(own_redis: RedisServer, app_name: str) -> None:
    """Requests during an outage all succeed with the last good version; a bump made while the
    listener was away is served after recovery (re-read after re-subscribe)."""
    env = {"SPA_VERSION_URL": own_redis.url, "SPA_VERSION_APP": app_name}
    assert run_cli("bump", "v1", env=env).returncode == 0
    assert own_redis.command("SAVE") == "OK"
    app = VersionMiddleware(
        inner, store=own_redis.url, app_name=app_name, resync_interval=3600, reconnect_max_delay=0.5
    )
    with ThreadedUvicorn(app) as server:
        assert header(server.url) == "1; label=v1; policy=next-navigation"
        own_redis.stop()
        # The outage: every request is served, with the last good version.
        wait_for(lambda: app.listener is not None and app.listener.failures >= 2, timeout=30)
        for _ in range(50):
            assert header(server.url) == "1; label=v1; policy=next-navigation"
        own_redis.start()  # reloads the snapshot: epoch 1 is still there
        bumped = run_cli("bump", "v2", env=env)
        assert bumped.returncode == 0, bumped.stderr
        wait_for(lambda: header(server.url) == "2; label=v2; policy=next-navigation", timeout=15)


def test_unreachable_at_startup_then_header_appears(app_name: str) -> None:
    """Redis absent at start-up: startup is not blocked for long, requests succeed without the
    header, and the header appears once Redis does."""
    redis = RedisServer()  # not started yet: its port is free
    url = redis.url
    app = VersionMiddleware(inner, store=url, app_name=app_name, startup_timeout=0.5, reconnect_max_delay=0.5)
    try:
        with ThreadedUvicorn(app) as server:
            for _ in range(20):
                assert header(server.url) is None
            redis.start()
            asyncio.run(_bump(url, app_name, "v1"))
            wait_for(lambda: header(server.url) == "1; label=v1; policy=next-navigation", timeout=15)
    finally:
        redis.close()


async def _bump(url: str, app_name: str, label: str) -> None:
    store = open_store(url, app=app_name)
    try:
        await store.bump(label)
    finally:
        await store.aclose()


def test_garbage_in_redis_keeps_last_good_version(
    redis: RedisServer, app_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Garbage written straight into Redis is logged and ignored: the last good version stays, no 5xx."""
    caplog.set_level(logging.WARNING, "spa_version")
    env = {"SPA_VERSION_URL": redis.url, "SPA_VERSION_APP": app_name}
    assert run_cli("bump", "v1", env=env).returncode == 0
    app = VersionMiddleware(inner, store=redis.url, app_name=app_name, resync_interval=0.2)
    key = f"spa-version:{{{app_name}}}:history"
    channel = f"spa-version:{{{app_name}}}:bump"
    with ThreadedUvicorn(app) as server:
        assert parse_header(header(server.url) or "").epoch == 1
        for garbage in ["v9\r\nSet-Cookie: x=1", '{"epoch": 9, "label": "a b"}', "\x00", "[]"]:
            redis.command("LPUSH", key, garbage)
            redis.command("PUBLISH", channel, garbage)
        wait_for(lambda: "ignoring a bad current record" in caplog.text, timeout=10)
        wait_for(lambda: "ignoring a bad bump message" in caplog.text, timeout=10)
        for _ in range(20):
            assert header(server.url) == "1; label=v1; policy=next-navigation"


def test_store_reset_is_followed_after_two_rereads(
    redis: RedisServer, app_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """If the store really went back (FLUSHALL, a new Redis), the worker follows it after two
    identical re-reads instead of stamping a dead epoch forever."""
    caplog.set_level(logging.WARNING, "spa_version")
    env = {"SPA_VERSION_URL": redis.url, "SPA_VERSION_APP": app_name}
    for label in ("v1", "v2", "v3"):
        assert run_cli("bump", label, env=env).returncode == 0
    app = VersionMiddleware(inner, store=redis.url, app_name=app_name, resync_interval=0.2)
    with ThreadedUvicorn(app) as server:
        assert parse_header(header(server.url) or "").epoch == 3
        redis.command("DEL", f"spa-version:{{{app_name}}}:epoch", f"spa-version:{{{app_name}}}:history")
        assert run_cli("bump", "fresh", env=env).returncode == 0  # epoch 1 again
        wait_for(lambda: header(server.url) == "1; label=fresh; policy=next-navigation", timeout=10)
        assert "went back from epoch 3 to 1" in caplog.text
