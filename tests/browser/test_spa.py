"""The JS helper in real Chromium, against the demo SPA (docs/js.md: policies, events, the loop
guard, chunk errors)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.async_api import Response

from tests.browser.conftest import Demo
from tests.support.browser import Tab
from tests.support.servers import async_wait_for

pytestmark = [pytest.mark.browser, pytest.mark.redis]

NewTab = Callable[[], Any]


async def test_new_version_loads_the_target_route_at_the_next_navigation(demo: Demo, new_tab: NewTab) -> None:
    """AJAX sees the bump, nothing reloads; the next in-app route change loads the target route in full."""
    tab: Tab = await new_tab()
    await tab.open(demo.url + "/")
    assert await tab.baseline() == demo.first
    await tab.mark()

    epoch = demo.bump("release-2")
    assert epoch > demo.first
    await tab.refresh(expect_epoch=epoch)
    assert await tab.latest_epoch() == epoch
    assert await tab.same_document(), "no reload on learning of the new version"
    assert tab.loads == [demo.url + "/"]
    # The AJAX call carried this tab's own epoch, for server-side enforcement.
    api_calls = [headers for method, url, headers in tab.requests if url.endswith("/api/time")]
    assert api_calls and all(h.get("x-spa-client-version") == str(demo.first) for h in api_calls)

    await tab.page.click("a[href='/about']")
    await tab.eventually(
        f"!window.__sameDocument && window.SpaVersion && SpaVersion.start().baseline === {epoch}"
    )
    assert tab.loads == [demo.url + "/", demo.url + "/about"], "a full load of the target route"
    assert await tab.js("location.pathname") == "/about"
    assert (await tab.js("document.querySelector('meta[name=spa-version]').content")).startswith(f"{epoch};")
    assert await tab.js("document.querySelector('h1').textContent") == "About"


async def test_immediate_reloads_without_a_route_change(demo: Demo, new_tab: NewTab) -> None:
    """Policy immediate: once the user is idle, the tab reloads where it is, no click needed."""
    tab: Tab = await new_tab()
    await tab.open(demo.url + "/")
    await tab.page.click("a[href='/reports']")  # an in-app navigation before the bump
    await tab.eventually("location.pathname === '/reports'")
    await tab.js("SpaVersion.start({ idle: 300 })")  # the demo's 60 s idle, shortened
    await tab.mark()

    epoch = demo.bump("release-2", "--policy", "immediate")
    await tab.refresh(expect_epoch=epoch)
    await tab.eventually(
        f"!window.__sameDocument && window.SpaVersion && SpaVersion.start().baseline === {epoch}"
    )
    assert tab.loads == [demo.url + "/", demo.url + "/reports"]


async def test_immediate_option_reloads_at_once(demo: Demo, new_tab: NewTab) -> None:
    """Policy immediate with `immediate: true`: the reload follows the response that announced it."""
    tab: Tab = await new_tab()
    await tab.open(demo.url + "/")
    await tab.js("SpaVersion.start({ immediate: true, idle: 3600000 })")
    await tab.mark()
    epoch = demo.bump("release-2", "--policy", "immediate")
    await tab.page.click("#refresh")
    await tab.eventually(
        f"!window.__sameDocument && window.SpaVersion && SpaVersion.start().baseline === {epoch}"
    )
    assert tab.loads == [demo.url + "/", demo.url + "/"]


async def test_prompt_fires_the_event_and_does_not_reload(demo: Demo, new_tab: NewTab) -> None:
    """Policy prompt: the toast shows, route changes stay in-app; only the toast's button reloads."""
    tab: Tab = await new_tab()
    await tab.open(demo.url + "/")
    await tab.mark()
    epoch = demo.bump("release-2", "--policy", "prompt")
    await tab.refresh(expect_epoch=epoch)
    assert await tab.events("prompt") == [epoch]
    assert await tab.page.is_visible("#toast")

    await tab.page.click("a[href='/reports']")  # next-navigation would reload right here
    await tab.eventually("document.querySelector('h1').textContent === 'Reports'")
    await tab.refresh(expect_epoch=epoch)
    assert await tab.same_document()
    assert tab.loads == [demo.url + "/"]

    await tab.page.click("#toast-reload")
    await tab.eventually(
        f"!window.__sameDocument && window.SpaVersion && SpaVersion.start().baseline === {epoch}"
    )
    assert tab.loads == [demo.url + "/", demo.url + "/reports"]


