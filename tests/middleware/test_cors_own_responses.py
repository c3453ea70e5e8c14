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


async def served(mw: VersionMiddleware, *requests: tuple[str, str, dict[str, str]]) -> list[httpx.Response]:
    """Each (method, path, headers) request through *mw*, between lifespan startup and shutdown."""
    await mw.startup()
    try:
        return [await call(mw, *request) for request in requests]
    finally:
        await mw.shutdown()


def stale_post(origin: str, old: Release) -> tuple[str, str, dict[str, str]]:
    """A POST from a tab of release *old* (refused with 409), sent from *origin*."""
    return ("POST", "/api/items", {"Origin": origin, "X-SPA-Client-Version": str(old.epoch)})


def router() -> Any:
    return Starlette(routes=[Route("/api/items", items, methods=["POST"])])


async def broken(scope: Any, receive: Any, send: Any) -> None:
    raise RuntimeError("boom")


def stack(
    url: str, *, cors: bool = True, credentials: bool = False, inner: Any = None
) -> tuple[VersionMiddleware, Spy]:
    """VersionMiddleware outermost, a spy, then (optionally) Starlette's CORSMiddleware, then
    the app (*inner*, by default a router with POST /api/items)."""
    spy_target = router() if inner is None else inner
    if cors:
        spy_target = CORSMiddleware(
            spy_target,
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
    [response] = await served(mw, stale_post(ALLOWED, old))
    assert response.status_code == 409
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert response.headers.get("access-control-allow-credentials") == ("true" if credentials else None)
    assert "origin" in response.headers["vary"].lower()
    assert response.headers["access-control-expose-headers"] == "X-SPA-Version, X-SPA-Reload"
    # The app was asked one preflight, for the version endpoint, never for the request's path.
    assert spy.seen == [("OPTIONS", "/__spa-version")]


@pytest.mark.parametrize(
    ("origin", "cors", "inner"),
    [
        # The CORS layer refuses the origin: the browser hides the 409, as it should.
        pytest.param("http://evil.example", True, None, id="refused-origin"),
        # No CORS layer: the preflight meets the router (405/404), nothing is copied.
        pytest.param(ALLOWED, False, None, id="no-cors-layer"),
        # The preflight is ours, not the client's: an app raising on it changes nothing but CORS.
        pytest.param(ALLOWED, False, broken, id="app-raises-on-the-preflight"),
    ],
)
async def test_without_the_apps_consent_the_409_has_no_cors_headers(
    releases: tuple[str, Release, Release], origin: str, cors: bool, inner: Any
) -> None:
    """The stale POST still gets its 409, without Access-Control-Allow-Origin, after one preflight."""
    url, old, _ = releases
    mw, spy = stack(url, cors=cors, inner=inner)
    [response] = await served(mw, stale_post(origin, old))
    assert response.status_code == 409
    assert "access-control-allow-origin" not in response.headers
    assert spy.seen == [("OPTIONS", "/__spa-version")]


async def test_same_origin_asks_nothing(releases: tuple[str, Release, Release]) -> None:
    """A same-origin request with Origin (browsers send it on POST) gets the expose list, no preflight."""
    url, old, _ = releases
    mw, spy = stack(url)
    response, endpoint = await served(
        mw, stale_post("http://api.example", old), ("GET", "/__spa-version", {})
    )
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
    preflight = {
        "Origin": ALLOWED,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "x-spa-client-version",
    }
    response, plain = await served(
        mw, ("OPTIONS", "/__spa-version", preflight), ("OPTIONS", "/__spa-version", {})
    )
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
