"""Real Chromium (Debian's, via Python Playwright) against the demo SPA in examples/starlette_app.

The demo runs under real uvicorn with `VersionMiddleware` on a private redis-server; bumps
go through the real CLI. Nothing is mocked: what these tests see is what a user's tab does.
"""

from __future__ import annotations

import importlib.util
import json
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import BrowserContext

from tests.support.browser import Tab
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
async def new_tab(context: BrowserContext) -> Callable[[], Any]:
    async def make() -> Tab:
        return Tab(await context.new_page())

    return make
