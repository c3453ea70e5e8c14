"""A security cutoff end to end: a real Chromium tab behind a real HAProxy
(examples/haproxy/haproxy.cfg), 2 blue (build A) and 2 green (build B) uvicorn processes,
real Redis, the real CLI, one shared web directory (docs/deploy-haproxy.md, "Security
fixes"; docs/protocol.md, "Security fixes: ``bump --cutoff``").

An old tab runs build A's code, pinned to blue, and keeps calling its API. B's shell is
published, and ``spa-version bump B --cutoff`` runs: the tab's first call after blue has
learned of the cutoff gets 409 + X-SPA-Reload, the helper reloads the tab, and from then on
it runs B's code and green answers its calls. Not one call fails, is lost or is cut short.

Two moments for the cutoff:

- *after the switch*: B was bumped as usual and HAProxy has blue in DRAIN; the tab is
  still pinned to blue (an old tab finishing its work there) when a security fix makes
  the operator run ``bump B --cutoff``. The reload is balanced to green at once.
- *with the switch*: the cutoff is the deploy itself (A -> B). The tab's reload comes
  within milliseconds of the bump, while HAProxy may still balance to blue for up to one
  ``agent-inter``: the reload can land on blue, which serves the page load (no pin, no
  client epoch) and, from the shared directory, B's shell; blue is stale, so it pins
  nothing, and B's calls go to green from the moment HAProxy has switched.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from playwright.async_api import Page, Request

from tests.pinning.tabs import NewPage, stop_tab, tab_log, write_shell
from tests.support.browser import eventually
from tests.support.haproxy_fleet import (
    AGENT_INTER,
    BLUE,
    GREEN,
    SLACK,
    Fleet,
    bump_landed,
    states_are,
    switch_to_green,
)
from tests.support.servers import async_wait_for, cli_command

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.redis]


async def calls_of(tab: Page, code: str) -> int:
    """How many calls the tab's code of build *code* has made (and had answered)."""
    return len([c for c in (await tab_log(tab)).calls if c.code == code])


async def more_calls(tab: Page, code: str, than: int) -> bool:
    return await calls_of(tab, code) > than


@pytest.mark.parametrize("moment", ["after the switch", "with the switch"])
async def test_a_cutoff_moves_an_old_pinned_tab_to_the_new_build_within_one_call(
    web_dir: Path, fleet: Fleet, pages: NewPage, moment: str
) -> None:
    front = f"http://{fleet.frontend}"
    await async_wait_for(lambda: states_are(fleet, GREEN, BLUE), timeout=15, interval=0.1)
    tab = await pages()
    # The browser's own view: a call that failed before its response came (refused,
    # reset, aborted). The 409's body may be cut short by the reload it asks for; its
    # response came.
    answered: list[Request] = []
    failed: list[Request] = []
    tab.context.on("response", lambda response: answered.append(response.request))
    tab.context.on("requestfailed", lambda request: failed.append(request))
    await tab.goto(front + "/shell")
    await eventually(tab, "window.e2e && window.e2e.code === 'A' && SpaVersion.start().slot === 'blue'")
    await async_wait_for(lambda: more_calls(tab, "A", 3), timeout=15, interval=0.05)

    write_shell(web_dir, "B")  # the deploy publishes B's shell before it bumps
    if moment == "after the switch":
        await switch_to_green(fleet)
        # The old tab stays pinned to blue, which answers it while it drains.
        mark = await calls_of(tab, "A")
        await async_wait_for(lambda: more_calls(tab, "A", mark + 5), timeout=15, interval=0.05)
    bump = await asyncio.create_subprocess_exec(
        *cli_command("bump", "B", "--cutoff"),
        env={**os.environ, **fleet.env},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(bump.communicate(), 60)
    assert bump.returncode == 0, err.decode()
    # By now both blue servers have learned of the cutoff (asked directly, not through
    # HAProxy): an upper bound of the moment they did.
    await asyncio.gather(*(bump_landed(fleet.addrs[name], "B", timeout=15) for name in BLUE))
    learned = time.time() * 1000
    # HAProxy has blue in DRAIN and green UP: from now on it balances to green only.
    await async_wait_for(
        lambda: states_are(fleet, BLUE, GREEN), timeout=AGENT_INTER + SLACK + 5, interval=0.05
    )
    switched = time.time() * 1000

    # The tab is reloaded into B's code, and calls on.
    await eventually(tab, "window.e2e && window.e2e.code === 'B'", timeout=20)
    await async_wait_for(lambda: more_calls(tab, "B", 10), timeout=20, interval=0.05)
    log = await stop_tab(tab)

    old = [c for c in log.calls if c.code == "A"]
    new = [c for c in log.calls if c.code == "B"]
    assert log.calls == old + new, "B's code runs only once A's has stopped"
    # A's calls: pinned to blue and answered by blue until the cutoff; the first one after
    # it got the reload instruction, and was A's last.
    *served, refused = old
    assert served and {(c.status, c.build, c.pin) for c in served} == {(200, "A", "blue")}
    assert (refused.status, refused.reload, refused.pin) == (409, "*", "blue")
    assert [c for c in served if c.sent > learned] == [], "blue served a pinned call after the cutoff"
    # One reload, into B's shell, ...
    assert [load["code"] for load in log.loads] == ["A", "B"]
    assert log.loads[0]["slot"] == "blue"
    # ... whose calls all succeed, and green answers them all once HAProxy has switched.
    assert {c.status for c in new} == {200}
    assert [c for c in new if c.sent > switched and c.build != "B"] == []
    if moment == "after the switch":
        # HAProxy had switched before the cutoff: the reload was balanced to green, which
        # pinned the tab to itself, and green answered every call of B's code.
        assert log.loads[1]["slot"] == "green"
        assert {(c.build, c.pin) for c in new} == {("B", "green")}
    else:
        # Live green pins to green; stale blue (the reload landed there before HAProxy
        # switched) pins nothing. Never to blue: B's code must not stay on A.
        assert log.loads[1]["slot"] in ("green", None)
        assert {c.pin for c in new} == {log.loads[1]["slot"]}
    # No call failed, none was lost or cut short: every call sent was answered.
    assert log.failures == [] and log.aborted == 0
    assert log.sent == len(log.calls)
    api = [r for r in failed if "/api/" in r.url]
    assert [f"{r.method} {r.url}: {r.failure}" for r in api if r not in answered] == []
    cut_short = [await r.response() for r in api]
    assert [response.status for response in cut_short if response is not None] in ([], [409])
