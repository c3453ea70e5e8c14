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
from dataclasses import dataclass, field

import httpx
import pytest
import websockets

from tests.e2e_haproxy.test_blue_green import (
    AGENT_INTER,
    BLUE,
    GREEN,
    SLACK,
    Fleet,
    server_status,
    states_are,
)
from tests.support.servers import async_wait_for, cli_command, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.redis]


@dataclass
class PinLog:
    served: list[tuple[float, str]] = field(default_factory=list)  # (answered at, server)
    failures: list[str] = field(default_factory=list)
    #: Requests sent again after a kept-alive connection closed without any response.
    retried: list[float] = field(default_factory=list)


async def pinned_load(
    base: str, pin: str, log: PinLog, stop: asyncio.Event, *, retry_closed: bool = False
) -> None:
    """A steady loop of GETs pinned to *pin*, as an old tab's fetches would be.

    *retry_closed*: send a GET once more when its kept-alive connection was closed
    before any response, as browsers do (RFC 9112 §9.3.1 allows it for idempotent
    requests); each such retry is logged, a second failure counts.
    """
    headers = {"X-SPA-Client-Version": "1", **({"X-SPA-Pin": pin} if pin else {})}
    async with httpx.AsyncClient(base_url=base, timeout=15) as http:
        while not stop.is_set():
            for attempt in (1, 2):
                try:
                    response = await http.get("/api/whoami", headers=headers)
                    if response.status_code != 200:
                        log.failures.append(f"HTTP {response.status_code}")
                    else:
                        log.served.append((time.monotonic(), response.json()["server"]))
                except httpx.RemoteProtocolError as exc:
                    if retry_closed and attempt == 1:
                        log.retried.append(time.monotonic())
                        continue
                    log.failures.append(f"{exc!r} at {time.monotonic():.3f}")
                except httpx.HTTPError as exc:
                    log.failures.append(f"{exc!r} at {time.monotonic():.3f}")
                break
            await asyncio.sleep(0.01)


async def served_by(base: str, headers: dict[str, str], n: int = 12, method: str = "GET") -> set[str]:
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        out = set()
        for _ in range(n):
            response = await http.request(method, "/api/whoami", headers=headers)
            assert response.status_code == 200, response.text
            out.add(response.json()["server"])
        return out


async def ws_server(frontend: str, headers: dict[str, str]) -> str:
    async with websockets.connect(f"ws://{frontend}/ws", additional_headers=headers, open_timeout=10) as conn:
        return str(await asyncio.wait_for(conn.recv(), 10))


async def switch_to_green(fleet: Fleet, *args: str) -> None:
    await async_wait_for(lambda: states_are(fleet, GREEN, BLUE), timeout=15, interval=0.1)
    result = run_cli("bump", "B", *args, env=fleet.env)
    assert result.returncode == 0, result.stderr
    await async_wait_for(
        lambda: states_are(fleet, BLUE, GREEN), timeout=AGENT_INTER + SLACK + 5, interval=0.05
    )


async def test_pinned_requests_reach_their_slot_while_it_drains(fleet: Fleet) -> None:
    base = f"http://{fleet.frontend}"
    await async_wait_for(lambda: states_are(fleet, GREEN, BLUE), timeout=15, interval=0.1)
    # Before the switch a pin to the pending slot still reaches it (DRAIN, but up).
    assert await served_by(base, {"X-SPA-Pin": "green"}) <= set(GREEN)
    await switch_to_green(fleet)
    assert states_are(fleet, BLUE, GREEN)

    # Blue is DRAIN: pinned requests still reach it, both of its servers.
    assert await served_by(base, {"X-SPA-Pin": "blue"}, n=30) == set(BLUE)
    assert await served_by(base, {"X-SPA-Pin": "blue ,green"}) <= set(BLUE)
    assert await served_by(base, {"X-SPA-Pin": "blue"}, method="POST") <= set(BLUE)
    # Everything else goes to the live build: no pin, a pin to it, malformed or unknown pins.
    for headers in ({}, {"X-SPA-Pin": "green"}, {"X-SPA-Pin": "purple"}, {"X-SPA-Pin": "Blue"},
                    {"X-SPA-Pin": "blue!"}, {"X-SPA-Pin": ""}, {"X-SPA-Pin": ",blue"}):  # fmt: skip
        assert await served_by(base, headers) <= set(GREEN), headers
    # A websocket handshake is never pinned, whatever it carries.
    for _ in range(4):
        assert await ws_server(fleet.frontend, {"X-SPA-Pin": "blue"}) in GREEN
    assert states_are(fleet, BLUE, GREEN), "a server changed state during the checks"


