"""CORS on the responses the middleware makes itself (spa_version.cors), in process.

With the CORS layer inside, the middleware asks it with a preflight for the version
endpoint and copies its decision; nothing else of the app is called, and a refusal, a
missing CORS layer or a failing app leave the response without CORS headers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from spa_version import VersionMiddleware, open_store
from spa_version.cors import is_cross_origin, merge_expose
from spa_version.release import Release

ALLOWED = "http://page.example"


class Spy:
    """An ASGI layer that records (method, path) of every HTTP request that reaches it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[tuple[str, str]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.seen.append((scope["method"], scope["path"]))
        await self.app(scope, receive, send)


async def items(request: Request) -> PlainTextResponse:
    return PlainTextResponse("created")


@pytest.fixture
async def releases(app_name: str) -> AsyncIterator[tuple[str, Release, Release]]:
    store = open_store(f"memory://{app_name}", app=app_name)
    old = (await store.bump("old")).release
    new = (await store.bump("new", min_compatible="current")).release
    yield f"memory://{app_name}", old, new


async def call(app: Any, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.example"
    ) as client:
        return await client.request(method, path, headers=headers)


def stack(url: str, *, cors: bool = True, credentials: bool = False) -> tuple[VersionMiddleware, Spy]:
    """VersionMiddleware outermost, a spy, then (optionally) Starlette's CORSMiddleware, then the app."""
    inner: Any = Starlette(routes=[Route("/api/items", items, methods=["POST"])])
    spy_target = inner
    if cors:
        spy_target = CORSMiddleware(
            inner,
            allow_origins=[ALLOWED],
            allow_methods=["GET", "POST"],
            allow_headers=["X-SPA-Client-Version"],
            allow_credentials=credentials,
        )
    spy = Spy(spy_target)
    return VersionMiddleware(spy, store=url, app_name=url.removeprefix("memory://")), spy


@pytest.mark.parametrize("credentials", [False, True])
async def test_the_409_carries_the_cors_layers_decision(
    releases: tuple[str, Release, Release], credentials: bool
) -> None:
    """An allowed origin's stale POST: the 409 copies the CORS layer's decision, exposes both headers."""
    url, old, _ = releases
    mw, spy = stack(url, credentials=credentials)
    await mw.startup()
    try:
        stale = {"Origin": ALLOWED, "X-SPA-Client-Version": str(old.epoch)}
        response = await call(mw, "POST", "/api/items", stale)
    finally:
        await mw.shutdown()
    assert response.status_code == 409
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert response.headers.get("access-control-allow-credentials") == ("true" if credentials else None)
    assert "origin" in response.headers["vary"].lower()
    assert response.headers["access-control-expose-headers"] == "X-SPA-Version, X-SPA-Reload"
    # The app was asked one preflight, for the version endpoint, never for the request's path.
    assert spy.seen == [("OPTIONS", "/__spa-version")]


async def test_a_refused_origin_gets_no_cors_headers(releases: tuple[str, Release, Release]) -> None:
    """The CORS layer refuses the origin: no Access-Control-Allow-Origin on the 409 (the browser hides it)."""
    url, old, _ = releases
    mw, _ = stack(url)
    await mw.startup()
    try:
        stale = {"Origin": "http://evil.example", "X-SPA-Client-Version": str(old.epoch)}
        response = await call(mw, "POST", "/api/items", stale)
    finally:
        await mw.shutdown()
    assert response.status_code == 409
    assert "access-control-allow-origin" not in response.headers


async def test_without_a_cors_layer_nothing_is_allowed(releases: tuple[str, Release, Release]) -> None:
    """No CORS layer: the preflight meets the router (405/404), nothing is copied."""
    url, old, _ = releases
    mw, spy = stack(url, cors=False)
    await mw.startup()
    try:
        stale = {"Origin": ALLOWED, "X-SPA-Client-Version": str(old.epoch)}
        response = await call(mw, "POST", "/api/items", stale)
    finally:
        await mw.shutdown()
    assert response.status_code == 409
    assert "access-control-allow-origin" not in response.headers
    assert spy.seen == [("OPTIONS", "/__spa-version")]


async def test_an_app_failing_the_preflight_still_gets_the_409(
    releases: tuple[str, Release, Release],
) -> None:
    """The preflight is ours, not the client's: an app raising on it changes nothing but CORS."""
    url, old, _ = releases

    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    mw = VersionMiddleware(broken, store=url, app_name=url.removeprefix("memory://"))
    await mw.startup()
    try:
        stale = {"Origin": ALLOWED, "X-SPA-Client-Version": str(old.epoch)}
        response = await call(mw, "POST", "/api/items", stale)
    finally:
        await mw.shutdown()
    assert response.status_code == 409
    assert "access-control-allow-origin" not in response.headers


async def test_same_origin_asks_nothing(releases: tuple[str, Release, Release]) -> None:
    """A same-origin request with Origin (browsers send it on POST) gets the expose list, no preflight."""
    url, old, _ = releases
    mw, spy = stack(url)
    await mw.startup()
    try:
        stale = {"Origin": "http://api.example", "X-SPA-Client-Version": str(old.epoch)}
        response = await call(mw, "POST", "/api/items", stale)
        endpoint = await call(mw, "GET", "/__spa-version", {})
    finally:
        await mw.shutdown()
    assert response.status_code == 409
    assert response.headers["access-control-expose-headers"] == "X-SPA-Version, X-SPA-Reload"
    assert spy.seen == []
    # No Origin at all: nothing CORS.
    assert "access-control-expose-headers" not in endpoint.headers


async def test_a_preflight_for_the_endpoint_goes_to_the_cors_layer(
    releases: tuple[str, Release, Release],
) -> None:
    """The browser's preflight for the endpoint is answered by the app's CORS layer, not with our 405."""
    url, _, _ = releases
    mw, spy = stack(url)
    await mw.startup()
    try:
        preflight = {
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-spa-client-version",
        }
        response = await call(mw, "OPTIONS", "/__spa-version", preflight)
        plain = await call(mw, "OPTIONS", "/__spa-version", {})
    finally:
        await mw.shutdown()
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert spy.seen == [("OPTIONS", "/__spa-version")]
    assert plain.status_code == 405  # not a preflight: ours


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        (None, "X-SPA-Version, X-SPA-Reload"),
        ("", "X-SPA-Version, X-SPA-Reload"),
        ("ETag", "ETag, X-SPA-Version, X-SPA-Reload"),
        ("x-spa-version", "x-spa-version, X-SPA-Reload"),
        ("X-SPA-RELOAD, X-SPA-VERSION", "X-SPA-RELOAD, X-SPA-VERSION"),
        ("*", "*, X-SPA-Version, X-SPA-Reload"),
    ],
)
def test_merge_expose(existing: str | None, expected: str) -> None:
    """Merged once each, case-insensitively, keeping the existing list first."""
    assert merge_expose(existing, ("X-SPA-Version", "X-SPA-Reload")) == expected


@pytest.mark.parametrize(
    ("origin", "scheme", "host", "cross"),
    [
        ("http://api.example", "http", "api.example", False),
        ("HTTP://API.example", "http", "api.example", False),
        ("http://api.example:8000", "http", "api.example:8000", False),
        ("http://page.example", "http", "api.example", True),
        ("https://api.example", "http", "api.example", True),  # a proxy's TLS: asking costs nothing
        ("null", "http", "api.example", True),
        ("http://api.example", "http", None, True),
    ],
)
def test_is_cross_origin(origin: str, scheme: str, host: str | None, cross: bool) -> None:
    assert is_cross_origin(origin, scheme, host) is cross
