"""Django under a mount prefix (SCRIPT_NAME), WSGI and ASGI, behind real servers.

The middleware matches ``request.path_info``; every URL it generates carries the prefix.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application
from django.test import override_settings

from tests.support.django_tests import bump, fresh_settings
from tests.support.servers import ThreadedUvicorn, free_port

PREFIX = "/shop"

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def mount(app: WSGIApp, prefix: str) -> WSGIApp:
    """Serve *app* under *prefix*, as a WSGI server or dispatcher mounting it does (PEP 3333)."""

    def mounted(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        if path != prefix and not path.startswith(prefix + "/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"outside the mount"]
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
        environ["PATH_INFO"] = path[len(prefix) :] or "/"
        return app(environ, start_response)

    return mounted


@pytest.fixture
def wsgi_base() -> Iterator[str]:
    """Django's WSGI application mounted at /shop behind wsgiref; the base URL includes the prefix."""
    server: WSGIServer = make_server(
        "127.0.0.1", free_port(), mount(get_wsgi_application(), PREFIX), handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}{PREFIX}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def asgi_base() -> Iterator[str]:
    """Django's ASGI application under uvicorn with root_path=/shop (a proxy in front strips it)."""
    with ThreadedUvicorn(get_asgi_application(), root_path=PREFIX, lifespan="off") as server:
        yield server.url


def fetch(method: str, url: str, headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
    req = urllib.request.Request(
        url, method=method, headers=headers or {}, data=b"" if method == "POST" else None
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.mark.parametrize("server", ["wsgi", "asgi"])
def test_script_name_prefix(server: str, request: pytest.FixtureRequest) -> None:
    """Endpoint, script and enforcement match path_info; the script tag carries SCRIPT_NAME."""
    spa = fresh_settings(ENFORCE_PATHS=["/submit/"])
    old = bump(spa, "old")
    current = bump(spa, "new", min_compatible="current")
    with override_settings(SPA_VERSION=spa):
        base = request.getfixturevalue(f"{server}_base")
        status, _, body = fetch("GET", base + "/__spa-version")
        assert (status, json.loads(body)["epoch"]) == (200, current.epoch)
        status, headers, _ = fetch("GET", base + "/__spa-version.js")
        assert status == 200 and headers["Content-Type"].startswith("text/javascript")
        status, _, body = fetch("GET", base + "/")
        assert status == 200
        tag = (
            f'<script src="{PREFIX}/__spa-version.js" data-endpoint="{PREFIX}/__spa-version" defer></script>'
        )
        assert tag in body.decode()
        stale = {"X-SPA-Client-Version": str(old.epoch)}
        status, headers, _ = fetch("POST", base + "/submit/", stale)
        assert (status, headers.get("X-SPA-Reload")) == (409, "*")
        assert fetch("POST", base + "/submit/", {"X-SPA-Client-Version": str(current.epoch)})[0] == 200
