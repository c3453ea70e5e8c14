"""Real Chromium (Debian's, via Python Playwright) against the demo SPA in examples/starlette_app.

The demo runs under real uvicorn with `VersionMiddleware` on a private redis-server; bumps
go through the real CLI. Nothing is mocked: what these tests see is what a user's tab does.
"""

from __future__ import annotations

import importlib.util
import json
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, Request

from tests.support.browser import eventually
from tests.support.servers import RedisServer, ThreadedUvicorn, run_cli, wait_for

DEMO = Path(__file__).resolve().parents[2] / "examples" / "starlette_app" / "app.py"


def load_demo() -> Any:
    """Import the demo under a unique module name (other examples are also called ``app``)."""
    spec = importlib.util.spec_from_file_location("spa_version_starlette_demo", DEMO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Demo:
    """The demo app on a real server, with its own app namespace in the test Redis."""

    def __init__(self, redis: RedisServer, app_name: str) -> None:
        self.redis = redis
        self.app_name = app_name
        self.server: ThreadedUvicorn | None = None
        #: The epoch of release-1, published before the server starts.
        self.first = 0

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def bump(self, label: str, *args: str) -> int:
        """Publish a release with the real CLI; return its epoch once the server serves it."""
        result = run_cli("--url", self.redis.url, "--app", self.app_name, "--json", "bump", label, *args)
        assert result.returncode == 0, result.stderr
        epoch = int(json.loads(result.stdout)["epoch"])
        if self.server is not None:
            wait_for(lambda: self.served_epoch() == epoch, timeout=10)
        return epoch

    def served_epoch(self) -> int | None:
        with urllib.request.urlopen(self.url + "/__spa-version", timeout=5) as response:
            record = json.loads(response.read())
        return None if record is None else int(record["epoch"])


@pytest.fixture
def demo(redis: RedisServer, app_name: str) -> Iterator[Demo]:
    """The demo, started after its first release (``demo.first``) is published."""
    demo = Demo(redis, app_name)
    demo.first = demo.bump("release-1")
    app = load_demo().create_app(store=redis.url, app_name=app_name)
    with ThreadedUvicorn(app) as server:
        demo.server = server
        yield demo


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh profile: its own sessionStorage (the loop guard's), cache and tabs."""
    context = await browser.new_context()
    try:
        yield context
    finally:
        await context.close()


class Tab:
    """A page plus what the tests read from outside it: its page loads and requests."""

    def __init__(self, page: Page) -> None:
        self.page = page
        #: URL of every full page load (document request) in this tab.
        self.loads: list[str] = []
        #: Every request the tab made: (method, url, headers).
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        page.on("request", self._on_request)

    def _on_request(self, request: Request) -> None:
        if request.is_navigation_request() and request.frame == self.page.main_frame:
            self.loads.append(request.url)
        self.requests.append((request.method, request.url, request.headers))

    async def open(self, url: str) -> None:
        await self.page.goto(url)
        await self.ready()

    async def ready(self) -> None:
        """Wait until the page's first render (and its AJAX call) is done."""
        await self.eventually("document.getElementById('api-version').textContent !== '-'")

    async def js(self, expression: str) -> Any:
        return await self.page.evaluate(expression)

    async def eventually(self, expression: str, timeout: float = 15.0) -> Any:
        """Poll a JS expression until truthy, across page loads (`tests.support.browser.eventually`)."""
        return await eventually(self.page, expression, timeout)

    async def mark(self) -> None:
        """Tag this document: the tag is gone after any full page load."""
        await self.page.evaluate("window.__sameDocument = true")

    async def same_document(self) -> bool:
        return bool(await self.page.evaluate("window.__sameDocument === true"))

    async def baseline(self) -> int | None:
        value = await self.page.evaluate("SpaVersion.start().baseline")
        return None if value is None else int(value)

    async def latest_epoch(self) -> int | None:
        value = await self.page.evaluate("SpaVersion.start().latest && SpaVersion.start().latest.epoch")
        return None if value is None else int(value)

    async def events(self, kind: str) -> list[int]:
        """Epochs of the helper events of one type the demo logged in this document."""
        epochs = await self.page.evaluate(
            f"[...document.querySelectorAll('#log li[data-type=\"{kind}\"]')].map(li => +li.dataset.epoch)"
        )
        return [int(e) for e in epochs]

    async def refresh(self, expect_epoch: int) -> None:
        """Click "Refresh (AJAX)" and wait until the answer carries *expect_epoch*."""
        await self.page.click("#refresh")
        await self.eventually(
            f"document.getElementById('api-version').textContent.startsWith('{expect_epoch};')"
        )


@pytest.fixture
async def new_tab(context: BrowserContext) -> Callable[[], Any]:
    async def make() -> Tab:
        return Tab(await context.new_page())

    return make
