"""Fixtures for the store-loss scenarios: a browser profile per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest


@pytest.fixture
async def context(browser: Any) -> AsyncIterator[Any]:
    """A fresh Chromium profile (its own sessionStorage, cache and tabs) for one test."""
    context = await browser.new_context()
    try:
        yield context
    finally:
        await context.close()
