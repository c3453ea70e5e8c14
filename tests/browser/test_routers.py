"""docs/js.md's router recipes, each in real Chromium with the real router: React Router (a
data router), Vue Router and TanStack Router.

Each app (tests/browser/routers, built with esbuild) has a page A linking to a page B whose
data comes from ``/api/b`` (a loader, or the component's setup). With a new version
pending, clicking the link loads B in full with the new baseline, and B's request is made
once, by the new page: the old code never started it. History gets one entry.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from spa_version import VersionMiddleware
from tests.support.browser import Tab
from tests.support.servers import ROOT, RedisServer, ThreadedUvicorn, run_cli, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.redis]

ROUTERS = Path(__file__).parent / "routers"


class RouterApp:
    def __init__(self, redis: RedisServer, app_name: str, url: str = "") -> None:
        self.redis, self.app_name, self.url = redis, app_name, url

    def bump(self, label: str) -> int:
        result = run_cli("--url", self.redis.url, "--app", self.app_name, "--json", "bump", label)
        assert result.returncode == 0, result.stderr
        epoch = int(json.loads(result.stdout)["epoch"])

        def served() -> bool:
            with urllib.request.urlopen(self.url + "/__spa-version", timeout=5) as response:
                record = json.loads(response.read())
            return record is not None and int(record["epoch"]) == epoch

        if self.url:
            wait_for(served, timeout=10)
        return epoch


@pytest.fixture(params=["react", "vue", "tanstack"])
def router_app(
    request: pytest.FixtureRequest, redis: RedisServer, app_name: str, tmp_path: Path
) -> Iterator[tuple[str, RouterApp]]:
    name = request.param
    subprocess.run(
        ["node", str(ROUTERS / "build.mjs"), str(tmp_path), name], cwd=ROOT / "js", check=True, timeout=120
    )
    app = RouterApp(redis, app_name)
    app.bump("one")

    async def script(request: Request) -> Response:
        return FileResponse(tmp_path / "app.js", media_type="text/javascript")

    async def shell(request: Request) -> Response:
        return FileResponse(tmp_path / "index.html", headers={"cache-control": "no-store"})

    async def data(request: Request) -> Response:
        return PlainTextResponse("data")

    site = Starlette(
        routes=[
            Route("/app.js", script),
            Route("/api/b", data),
            Route("/api/ping", data),
            Route("/{p:path}", shell),
        ]
    )
    with ThreadedUvicorn(VersionMiddleware(site, store=redis.url, app_name=app_name)) as server:
        app.url = server.url
        yield name, app


@pytest.fixture
async def tab(context: BrowserContext) -> AsyncIterator[Tab]:
    yield Tab(await context.new_page())


async def test_a_pending_version_loads_the_links_target_before_its_data(
    router_app: tuple[str, RouterApp], tab: Tab
) -> None:
    name, app = router_app
    await tab.page.goto(app.url + "/")
    await tab.eventually("document.querySelector('h1') && document.querySelector('h1').textContent === 'A'")
    entries = await tab.js("history.length")

    epoch = app.bump("two")
    await tab.js("fetch('/api/ping')")
    await tab.eventually(f"sv.latest && sv.latest.epoch === {epoch}")
    await tab.mark()
    await tab.page.click("a")
    await tab.eventually(
        f"!window.__sameDocument && window.sv && sv.baseline === {epoch}"
        " && document.querySelector('h1') && document.querySelector('h1').textContent === 'B: data'"
    )
    assert tab.loads == [app.url + "/", app.url + "/b"], name
    assert await tab.js("history.length") == entries + 1, name
    b_requests = [headers for _, url, headers in tab.requests if url.endswith("/api/b")]
    assert [h.get("x-spa-client-version") for h in b_requests] == [str(epoch)], (
        f"{name}: B's data was fetched by the old code too"
    )
