"""watchEventSource in real Chromium: a real ``EventSource`` on a real sse-starlette stream,
served by uvicorn behind `VersionMiddleware` with a declared build. After a bump, the
drain ends the stream with its last event (docs/protocol.md, "Stream drain"): the tab
learns the new release from it, without asking the server, and the ``EventSource``
reconnects by itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from spa_version import VersionMiddleware
from spa_version.templating import current_from_scope, meta_tag
from tests.support.browser import Tab, endpoint_requests
from tests.support.servers import ThreadedUvicorn, run_cli

pytestmark = pytest.mark.browser

PAGE = """<!doctype html><html><head>{meta}
<script src="/__spa-version.js"></script></head><body><h1>events</h1>
<script>
  window.ticks = []; window.opens = 0; window.last = null;
  const es = SpaVersion.watchEventSource(new EventSource("/events"));
  es.addEventListener("open", () => window.opens++);
  es.addEventListener("tick", (e) => window.ticks.push(e.data));
  es.addEventListener("spa-version", (e) => (window.last = e.data));
</script></body></html>"""


async def page(request: Request) -> HTMLResponse:
    return HTMLResponse(PAGE.format(meta=meta_tag(current_from_scope(request.scope))))


async def events(request: Request) -> EventSourceResponse:
    async def ticks() -> AsyncIterator[dict[str, str]]:
        n = 0
        while True:
            n += 1
            yield {"event": "tick", "data": str(n)}
            await asyncio.sleep(0.1)

    return EventSourceResponse(ticks())


@pytest.fixture
def sse_app(tmp_path: Path, app_name: str) -> Iterator[tuple[dict[str, str], str]]:
    env = {"SPA_VERSION_URL": f"file://{tmp_path}", "SPA_VERSION_APP": app_name}
    assert run_cli("bump", "A", env=env).returncode == 0
    inner = Starlette(routes=[Route("/", page), Route("/events", events)])
    app = VersionMiddleware(
        inner, store=env["SPA_VERSION_URL"], app_name=app_name, build="A", drain_grace=0.0, drain_window=0.5
    )
    with ThreadedUvicorn(app) as server:
        yield env, server.url


async def test_the_last_event_of_a_drained_stream_marks_the_tab_stale(
    sse_app: tuple[dict[str, str], str], new_tab: Callable[[], Any]
) -> None:
    env, url = sse_app
    tab: Tab = await new_tab()
    await tab.page.goto(url + "/")
    baseline = int(await tab.eventually("window.SpaVersion && SpaVersion.start().baseline"))
    await tab.eventually("window.ticks.length >= 2")
    assert await tab.latest_epoch() is None

    result = run_cli("bump", "B", "--json", env=env)
    assert result.returncode == 0, result.stderr
    # The drain's last event reaches the page, and the helper learns B from it.
    last = await tab.eventually("window.last")
    epoch = int(last.split(";")[0])
    assert epoch > baseline and "label=B" in last
    assert await tab.eventually(f"SpaVersion.start().latest?.epoch === {epoch}")
    assert await tab.js("SpaVersion.start().latest.label") == "B"
    assert endpoint_requests(tab) == 0, "the event names its version: the server is asked nothing"
    # The stream ended cleanly and the EventSource reconnected by itself (after `retry`).
    assert await tab.eventually("window.opens >= 2")
    assert await tab.js("location.pathname") == "/"  # next-navigation: no reload by itself
