"""Real Chromium tabs (playwright): waiting on one with a deadline (`eventually`), a tab of the
demo SPA (`Tab`), and the ``context`` fixture (a fresh profile; registered in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, Request
from playwright.async_api import Error as PlaywrightError

from tests.support.servers import async_wait_for


async def eventually(page: Page, expression: str, timeout: float = 20.0) -> Any:
    """Poll a JS expression in *page* until it is truthy, and return its value; fail after
    *timeout* seconds. A page load in between destroys the context mid-evaluation: that
    is just "not yet"."""
    errors: list[PlaywrightError] = []

    async def value() -> Any:
        try:
            return await page.evaluate(expression)
        except PlaywrightError as exc:  # navigating
            errors.append(exc)
            return None

    return await async_wait_for(
        value,
        timeout=timeout,
        interval=0.05,
        message=lambda: f"not true within {timeout} s: {expression} (last error: {errors[-1:]})",
    )


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


def endpoint_requests(tab: Tab) -> int:
    """How many times *tab* asked the version endpoint."""
    return sum(1 for _, url, _ in tab.requests if url.endswith("/__spa-version"))
