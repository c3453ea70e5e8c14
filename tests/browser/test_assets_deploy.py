"""Old tabs keep their own assets through a deploy, in real Chromium.

A code-split esbuild build (tests/support/spa_build.py) is published with the real CLI
(``spa-version assets publish``) into the web directory that the FastAPI set-up of
docs/fastapi.md serves under real uvicorn, and every release is bumped with the real CLI.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, Request, Response

from tests.support.browser import eventually
from tests.support.publish import publish
from tests.support.servers import ServerProcess, async_wait_for, run_cli, wait_for
from tests.support.spa_build import build_spa

pytestmark = [pytest.mark.browser]

KEEP = ("--keep", "2", "--min-age", "0")


async def test_an_old_tab_loads_its_chunks_after_a_deploy_and_recovers_once_they_are_pruned(
    tmp_path: Path, context: BrowserContext
) -> None:
    web, store = tmp_path / "web", f"file://{tmp_path / 'store'}"
    v1, v2, v3, v4 = (build_spa(tmp_path, f"v{n}") for n in range(1, 5))

    def bump(label: str) -> int:
        result = run_cli("--url", store, "--json", "bump", label)
        assert result.returncode == 0, result.stderr
        epoch = int(json.loads(result.stdout)["epoch"])
        wait_for(lambda: served_epoch() == epoch, timeout=15)
        return epoch

    def served_epoch() -> int | None:
        with urllib.request.urlopen(server.url + "/__spa-version", timeout=5) as response:
            record = json.loads(response.read())
        return None if record is None else int(record["epoch"])

    publish(v1, web, *KEEP)
    assert run_cli("--url", store, "bump", "v1").returncode == 0
    env = {"SPA_WEB_DIR": str(web), "SPA_VERSION_URL": store}
    with ServerProcess("uvicorn", env, "tests.assets.fastapi_site:app") as server:
        wait_for(lambda: server.get("/") is not None, timeout=30, interval=0.1)
        page = await context.new_page()
        loads: list[str] = []
        errors: list[str] = []
        statuses: dict[str, int] = {}

        def on_request(request: Request) -> None:
            if request.is_navigation_request() and request.frame == page.main_frame:
                loads.append(request.url)

        def on_response(response: Response) -> None:
            statuses[response.url.removeprefix(server.url + "/")] = response.status

        page.on("request", on_request)
        page.on("response", on_response)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))

        await page.goto(server.url + "/")
        await eventually(page, "document.getElementById('version').textContent === 'main v1'")
        first = await eventually(page, "window.SpaVersion && SpaVersion.start().baseline")
        await page.evaluate("window.__sameDocument = true")

        # Deploy v2: publish, then bump. The v1 tab lazy-loads a v1 chunk: it is still there.
        publish(v2, web, *KEEP)
        second = bump("v2")
        assert second > int(first)
        await page.click("#load-a")
        await eventually(page, "document.getElementById('out').textContent === 'lazy-a v1'")
        assert statuses[v1.lazy_a] == 200
        assert await page.evaluate("window.__sameDocument === true"), "no reload"
        assert loads == [server.url + "/"] and errors == []

        # Two more releases (--keep 2): v1's files are pruned. Its next chunk is a real 404,
        # and the helper's chunk recovery (watchChunks, docs/js.md) reloads into v4.
        publish(v3, web, *KEEP)
        publish(v4, web, *KEEP)
        assert not (web / v1.lazy_b).exists()
        fourth = bump("v4")
        await page.click("#load-b")
        await eventually(
            page,
            "!window.__sameDocument && document.getElementById('version').textContent === 'main v4'",
        )
        assert statuses[v1.lazy_b] == 404
        assert loads == [server.url + "/", server.url + "/"], "one reload, in place"
        await async_wait_for(lambda: page.evaluate(f"SpaVersion.start().baseline === {fourth}"), timeout=10)
        await page.click("#load-b")
        await eventually(page, "document.getElementById('out').textContent === 'lazy-b v4'")
