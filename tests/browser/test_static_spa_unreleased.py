"""The static SPA of test_static_spa.py opened before the first bump, in real Chromium.

Before the first release the middleware stamps the unreleased value, epoch 0
(docs/protocol.md, "Before the first release"), on the page's own response: the tab takes
it as its baseline from Server-Timing, with no request. The first bump is then an
ordinary newer release for that tab: it moves by the release's policy, once, and stays.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from spa_version import VersionMiddleware
from tests.support.browser import Tab
from tests.support.servers import RedisServer, ThreadedUvicorn, wait_for
from tests.support.static_spa import Site, builds, open_spa, requests_to, site_app, tab

__all__ = ["builds", "tab"]  # fixtures, shared with test_static_spa.py

pytestmark = [pytest.mark.browser, pytest.mark.redis]


@pytest.fixture
def site(builds: dict[str, Path], redis: RedisServer, app_name: str, tmp_path: Path) -> Iterator[Site]:
    """Build r1 in place, served, and no bump yet (``site.first`` stays 0)."""
    site = Site(tmp_path / "site", redis, app_name)
    shutil.copytree(builds["r1"], site.root)
    app = VersionMiddleware(site_app(site), store=redis.url, app_name=app_name)
    with ThreadedUvicorn(app) as server:
        site.url = server.url
        wait_for(lambda: site.served_epoch() == 0, timeout=10)
        yield site


async def test_a_tab_opened_before_the_first_bump_moves_to_it_at_its_next_route_change(
    site: Site, tab: Tab
) -> None:
    """Baseline 0 from the page's Server-Timing; the first bump (policy next-navigation)
    waits for the next route change, reloads there once, and the tab then stays."""
    await open_spa(tab, site.url + "/", "r1")
    assert await tab.js("app.sv.baseline") == 0
    assert not requests_to(tab, "/__spa-version"), "the baseline cost no request"
    await tab.js("app.api.get('/items')")
    assert await tab.js("app.sv.latest") is None, "epoch 0 is no news to a tab that holds it"
    assert "x-spa-client-version" not in requests_to(tab, "/api/items")[-1][1], "0 is no client epoch"

    first = site.bump("r1")
    assert first >= 1
    await tab.mark()
    await tab.js("app.api.get('/items')")
    await tab.eventually(f"app.sv.latest && app.sv.latest.epoch === {first}")
    assert await tab.same_document(), "next-navigation: no reload before the route change"

    await tab.page.click("a[href='/items']")
    await tab.eventually(
        f"!window.__sameDocument && window.app && app.sv.baseline === {first}"
        " && document.querySelectorAll('#items li').length === 2"
    )
    assert tab.loads == [site.url + "/", site.url + "/items"]
    assert requests_to(tab, "/api/items")[-1][1]["x-spa-client-version"] == str(first)

    # No loop: later route changes and responses (all at the first release) reload nothing.
    await tab.mark()
    await tab.page.click("a[href='/about']")
    await tab.eventually("document.body.dataset.page === '/about'")
    await tab.js("app.api.get('/items')")
    await tab.page.click("a[href='/']")
    await tab.eventually("document.body.dataset.page === '/'")
    assert await tab.same_document()
    assert await tab.js("app.sv.latest") is None
    assert tab.loads == [site.url + "/", site.url + "/items"]


async def test_a_first_bump_that_deletes_the_old_chunks_moves_the_tab_to_the_new_build(
    site: Site, builds: dict[str, Path], tab: Tab
) -> None:
    """The first release is a new build whose deploy deletes r1's chunks: the tab that took
    epoch 0 as its baseline fails to load its next page's chunk, learns the release is
    newer, and loads the new build at that route (without the baseline, it would have
    taken the new release as its own and stayed on the error)."""
    await open_spa(tab, site.url + "/", "r1")
    assert await tab.js("app.sv.baseline") == 0
    first = site.deploy(builds["r2"], "r2")
    await tab.mark()
    await tab.page.click("a[href='/items']")
    await tab.eventually(
        f"!window.__sameDocument && window.app && app.release === 'r2' && app.sv.baseline === {first}"
        " && document.querySelectorAll('#items li').length === 2"
    )
    assert await tab.js("location.pathname") == "/items"
    assert tab.loads == [site.url + "/", site.url + "/items"]
