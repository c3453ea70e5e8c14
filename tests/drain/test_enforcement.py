"""Stale-client enforcement (docs/protocol.md, "Stale clients"): the full matrix."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from spa_version import VersionMiddleware, open_store
from spa_version.protocol import CLOSE_CODE_STALE_CLIENT
from spa_version.stores import Store
from tests.support.servers import ThreadedUvicorn

# The current release's min_compatible (and its epoch): 13 digits, like the epochs bumps
# get from the clock in ms. The fixture's store has a clock stopped just before it, so its
# five bumps get MIN - 4 ... MIN from the counter.
MIN = 1_764_536_400_005
BELOW = str(MIN - 1)  # the release before: a tab opened before the bump
ABOVE = str(MIN + 1)  # a tab newer than this worker knows (served by an updated worker)


class CountingApp:
    """An ASGI app that answers 200 and counts how often it was called."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].rsplit(".", 1)[1]
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        self.calls += 1
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": "hello"})
            await receive()
            return
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": b"app"})


@pytest.fixture
async def store(app_name: str) -> AsyncIterator[Store]:
    store = open_store(f"memory://{app_name}", app=app_name)
    store.clock = lambda: MIN - 4
    for _ in range(4):
        await store.bump("old")
    assert (await store.bump("new", min_compatible="current")).release.epoch == MIN
    yield store


async def serve(store: Store, **options: Any) -> tuple[VersionMiddleware, CountingApp, httpx.AsyncClient]:
    inner = CountingApp()
    mw = VersionMiddleware(inner, store=store, **options)
    await mw.startup()  # the store has been read: enforcement knows min_compatible
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=mw), base_url="http://test")
    return mw, inner, client


async def call(client: httpx.AsyncClient, method: str, path: str, epoch: str | None) -> httpx.Response:
    headers = {} if epoch is None else {"X-SPA-Client-Version": epoch}
    return await client.request(method, path, headers=headers)


# (method, client epoch header, expected status) with the default options.
DEFAULT_MATRIX = [
    # unsafe methods: refused below min only
    *[(m, BELOW, 409) for m in ("POST", "PUT", "PATCH", "DELETE")],
    *[(m, "1", 409) for m in ("POST", "DELETE")],
    *[(m, str(MIN), 200) for m in ("POST", "PUT", "PATCH", "DELETE")],  # at min
    *[(m, ABOVE, 200) for m in ("POST", "PUT", "PATCH", "DELETE")],  # above min (a newer tab)
    # no header, or one we cannot read: never refused (curl, other services)
    *[(m, None, 200) for m in ("POST", "PUT", "PATCH", "DELETE", "GET")],
    *[("POST", bad, 200) for bad in ("abc", "0", "-3", f"{BELOW}.0", "", "9" * 16)],
    # a list, as XHR sends a header set twice and proxies join repeated lines
    # (docs/protocol.md): the highest valid element counts, whitespace is stripped
    ("POST", f"{MIN - 1}, {MIN - 1}", 409),
    ("POST", f" {MIN - 1}\t", 409),
    ("POST", f"{MIN - 1}, junk", 409),
    ("POST", f"{MIN - 1}, {MIN}", 200),
    ("POST", f"junk, {MIN + 1}", 200),
    ("POST", ", ,", 200),
    # safe methods are not enforced by default, even below min
    *[(m, BELOW, 200) for m in ("GET", "HEAD", "OPTIONS")],
]


@pytest.mark.parametrize(("method", "epoch", "status"), DEFAULT_MATRIX)
async def test_default_enforcement_matrix(store: Store, method: str, epoch: str | None, status: int) -> None:
    """By default only unsafe methods from a client below min_compatible get 409, without calling the app."""
    mw, inner, client = await serve(store)
    async with client:
        response = await call(client, method, "/anything", epoch)
    await mw.shutdown()
    assert response.status_code == status
    assert inner.calls == (0 if status == 409 else 1)


@pytest.mark.parametrize(
    ("lines", "status"),
    [
        ([str(MIN - 1), str(MIN - 1)], 409),
        # a current client is never refused, whichever line comes first
        ([str(MIN - 1), str(MIN)], 200),
        ([str(MIN), str(MIN - 1)], 200),
        (["junk", str(MIN - 1)], 409),
    ],
)
async def test_repeated_client_header_lines_count_as_one_list(
    store: Store, lines: list[str], status: int
) -> None:
    """Repeated X-SPA-Client-Version lines are one list (RFC 9110 §5.3): the highest valid epoch counts."""
    mw, inner, client = await serve(store)
    async with client:
        response = await client.post("/api", headers=[("X-SPA-Client-Version", line) for line in lines])
    await mw.shutdown()
    assert response.status_code == status
    assert inner.calls == (0 if status == 409 else 1)


async def test_the_409_carries_the_reload_instruction_and_the_current_release(store: Store) -> None:
    """A 409 has X-SPA-Reload, the version header, no-store, and the current record in its JSON body."""
    mw, _, client = await serve(store)
    async with client:
        response = await call(client, "POST", "/api/save", BELOW)
    await mw.shutdown()
    assert response.status_code == 409
    assert response.headers["x-spa-reload"] == "*"
    assert response.headers["x-spa-version"].startswith(f"{MIN}; label=new")
    assert response.headers["cache-control"] == "no-store"
    body = json.loads(response.content)
    assert body["error"] == "stale-client" and body["reload"] is True
    assert body["current"]["epoch"] == MIN and body["current"]["min_compatible"] == MIN