async def test_veto_holds_the_reload_until_the_following_route_change(demo: Demo, new_tab: NewTab) -> None:
    """Unsaved notes veto the reload at the first route change; after saving, the next one reloads."""
    tab: Tab = await new_tab()
    await tab.open(demo.url + "/")
    await tab.page.fill("#notes", "half-written thought")
    await tab.mark()
    epoch = demo.bump("release-2")
    await tab.refresh(expect_epoch=epoch)

    await tab.page.click("a[href='/reports']")
    await tab.eventually("document.querySelector('h1').textContent === 'Reports'")
    assert await tab.same_document(), "vetoed: the SPA navigation went ahead in place"
    assert await tab.events("veto") == [epoch]
    assert await tab.js("document.getElementById('notes').value") == "half-written thought"

    await tab.page.click("#save")
    await tab.eventually("document.getElementById('save-state').textContent === 'saved'")
    await tab.page.click("a[href='/about']")
    await tab.eventually(
        f"!window.__sameDocument && window.SpaVersion && SpaVersion.start().baseline === {epoch}"
    )
    assert tab.loads == [demo.url + "/", demo.url + "/about"]


async def test_loop_guard_caps_reloads(demo: Demo, new_tab: NewTab) -> None:
    """The server keeps announcing newer epochs: the tab reloads 3 times, then the guard blocks."""
    tab: Tab = await new_tab()
    await tab.open(demo.url + "/")
    targets = ["/about", "/reports"]
    epochs: list[int] = []
    for round_ in range(5):
        epoch = demo.bump(f"release-{round_ + 2}")
        epochs.append(epoch)
        await tab.mark()
        await tab.refresh(expect_epoch=epoch)
        target = targets[round_ % 2]
        await tab.page.click(f"a[href='{target}']")
        if round_ < 3:
            await tab.eventually(
                f"!window.__sameDocument && window.SpaVersion && SpaVersion.start().baseline === {epoch}"
            )
            await tab.ready()
        else:
            blocked = f"#log li[data-type=blocked][data-epoch='{epoch}']"
            await tab.eventually(f'document.querySelector("{blocked}")')
            assert await tab.same_document()
            assert await tab.js("location.pathname") == target, "blocked: the SPA navigation went ahead"
    assert len(tab.loads) == 1 + 3, tab.loads
    assert await tab.baseline() == epochs[2]  # the release of the third (last allowed) reload


async def test_other_tab_goes_stale_without_a_request(demo: Demo, new_tab: NewTab) -> None:
    """Tab A sees the bump; tab B, which made no request, learns it too and moves at its next click."""
    a: Tab = await new_tab()
    b: Tab = await new_tab()
    await a.open(demo.url + "/")
    await b.open(demo.url + "/")
    await b.eventually("document.getElementById('ws-state').textContent.startsWith('open')")
    await b.mark()
    b_requests = len(b.requests)

    epoch = demo.bump("release-2")
    await a.refresh(expect_epoch=epoch)
    await b.eventually(f"SpaVersion.start().latest && SpaVersion.start().latest.epoch === {epoch}")
    assert len(b.requests) == b_requests, "tab B learned it without a request of its own"
    assert await b.events("update") == [epoch]

    await b.page.click("a[href='/reports']")
    await b.eventually(
        f"!window.__sameDocument && window.SpaVersion && SpaVersion.start().baseline === {epoch}"
    )
    assert b.loads == [demo.url + "/", demo.url + "/reports"]


