"""Serving a published build from the app itself, with real servers: FastAPI (Starlette's
``StaticFiles``) under uvicorn, and Django + WhiteNoise under gunicorn.

Both keep the SPA fallback (any client-side route gets the shell) and answer a missing
hashed asset with a real 404, never the shell with 200: the JS helper's chunk recovery
(docs/js.md, ``watchChunks``) then works once a file is finally pruned.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.publish import publish
from tests.support.servers import ServerProcess, run_cli, wait_for
from tests.support.spa_build import Build, build_spa


@contextmanager
def serving(kind: str, target: str, web: Path, tmp_path: Path, **env: str) -> Iterator[ServerProcess]:
    store = f"file://{tmp_path / 'store'}"
    if not (tmp_path / "store").exists():
        assert run_cli("--url", store, "bump", "release-1").returncode == 0
    environment = {"SPA_WEB_DIR": str(web), "SPA_VERSION_URL": store, **env}
    with ServerProcess(kind, environment, target) as server:

        def up() -> bool:
            if server.proc is not None and server.proc.poll() is not None:
                raise AssertionError(f"{kind} exited:\n{server.output()}")
            return server.get("/") is not None

        wait_for(up, timeout=30, interval=0.1)
        yield server


def get(server: ServerProcess, path: str) -> httpx.Response:
    return httpx.get(server.url + path, timeout=10)


def assert_shell_of(server: ServerProcess, build: Build) -> None:
    for route in ("/", "/reports/42", "/about"):
        response = get(server, route)
        assert response.status_code == 200, (route, response.status_code, server.output())
        assert response.headers["content-type"].startswith("text/html")
        assert f'src="/{build.entry}"' in response.text, route
        assert '<meta name="spa-version"' in response.text
        assert "x-spa-version" in response.headers


def assert_asset(server: ServerProcess, build: Build, path: str) -> None:
    response = get(server, "/" + path)
    assert response.status_code == 200, (path, response.status_code, server.output())
    assert "javascript" in response.headers["content-type"]
    assert response.content == (build.root / path).read_bytes()


def assert_not_found(server: ServerProcess, path: str) -> None:
    response = get(server, "/" + path)
    assert response.status_code == 404, (path, response.status_code, server.output())
    assert "<script" not in response.text, "a missing asset is not answered with the shell"


def test_fastapi_static_files(tmp_path: Path) -> None:
    web = tmp_path / "web"
    v1, v2, v3 = (build_spa(tmp_path, f"v{n}") for n in (1, 2, 3))
    publish(v1, web, "--keep", "2", "--min-age", "0")
    with serving("uvicorn", "tests.assets.fastapi_site:app", web, tmp_path) as server:
        assert_shell_of(server, v1)
        assert_asset(server, v1, v1.lazy_a)
        assert_not_found(server, "assets/lazy-a-MISSING1.js")

        publish(v2, web, "--keep", "2", "--min-age", "0")
        assert_shell_of(server, v2)  # StaticFiles and the shell read the disk per request
        assert_asset(server, v2, v2.lazy_a)
        assert_asset(server, v1, v1.lazy_a)  # an old tab's chunk is still there

        publish(v3, web, "--keep", "2", "--min-age", "0")
        assert_not_found(server, v1.lazy_a)
        assert_asset(server, v2, v2.lazy_b)


def test_django_whitenoise(tmp_path: Path) -> None:
    web = tmp_path / "web"
    v1, v2, v3 = (build_spa(tmp_path, f"v{n}") for n in (1, 2, 3))
    target = "tests.django.process_wsgi:application"
    env = {"DJANGO_SETTINGS_MODULE": "tests.assets.django_site"}
    publish(v1, web, "--keep", "2", "--min-age", "0")
    with serving("gunicorn", target, web, tmp_path, **env) as old:
        assert_shell_of(old, v1)
        assert_asset(old, v1, v1.lazy_a)
        assert_not_found(old, "assets/lazy-a-MISSING1.js")

        # The deploy order: publish, then start the new set, which lists the new files.
        publish(v2, web, "--keep", "2", "--min-age", "0")
        with serving("gunicorn", target, web, tmp_path, **env) as new:
            assert_shell_of(new, v2)
            assert_asset(new, v2, v2.lazy_a)
            assert_asset(new, v1, v1.lazy_a)  # an old tab moved to the new set keeps its chunks
            assert_shell_of(old, v1)  # the old set still serves its own build, whole
            assert_asset(old, v1, v1.lazy_b)

            publish(v3, web, "--keep", "2", "--min-age", "0")
            assert_not_found(new, v1.lazy_a)
            assert_not_found(old, v1.lazy_b)  # listed at its start, pruned since: 404, not 500
            assert_asset(new, v2, v2.lazy_b)
