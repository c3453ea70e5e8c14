"""Fail-open: Redis going away never fails a request, and the app catches up when it returns."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from spa_version import VersionMiddleware, open_store, parse_header
from tests.support.epochs import bumped_epoch
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


def bump(label: str, env: dict[str, str]) -> int:
    """Bump through the real CLI; return the epoch the store gave the release."""
    return bumped_epoch(run_cli("bump", "--json", label, env=env))


def lindex_calls(redis: RedisServer) -> int:
    """How many LINDEX (a read of the current release, `RedisStore.get`) *redis* has served."""
    found = re.search(r"cmdstat_lindex:calls=(\d+)", redis.command("INFO", "commandstats"))
    return int(found.group(1)) if found else 0


def test_redis_outage_and_recovery(own_redis: RedisServer, app_name: str) -> None:
    """Requests during an outage all succeed with the last good version; a bump made while the
    listener was away is served after recovery (re-read after re-subscribe)."""
    env = {"SPA_VERSION_URL": own_redis.url, "SPA_VERSION_APP": app_name}
    first = bump("v1", env)
    assert own_redis.command("SAVE") == "OK"
    app = VersionMiddleware(
        inner, store=own_redis.url, app_name=app_name, resync_interval=3600, reconnect_max_delay=0.5
    )
    with ThreadedUvicorn(app) as server:
        assert header(server.url) == f"{first}; label=v1; policy=next-navigation"
        own_redis.stop()
        # The outage: every request is served, with the last good version.
        wait_for(lambda: app.listener is not None and app.listener.failures >= 2, timeout=30)
        for _ in range(50):
            assert header(server.url) == f"{first}; label=v1; policy=next-navigation"
        own_redis.start()  # reloads the snapshot: v1 is still there
        second = bump("v2", env)
        assert second > first
        wait_for(lambda: header(server.url) == f"{second}; label=v2; policy=next-navigation", timeout=15)


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
            epoch = asyncio.run(_bump(url, app_name, "v1"))
            wait_for(lambda: header(server.url) == f"{epoch}; label=v1; policy=next-navigation", timeout=15)
    finally:
        redis.close()


async def _bump(url: str, app_name: str, label: str) -> int:
    store = open_store(url, app=app_name)
    try:
        return (await store.bump(label)).release.epoch
    finally:
        await store.aclose()


def test_garbage_in_redis_keeps_last_good_version(
    redis: RedisServer, app_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Garbage written straight into Redis is logged and ignored: the last good version stays, no 5xx."""
    caplog.set_level(logging.WARNING, "spa_version")
    env = {"SPA_VERSION_URL": redis.url, "SPA_VERSION_APP": app_name}
    first = bump("v1", env)
    app = VersionMiddleware(inner, store=redis.url, app_name=app_name, resync_interval=0.2)
    key = f"spa-version:{{{app_name}}}:history"
    channel = f"spa-version:{{{app_name}}}:bump"
    newer = first + 10**6  # an epoch the bad records claim: newer than v1, so only their badness stops them
    with ThreadedUvicorn(app) as server:
        assert parse_header(header(server.url) or "").epoch == first
        for garbage in [
            "v9\r\nSet-Cookie: x=1",
            json.dumps({"epoch": newer, "label": "a b"}),
            json.dumps({"epoch": 10**15, "label": "too-long"}),  # 16 digits: past the wire range
            "\x00",
            "[]",
        ]:
            redis.command("LPUSH", key, garbage)
            redis.command("PUBLISH", channel, garbage)
        wait_for(lambda: "ignoring a bad current record" in caplog.text, timeout=10)
        wait_for(lambda: "ignoring a bad bump message" in caplog.text, timeout=10)
        for _ in range(20):
            assert header(server.url) == f"{first}; label=v1; policy=next-navigation"


def test_store_reset_is_followed_after_two_rereads(
    own_redis: RedisServer, app_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A store that lost its data: while it is empty the worker keeps what it serves; once it
    holds an older release (restored from an old snapshot, a failover to a replica that missed
    a bump), the worker follows it after a second, confirming read, with one warning, instead
    of stamping an epoch the store no longer knows; the next bump moves past both."""
    caplog.set_level(logging.WARNING, "spa_version")
    env = {"SPA_VERSION_URL": own_redis.url, "SPA_VERSION_APP": app_name}
    epoch_key, history_key = f"spa-version:{{{app_name}}}:epoch", f"spa-version:{{{app_name}}}:history"
    first, second, third = (bump(label, env) for label in ("v1", "v2", "v3"))
    assert first < second < third
    (_, v2_record, _) = reversed(json.loads(run_cli("history", "--json", env=env).stdout))
    assert (v2_record["epoch"], v2_record["label"]) == (second, "v2")
    app = VersionMiddleware(inner, store=own_redis.url, app_name=app_name, resync_interval=0.2)
    with ThreadedUvicorn(app) as server:
        assert header(server.url) == f"{third}; label=v3; policy=next-navigation"

        # Emptied (FLUSHALL, a restart without persistence): nothing to follow, v3 stays.
        own_redis.command("DEL", epoch_key, history_key)
        reads = lindex_calls(own_redis)
        wait_for(lambda: lindex_calls(own_redis) >= reads + 3, timeout=15)  # resyncs read it empty
        assert header(server.url) == f"{third}; label=v3; policy=next-navigation"
        assert "differs from the one served here" not in caplog.text

        # Restored from an older snapshot: the store says v2, with no notification.
        own_redis.command("SET", epoch_key, str(second))
        own_redis.command("RPUSH", history_key, json.dumps(v2_record))
        wait_for(lambda: header(server.url) == f"{second}; label=v2; policy=next-navigation", timeout=10)
        warnings = [m for r in caplog.records if "differs from the one served here" in (m := r.getMessage())]
        assert len(warnings) == 1, warnings
        assert f"(epoch {second}, label v2)" in warnings[0] and f"(epoch {third}, label v3)" in warnings[0]

        # The next bump exceeds everything any worker or tab was served, v3 included.
        fresh = bump("fresh", env)
        assert fresh > third
        wait_for(lambda: header(server.url) == f"{fresh}; label=fresh; policy=next-navigation", timeout=10)