async def test_a_pinned_stale_client_still_gets_the_409(fleet: Fleet) -> None:
    """Enforcement wins: a POST pinned to blue from a client below min_compatible is
    refused with 409 by blue itself."""
    await switch_to_green(fleet, "--min-compatible", "current")
    async with httpx.AsyncClient(base_url=f"http://{fleet.frontend}", timeout=10) as http:
        response = await http.post("/api/whoami", headers={"X-SPA-Pin": "blue", "X-SPA-Client-Version": "1"})
        assert response.status_code == 409
        assert response.headers["x-spa-reload"] == "*"
        assert "slot=blue" in response.headers["x-spa-version"]  # answered by blue
        response = await http.get("/api/whoami", headers={"X-SPA-Pin": "blue", "X-SPA-Client-Version": "1"})
        assert response.status_code == 200 and response.json()["server"] in BLUE  # GET: not enforced


async def test_stopping_the_old_slot_moves_pinned_requests_to_the_live_build(fleet: Fleet) -> None:
    """Pinned load on blue while blue drains, then blue stops (SIGTERM, as a deploy does):
    not one request fails, and from then on green answers them. The fleet status showed
    blue's pinned requests while they came, and shows none once blue is gone."""
    base = f"http://{fleet.frontend}"
    await switch_to_green(fleet)
    stop = asyncio.Event()
    logs = [PinLog() for _ in range(4)]
    # A stopping uvicorn closes its idle kept-alive connections; a request HAProxy sends on
    # one at that instant gets no response, and HAProxy then closes the client's
    # connection without one, so that the client sends it again, as browsers do (RFC 9112
    # §9.3.1). These clients do the same, once (PinLog.retried): only around the stop.
    tasks = [asyncio.ensure_future(pinned_load(base, "blue", log, stop, retry_closed=True)) for log in logs]
    try:
        await async_wait_for(lambda: all(len(log.served) > 5 for log in logs), timeout=15, interval=0.05)
        status = await async_wait_for(lambda: _pinned_of(fleet, "A"), timeout=15, interval=0.25)
        assert status > 0
        stopped_at = time.monotonic()
        for name in BLUE:
            fleet.procs[name].terminate()
        for name in BLUE:
            await asyncio.get_running_loop().run_in_executor(None, fleet.procs[name].wait, 20)

        def green_answers() -> bool:
            recent = [server for log in logs for at, server in log.served if at > time.monotonic() - 0.5]
            return bool(recent) and set(recent) <= set(GREEN)

        await async_wait_for(green_answers, timeout=20, interval=0.1)
        # A while longer: nothing fails once HAProxy has marked blue DOWN either.
        await async_wait_for(lambda: _blue_down(fleet), timeout=20, interval=0.1)
        mark = time.monotonic()
        await async_wait_for(
            lambda: all(any(at > mark for at, _ in log.served) for log in logs), timeout=10, interval=0.05
        )
    finally:
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert [r for r in results if isinstance(r, BaseException)] == []
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


def _blue_down(fleet: Fleet) -> bool:
    status = server_status(fleet)
    return all(status.get(name, "").startswith("DOWN") for name in BLUE)


async def test_bump_wait_pinned_waits_until_the_old_build_serves_no_pinned_request(fleet: Fleet) -> None:
    """``bump --wait-pinned`` returns only once the old build's heartbeats report no pinned
    request: it is still waiting while an old tab's pinned requests arrive at blue, and
    returns 0 once they stop."""
    base = f"http://{fleet.frontend}"
    await async_wait_for(lambda: states_are(fleet, GREEN, BLUE), timeout=15, interval=0.1)
    stop = asyncio.Event()
    log = PinLog()
    task = asyncio.ensure_future(pinned_load(base, "blue", log, stop))
    bump = None
    try:
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
    finally:
        stop.set()
        await task
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
