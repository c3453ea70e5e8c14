"""VersionMiddleware on HTTP: stamping, the version endpoint, CORS, enforcement, fail-open."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from spa_version import VersionMiddleware, open_store, parse_header
from spa_version.release import MAX_EPOCH
from spa_version.stores import Store
from tests.support.servers import free_port


async def _stream(request: Request) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(3):
            yield f"chunk{i};".encode()

    return StreamingResponse(chunks(), media_type="text/plain")


async def _not_modified(request: Request) -> Response:
    return Response(status_code=304, headers={"etag": '"abc"'})


async def _missing(request: Request) -> Response:
    raise HTTPException(status_code=404)


async def _boom(request: Request) -> Response:
    return PlainTextResponse("server error", status_code=500)


async def _dupe(request: Request) -> Response:
    # An app (or a second copy of the middleware) that already set the header.
    return PlainTextResponse("x", headers={"X-SPA-Version": "999; label=forged"})


async def _cors(request: Request) -> Response:
    headers = {"access-control-allow-origin": "https://spa.example"}
    if "expose" in request.query_params:
        headers["access-control-expose-headers"] = request.query_params["expose"]
    return PlainTextResponse("x", headers=headers)


async def _echo(request: Request) -> Response:
    return JSONResponse({"method": request.method, "body": (await request.body()).decode()})


inner = Starlette(
    routes=[
        Route("/", lambda r: PlainTextResponse("hello")),
        Route("/stream", _stream),
        Route("/not-modified", _not_modified),
        Route("/missing", _missing),
        Route("/boom", _boom),
        Route("/dupe", _dupe),
        Route("/cors", _cors),
        Route("/api/echo", _echo, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        Route("/admin/echo", _echo, methods=["POST"]),
    ]
)


@pytest.fixture
async def store(app_name: str) -> AsyncIterator[Store]:
    s = open_store(f"memory://{app_name}", app=app_name)
    yield s
    await s.aclose()


@pytest.fixture
async def make_client(store: Store) -> AsyncIterator[Any]:
    """Build a client for VersionMiddleware(inner, **options), started the way lifespan does."""
    made: list[tuple[VersionMiddleware, httpx.AsyncClient]] = []

    async def factory(**options: Any) -> httpx.AsyncClient:
        mw = VersionMiddleware(inner, store=store, **options)
        await mw.startup()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=mw), base_url="http://test")
        made.append((mw, client))
        return client

    yield factory
    for mw, client in made:
        await client.aclose()
        await mw.shutdown()


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", 200),
        ("HEAD", "/", 200),
        ("GET", "/stream", 200),
        ("GET", "/not-modified", 304),
        ("GET", "/missing", 404),
        ("GET", "/boom", 500),
        ("POST", "/", 405),
    ],
)
async def test_every_response_is_stamped(
    store: Store, make_client: Any, method: str, path: str, status: int
) -> None:
    """Normal, HEAD, streaming, 304 and error responses all carry the current version."""
    epoch = (await store.bump("v1")).release.epoch
    client = await make_client()
    response = await client.request(method, path)
    assert response.status_code == status
    assert response.headers["x-spa-version"] == f"{epoch}; label=v1; policy=next-navigation"


async def test_server_timing_repeats_the_version_beside_the_apps_metrics(store: Store) -> None:
    """Every stamped response carries the value as a Server-Timing metric too (what a static
    page's script reads from its navigation entry, docs/js.md), beside the app's own."""

    async def timed(request: Request) -> Response:
        return PlainTextResponse("x", headers={"server-timing": 'db;dur=53, app;desc="render"'})

    epoch = (await store.bump("v1")).release.epoch
    app = Starlette(routes=[Route("/", lambda r: PlainTextResponse("<html>")), Route("/timed", timed)])
    mw = VersionMiddleware(app, store=store, slot="blue")
    await mw.startup()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mw), base_url="http://t") as client:
            value = f"{epoch}; label=v1; policy=next-navigation; slot=blue"
            plain = await client.get("/")
            assert plain.headers.get_list("server-timing") == [f'spa-version;desc="{value}"']
            assert plain.headers["x-spa-version"] == value
            timed_response = await client.get("/timed")
            assert timed_response.headers.get_list("server-timing") == [
                'db;dur=53, app;desc="render"',
                f'spa-version;desc="{value}"',
            ]
    finally:
        await mw.shutdown()


async def test_nothing_is_stamped_before_the_store_is_read(app_name: str) -> None:
    """Until the store has been read (here: a Redis nobody listens on), no header, no
    metric, and the endpoint answers null: the unreleased value needs a read that found
    no release (docs/protocol.md, "Before the first release")."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    mw = VersionMiddleware(inner, store=url, app_name=app_name, startup_timeout=0.2)
    await mw.startup()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mw), base_url="http://t") as client:
            response = await client.get("/")
            assert response.status_code == 200
            assert "x-spa-version" not in response.headers and "server-timing" not in response.headers
            assert (await client.get("/__spa-version")).json() is None
    finally:
        await mw.shutdown()


