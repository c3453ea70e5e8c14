"""Smoke tests: each example starts with its documented command and shows meta tag, helper and websocket."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser

from spa_version.assets import load_script
from tests.support.epochs import bumped_epoch
from tests.support.frameworks import ws_echo_version
from tests.support.servers import ServerProcess, async_wait_for, free_port, run_cli

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
UVICORN = str(Path(sys.executable).parent / "uvicorn")

# (example, the command its docstring documents minus the port, page path, API path, websocket path)
EXAMPLES = {
    "fastapi_app": (["--app-dir", "examples/fastapi_app", "app:app"], "/api/time", "/ws"),
    "django_project": (
        ["--app-dir", "examples/django_project", "demo_site.asgi:application"],
        "/api/time/",
        "/ws/echo/",
    ),
}


@pytest.fixture(params=sorted(EXAMPLES))
def example(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str, str, dict[str, str]]]:
    """The example running as documented (from the repository root), on a private file store."""
    name = request.param
    args, api_path, ws_path = EXAMPLES[name]
    env = {**os.environ, "SPA_VERSION_URL": f"file://{tmp_path / 'store'}", "SPA_VERSION_APP": "example"}
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the example's own settings, not the tests'
    bumped = run_cli("bump", "ex-1", env=env)
    assert bumped.returncode == 0, bumped.stderr
    command = [UVICORN, *args, "--host", "127.0.0.1"]
    port = free_port()
    # The example's own settings, not the tests' (env has none: ServerProcess must not add them back).
    unset = ("DJANGO_SETTINGS_MODULE",)
    with ServerProcess(name, env, command=[*command, "--port", str(port)], port=port, unset=unset) as server:
        url = server.url
        assert server.wait_answering("/__spa-version").status_code == 200
        yield url, api_path, ws_path, env
        server.send_signal(signal.SIGINT)
        returncode = server.wait_exit(timeout=20)
        output = server.output()
    assert returncode == 0, output
    assert "Traceback" not in output and "ERROR" not in output, output
    assert "Application shutdown complete" in output


async def test_example_shows_meta_helper_and_websocket(example: tuple[str, str, str, dict[str, str]]) -> None:
    """The page has the meta tag and script tag, the API and handshake are stamped, a bump lands."""
    url, api_path, ws_path, env = example
    first = json.loads(run_cli("get", "--json", env=env).stdout)["epoch"]  # the fixture's ex-1
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        page = await client.get("/")
        assert page.status_code == 200
        assert f'<meta name="spa-version" content="{first}; label=ex-1; policy=next-navigation">' in page.text
        assert '<script src="/__spa-version.js" defer></script>' in page.text
        assert page.headers["x-spa-version"] == f"{first}; label=ex-1; policy=next-navigation"
        script = await client.get("/__spa-version.js")
        # The package ships the helper (tests/test_dependency_hygiene.py checks the wheel).
        asset = load_script()
        assert asset is not None and (script.status_code, script.content) == (200, asset.body)
        assert (await client.get(api_path)).headers["x-spa-version"].startswith(f"{first}; label=ex-1;")
        ws_url = url.replace("http://", "ws://") + ws_path
        assert (await ws_echo_version(ws_url) or "").startswith(f"{first}; label=ex-1;")

        second = bumped_epoch(run_cli("bump", "--json", "ex-2", env=env))
        assert second > first

        seen: list[str] = []

        async def landed() -> bool:
            seen.append((await client.get(api_path)).headers["x-spa-version"])
            return seen[-1].startswith(f"{second}; label=ex-2;")

        # The file store is polled: a bump lands within a second or two.
        await async_wait_for(landed, timeout=15, interval=0.05, message=lambda: f"last header: {seen[-1:]}")
        # The page rendered now has the same version in its meta tag as in its header.
        assert f'content="{second}; label=ex-2;' in (await client.get("/")).text
        assert (await ws_echo_version(ws_url) or "").startswith(f"{second}; label=ex-2;")


@pytest.mark.browser
async def test_example_page_in_chromium(
    browser: Browser, example: tuple[str, str, str, dict[str, str]]
) -> None:
    """In a real tab: the websocket echoes, and after a bump the helper shows the new-version banner."""
    url, _, _, env = example
    first = json.loads(run_cli("get", "--json", env=env).stdout)["epoch"]  # the fixture's ex-1
    tab = await browser.new_page()
    try:
        await tab.goto(url + "/")
        await tab.wait_for_function(
            "document.getElementById('ws').textContent.startsWith('open')", timeout=15000
        )
        assert await tab.inner_text("#baseline") == f"{first}; label=ex-1; policy=next-navigation"
        assert await tab.evaluate("window.SpaVersion.start().baseline") == first
        assert not await tab.is_visible("#banner")
        second = bumped_epoch(run_cli("bump", "--json", "ex-2", env=env))

        async def seen_by_an_api_call() -> bool:
            await tab.click("#call")  # an API call: its response carries the new header once it lands
            return (await tab.inner_text("#seen")).startswith(f"{second};")

        await async_wait_for(seen_by_an_api_call, timeout=15, interval=0.2)
        assert (await tab.inner_text("#seen")).startswith(f"{second}; label=ex-2;")
        await tab.wait_for_selector("#banner", state="visible", timeout=5000)
        assert await tab.inner_text("#new") == f"{second} (ex-2)"
    finally:
        await tab.close()
