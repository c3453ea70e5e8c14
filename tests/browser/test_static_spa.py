"""A bundled SPA with a static index.html, in real Chromium, across real deploys.

The SPA (tests/browser/static_spa, built with esbuild into content-hashed chunks, one per
page) is what docs/js.md's "npm" set-up gives a new user: no template and no meta tag, a
login page that sends no request, an ``axios.create()`` API client wired with
``watchAxios``, a small history router, a draft form, and optionally a cache-first service
worker. It is served as static files by a Starlette app behind `VersionMiddleware` on a
private redis-server; a deploy copies the new build in, deletes the old chunks, then bumps
with the real CLI.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from spa_version import VersionMiddleware
from tests.support.browser import Tab
from tests.support.servers import RedisServer, ThreadedUvicorn
from tests.support.static_spa import Site, builds, open_spa, requests_to, site_app, tab

__all__ = ["builds", "tab"]  # fixtures, used here

pytestmark = [pytest.mark.browser, pytest.mark.redis]


@pytest.fixture
def site(builds: dict[str, Path], redis: RedisServer, app_name: str, tmp_path: Path) -> Iterator[Site]:
    """Release r1 deployed and bumped before the server starts (``site.first``)."""
    site = Site(tmp_path / "site", redis, app_name)
    site.root.mkdir()
    site.first = site.deploy(builds["r1"], "r1")
    app = VersionMiddleware(site_app(site), store=redis.url, app_name=app_name)
    with ThreadedUvicorn(app) as server:
        site.url = server.url
        yield site


async def test_a_login_page_with_no_request_reaches_the_new_build_after_its_chunks_are_gone(
    site: Site, builds: dict[str, Path], tab: Tab
) -> None:
    """The baseline comes from the page's own Server-Timing (no meta tag, no request); after a
    deploy that deletes the old chunks, the next route change fails to load its chunk, and
    the tab moves to the new build at that route instead of staying on an error."""
    await open_spa(tab, site.url + "/", "r1")
    entries = await tab.js("history.length")
    assert await tab.js("app.sv.baseline") == site.first
    assert not requests_to(tab, "/__spa-version"), "the baseline cost no request"
    assert not [r for r in tab.requests if "/api/" in r[1]], "the login page sends nothing"

    second = site.deploy(builds["r2"], "r2")
    await tab.mark()
    await tab.page.click("a[href='/items']")
    await tab.eventually(
        f"!window.__sameDocument && window.app && app.release === 'r2' && app.sv.baseline === {second}"
        " && document.querySelectorAll('#items li').length === 2"
    )
    assert await tab.js("location.pathname") == "/items"
    assert await tab.js("document.querySelector('h1').dataset.release") == "r2"
    assert tab.loads == [site.url + "/", site.url + "/items"]
    assert await tab.js("history.length") == entries + 1, "one entry for the one route change"
    # The axios.create() client sends the tab's epoch, for server-side enforcement.
    assert requests_to(tab, "/api/items")[-1][1]["x-spa-client-version"] == str(second)


async def test_a_409_reload_keeps_the_forms_draft(site: Site, builds: dict[str, Path], tab: Tab) -> None:
    """Save after `bump --min-compatible current`: the axios client's POST gets the 409, the
    tab reloads at once, and the draft (stashed at the reload event, with the refused
    request) is back in the form of the new build."""
    await open_spa(tab, site.url + "/edit", "r1")
    await tab.page.fill("textarea[name=text]", "three paragraphs of work")
    second = site.deploy(builds["r2"], "r2", "--min-compatible", "current")
    await tab.mark()
    await tab.page.click("button[type=submit]")
    await tab.eventually(
        f"!window.__sameDocument && window.app && app.release === 'r2' && app.sv.baseline === {second}"
        " && document.querySelector('textarea') && document.querySelector('#notice').textContent"
    )
    assert await tab.js("document.querySelector('textarea').value") == "three paragraphs of work"
    notice = await tab.js("document.querySelector('#notice').textContent")
    assert f"post {site.url}/api/save" in notice
    refused = requests_to(tab, "/api/save")
    assert [(method, headers["x-spa-client-version"]) for method, headers in refused] == [
        ("POST", str(site.first))
    ]
    assert await tab.js("sessionStorage.getItem('draft:note')") is None, "restored once"


async def test_history_after_reloads_is_what_the_router_made(site: Site, tab: Tab) -> None:
    """A reload at a route change adds no entry of its own, and one at Back keeps Forward."""
    await open_spa(tab, site.url + "/", "r1")
    entries = await tab.js("history.length")  # (the tab's first entry may be about:blank)
    await tab.page.click("a[href='/items']")
    await tab.eventually("document.querySelectorAll('#items li').length === 2")
    assert await tab.js("history.length") == entries + 1

    second = site.bump("r1-again")
    await tab.js("app.api.get('/items')")
    await tab.eventually(f"app.sv.latest && app.sv.latest.epoch === {second}")
    await tab.page.click("a[href='/about']")
    await tab.eventually(
        f"window.app && app.sv.baseline === {second} && document.body.dataset.page === '/about'"
    )
    assert await tab.js("history.length") == entries + 2, "/, /items, /about: as the router made them"

    # Back, in app (same document), after another bump: the reload lands on the entry
    # Back made current, and the entry ahead of it is kept.
    await tab.page.click("a[href='/edit']")
    await tab.eventually("document.body.dataset.page === '/edit'")
    third = site.bump("r1-third")
    await tab.js("app.api.get('/items')")
    await tab.eventually(f"app.sv.latest && app.sv.latest.epoch === {third}")
    await tab.mark()
    await tab.js("history.back()")
    await tab.eventually(
        f"!window.__sameDocument && window.app && app.sv.baseline === {third}"
        " && document.body.dataset.page === '/about'"
    )
    assert await tab.js("history.length") == entries + 3
    await tab.js("history.forward()")
    await tab.eventually("location.pathname === '/edit' && document.body.dataset.page === '/edit'")
    assert tab.loads[:3] == [site.url + "/", site.url + "/about", site.url + "/about"]


async def test_a_service_worker_shell_is_bypassed_once_it_serves_the_old_build(
    site: Site, builds: dict[str, Path], tab: Tab
) -> None:
    """A cache-first worker serves the old shell to the reload; the tab learns it is still
    old (not looping), unregisters the worker and loads the new shell from the network."""
    await open_spa(tab, site.url + "/", "r1")
    await tab.js("navigator.serviceWorker.register('/sw.js')")
    await tab.eventually("navigator.serviceWorker.controller !== null")
    await tab.page.click("a[href='/items']")  # its chunk goes through the worker's cache
    await tab.eventually("document.querySelectorAll('#items li').length === 2")
    await tab.page.click("a[href='/']")
    await tab.eventually("document.body.dataset.page === '/'")

    second = site.deploy(builds["r2"], "r2")
    await tab.js("app.api.get('/items')")
    await tab.eventually(f"app.sv.latest && app.sv.latest.epoch === {second}")
    await tab.page.click("a[href='/items']")
    await tab.eventually(
        f"window.app && app.release === 'r2' && app.sv.baseline === {second}"
        " && document.querySelectorAll('#items li').length === 2",
        timeout=30,
    )
    assert await tab.js("navigator.serviceWorker.controller") is None, "this load came past the worker"
    assert await tab.js("location.pathname") == "/items"
    # Three loads of /items: the route change's (the worker's old shell), then the one past it.
    assert tab.loads == [site.url + "/", site.url + "/items", site.url + "/items"]
