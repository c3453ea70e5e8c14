"""A cross-origin SPA end to end in real Chromium: the page on one origin, its API on another.

Set up as docs/js.md and docs/fastapi.md say: the page loads the helper from the API, sends
its epoch to the API (``sendClientVersion``), and the API's CORS layer allows the page's
origin and the client header. Both middleware orders must work: the 409 of a stale client
makes the tab reload (fetch and XHR, the latter with the header set twice as the axios
recipe plus the helper do), and the version endpoint and the script are readable.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from playwright.async_api import Browser, Page
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from spa_version import EXPOSE_HEADERS, VersionMiddleware, format_header, open_store
from spa_version.release import Release
from tests.support.cross_origin import FETCH_POST, PAGE, XHR_POST, Recorder
from tests.support.servers import ThreadedUvicorn

pytestmark = pytest.mark.browser


def build_api(page_origin: str, url: str, app_name: str, order: str) -> FastAPI:
    """The API, with CORS as the docs configure it, in the given middleware order."""
    api = FastAPI()

    @api.post("/api/items")
    async def items() -> dict[str, bool]:
        return {"created": True}

    cors: dict[str, Any] = {
        "allow_origins": [page_origin],
        "allow_methods": ["GET", "POST"],
        "allow_headers": ["X-SPA-Client-Version"],
    }
    if order == "cors-outside-exposing":
        cors["expose_headers"] = list(EXPOSE_HEADERS)
    if order == "version-outside":  # the recommended order: added last = outermost
        api.add_middleware(CORSMiddleware, **cors)
        api.add_middleware(VersionMiddleware, store=url, app_name=app_name)
    else:
        api.add_middleware(VersionMiddleware, store=url, app_name=app_name)
        api.add_middleware(CORSMiddleware, **cors)
    return api


@pytest.fixture
async def releases(app_name: str) -> tuple[str, Release, Release]:
    """The tab's release, then a newer one that refuses it (min_compatible)."""
    store = open_store(f"memory://{app_name}", app=app_name)
    old = (await store.bump("old")).release
    new = (await store.bump("new", min_compatible="current")).release
    return f"memory://{app_name}", old, new


@pytest.fixture
def servers(
    request: pytest.FixtureRequest, releases: tuple[str, Release, Release], app_name: str
) -> Iterator[tuple[str, Recorder]]:
    """(page URL, API recorder): the page server and the API on two loopback origins."""
    url, old, _ = releases
    order: str = request.param
    api_box: dict[str, str] = {}

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(PAGE.format(baseline=format_header(old), api=api_box["url"]))

    with ThreadedUvicorn(Starlette(routes=[Route("/", page)])) as page_server:
        recorder = Recorder(build_api(page_server.url, url, app_name, order))
        with ThreadedUvicorn(recorder) as api_server:
            # Two ports: two origins (and "localhost" for the API, a different host too).
            api_box["url"] = api_server.url.replace("127.0.0.1", "localhost")
            yield page_server.url, recorder


ORDERS = ["version-outside", "cors-outside", "cors-outside-exposing"]


async def open_page(browser: Browser, url: str) -> Page:
    tab = await browser.new_page()
    await tab.goto(url)
    await tab.wait_for_function("window.sv && window.sv.baseline")
    return tab


@pytest.mark.parametrize("servers", ORDERS, indirect=True)
@pytest.mark.parametrize("client", ["fetch", "xhr"])
async def test_stale_tab_reloads_on_the_cross_origin_409(
    browser: Browser, servers: tuple[str, Recorder], releases: tuple[str, Release, Release], client: str
) -> None:
    """A stale tab's POST to the API on another origin gets a readable 409 and reloads, in either order."""
    page_url, recorder = servers
    _, old, _ = releases
    tab = await open_page(browser, page_url)
    try:
        async with tab.expect_event("load", timeout=15000):
            await tab.evaluate(FETCH_POST if client == "fetch" else XHR_POST, "/api/items")
        state = await tab.evaluate("() => [sessionStorage.loads, sessionStorage.reason]")
    finally:
        await tab.close()
    assert state == ["2", "stale-client"]
    # What reached the API: the tab's epoch, and for XHR set twice and joined.
    expected = str(old.epoch) if client == "fetch" else f"{old.epoch}, {old.epoch}"
    assert recorder.client_headers == [expected]


READ_OWN = """async () => {
  const out = {};
  for (const path of ["/__spa-version", "/__spa-version.js"]) {
    try {
      const r = await fetch(api + path, {headers: {}});
      out[path] = {status: r.status, version: r.headers.get("X-SPA-Version")};
    } catch (e) { out[path] = {error: String(e)}; }
  }
  out.check = await SpaVersion.check(sv);
  return JSON.stringify(out);
}"""


@pytest.mark.parametrize("servers", ORDERS, indirect=True)
async def test_endpoint_and_script_are_readable_cross_origin(
    browser: Browser, servers: tuple[str, Recorder], releases: tuple[str, Release, Release]
) -> None:
    """The version endpoint and the script, served by the middleware, are readable by the allowed origin."""
    page_url, _ = servers
    _, _, new = releases
    tab = await open_page(browser, page_url)
    try:
        result = json.loads(await tab.evaluate(READ_OWN))
    finally:
        await tab.close()
    value = format_header(new)
    assert result["/__spa-version"] == {"status": 200, "version": value}
    assert result["/__spa-version.js"] == {"status": 200, "version": value}
    # check() read the endpoint, learned of the newer epoch: the tab is stale.
    assert result["check"] is True
