"""Apps under a mount prefix: `uvicorn --root-path`, Starlette `Mount`, FastAPI `root_path`.

The endpoint, the script and ``enforce_paths`` / ``enforce_exclude`` match relative to the
mount, and the script tag the template renders carries the prefix.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from spa_version import VersionMiddleware, open_store
from spa_version.asgi_scope import route_path
from spa_version.release import Release
from spa_version.templating import install
from tests.support.servers import ServerProcess, ThreadedUvicorn, async_wait_for, free_port, run_cli, wait_for

ROOT = Path(__file__).resolve().parents[3]
UVICORN = str(Path(sys.executable).parent / "uvicorn")


@pytest.mark.parametrize(
    ("path", "root_path", "expected"),
    [
        # ASGI spec, uvicorn >= 0.26, Starlette's Mount: path includes root_path
        ("/api/__spa-version", "/api", "/__spa-version"),
        ("/api/app/items", "/api/app", "/items"),
        ("/api", "/api", "/"),
        ("/api/x", "/api/", "/x"),
        # older servers and frameworks (FastAPI root_path= behind a stripping proxy): relative already
        ("/__spa-version", "/api", "/__spa-version"),
        # a path merely sharing the prefix's letters is not under it
        ("/apiary/x", "/api", "/apiary/x"),
    ],
)
def test_route_path(path: str, root_path: str, expected: str) -> None:
    """The path relative to the mount, with or without the prefix in scope["path"]."""
    assert route_path(path, root_path) == expected


def _bump_stale_setup(env: dict[str, str]) -> tuple[int, int]:
    """Two releases, the second refusing clients of the first; returns (old, current) epochs."""
    old = run_cli("bump", "old", "--json", env=env)
    assert old.returncode == 0, old.stderr
    new = run_cli("bump", "new", "--min-compatible", "current", "--json", env=env)
    assert new.returncode == 0, new.stderr
    return json.loads(old.stdout)["epoch"], json.loads(new.stdout)["epoch"]


@pytest.fixture
def store_env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "SPA_VERSION_URL": f"file://{tmp_path / 'store'}", "SPA_VERSION_APP": "prefix"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


@contextlib.contextmanager
def _uvicorn_process(target: str, root_path: str, env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    command = [UVICORN, target, "--root-path", root_path, "--host", "127.0.0.1", "--port", str(port)]
    with ServerProcess(
        "uvicorn", env, command=command, port=port, unset=("DJANGO_SETTINGS_MODULE",)
    ) as server:
        server.wait_answering("/")
        yield server.url
        server.send_signal(signal.SIGINT)
        server.wait_exit(timeout=20)
        output = server.output()
    assert "Traceback" not in output, output


# (uvicorn target, --root-path, the path under which the proxy in front sends requests on,
# the prefix the page must request)
PROCESS_CASES = [
    ("tests.middleware.frameworks.prefix_app:top", "/api", "", "/api"),
    ("tests.middleware.frameworks.prefix_app:mounted", "/api", "/app", "/api/app"),
]


@pytest.mark.parametrize(("target", "root_path", "mount", "prefix"), PROCESS_CASES)
def test_uvicorn_root_path_process(
    store_env: dict[str, str], target: str, root_path: str, mount: str, prefix: str
) -> None:
    """`uvicorn --root-path` (and a Mount in it): endpoint, script, enforcement and tag under the prefix."""
    old, current = _bump_stale_setup(store_env)
    # uvicorn expects the proxy in front to strip --root-path: requests arrive without it.
    with (
        _uvicorn_process(target, root_path, store_env) as url,
        httpx.Client(base_url=url + mount, timeout=10) as client,
    ):
        endpoint = client.get("/__spa-version")
        assert endpoint.status_code == 200
        # A mounted app gets no lifespan (Starlette does not pass it on): its listener
        # starts with the first request, and reads the store soon after.
        wait_for(lambda: (client.get("/__spa-version").json() or {}).get("epoch") == current)
        script = client.get("/__spa-version.js")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
        page = client.get("/")
        assert page.status_code == 200
        assert (
            f'<script src="{prefix}/__spa-version.js" data-endpoint="{prefix}/__spa-version" defer>'
            in page.text
        )
        stale = {"X-SPA-Client-Version": str(old)}
        refused = client.post("/items", headers=stale)
        assert refused.status_code == 409
        assert refused.headers["X-SPA-Reload"] == "*"
        # enforce_exclude, relative to the mount too
        assert client.post("/public/items", headers=stale).status_code == 200
        assert client.post("/items", headers={"X-SPA-Client-Version": str(current)}).status_code == 200


async def poll_epoch(client: httpx.AsyncClient, url: str, epoch: int, timeout: float = 10.0) -> None:
    """Read the endpoint until it serves *epoch*; fail after *timeout* seconds."""

    async def served() -> bool:
        return bool(((await client.get(url)).json() or {}).get("epoch") == epoch)

    await async_wait_for(served, timeout=timeout, message=f"{url} never served epoch {epoch}")


async def _items(request: Any) -> PlainTextResponse:
    return PlainTextResponse("app")


def _inner() -> Starlette:
    return Starlette(
        routes=[Route("/items", _items, methods=["POST"]), Route("/other", _items, methods=["POST"])]
    )


@pytest.fixture
async def stale_store(app_name: str) -> tuple[str, Release, Release]:
    store = open_store(f"memory://{app_name}", app=app_name)
    old = (await store.bump("old")).release
    new = (await store.bump("new", min_compatible="current")).release
    return f"memory://{app_name}", old, new


async def test_starlette_mount(stale_store: tuple[str, Release, Release], app_name: str) -> None:
    """Inside Mount("/app", ...): the endpoint and script are served, enforce_paths match relative to it."""
    url, old, new = stale_store
    version = VersionMiddleware(_inner(), store=url, app_name=app_name, enforce_paths=("/items",))
    outer = Starlette(routes=[Mount("/app", app=version)])
    with ThreadedUvicorn(outer) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            endpoint = await client.get("/app/__spa-version")
            assert endpoint.status_code == 200
            # No lifespan reaches a mounted app: the listener starts with the first request.
            await poll_epoch(client, "/app/__spa-version", new.epoch)
            assert (await client.get("/app/__spa-version.js")).status_code == 200
            stale = {"X-SPA-Client-Version": str(old.epoch)}
            assert (await client.post("/app/items", headers=stale)).status_code == 409
            assert (await client.post("/app/other", headers=stale)).status_code == 200
            # Outside the mount nothing is ours.
            assert (await client.get("/__spa-version")).status_code == 404


# Deprecated by newer FastAPI releases in favour of the server's --root-path, still in use.
@pytest.mark.filterwarnings("ignore:The `root_path` parameter is deprecated")
async def test_fastapi_root_path_renders_the_prefix(stale_store: tuple[str, Release, Release]) -> None:
    """FastAPI(root_path=...) behind a stripping proxy: the path has no prefix, the page's URLs do."""
    url, _, new = stale_store
    app = FastAPI(root_path="/api")
    templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
    install(templates)

    @app.get("/", response_class=HTMLResponse)
    async def page(request: Request) -> Any:
        return templates.TemplateResponse(request, "page.html", {"title": "fastapi"})

    app.add_middleware(VersionMiddleware, store=url, app_name=url.removeprefix("memory://"))
    with ThreadedUvicorn(app) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            assert (await client.get("/__spa-version")).json()["epoch"] == new.epoch
            html = (await client.get("/")).text
    assert '<script src="/api/__spa-version.js" data-endpoint="/api/__spa-version" defer></script>' in html
