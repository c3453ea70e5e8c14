"""Django with django-cors-headers, a cross-origin SPA in real Chromium, both middleware orders.

The API is Django (WSGI behind wsgiref, ASGI behind uvicorn), configured as docs/django.md
says; the page is on another origin. A stale tab's POST gets a 409 the page can read, so it
reloads, and the version endpoint is readable.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from corsheaders.defaults import default_headers
from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application
from django.test import override_settings
from playwright.async_api import Browser
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from spa_version import EXPOSE_HEADERS, format_header
from tests.support.cross_origin import FETCH_POST, PAGE, XHR_POST, Recorder
from tests.support.django_tests import bump, fresh_settings
from tests.support.servers import ThreadedUvicorn, free_port

pytestmark = pytest.mark.browser

ORDERS = {
    # The recommended order: ours first (outermost).
    "version-outside": [
        "spa_version.django.VersionMiddleware",
        "corsheaders.middleware.CorsMiddleware",
        "django.middleware.common.CommonMiddleware",
    ],
    # django-cors-headers' own advice, "as high as possible": then it owns the expose list.
    "cors-outside": [
        "corsheaders.middleware.CorsMiddleware",
        "spa_version.django.VersionMiddleware",
        "django.middleware.common.CommonMiddleware",
    ],
}

StartResponse = Callable[..., Any]

READ_ENDPOINT = """async () => {
  try {
    const r = await fetch(api + "/__spa-version");
    return JSON.stringify({status: r.status, version: r.headers.get("X-SPA-Version")});
  } catch (e) { return JSON.stringify({error: String(e)}); }
}"""


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class WSGIRecorder:
    """Outermost WSGI layer: records the client header of each POST (as `Recorder` does)."""

    def __init__(self, app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]]) -> None:
        self.app = app
        self.client_headers: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] == "POST" and "HTTP_X_SPA_CLIENT_VERSION" in environ:
            self.client_headers.append(environ["HTTP_X_SPA_CLIENT_VERSION"])
        return self.app(environ, start_response)


@pytest.fixture
def page_server() -> Iterator[tuple[ThreadedUvicorn, dict[str, str]]]:
    """The page's origin; the page is rendered from the values the test puts in the dict."""
    values: dict[str, str] = {}

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(PAGE.format(**values))

    with ThreadedUvicorn(Starlette(routes=[Route("/", page)])) as server:
        yield server, values


@contextlib.contextmanager
def serve_wsgi(recorder: WSGIRecorder) -> Iterator[str]:
    """*recorder* behind wsgiref in a thread; yields the base URL (host "localhost")."""
    server: WSGIServer = make_server("127.0.0.1", free_port(), recorder, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@contextlib.contextmanager
def serve_asgi(recorder: Recorder) -> Iterator[str]:
    """*recorder* behind uvicorn in a thread; yields the base URL (host "localhost")."""
    with ThreadedUvicorn(recorder, lifespan="off") as server:
        yield server.url.replace("127.0.0.1", "localhost")


@pytest.mark.parametrize("order", sorted(ORDERS))
@pytest.mark.parametrize("stack", ["wsgi", "asgi"])
@pytest.mark.parametrize("client", ["fetch", "xhr"])
async def test_stale_tab_reloads_with_django_cors_headers(
    browser: Browser,
    page_server: tuple[ThreadedUvicorn, dict[str, str]],
    order: str,
    stack: str,
    client: str,
) -> None:
    """django-cors-headers in either order: the cross-origin 409 is readable and the tab reloads."""
    spa = fresh_settings()
    old = bump(spa, "old")
    new = bump(spa, "new", min_compatible="current")
    page, values = page_server
    settings: dict[str, Any] = {
        "SPA_VERSION": spa,
        "MIDDLEWARE": ORDERS[order],
        "CORS_ALLOWED_ORIGINS": [page.url],
        "CORS_ALLOW_HEADERS": [*default_headers, "x-spa-client-version"],
    }
    if order == "cors-outside":
        # It owns Access-Control-Expose-Headers there (check spa_version.W004 asks for this).
        settings["CORS_EXPOSE_HEADERS"] = list(EXPOSE_HEADERS)
    with contextlib.ExitStack() as resources:
        resources.enter_context(override_settings(**settings))  # before the handler loads MIDDLEWARE
        recorder: Recorder | WSGIRecorder
        if stack == "wsgi":
            recorder = WSGIRecorder(get_wsgi_application())
            api = resources.enter_context(serve_wsgi(recorder))
        else:
            recorder = Recorder(get_asgi_application())
            api = resources.enter_context(serve_asgi(recorder))
        values.update(baseline=format_header(old), api=api)
        tab = await browser.new_page()
        try:
            await tab.goto(page.url)
            await tab.wait_for_function("window.sv && window.sv.baseline")
            endpoint = json.loads(await tab.evaluate(READ_ENDPOINT))
            async with tab.expect_event("load", timeout=15000):
                await tab.evaluate(FETCH_POST if client == "fetch" else XHR_POST, "/submit/")
            state = await tab.evaluate("() => [sessionStorage.loads, sessionStorage.reason]")
        finally:
            await tab.close()
    assert endpoint == {"status": 200, "version": format_header(new)}
    assert state == ["2", "stale-client"]
    expected = str(old.epoch) if client == "fetch" else f"{old.epoch}, {old.epoch}"
    assert recorder.client_headers == [expected]
