"""The script-tag build in real Chromium, served under a mount prefix: it finds the version
endpoint next to its own URL (document.currentScript), and reads a header that arrives
comma-joined (fetch and XMLHttpRequest join repeated header lines) at its highest epoch.

The server here is a plain Starlette app that serves the wheel's script and an endpoint
under /shop, as a mounted app does: what is tested is the browser side alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from spa_version.assets import load_script
from tests.support.browser import Tab
from tests.support.servers import ThreadedUvicorn

pytestmark = [pytest.mark.browser]

PAGE = """<!doctype html><html><head>
<meta name="spa-version" content="5; label=five; policy=next-navigation">
<script src="{src}" defer{attrs}></script></head><body><h1>shop</h1></body></html>"""

# What a proxy in front of two servers may send: the header twice, one line each.
REPEATED = [("x-spa-version", "7; label=seven; policy=prompt"), ("x-spa-version", "6; label=six")]


def with_repeated_header(response: Response) -> Response:
    response.raw_headers += [(name.encode(), value.encode()) for name, value in REPEATED]
    return response


async def page(request: Request) -> HTMLResponse:
    src = request.query_params.get("src", "/shop/__spa-version.js")
    attrs = "".join(
        f' {name}="{value}"' for name, value in request.query_params.items() if name.startswith("data-")
    )
    return HTMLResponse(PAGE.format(src=src, attrs=attrs))


async def script(request: Request) -> Response:
    asset = load_script()
    assert asset is not None
    return Response(asset.body, media_type="text/javascript")


async def endpoint(request: Request) -> Response:
    return with_repeated_header(JSONResponse({"epoch": 7, "label": "seven"}))


@pytest.fixture
def shop() -> Iterator[str]:
    app = Starlette(
        routes=[
            Route("/shop/", page),
            Route("/shop/__spa-version.js", script),
            Route("/static/spa-version.js", script),
            Route("/shop/__spa-version", endpoint),
            Route("/shop/api/items", lambda request: with_repeated_header(JSONResponse([]))),
        ]
    )
    with ThreadedUvicorn(app) as server:
        yield server.url


def requested(tab: Tab, path: str) -> int:
    return sum(1 for _, url, _ in tab.requests if url.split("?")[0].endswith(path))


async def open_shop(tab: Tab, url: str) -> None:
    await tab.page.goto(url)
    await tab.eventually("window.SpaVersion && SpaVersion.start().baseline === 5")


@pytest.mark.parametrize(
    "query",
    [
        "",  # the script under the prefix: the endpoint is next to it
        "?src=/static/spa-version.js&data-endpoint=/shop/__spa-version",  # another name: the tag says
    ],
)
async def test_the_script_checks_the_endpoint_under_its_prefix(
    shop: str, new_tab: Callable[[], Any], query: str
) -> None:
    tab: Tab = await new_tab()
    await open_shop(tab, shop + "/shop/" + query)
    assert await tab.js("SpaVersion.check()") is True
    assert requested(tab, "/shop/__spa-version") == 1
    assert requested(tab, "/__spa-version") == 1, "no other endpoint asked (the site root's)"
    # The endpoint's header arrived as two lines: the highest epoch, whole.
    assert await tab.js("SpaVersion.start().latest") == {
        "epoch": 7,
        "label": "seven",
        "policy": "prompt",
        "min": None,
    }


async def test_a_comma_joined_header_over_xhr_counts_at_its_highest_epoch(
    shop: str, new_tab: Callable[[], Any]
) -> None:
    tab: Tab = await new_tab()
    await open_shop(tab, shop + "/shop/")
    status = await tab.js(
        """new Promise((done) => {
          const xhr = new XMLHttpRequest();
          xhr.open("GET", "/shop/api/items");
          xhr.onloadend = () => done(xhr.status);
          xhr.send();
        })"""
    )
    assert status == 200
    assert await tab.eventually("SpaVersion.start().latest?.epoch === 7")
    assert await tab.js("SpaVersion.start().latest.policy") == "prompt"
