"""Django behind `spa_version.django.asgi.wrap_asgi`, under a real uvicorn process: the
wrapper stamps every response, and Django's middleware (still in ``MIDDLEWARE``, as
docs/django.md asks) leaves the requests the wrapper has seen to it, so a page lists the
Server-Timing metric once, beside the app's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from spa_version.protocol import format_header
from tests.support.cli import bump_release
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.slow


def test_a_page_behind_the_wrapper_lists_the_metric_once(tmp_path: Path, app_name: str) -> None:
    env = {"SPA_VERSION_URL": f"file://{tmp_path}", "SPA_VERSION_APP": app_name}
    header = format_header(bump_release(env, "A"))
    metric = f'spa-version;desc="{header}"'
    server_env = {**env, "DJANGO_SETTINGS_MODULE": "tests.django.process_settings"}
    with ServerProcess("uvicorn", server_env, "tests.django.process_asgi_wrapped:application") as server:
        server.wait_serving(header)
        for path, own in (("/timed/", ['db;dur=53, app;desc="render"']), ("/", []), ("/api/async/", [])):
            response = server.get(path)
            assert response is not None and response.status_code == 200, (path, response)
            assert response.headers.get_list("x-spa-version") == [header], path
            assert response.headers.get_list("server-timing") == [*own, metric], path
