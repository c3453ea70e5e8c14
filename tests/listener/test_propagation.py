"""A bump through the real CLI reaches a running app promptly: Redis pub/sub, and the file store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from spa_version import VersionMiddleware, parse_header
from tests.support.epochs import bumped_epoch
from tests.support.servers import RedisServer, ThreadedUvicorn, run_cli, wait_for

inner = Starlette(routes=[Route("/", lambda r: PlainTextResponse("ok"))])


def served_epoch(url: str) -> int | None:
    value = httpx.get(url + "/").headers.get("x-spa-version")
    return None if value is None else parse_header(value).epoch


@pytest.mark.parametrize("kind", ["redis", "file"])
def test_cli_bump_reaches_running_app(
    request: pytest.FixtureRequest, kind: str, app_name: str, tmp_path: Path
) -> None:
    """Bump in another process (the CLI); the running app serves the new epoch without a restart.

    Redis pushes it over pub/sub; the file store's listener polls the file's identity
    (docs/protocol.md, "The file store layout"). The deadline here is generous on purpose: the
    timing itself is measured by bench/, not asserted.
    """
    if kind == "redis":
        redis: RedisServer = request.getfixturevalue("redis")
        url = redis.url
    else:
        url = f"file://{tmp_path}"
    env = {"SPA_VERSION_URL": url, "SPA_VERSION_APP": app_name}
    first = bumped_epoch(run_cli("bump", "--json", "v1", env=env))
    # A long resync interval, so only the push (or the file poll) can deliver the bump.
    app = VersionMiddleware(inner, store=url, app_name=app_name, resync_interval=3600)
    with ThreadedUvicorn(app) as server:
        assert served_epoch(server.url) == first
        bumped = run_cli("bump", "v2", env=env)
        assert bumped.returncode == 0, bumped.stderr
        second = int(bumped.stdout.split("bumped to epoch ", 1)[1].split()[0])
        assert second > first
        if kind == "redis":
            assert "1 subscriber received it" in bumped.stdout
        wait_for(lambda: served_epoch(server.url) == second, timeout=10)


def test_concurrent_requests_across_a_bump(redis: RedisServer, app_name: str) -> None:
    """1,000 concurrent requests while a bump lands: every header parses, and the epoch never goes back."""
    env = {"SPA_VERSION_URL": redis.url, "SPA_VERSION_APP": app_name}
    first = bumped_epoch(run_cli("bump", "--json", "v1", env=env))
    stamped: list[bytes] = []
    app = VersionMiddleware(inner, store=redis.url, app_name=app_name, resync_interval=3600)

    async def recorder(scope: Any, receive: Any, send: Any) -> None:
        # Outside the middleware: sees headers in the order this worker sent them.
        async def record(message: Any) -> None:
            if message["type"] == "http.response.start":
                stamped.extend(v for k, v in message["headers"] if k == b"x-spa-version")
            await send(message)

        await app(scope, receive, record)

    async def load(url: str) -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
            before = asyncio.gather(*(client.get("/") for _ in range(500)))
            bump = asyncio.create_task(asyncio.to_thread(run_cli, "bump", "--json", "v2", env=env))
            responses = list(await before)
            second.append(bumped_epoch(await bump))
            responses += await asyncio.gather(*(client.get("/") for _ in range(500)))
            return responses

    second: list[int] = []
    with ThreadedUvicorn(recorder) as server:
        responses = asyncio.run(load(server.url))
        wait_for(lambda: served_epoch(server.url) == second[0], timeout=10)

    assert second[0] > first
    assert len(responses) == 1000
    assert all(r.status_code == 200 for r in responses)
    epochs = [parse_header(r.headers["x-spa-version"]).epoch for r in responses]
    assert set(epochs) <= {first, second[0]}
    in_order = [parse_header(v).epoch for v in stamped]
    assert len(in_order) >= 1000
    assert in_order == sorted(in_order), "a worker's epoch went backwards"
    assert in_order[-1] == second[0]
