"""Waiting on a real Chromium tab (playwright) with a deadline."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page

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