async def test_streaming_and_head_bodies_are_untouched(store: Store, make_client: Any) -> None:
    """The middleware never buffers or alters a body: streams arrive whole, HEAD stays empty."""
    await store.bump("v1")
    client = await make_client()
    assert (await client.get("/stream")).text == "chunk0;chunk1;chunk2;"
    head = await client.head("/")
    assert head.content == b"" and head.headers["content-length"] == "5"


async def test_header_is_replaced_not_appended(store: Store, make_client: Any) -> None:
    """A header already present (forged, or from a second copy) is replaced: exactly one remains."""
    epoch = (await store.bump("v1")).release.epoch
    client = await make_client()
    response = await client.get("/dupe")
    assert response.headers.get_list("x-spa-version") == [f"{epoch}; label=v1; policy=next-navigation"]


async def test_stacked_middleware_stamps_once(store: Store) -> None:
    """Two stacked copies of the middleware still produce a single header."""
    await store.bump("v1")
    mw = VersionMiddleware(VersionMiddleware(inner, store=store), store=store)
    await mw.startup()
    await mw.app.startup()  # type: ignore[attr-defined]
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mw), base_url="http://t") as client:
            assert len((await client.get("/")).headers.get_list("x-spa-version")) == 1
    finally:
        await mw.app.shutdown()  # type: ignore[attr-defined]
        await mw.shutdown()


async def test_new_version_is_served_without_restart(store: Store, make_client: Any) -> None:
    """A bump reaches the running middleware through its listener; no request waits on the store."""
    first = (await store.bump("v1")).release.epoch
    client = await make_client()
    assert parse_header((await client.get("/")).headers["x-spa-version"]).epoch == first
    # The memory store tells its listeners inside bump(), so the very next response has it.
    second = (await store.bump("v2", policy="immediate")).release.epoch
    parsed = parse_header((await client.get("/")).headers["x-spa-version"])
    assert (parsed.epoch, parsed.policy) == (second, "immediate")
    assert second > first


UNRELEASED = "0; label=unreleased; policy=next-navigation"


async def test_before_the_first_bump_the_unreleased_value_is_stamped(store: Store, make_client: Any) -> None:
    """The store read fine and holds no release: epoch 0, labelled ``unreleased`` (no build
    declared), in the header and the Server-Timing metric; the first bump replaces it."""
    client = await make_client()
    response = await client.get("/")
    assert response.status_code == 200 and response.text == "hello"
    assert response.headers["x-spa-version"] == UNRELEASED
    assert response.headers.get_list("server-timing") == [f'spa-version;desc="{UNRELEASED}"']
    assert parse_header(response.headers["x-spa-version"]).epoch == 0
    epoch = (await store.bump("v1")).release.epoch
    assert (await client.get("/")).headers["x-spa-version"] == f"{epoch}; label=v1; policy=next-navigation"


