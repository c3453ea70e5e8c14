"""A security cutoff (``spa-version bump --cutoff``; docs/protocol.md, "Security fixes")
reaches Django as it reaches the ASGI middleware (tests/drain/test_cutoff.py): real
processes of the old build (blue), under gunicorn (WSGI) and uvicorn (Django's own ASGI
application), and the real CLI. From the cutoff on, the stale build answers every pinned
request and every request of a client below the cutoff with 409 + X-SPA-Reload, GETs
included; a plain page load, and a client already on the cutoff release, are served."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from spa_version.protocol import RELOAD_HEADER, format_header
from tests.support.cli import bump_release
from tests.support.servers import ServerProcess, run_cli, wait_for

pytestmark = pytest.mark.slow

SERVERS = {
    "gunicorn": "tests.django.process_wsgi:application",
    "uvicorn": "tests.django.process_asgi:application",
}
CLIENT = "X-SPA-Client-Version"
PIN = "X-SPA-Pin"


@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_a_cut_off_django_build_sends_pinned_and_old_clients_to_reload(
    kind: str, tmp_path: Path, app_name: str
) -> None:
    env = {"SPA_VERSION_URL": f"file://{tmp_path}", "SPA_VERSION_APP": app_name}
    first = bump_release(env, "A")
    server_env = {
        **env,
        "SPA_VERSION_BUILD": "A",
        "SPA_VERSION_SLOT": "blue",
        "DJANGO_SETTINGS_MODULE": "tests.django.process_settings",
    }
    with (
        ServerProcess(kind, server_env, SERVERS[kind]) as server,
        httpx.Client(base_url=server.url, timeout=10) as http,
    ):
        server.wait_serving(f"{format_header(first)}; slot=blue")
        # Before the cutoff, the live build serves its pinned tabs and its clients.
        assert http.get("/", headers={PIN: "blue"}).status_code == 200
        assert http.get("/", headers={CLIENT: str(first.epoch)}).status_code == 200

        cut = run_cli("bump", "B", "--cutoff", "--json", env=env)
        assert cut.returncode == 0, cut.stderr
        cutoff_epoch = json.loads(cut.stdout)["epoch"]
        # The process learns of the release from its listener thread: wait for it.
        wait_for(lambda: http.get("/", headers={PIN: "blue"}).status_code == 409, timeout=20)

        for method, path, headers in (
            ("GET", "/", {PIN: "blue"}),
            ("GET", "/", {PIN: "green"}),
            ("GET", "/api/async/", {PIN: "blue"}),
            ("GET", "/", {CLIENT: str(first.epoch)}),
            ("POST", "/submit/", {PIN: "blue"}),
        ):
            response = http.request(method, path, headers=headers)
            assert response.status_code == 409, (method, path, headers, response.text)
            assert response.headers[RELOAD_HEADER], headers
            assert response.json()["reload"] is True
            assert response.headers["X-SPA-Version"].startswith(f"{cutoff_epoch}; label=B;")
        # A client already on the cutoff release, and a page load, are served.
        assert http.get("/", headers={CLIENT: str(cutoff_epoch)}).status_code == 200
        page = http.get("/")
        assert page.status_code == 200
        assert page.headers["X-SPA-Version"].startswith(f"{cutoff_epoch}; label=B;")
