"""Deploys with one web directory shared by both slots, the seed's way, behind a real
HAProxy (examples/haproxy/haproxy.cfg) with real Chromium tabs reloading during the
handover (docs/protocol.md, "Pinning", "Which build a tab is pinned to";
docs/deploy-haproxy.md, "Pinned requests").

Every app process serves the same ``index.html``; a deploy replaces it with the new
build's shell, then bumps. For a moment after the bump HAProxy still balances to the old
slot (until its agent says ``drain``), or has every server in DRAIN and its fallback
backend ``app_any`` answers from any slot: a tab reloading then can get the *new* shell
from an *old*, stale process. That process must not pin the tab to its own slot, or the
new code's calls go to the old build for as long as it runs.

The deploy is repeated (A -> B, B -> A as a rollback, ...) since the race is one of
timing. In the first two (one each way) HAProxy's agent checks are held through the
runtime API (``disable agent``) and let go step by step, so that each moment is part of
the test: a tab reloads while HAProxy still balances to the stale old slot, one while
every server is in DRAIN and ``app_any`` answers, one once the new slot is UP. In the
others the tabs reload at staggered moments and HAProxy switches at its own pace. The
assertion: every pinned call, and every call of the live build's code once HAProxy has
switched, is answered by the build the tab's code came from.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from spa_version import open_store
from tests.pinning.tabs import NewPage, stop_tab, tab_log, write_shell
from tests.support.browser import eventually
from tests.support.haproxy_fleet import (
    AGENT_INTER,
    BLUE,
    GREEN,
    SLACK,
    Fleet,
    bump_landed,
    runtime_api,
    sessions_of,
    states_are,
)
from tests.support.servers import async_wait_for

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.redis]

TABS = 4
DEPLOYS = 6
#: Deploys (by index) whose handover is held step by step through the runtime API: one
#: each way. The others run at HAProxy's own pace.
HELD = (0, 1)
#: When each tab reloads, in seconds after the bump has reached the old slot: staggered
#: across the first agent interval and beyond (pacing of the reloads, not synchronisation).
RELOADS = [(0.02 + 0.15 * i, 0.7 + 0.25 * i) for i in range(TABS)]


def now_ms() -> float:
    return time.time() * 1000  # the clock of the tabs' Date.now()


def slot_of(servers: tuple[str, ...]) -> str:
    return "blue" if servers == BLUE else "green"


async def reload_at(tab: Page, started: float, offsets: tuple[float, ...]) -> None:
    for offset in offsets:
        await asyncio.sleep(max(0.0, started + offset - time.monotonic()))
        await tab.reload()


async def reload_now(tab: Page) -> dict[str, Any]:
    """Reload *tab*; the page load it logged."""
    at = now_ms()
    await tab.reload()
    loads = await async_wait_for(
        lambda: _loads_after(tab, at), timeout=15, interval=0.05, message="the reloaded tab logged no load"
    )
    return loads[-1]  # type: ignore[no-any-return]


async def _loads_after(tab: Page, at: float) -> list[dict[str, Any]]:
    return [load for load in (await tab_log(tab)).loads if load["at"] > at]


async def calls_after(tabs: list[Page], at: float, n: int) -> bool:
    for tab in tabs:
        if len([c for c in (await tab_log(tab)).calls if c.sent > at]) < n:
            return False
    return True


def set_agents(fleet: Fleet, servers: tuple[str, ...], enabled: bool) -> None:
    """Let HAProxy's agent checks of *servers* run, or hold them (their state stays as it is)."""
    for name in servers:
        runtime_api(fleet, f"{'enable' if enabled else 'disable'} agent app/{name}")


def agents_held(fleet: Fleet, servers: tuple[str, ...]) -> bool:
    """Whether HAProxy neither runs nor will start an agent check of *servers*: in ``show
    servers state``, their ``srv_agent_state`` has neither CHK_ST_ENABLED (0x4) nor
    CHK_ST_INPROGRESS (0x1) set (HAProxy's include/haproxy/check-t.h)."""
    lines = runtime_api(fleet, "show servers state app").splitlines()
    header = lines[1].lstrip("# ").split()
    rows = [dict(zip(header, line.split(), strict=False)) for line in lines[2:] if line.strip()]
    states = {row["srv_name"]: int(row["srv_agent_state"]) for row in rows}
    return all(states[name] & 0x5 == 0 for name in servers)