async def test_stale_client_409_reloads_at_once(demo: Demo, new_tab: NewTab) -> None:
    """bump --min-compatible current; the stale tab's POST gets 409 + X-SPA-Reload and reloads at once."""
    tab: Tab = await new_tab()
    await tab.open(demo.url + "/reports")
    statuses: list[int] = []

    def on_response(response: Response) -> None:
        if response.url.endswith("/api/notes"):
            statuses.append(response.status)

    tab.page.on("response", on_response)
    await tab.page.fill("#notes", "unsaved, yet the server refused this code")  # the veto doesn't apply
    await tab.mark()

    epoch = demo.bump("release-2", "--min-compatible", "current")
    await tab.page.click("#save")
    await tab.eventually(
        f"!window.__sameDocument && window.SpaVersion && SpaVersion.start().baseline === {epoch}"
    )
    assert statuses == [409]
    assert tab.loads == [demo.url + "/reports", demo.url + "/reports"], "reloaded in place, no route change"

    # The reloaded page is current: its save goes through.
    await tab.ready()
    await tab.page.fill("#notes", "now saved")
    await tab.page.click("#save")
    await tab.eventually("document.getElementById('save-state').textContent === 'saved'")
    assert statuses == [409, 200]


async def test_request_objects_xhr_and_websocket_carry_the_client_epoch(demo: Demo, new_tab: NewTab) -> None:
    """fetch(Request) keeps its own headers and gains the epoch; XHR too; the websocket URL carries it."""
    tab: Tab = await new_tab()
    await tab.open(demo.url + "/")
    await tab.js(
        """Promise.all([
          fetch(new Request('/api/time?via=request', { headers: { 'X-App': 'kept' } })),
          new Promise((done) => {
            const xhr = new XMLHttpRequest();
            xhr.open('GET', '/api/time?via=xhr');
            xhr.onloadend = done;
            xhr.send();
          }),
        ])"""
    )
    sent = {url.split("via=")[1]: headers for _, url, headers in tab.requests if "via=" in url}
    assert sent["request"]["x-spa-client-version"] == str(demo.first)
    assert sent["request"]["x-app"] == "kept"
    assert sent["xhr"]["x-spa-client-version"] == str(demo.first)
    await tab.eventually(
        f"document.getElementById('ws-state').textContent.includes('client epoch {demo.first}')"
    )


def version_checks(tab: Tab) -> int:
    """How many times the tab fetched the version endpoint."""
    return sum(url.endswith("/__spa-version") for _, url, _ in tab.requests)


async def test_failed_dynamic_import_checks_and_loads_the_new_version(demo: Demo, new_tab: NewTab) -> None:
    """A dynamic import() of a chunk the deploy removed: the helper checks, finds the new version, reloads."""
    tab: Tab = await new_tab()
    await tab.open(demo.url + "/reports")
    await tab.mark()
    # Not stale yet: the failed import only costs a check.
    await tab.js("import('/static/chunk-gone-1.js'); null")
    await async_wait_for(lambda: version_checks(tab) == 1)
    assert await tab.same_document()

    epoch = demo.bump("release-2")
    await tab.js("import('/static/chunk-gone-2.js'); null")
    await tab.eventually(
        f"!window.__sameDocument && window.SpaVersion && SpaVersion.start().baseline === {epoch}"
    )
    assert tab.loads == [demo.url + "/reports", demo.url + "/reports"]
    assert version_checks(tab) == 2


async def test_script_load_error_checks_and_loads_the_new_version(demo: Demo, new_tab: NewTab) -> None:
    """A <script> whose file is gone after a deploy: check, then reload into the new version."""
    tab: Tab = await new_tab()
    await tab.open(demo.url + "/about")
    await tab.mark()
    epoch = demo.bump("release-2")
    gone_script = "Object.assign(document.createElement('script'), { src: '/static/gone.js' })"
    await tab.js(f"document.head.append({gone_script})")
    await tab.eventually(
        f"!window.__sameDocument && window.SpaVersion && SpaVersion.start().baseline === {epoch}"
    )
    assert tab.loads == [demo.url + "/about", demo.url + "/about"]
    assert version_checks(tab) == 1