async def test_the_unreleased_value_names_the_declared_build(store: Store, make_client: Any) -> None:
    """With ``build`` (and a ``slot``) declared, the label is the build; no slot is stamped
    before the first release (no release to pin to), and no ``min``. A process with a build
    (the deploy switch's request path) carries the Server-Timing metric too, before and
    after the first bump."""
    client = await make_client(build="b-2026", slot="blue")
    response = await client.get("/")
    value = "0; label=b-2026; policy=next-navigation"
    assert response.headers["x-spa-version"] == value
    assert response.headers.get_list("server-timing") == [f'spa-version;desc="{value}"']
    assert (await client.get("/__spa-version")).json()["label"] == "b-2026"
    epoch = (await store.bump("b-2026")).release.epoch
    value = f"{epoch}; label=b-2026; policy=next-navigation; slot=blue"
    response = await client.get("/cors")  # the merging path (Access-Control-Allow-Origin)
    assert response.headers["x-spa-version"] == value
    assert response.headers.get_list("server-timing") == [f'spa-version;desc="{value}"']


async def test_the_unreleased_value_refuses_no_client(make_client: Any) -> None:
    """No ``min`` before the first release: an unsafe request from any client epoch is served."""
    client = await make_client(enforce_paths=["/api/"])
    for sent in ("0", "1", "garbage"):
        response = await client.post("/api/echo", content="x", headers={"X-SPA-Client-Version": sent})
        assert response.status_code == 200 and response.json()["body"] == "x"


async def test_fallback_is_stamped_until_the_store_answers(store: Store, make_client: Any) -> None:
    """A configured fallback is served while there is no release, and the first real one replaces it,
    even with a lower epoch."""
    client = await make_client(fallback=f"{MAX_EPOCH}; label=boot")
    assert (await client.get("/")).headers[
        "x-spa-version"
    ] == f"{MAX_EPOCH}; label=boot; policy=next-navigation"
    epoch = (await store.bump("real")).release.epoch
    assert epoch < MAX_EPOCH
    assert (await client.get("/")).headers["x-spa-version"] == f"{epoch}; label=real; policy=next-navigation"


def test_bad_fallback_and_header_name_are_refused_at_startup(store: Store) -> None:
    """Configuration errors surface when the middleware is built, not per request."""
    with pytest.raises(ValueError):
        VersionMiddleware(inner, store=store, fallback="v1\r\nX: 1")
    with pytest.raises(ValueError):
        VersionMiddleware(inner, store=store, header_name="X-Bad Name")
    with pytest.raises(ValueError):
        VersionMiddleware(inner, store=store, reload_location="/x\r\nSet-Cookie: a=b")


async def test_custom_header_name(store: Store, make_client: Any) -> None:
    """The header name is configurable."""
    epoch = (await store.bump("v1")).release.epoch
    client = await make_client(header_name="X-Build-Epoch")
    response = await client.get("/")
    assert response.headers["x-build-epoch"].startswith(f"{epoch};")
    assert "x-spa-version" not in response.headers


# -- the version endpoint -------------------------------------------------------------


async def test_version_endpoint_serves_the_record(store: Store, make_client: Any) -> None:
    """GET /__spa-version returns the current record as JSON, uncacheable, stamped."""
    epoch = (await store.bump("v1", note="first")).release.epoch
    client = await make_client()
    response = await client.get("/__spa-version")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-spa-version"].startswith(f"{epoch};")
    body = response.json()
    assert (body["epoch"], body["label"], body["note"]) == (epoch, "v1", "first")


async def test_version_endpoint_before_first_bump_and_other_methods(make_client: Any) -> None:
    """Before any release the endpoint answers the unreleased record (epoch 0), stamped;
    it supports HEAD and refuses other methods."""
    client = await make_client()
    response = await client.get("/__spa-version")
    assert response.json() == {
        "epoch": 0,
        "label": "unreleased",
        "policy": "next-navigation",
        "min_compatible": None,
        "created_at": "",
        "note": None,
    }
    assert response.headers["x-spa-version"] == UNRELEASED
    assert (await client.head("/__spa-version")).status_code == 200
    refused = await client.post("/__spa-version")
    assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD"


async def test_version_endpoint_path_is_configurable_or_off(store: Store, make_client: Any) -> None:
    """endpoint= moves the endpoint; None leaves every path to the app."""
    await store.bump("v1")
    moved = await make_client(endpoint="/api/version")
    assert (await moved.get("/api/version")).json()["label"] == "v1"
    off = await make_client(endpoint=None)
    assert (await off.get("/__spa-version")).status_code == 404