async def test_every_tab_is_answered_by_the_build_its_code_came_from(
    web_dir: Path, fleet: Fleet, pages: NewPage
) -> None:
    front = f"http://{fleet.frontend}"
    # The deploys bump through the store's API, what ``spa-version bump`` calls
    # (test_blue_green.py runs the CLI): a CLI's start-up on a loaded machine would
    # outlast HAProxy's switch, and the reloads must come before it.
    store = open_store(fleet.env["SPA_VERSION_URL"], app=fleet.env["SPA_VERSION_APP"])
    await async_wait_for(lambda: states_are(fleet, GREEN, BLUE), timeout=15, interval=0.1)
    tabs = [await pages() for _ in range(TABS)]
    for tab in tabs:
        await tab.goto(front + "/shell")
        await eventually(tab, "window.e2e && window.e2e.code === 'A' && SpaVersion.start().slot === 'blue'")

    # The handovers: from the shell's replacement to HAProxy's switch (ms), and the build
    # live from then on.
    handovers: list[tuple[float, float, str]] = []
    old, new = BLUE, GREEN
    for deploy in range(DEPLOYS):
        code = "B" if new == GREEN else "A"
        held = deploy in HELD
        if held:  # HAProxy's view stays as before the bump: old UP, new DRAIN
            set_agents(fleet, old + new, enabled=False)
            await async_wait_for(partial(agents_held, fleet, old + new), timeout=10, interval=0.02)
        begun = now_ms()
        write_shell(web_dir, code)
        await store.bump(code)
        # Once the old slot has heard of the bump, no process stamps it on the new shell.
        await asyncio.gather(*(bump_landed(fleet.addrs[name], code, timeout=15) for name in old))
        if held:
            order = [tabs[(deploy + i) % TABS] for i in range(3)]
            # 1. HAProxy has not checked the old slot's agent yet: it balances to the old
            # slot, stale now, which serves the new shell from the shared directory and
            # pins nothing.
            assert states_are(fleet, new, old)
            load = await reload_now(order[0])
            assert (load["code"], load["slot"]) == (code, None)
            # 2. It has seen the old slot's "drain" but not yet the new slot's "ready":
            # every server is in DRAIN, and the fallback backend answers, from any slot.
            set_agents(fleet, old, enabled=True)
            await async_wait_for(
                partial(states_are, fleet, old + new, ()), timeout=AGENT_INTER + SLACK + 5, interval=0.02
            )
            before = sessions_of(fleet, "app_any")
            load = await reload_now(order[1])
            assert states_are(fleet, old + new, ()), "a server left DRAIN during the reload"
            assert sessions_of(fleet, "app_any") > before
            assert load["code"] == code and load["slot"] in (None, slot_of(new))
            # 3. The new slot is UP: a reload lands there, pinned to it.
            set_agents(fleet, new, enabled=True)
            await async_wait_for(
                partial(states_are, fleet, old, new), timeout=AGENT_INTER + SLACK + 5, interval=0.02
            )
            switched = now_ms()
            load = await reload_now(order[2])
            assert (load["code"], load["slot"]) == (code, slot_of(new))
        else:
            started = time.monotonic()
            reloads = [
                asyncio.ensure_future(reload_at(t, started, o)) for t, o in zip(tabs, RELOADS, strict=True)
            ]
            try:
                await async_wait_for(
                    partial(states_are, fleet, old, new), timeout=AGENT_INTER + SLACK + 5, interval=0.02
                )
                switched = now_ms()
                await asyncio.gather(*reloads)
            finally:
                for task in reloads:
                    task.cancel()
        handovers.append((begun, switched, code))
        # Calls go on after the switch, on every tab, before the next deploy.
        await async_wait_for(partial(calls_after, tabs, switched, 3), timeout=20, interval=0.05)
        old, new = new, old

    logs = [await stop_tab(tab) for tab in tabs]
    await store.aclose()
    calls = [c for log in logs for c in log.calls]
    loads = [load for log in logs for load in log.loads]

    def in_handover(at: float) -> bool:
        return any(begun <= at <= switched for begun, switched, _ in handovers)

    def live_at(at: float) -> str:
        """The build HAProxy balanced to at *at* (outside a handover)."""
        return ([code for _, switched, code in handovers if switched < at] or ["A"])[-1]

    # The reloads came across the handovers.
    assert len([load for load in loads if in_handover(load["at"])]) >= 2 * len(HELD)
    # Every pinned call reached the build the tab's code came from, at any time ...
    wrong = [c for c in calls if c.pin is not None and c.build != c.code]
    assert wrong == [], f"{len(wrong)} pinned call(s) answered by another build: {wrong[:3]}"
    # ... and so did every call of the live build's code once HAProxy had switched. (In a
    # handover HAProxy may still balance an unpinned call to the old slot:
    # docs/deploy-haproxy.md, "The moment in between". A tab whose shell came from a stale
    # process carries no pin, so once its build is the old one, at the next deploy, its
    # calls go to the live build, as an unpinned old tab's do: "Limits".)
    late = [c for c in calls if not in_handover(c.sent) and c.code == live_at(c.sent) != c.build]
    assert late == [], f"{len(late)} call(s) answered by another build after a switch: {late[:3]}"
    # Nothing failed (calls cut short by the test's own reloads are not answers).
    assert {c.status for c in calls} == {200}
    assert [f for log in logs for f in log.failures] == []
