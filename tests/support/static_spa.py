"""The static SPA of the browser tests: its two builds, the site that serves one build at a
time behind `VersionMiddleware`, and reading what a tab asked for (tests/browser/
test_static_spa.py, test_static_spa_unreleased.py). The SPA itself is in
tests/browser/static_spa."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from tests.support.browser import Tab
from tests.support.servers import ROOT, RedisServer, run_cli, wait_for

SPA = ROOT / "tests" / "browser" / "static_spa"


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two releases of the SPA, r1 and r2, each built on its own (its chunk names differ)."""
    out: dict[str, Path] = {}
    for release in ("r1", "r2"):
        target = tmp_path_factory.mktemp(release)
        subprocess.run(
            ["node", str(SPA / "build.mjs"), str(target), release], cwd=ROOT / "js", check=True, timeout=120
        )
        out[release] = target
    return out


class Site:
    """The served site: one build's files at a time, and the store its server follows."""

    def __init__(self, root: Path, redis: RedisServer, app_name: str) -> None:
        self.root = root
        self.redis = redis
        self.app_name = app_name
        self.url = ""
        #: The epoch of r1, deployed before the server starts.
        self.first = 0

    def deploy(self, build: Path, label: str, *bump_args: str) -> int:
        """Copy *build* in, delete every file the new build does not have (the old chunks),
        then bump; return the epoch once the server serves it."""
        new = {path.relative_to(build) for path in build.rglob("*") if path.is_file()}
        for path in list(self.root.rglob("*")):
            if path.is_file() and path.relative_to(self.root) not in new:
                path.unlink()
        shutil.copytree(build, self.root, dirs_exist_ok=True)
        return self.bump(label, *bump_args)

    def bump(self, label: str, *args: str) -> int:
        result = run_cli("--url", self.redis.url, "--app", self.app_name, "--json", "bump", label, *args)
        assert result.returncode == 0, result.stderr
        epoch = int(json.loads(result.stdout)["epoch"])
        if self.url:
            wait_for(lambda: self.served_epoch() == epoch, timeout=10)
        return epoch

    def served_epoch(self) -> int | None:
        with urllib.request.urlopen(self.url + "/__spa-version", timeout=5) as response:
            record = json.loads(response.read())
        return None if record is None else int(record["epoch"])


def site_app(site: Site) -> Starlette:
    """Static files the way a static host serves an SPA: assets by name (404 once deleted),
    index.html for every other path, never cached; plus a small JSON API."""

    async def asset(request: Request) -> Response:
        path = site.root / "assets" / request.path_params["name"]
        if not path.is_file():
            return Response("gone", status_code=404)
        return FileResponse(path, media_type="text/javascript")

    async def shell(request: Request) -> Response:
        return FileResponse(site.root / "index.html", headers={"cache-control": "no-store"})

    async def items(request: Request) -> Response:
        return JSONResponse(["apples", "pears"])

    async def save(request: Request) -> Response:
        return JSONResponse({"saved": (await request.json())["text"]})

    async def precache(request: Request) -> Response:
        return FileResponse(site.root / "precache.json", headers={"cache-control": "no-store"})

    async def worker(request: Request) -> Response:
        return FileResponse(
            SPA / "sw.js", media_type="text/javascript", headers={"cache-control": "no-cache"}
        )

    return Starlette(
        routes=[
            Route("/api/items", items),
            Route("/api/save", save, methods=["POST"]),
            Route("/sw.js", worker),
            Route("/precache.json", precache),
            Route("/assets/{name}", asset),
            Route("/{path:path}", shell),
        ]
    )


@pytest.fixture
async def tab(context: BrowserContext) -> AsyncIterator[Tab]:
    yield Tab(await context.new_page())


async def open_spa(tab: Tab, url: str, release: str) -> None:
    await tab.page.goto(url)
    await tab.eventually(f"window.app && app.release === '{release}' && document.querySelector('h1')")


def requests_to(tab: Tab, path: str) -> list[tuple[str, dict[str, str]]]:
    return [(method, headers) for method, url, headers in tab.requests if url.split("?")[0].endswith(path)]
