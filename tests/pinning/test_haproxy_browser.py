"""Pinning end to end with real Chromium tabs behind a real HAProxy (docs/protocol.md,
"Pinning"; docs/deploy-haproxy.md, "Pinned requests").

A tab loaded from blue; ``spa-version bump B``; while blue drains, every fetch of that tab
is answered by blue and every fetch of a tab opened after the bump by green; blue stops,
and the old tab's fetches are answered by green with 0 failures; its websocket reconnects
reach green; at its next route change it reloads into green.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.async_api import Page

from tests.support.browser import eventually
from tests.support.haproxy import BLUE, GREEN
from tests.support.haproxy_fleet import Fleet, blue_down, server_status, switch_to_green
from tests.support.servers import async_wait_for

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.redis]


async def js(page: Page, expression: str) -> Any:
    return await page.evaluate(expression)


async def results_since(page: Page, start: int) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = await page.evaluate(f"window.results.slice({start})")
    return results


async def test_an_old_tab_stays_on_its_slot_until_it_is_gone(fleet: Fleet, pages: Any) -> None:
    front = f"http://{fleet.frontend}"
    await async_wait_for(lambda: server_status(fleet).get("blue1") == "UP", timeout=15, interval=0.1)
    old: Page = await pages()
    await old.goto(front + "/page")
    assert await js(old, "document.getElementById('server').textContent") in BLUE
    await eventually(old, "window.SpaVersion && SpaVersion.start().baseline")
    assert await js(old, "SpaVersion.start().slot") == "blue"
    await eventually(old, "window.sockets.length === 1")
    assert (await js(old, "window.sockets"))[0] in BLUE
    await js(old, "window.__sameDocument = true; window.runLoop(), 0")
    await eventually(old, "window.results.length > 5")

    await switch_to_green(fleet)
    # The tab learns of the new release from its fetches; it does not reload (next-navigation).
    await eventually(old, "SpaVersion.start().latest !== null")
    mark = await js(old, "window.results.length")
    await eventually(old, f"window.results.length > {mark} + 20")
    drained = await results_since(old, mark)
    assert {r["server"] for r in drained} <= set(BLUE), "blue answers the old tab while it drains"
    assert {r["pin"] for r in drained} == {"blue"}

    # A tab opened after the switch loads from green and is pinned there.
    new: Page = await pages()
    await new.goto(front + "/page")
    assert await js(new, "document.getElementById('server').textContent") in GREEN
    await eventually(new, "window.SpaVersion && SpaVersion.start().slot === 'green'")
    await js(new, "window.runLoop(), 0")
    await eventually(new, "window.results.length > 10")
    assert {r["server"] for r in await results_since(new, 0)} <= set(GREEN)

    # Blue's drain closes the old tab's socket (1012); it reconnects to green.
    await eventually(old, "window.sockets.length >= 2", timeout=30)
    assert (await js(old, "window.sockets"))[-1] in GREEN

    # Blue stops: the old tab's fetches go on, answered by green, none failing.
    stopped = len(await results_since(old, 0))
    for name in BLUE:
        fleet.procs[name].terminate()
    for name in BLUE:
        fleet.procs[name].wait_exit(timeout=20)
    await async_wait_for(lambda: blue_down(fleet), timeout=20, interval=0.1)
    mark = await js(old, "window.results.length")
    await eventually(old, f"window.results.length > {mark} + 10")
    after = await results_since(old, mark)
    assert {r["server"] for r in after} <= set(GREEN)
    assert {r["pin"] for r in after} == {"blue"}, "still pinned: it fell back, nothing changed in the tab"
    assert len(await results_since(old, stopped)) > 10
    assert await js(old, "window.failures") == []
    assert await js(new, "window.failures") == []
    assert await js(old, "window.__sameDocument === true"), "no reload before a route change"

    # The next route change reloads the old tab into green, pinned to green from then on.
    started = time.monotonic()
    await js(old, "history.pushState(null, '', '/page/next'), 0")
    await eventually(
        old, "!window.__sameDocument && window.SpaVersion && SpaVersion.start().slot === 'green'"
    )
    assert time.monotonic() - started < 20
    assert await js(old, "location.pathname") == "/page/next"
    assert await js(old, "document.getElementById('server').textContent") in GREEN
