"""watchSocket/socketUrl in real Chromium: a drain close (1012 + version) marks the tab stale."""

from __future__ import annotations

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
from tests.browser.conftest import Tab
from tests.support.epochs import bumped_epoch
from tests.support.servers import RedisServer, ThreadedUvicorn, run_cli

pytestmark = [pytest.mark.browser, pytest.mark.redis]

PAGE = """<!doctype html><html><head>
<meta name="spa-version" content="{epoch}; label=one; policy=next-navigation">
<script src="/__spa-version.js"></script></head><body><h1>sockets</h1></body></html>"""


class SocketApp:
    """A page rendered with release *epoch*, and a socket that closes at once with the code and
    reason the test asks for."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.client_epochs: list[str | None] = []

    async def page(self, request: Request) -> HTMLResponse:
        return HTMLResponse(PAGE.format(epoch=self.epoch))

    async def closing(self, websocket: WebSocket) -> None:
        self.client_epochs.append(websocket.query_params.get(CLIENT_QUERY_PARAM))
        await websocket.accept()
        code = int(websocket.query_params["code"])
        await websocket.close(code=code, reason=websocket.query_params.get("reason", ""))


@pytest.fixture
def socket_app(redis: RedisServer, app_name: str) -> Iterator[tuple[SocketApp, str]]:
    url = redis.url
    handlers = SocketApp(bumped_epoch(run_cli("--url", url, "--app", app_name, "bump", "--json", "one")))
    inner = Starlette(routes=[Route("/", handlers.page), WebSocketRoute("/closing", handlers.closing)])
    with ThreadedUvicorn(VersionMiddleware(inner, store=url, app_name=app_name)) as server:
        yield handlers, server.url


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
    """Only a 1012 close whose reason is a version tells the tab about the new release."""
    handlers, url = socket_app
    tab: Tab = await new_tab()
    await tab.page.goto(url + "/")
    first, newer = handlers.epoch, handlers.epoch + 1
    await tab.eventually(f"window.SpaVersion && SpaVersion.start().baseline === {first}")

    await close_with(tab, 1000, f"{newer}; label=two")  # a normal close: says nothing
    await close_with(tab, 1012, "")  # an ordinary restart: no version
    assert await tab.latest_epoch() is None

    await close_with(tab, 1012, f"{newer}; label=two; policy=next-navigation")
    assert await tab.latest_epoch() == newer
    assert await tab.js("SpaVersion.start().latest.label") == "two"
    # The handshake carried the tab's epoch in the query (browsers can't set headers there).
    assert handlers.client_epochs == [str(first)] * 3
