"""Shared fixtures: a real redis-server for the session, unique app names, CLI runner."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.support.servers import RedisServer, redis_server

# Fixtures that tests in more than one folder use: ``context`` (a browser profile: tests/browser,
# tests/stores/store_loss...) and ``fleet`` (HAProxy: tests/drain, tests/pinning).
pytest_plugins = ["tests.support.browser", "tests.support.haproxy_fleet"]


@pytest.fixture(scope="session")
def redis() -> Iterator[RedisServer]:
    """One private redis-server for the whole session (tests use distinct app names)."""
    with redis_server() as server:
        yield server


@pytest.fixture
def app_name() -> str:
    """A fresh store namespace, so tests sharing one Redis never see each other's releases."""
    return f"t-{uuid.uuid4().hex[:10]}"


# Debian's Chromium (playwright cannot download its own here), with everything that would
# reach the network or a GPU turned off.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """A real headless Chromium (a playwright ``Browser``) for one test."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()
