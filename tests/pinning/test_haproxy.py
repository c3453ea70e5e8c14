"""Pinning behind a real HAProxy (examples/haproxy/haproxy.cfg, docs/deploy-haproxy.md
"Pinned requests"): blue (build A, slot blue) and green (build B, slot green) uvicorn
processes, real Redis, the real CLI. A request carrying ``X-SPA-Pin: blue`` reaches blue
while blue drains; once blue stops, it reaches green without a failed request. Unpinned,
malformed or unknown pins, and websocket handshakes go to the live build.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

import httpx
import pytest

from tests.support.haproxy import (
    BLUE,
    GREEN,
    assert_only_blue_pins_reach_blue,
    pinned_traffic,
    served_by,
    stop_slot,
)
from tests.support.haproxy_fleet import Fleet, blue_down, states_are, switch_to_green
from tests.support.servers import async_wait_for, cli_command, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.redis]


async def test_pinned_requests_reach_their_slot_while_it_drains(fleet: Fleet) -> None:
    base = f"http://{fleet.frontend}"
    await async_wait_for(lambda: states_are(fleet, GREEN, BLUE), timeout=15, interval=0.1)
    # Before the switch a pin to the pending slot still reaches it (DRAIN, but up).
    assert await served_by(base, {"X-SPA-Pin": "green"}) <= set(GREEN)
    await switch_to_green(fleet)
    assert states_are(fleet, BLUE, GREEN)
    # Blue is DRAIN: pinned requests still reach it, both of its servers; nothing else does.
    await assert_only_blue_pins_reach_blue(fleet.frontend, blue_requests=30)
    assert states_are(fleet, BLUE, GREEN), "a server changed state during the checks"


async def test_a_pinned_stale_client_still_gets_the_409(fleet: Fleet) -> None:
    """Enforcement wins: a POST pinned to blue from a client below min_compatible is
    refused with 409 by blue itself."""
    await switch_to_green(fleet, "--min-compatible", "current")
    async with httpx.AsyncClient(base_url=f"http://{fleet.frontend}", timeout=10) as http:
        response = await http.post("/api/whoami", headers={"X-SPA-Pin": "blue", "X-SPA-Client-Version": "1"})
        assert response.status_code == 409
        assert response.headers["x-spa-reload"] == "*"
        # Answered by blue: stale, it stamps no slot (green, live, stamps slot=green).
        assert "slot=" not in response.headers["x-spa-version"]
        response = await http.get("/api/whoami", headers={"X-SPA-Pin": "blue", "X-SPA-Client-Version": "1"})
        assert response.status_code == 200 and response.json()["server"] in BLUE  # GET: not enforced


async def test_stopping_the_old_slot_moves_pinned_requests_to_the_live_build(fleet: Fleet) -> None:
    """Pinned load on blue while blue drains, then blue stops (SIGTERM, as a deploy does):
    not one request fails, and from then on green answers them. The fleet status showed
    blue's pinned requests while they came, and shows none once blue is gone."""
    base = f"http://{fleet.frontend}"
    await switch_to_green(fleet)
    # A stopping uvicorn closes its idle kept-alive connections; a request HAProxy sends on
    # one at that instant gets no response, and HAProxy then closes the client's
    # connection without one, so that the client sends it again, as browsers do (RFC 9112
    # §9.3.1). These clients do the same, once (PinLog.retried): only around the stop.
    async with pinned_traffic(base, *["blue"] * 4, retry_closed=True) as logs:
        await async_wait_for(lambda: all(len(log.served) > 5 for log in logs), timeout=15, interval=0.05)
        # In a thread: the CLI takes a while under load, and the pinned traffic runs on
        # this loop; blocking it would leave the heartbeat windows empty.
        status = await async_wait_for(
            lambda: asyncio.to_thread(_pinned_of, fleet, "A"), timeout=15, interval=0.25
        )
        assert status > 0
        stopped_at = time.monotonic()
        await stop_slot(fleet.procs, BLUE)
        await async_wait_for(
            lambda: (recent := set().union(*(log.recent(0.5) for log in logs))) and recent <= set(GREEN),
            timeout=20,
            interval=0.1,
        )
        # A while longer: nothing fails once HAProxy has marked blue DOWN either.
        await async_wait_for(lambda: blue_down(fleet), timeout=20, interval=0.1)
        mark = time.monotonic()
        await async_wait_for(
            lambda: all(any(at > mark for at, _ in log.served) for log in logs), timeout=10, interval=0.05
        )
    assert [f for log in logs for f in log.failures] == []
    assert all(at > stopped_at for log in logs for at in log.retried), "a retry before blue stopped"
    served = [(at, server) for log in logs for at, server in log.served]
    assert {server for at, server in served if at < stopped_at} <= set(BLUE)
    assert {server for at, server in served if at > mark} <= set(GREEN)


def _pinned_of(fleet: Fleet, build: str) -> int:
    result = run_cli("status", "--json", env=fleet.env)
    assert result.returncode == 0, result.stderr
    entry = json.loads(result.stdout)["builds"].get(build, {})
    return int(entry.get("pinned", 0))


async def test_bump_wait_pinned_waits_until_the_old_build_serves_no_pinned_request(fleet: Fleet) -> None:
    """``bump --wait-pinned`` returns only once the old build's heartbeats report no pinned
    request: it is still waiting while an old tab's pinned requests arrive at blue, and
    returns 0 once they stop."""
    base = f"http://{fleet.frontend}"
    await async_wait_for(lambda: states_are(fleet, GREEN, BLUE), timeout=15, interval=0.1)
    bump = None
    async with pinned_traffic(base, "blue") as [log]:
        await async_wait_for(lambda: len(log.served) > 5, timeout=15, interval=0.05)
        bump = await asyncio.create_subprocess_exec(
            *cli_command("bump", "B", "--wait-pinned", "--timeout", "60"),
            env={**os.environ, **fleet.env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        # Blue's heartbeats after the bump (stale) count pinned requests...
        await async_wait_for(
            lambda: _stale_and_pinned(fleet, "A"),
            timeout=20,
            interval=0.25,
            message="blue never reported pinned requests after the bump",
        )
        # ...so the bump is still waiting.
        if bump.returncode is not None:
            _, err = await bump.communicate()
            raise AssertionError(f"bump --wait-pinned returned early: {err.decode()}")
    assert log.failures == []
    out, err = await asyncio.wait_for(bump.communicate(), 30)
    assert bump.returncode == 0, err.decode()
    assert "pinned request(s) in the last interval" in err.decode()


async def _stale_and_pinned(fleet: Fleet, build: str) -> bool:
    # The CLI runs without blocking this event loop, so the pinned load never pauses (a
    # pause of one heartbeat interval is exactly what --wait-pinned waits for).
    status = await asyncio.create_subprocess_exec(
        *cli_command("status", "--json"), env={**os.environ, **fleet.env}, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await status.communicate()
    assert status.returncode == 0
    entry = json.loads(out)["builds"].get(build, {})
    return bool(entry.get("stale") == 2 and entry.get("pinned", 0) > 0)