# (options, method, path, client epoch, expected status)
CONFIGURED_MATRIX: list[tuple[dict[str, Any], str, str, str | None, int]] = [
    # all methods
    ({"enforce_methods": "*"}, "GET", "/", BELOW, 409),
    ({"enforce_methods": "*"}, "GET", "/", str(MIN), 200),
    ({"enforce_methods": "*"}, "GET", "/", None, 200),
    # an explicit list, lowercase accepted
    ({"enforce_methods": ["get"]}, "GET", "/", BELOW, 409),
    ({"enforce_methods": ["get"]}, "POST", "/", BELOW, 200),
    # path prefixes
    ({"enforce_paths": ["/api/"]}, "POST", "/api/save", BELOW, 409),
    ({"enforce_paths": ["/api/"]}, "POST", "/upload", BELOW, 200),
    # exclusions win over prefixes
    ({"enforce_paths": ["/api/"], "enforce_exclude": ["/api/public"]}, "POST", "/api/public/x", BELOW, 200),
    ({"enforce_paths": ["/api/"], "enforce_exclude": ["/api/public"]}, "POST", "/api/private", BELOW, 409),
    # the version endpoint is always served (a stale tab must be able to learn the new version)
    ({"enforce_methods": "*"}, "GET", "/__spa-version", "1", 200),
]


@pytest.mark.parametrize(("options", "method", "path", "epoch", "status"), CONFIGURED_MATRIX)
async def test_configured_enforcement_matrix(
    store: Store, options: dict[str, Any], method: str, path: str, epoch: str | None, status: int
) -> None:
    """enforce_methods / enforce_paths / enforce_exclude choose which requests are checked."""
    mw, _, client = await serve(store, **options)
    async with client:
        response = await call(client, method, path, epoch)
    await mw.shutdown()
    assert response.status_code == status


async def test_reload_location_is_configurable_and_checked(store: Store) -> None:
    """reload_location goes into X-SPA-Reload; one with CR/LF is refused at startup."""
    mw, _, client = await serve(store, reload_location="/app/")
    async with client:
        response = await call(client, "DELETE", "/x", "2")
    await mw.shutdown()
    assert response.headers["x-spa-reload"] == "/app/"
    with pytest.raises(ValueError):
        VersionMiddleware(CountingApp(), store=store, reload_location="/a\r\nSet-Cookie: x=1")


async def test_no_min_compatible_means_no_enforcement(app_name: str) -> None:
    """Without min_compatible on the current release, even an epoch-1 client is served."""
    store = open_store(f"memory://{app_name}-free", app=app_name)
    await store.bump("a")
    await store.bump("b")
    mw, inner, client = await serve(store, enforce_methods="*")
    async with client:
        response = await call(client, "POST", "/", "1")
    await mw.shutdown()
    assert response.status_code == 200 and inner.calls == 1


# -- websocket handshakes, against real uvicorn -------------------------------------


@pytest.mark.parametrize(
    ("how", "epoch", "refused"),
    [
        ("query", BELOW, True),
        ("header", BELOW, True),
        ("query", str(MIN), False),
        ("header", ABOVE, False),
        ("none", None, False),
        ("query", "junk", False),
        # Undecodable or non-Latin-1 text is no epoch, never a 500.
        ("query", "%FF", False),
        ("query", "%E2%82%AC", False),
        ("query", f"{MIN - 1}%2C%20{MIN - 1}", True),
        ("query", f"{MIN - 1}%2C{MIN + 1}", False),
        ("header", f"{MIN - 1}, {MIN - 1}", True),
        ("header", f"{MIN - 1}, {MIN}", False),
    ],
)
async def test_websocket_handshake_from_a_stale_client_gets_409_under_uvicorn(
    store: Store, how: str, epoch: str | None, refused: bool
) -> None:
    """uvicorn has the websocket.http.response extension, so a stale handshake gets the same 409."""
    inner = CountingApp()
    mw = VersionMiddleware(inner, store=store)
    with ThreadedUvicorn(mw) as server:
        url = server.ws_url + "/ws"
        headers: dict[str, str] = {}
        if how == "query":
            url += f"?spa-client-version={epoch}"
        elif how == "header" and epoch is not None:
            headers["X-SPA-Client-Version"] = epoch
        if refused:
            with pytest.raises(InvalidStatus) as caught:
                await websockets.connect(url, additional_headers=headers, open_timeout=10)
            response = caught.value.response
            assert response.status_code == 409
            assert response.headers["X-SPA-Reload"] == "*"
            assert json.loads(response.body or b"")["error"] == "stale-client"
            assert inner.calls == 0
        else:
            async with websockets.connect(url, additional_headers=headers, open_timeout=10) as conn:
                assert await conn.recv() == "hello"
            assert inner.calls == 1


class WithoutHTTPResponseExtension:
    """Sits between uvicorn and the middleware and hides the websocket.http.response
    extension, as a server without it would; records what the middleware sends."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.sent: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            scope = {**scope, "extensions": {}}

            async def recording_send(message: Any) -> None:
                self.sent.append(dict(message))
                await send(message)

            await self.app(scope, receive, recording_send)
        else:
            await self.app(scope, receive, send)


async def test_websocket_handshake_without_the_extension_is_closed_with_4409(store: Store) -> None:
    """Without the extension the middleware closes before accept with 4409 (which servers turn into 403)."""
    inner = CountingApp()
    shim = WithoutHTTPResponseExtension(VersionMiddleware(inner, store=store))
    with ThreadedUvicorn(shim) as server, pytest.raises(InvalidStatus) as caught:
        await websockets.connect(server.ws_url + "/ws?spa-client-version=2", open_timeout=10)
    # ASGI: a close before accept must end the handshake with HTTP 403.
    assert caught.value.response.status_code == 403
    assert shim.sent == [{"type": "websocket.close", "code": CLOSE_CODE_STALE_CLIENT}]
    assert inner.calls == 0
