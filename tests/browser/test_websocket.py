"""watchSocket/socketUrl in real Chromium: a drain close (1012 or 4012, with a version as the
reason) marks the tab stale; a drain close without a readable reason checks the endpoint."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from spa_version import VersionMiddleware
from spa_version.middleware import CLIENT_QUERY_PARAM
from spa_version.templating import current_from_scope, meta_tag
from tests.support.browser import Tab, endpoint_requests
from tests.support.servers import (
    RedisServer,
    ThreadedUvicorn,
    async_wait_for,
    run_cli,
    wait_for,
)

pytestmark = [pytest.mark.browser, pytest.mark.redis]

# The baseline is the store's current release, rendered into the page as a server does.
PAGE = """<!doctype html><html><head>{meta}
<script src="/__spa-version.js"></script></head><body><h1>sockets</h1></body></html>"""


class SocketApp:
    """A page, and a socket that closes at once with the code and reason the test asks for."""

    def __init__(self) -> None:
        self.client_epochs: list[str | None] = []

    async def page(self, request: Request) -> HTMLResponse:
        return HTMLResponse(PAGE.format(meta=meta_tag(current_from_scope(request.scope))))

    async def closing(self, websocket: WebSocket) -> None:
        self.client_epochs.append(websocket.query_params.get(CLIENT_QUERY_PARAM))
        await websocket.accept()
        code = int(websocket.query_params["code"])
        await websocket.close(code=code, reason=websocket.query_params.get("reason", ""))


def bump(redis: RedisServer, app_name: str, label: str) -> int:
    """Publish a release with the real CLI; return its epoch."""
    result = run_cli("--url", redis.url, "--app", app_name, "--json", "bump", label)
    assert result.returncode == 0, result.stderr
    return int(json.loads(result.stdout)["epoch"])


@pytest.fixture
def socket_app(redis: RedisServer, app_name: str) -> Iterator[tuple[SocketApp, str]]:
    url = redis.url
    bump(redis, app_name, "one")
    handlers = SocketApp()
    inner = Starlette(routes=[Route("/", handlers.page), WebSocketRoute("/closing", handlers.closing)])
    with ThreadedUvicorn(VersionMiddleware(inner, store=url, app_name=app_name)) as server:
        yield handlers, server.url


async def open_page(tab: Tab, url: str) -> int:
    """Load the page; return its baseline once the helper has started."""
    await tab.page.goto(url + "/")
    return int(await tab.eventually("window.SpaVersion && SpaVersion.start().baseline"))


def served_epoch(url: str) -> int | None:
    with urllib.request.urlopen(url + "/__spa-version", timeout=5) as response:
        record = json.loads(response.read())
    return None if record is None else int(record["epoch"])


async def close_with(tab: Tab, code: int, reason: str) -> None:
    """Open a watched socket that the server closes with *code*/*reason*; wait for the close."""
    await tab.js(
        f"""new Promise((done) => {{
          const url = SpaVersion.socketUrl('/closing?code={code}&reason=' + encodeURIComponent({reason!r}));
          SpaVersion.watchSocket(new WebSocket(url)).addEventListener('close', (e) => done(e.code));
        }})"""
    )


async def test_drain_close_marks_the_tab_stale(
    socket_app: tuple[SocketApp, str], new_tab: Callable[[], Any]
) -> None:
    """Only a drain close (1012, or 4012) whose reason is a version names the new release."""
    handlers, url = socket_app
    tab: Tab = await new_tab()
    baseline = await open_page(tab, url)

    await close_with(tab, 1000, f"{baseline + 1}; label=two")  # a normal close: says nothing
    await close_with(tab, 1011, f"{baseline + 1}; label=two")
    assert await tab.latest_epoch() is None
    assert endpoint_requests(tab) == 0

    await close_with(tab, 1012, f"{baseline + 1}; label=two; policy=next-navigation")
    assert await tab.latest_epoch() == baseline + 1
    assert await tab.js("SpaVersion.start().latest.label") == "two"
    # 4012: the same drain from a server that refuses 1012 (docs/protocol.md).
    await close_with(tab, 4012, f"{baseline + 2}; label=three; policy=prompt")
    assert await tab.latest_epoch() == baseline + 2
    assert await tab.js("SpaVersion.start().latest.policy") == "prompt"
    assert endpoint_requests(tab) == 0, "a close that names its version asks the server nothing"
    # The handshake carried the tab's epoch in the query (browsers can't set headers there).
    assert handlers.client_epochs == [str(baseline)] * 4


async def test_drain_close_without_a_reason_checks_the_endpoint(
    socket_app: tuple[SocketApp, str], new_tab: Callable[[], Any], redis: RedisServer, app_name: str
) -> None:
    """A drain close whose reason was dropped makes the tab ask the version endpoint."""
    _, url = socket_app
    tab: Tab = await new_tab()
    baseline = await open_page(tab, url)

    assert endpoint_requests(tab) == 0
    await close_with(tab, 1012, "")  # a restart, or a server that dropped the reason
    await async_wait_for(lambda: endpoint_requests(tab) == 1)
    assert await tab.latest_epoch() is None, "the endpoint still serves the page's release"

    epoch = bump(redis, app_name, "two")
    assert epoch > baseline
    # The bump reaches the server through Redis pub/sub: wait until it serves it.
    wait_for(lambda: served_epoch(url) == epoch, timeout=10)
    await close_with(tab, 4012, "not a version")
    assert await tab.eventually(f"SpaVersion.start().latest?.epoch === {epoch}")
    assert await tab.js("SpaVersion.start().latest.label") == "two"
