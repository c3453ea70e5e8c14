"""The wheel users install: it carries what the package serves, and its runtime
dependencies stay minimal (Django users need no Starlette, Starlette users need no Django).

The wheel is built from this checkout. Each dependency test builds a fresh virtualenv
(no system site-packages), installs the wheel plus exactly one framework, and runs that
framework's path there.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest

from spa_version.assets import load_script

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PIP_TIMEOUT = 300  # a bounded install from the package index, at the locked versions


def run(
    *args: str, cwd: Path | None = None, timeout: float = PIP_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package as users get it: a wheel built from this checkout."""
    out = tmp_path_factory.mktemp("wheel")
    # The locked hatchling (requirements/dev.txt), not whatever the index has today.
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        str(out),
        str(ROOT),
    )
    (built,) = out.glob("spa_version-*.whl")
    return built


def test_the_wheel_ships_the_script_and_py_typed(wheel: Path) -> None:
    """The wheel carries the script-tag build the middleware serves at /__spa-version.js
    (`spa_version.assets.load_script`, docs/js.md) and the PEP 561 ``py.typed`` marker."""
    with zipfile.ZipFile(wheel) as built:
        names = set(built.namelist())
        assert "spa_version/py.typed" in names, sorted(names)
        assert "spa_version/static/spa-version.js" in names, sorted(names)
        shipped = built.read("spa_version/static/spa-version.js")
    checkout = load_script()  # this checkout's copy (the editable install)
    assert checkout is not None
    assert shipped == checkout.body
    assert b"globalThis.SpaVersion=" in shipped  # the script-tag build, not the ES module


def locked_versions(tmp_path: Path) -> Path:
    """requirements/dev.txt as a pip constraints file: the same versions, without the
    hashes (pip reads hashes in a constraints file as --require-hashes for everything,
    the wheel under test included)."""
    pins = [
        line.rstrip(" \\")
        for line in (ROOT / "requirements" / "dev.txt").read_text().splitlines()
        if "==" in line and not line.startswith((" ", "#"))
    ]
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("\n".join(pins) + "\n")
    return constraints


def make_venv(tmp_path: Path, *requirements: str) -> Path:
    """A new virtualenv, isolated from this one, with *requirements* installed at the
    locked versions; its python."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=False, with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    constraints = locked_versions(tmp_path)
    run(
        str(python),
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
        "-c",
        str(constraints),
        *requirements,
    )
    return python


DJANGO_SCRIPT = textwrap.dedent(
    """
    import importlib.util, sys, tempfile
    assert importlib.util.find_spec("starlette") is None, "starlette is installed"
    store = tempfile.mkdtemp()
    import django
    from django.conf import settings
    settings.configure(
        DEBUG=True, SECRET_KEY="x", ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__,
        INSTALLED_APPS=["spa_version.django"],
        MIDDLEWARE=["spa_version.django.VersionMiddleware"],
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates"}],
        SPA_VERSION={"URL": "file://" + store, "APP": "hygiene"},
    )
    django.setup()
    from django.http import HttpResponse
    from django.template import engines
    from django.urls import path
    page = engines["django"].from_string("{% load spa_version %}{% spa_version_meta %}")
    urlpatterns = [path("", lambda request: HttpResponse(page.render(request=request)))]

    import asyncio
    from spa_version import open_store
    epoch = asyncio.run(open_store("file://" + store, app="hygiene").bump("dj-1")).release.epoch
    from django.core.checks import run_checks
    assert [m.id for m in run_checks()] == [], run_checks()
    from django.test import Client
    response = Client().get("/")
    assert response["X-SPA-Version"] == f"{epoch}; label=dj-1; policy=next-navigation", response.headers
    assert f'content="{epoch}; label=dj-1; policy=next-navigation"' in response.content.decode()
    assert "starlette" not in sys.modules and "jinja2" not in sys.modules and "redis" not in sys.modules
    print("django path ok")
    """
)


STARLETTE_SCRIPT = textwrap.dedent(
    """
    import asyncio, importlib.util, sys, tempfile
    assert importlib.util.find_spec("django") is None, "django is installed"
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from spa_version import VersionMiddleware, open_store

    store = "file://" + tempfile.mkdtemp()

    async def main():
        epoch = (await open_store(store, app="hygiene").bump("st-1")).release.epoch
        app = Starlette(routes=[Route("/", lambda request: PlainTextResponse("ok"))])
        app.add_middleware(VersionMiddleware, store=store, app_name="hygiene")
        sent = []

        async def lifespan_receive(queue=[{"type": "lifespan.startup"}]):
            if queue:
                return queue.pop()
            await stopping.wait()
            return {"type": "lifespan.shutdown"}

        async def collect(message):
            sent.append(message)
            if message["type"] == "lifespan.startup.complete":
                started.set()

        stopping, started = asyncio.Event(), asyncio.Event()
        lifespan = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                                           lifespan_receive, collect))
        await asyncio.wait_for(started.wait(), 30)

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": "/", "raw_path": b"/", "root_path": "", "query_string": b"",
                 "headers": [], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {}}
        await app(scope, receive, collect)
        start = next(m for m in sent if m["type"] == "http.response.start")
        headers = dict(start["headers"])
        assert headers[b"x-spa-version"] == f"{epoch}; label=st-1; policy=next-navigation".encode(), headers
        stopping.set()
        await lifespan
        assert {"type": "lifespan.shutdown.complete"} in sent

    asyncio.run(main())
    assert "django" not in sys.modules and "redis" not in sys.modules
    print("starlette path ok")
    """
)


def test_django_path_without_starlette(tmp_path: Path, wheel: Path) -> None:
    """spa-version[django] alone: middleware, template tag and checks work, Starlette never needed."""
    python = make_venv(tmp_path, f"spa-version[django] @ {wheel.as_uri()}")
    done = run(str(python), "-c", DJANGO_SCRIPT, cwd=tmp_path, timeout=120)
    assert "django path ok" in done.stdout


def test_starlette_path_without_django(tmp_path: Path, wheel: Path) -> None:
    """spa-version plus Starlette alone: add_middleware and lifespan work, Django never needed."""
    python = make_venv(tmp_path, str(wheel), "starlette")
    done = run(str(python), "-c", STARLETTE_SCRIPT, cwd=tmp_path, timeout=120)
    assert "starlette path ok" in done.stdout


def test_core_has_no_dependencies(tmp_path: Path, wheel: Path) -> None:
    """The bare package installs nothing else, and its CLI and ASGI middleware import."""
    python = make_venv(tmp_path, str(wheel))
    listed = run(str(python), "-m", "pip", "list", "--format=freeze").stdout.lower()
    others = {line.split("==")[0] for line in listed.split()} - {
        "spa-version",
        "spa_version",
        "pip",
        "setuptools",
    }
    assert others == set(), others
    run(str(python), "-c", "import spa_version, spa_version.cli, spa_version.templating", cwd=tmp_path)