# -- CORS -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        # X-SPA-Reload goes wherever X-SPA-Version goes: a page reading one reads both.
        (None, "X-SPA-Version, X-SPA-Reload"),
        ("X-Request-Id", "X-Request-Id, X-SPA-Version, X-SPA-Reload"),
        ("X-Request-Id, x-spa-version", "X-Request-Id, x-spa-version, X-SPA-Reload"),
        ("x-spa-reload,X-SPA-VERSION", "x-spa-reload,X-SPA-VERSION"),
        ("*", "*, X-SPA-Version, X-SPA-Reload"),
    ],
)
async def test_cors_responses_expose_the_header(
    store: Store, make_client: Any, existing: str | None, expected: str
) -> None:
    """With Access-Control-Allow-Origin, both names are merged into Access-Control-Expose-Headers once."""
    await store.bump("v1")
    client = await make_client()
    params = {} if existing is None else {"expose": existing}
    response = await client.get("/cors", params=params)
    assert response.headers.get_list("access-control-expose-headers") == [expected]


async def test_non_cors_responses_get_no_expose_header(store: Store, make_client: Any) -> None:
    """Same-origin responses are left alone; expose_header=False turns merging off."""
    await store.bump("v1")
    client = await make_client()
    assert "access-control-expose-headers" not in (await client.get("/")).headers
    off = await make_client(expose_header=False)
    assert "access-control-expose-headers" not in (await off.get("/cors")).headers


# -- stale-client enforcement (the protocol's 409) --------------------------------------


async def test_stale_client_gets_409_and_app_is_not_called(store: Store, make_client: Any) -> None:
    """An unsafe request from a client below min_compatible is answered 409 with the reload instruction."""
    old = (await store.bump("v1")).release.epoch
    new = (await store.bump("v2", min_compatible="current")).release.epoch
    client = await make_client()
    response = await client.post("/api/echo", headers={"X-SPA-Client-Version": str(old)}, content=b"payload")
    assert response.status_code == 409
    assert response.headers["x-spa-reload"] == "*"
    assert response.headers["x-spa-version"].endswith(f"min={new}")
    assert response.json()["current"]["epoch"] == new
    ok = await client.post("/api/echo", headers={"X-SPA-Client-Version": str(new)}, content=b"payload")
    assert ok.json() == {"method": "POST", "body": "payload"}


async def test_requests_without_client_epoch_are_never_rejected(store: Store, make_client: Any) -> None:
    """curl and other services send no client header (or garbage): they are served."""
    await store.bump("v1", min_compatible="current")
    client = await make_client()
    assert (await client.post("/api/echo")).status_code == 200
    assert (await client.post("/api/echo", headers={"X-SPA-Client-Version": "abc"})).status_code == 200


async def test_mixed_case_header_names_are_replaced_and_merged(store: Store) -> None:
    """Django's ASGIHandler sends names as written: a copy is still replaced and CORS still merged."""
    epoch = (await store.bump("v1")).release.epoch

    async def django_style(scope: Any, receive: Any, send: Any) -> None:
        headers = [
            (b"Content-Type", b"text/plain"),
            (b"X-SPA-Version", b"999; label=forged"),
            (b"Access-Control-Allow-Origin", b"https://spa.example"),
            (b"Access-Control-Expose-Headers", b"X-Request-Id"),
            (b"Last-Modified", b"Wed, 25 Nov 2026 10:00:00 GMT"),  # same length as ours: kept
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"x"})

    mw = VersionMiddleware(django_style, store=store)
    await mw.startup()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mw), base_url="http://t") as client:
            response = await client.get("/")
    finally:
        await mw.shutdown()
    assert response.headers.get_list("x-spa-version") == [f"{epoch}; label=v1; policy=next-navigation"]
    assert response.headers.get_list("access-control-expose-headers") == [
        "X-Request-Id, X-SPA-Version, X-SPA-Reload"
    ]
    assert response.headers["last-modified"] == "Wed, 25 Nov 2026 10:00:00 GMT"
