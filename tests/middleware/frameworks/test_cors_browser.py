"""CORS in real Chromium: a page on one port reads the version from an API on another port."""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from playwright.async_api import Browser
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from spa_version import VersionMiddleware, open_store
from tests.support.servers import ThreadedUvicorn

pytestmark = pytest.mark.browser

# The page fetches the API cross-origin and writes what it could read into the DOM.
PAGE = """<!doctype html><html><body><pre id="out">pending</pre><script>
fetch(new URLSearchParams(location.search).get("api"))
  .then(async (r) => {
    const body = await r.json();
    document.getElementById("out").textContent = JSON.stringify(
      {status: r.status, version: r.headers.get("X-SPA-Version"), body: body});
  })
  .catch((e) => { document.getElementById("out").textContent = JSON.stringify({error: String(e)}); });
</script></body></html>"""


async def page(request: Request) -> HTMLResponse:
    return HTMLResponse(PAGE)


def build_api(page_origin: str, app_name: str, *, expose_header: bool) -> FastAPI:
    """An API allowing the page's origin, with the version middleware outermost (added last)."""
    api = FastAPI()

    @api.get("/api/data")
    async def data() -> dict[str, int]:
        return {"answer": 42}

    api.add_middleware(CORSMiddleware, allow_origins=[page_origin])
    api.add_middleware(
        VersionMiddleware, store=f"memory://{app_name}", app_name=app_name, expose_header=expose_header
    )
    return api


async def read_from_page(browser: Browser, page_url: str, api_url: str) -> dict[str, object]:
    tab = await browser.new_page()
    try:
        await tab.goto(f"{page_url}/?api={api_url}/api/data")
        await tab.wait_for_function("document.getElementById('out').textContent !== 'pending'", timeout=15000)
        result: dict[str, object] = json.loads(await tab.inner_text("#out"))
        return result
    finally:
        await tab.close()


@pytest.mark.parametrize(
    ("expose_header", "readable"),
    [
        # The middleware lists its header in Access-Control-Expose-Headers: the page reads it.
        (True, True),
        # Turned off, the browser hides the header from the page (the control: the test can fail).
        (False, False),
    ],
)
async def test_cross_origin_page_reads_the_version(
    browser: Browser, app_name: str, expose_header: bool, readable: bool
) -> None:
    """A page on one origin reads X-SPA-Version from an API on another only when it is exposed."""
    epoch = (await open_store(f"memory://{app_name}", app=app_name).bump("cors-1")).release.epoch
    expected = f"{epoch}; label=cors-1; policy=next-navigation" if readable else None
    with ThreadedUvicorn(Starlette(routes=[Route("/", page)])) as page_server:
        api = build_api(page_server.url, app_name, expose_header=expose_header)
        with ThreadedUvicorn(api) as api_server:
            assert page_server.port != api_server.port  # two origins
            result = await read_from_page(browser, page_server.url, api_server.url)
    assert result == {"status": 200, "version": expected, "body": {"answer": 42}}
