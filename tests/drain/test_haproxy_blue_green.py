"""Blue/green behind a real HAProxy, switched by ``spa-version bump`` (docs/deploy-haproxy.md).

Four uvicorn processes (blue1/blue2 run build A, green1/green2 build B), each with the
in-process agent, behind one HAProxy frontend using examples/haproxy/haproxy.cfg, the
config docs/deploy-haproxy.md shows. 200 websocket clients (reconnecting as
docs/protocol.md says) and an HTTP load loop run throughout; ``spa-version bump B
--wait`` switches. All on 127.0.0.1, every wait bounded, every process stopped.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import statistics
import time
from dataclasses import dataclass, field

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidHandshake

from spa_version.protocol import CLOSE_CODE_DRAIN, parse_header
from tests.support.haproxy import BLUE, GREEN, ROOT
from tests.support.haproxy_fleet import (
    AGENT_INTER,
    CONFIG,
    GRACE,
    SLACK,
    WINDOW,
    Fleet,
    bump_landed,
    sessions_of,
    states_are,
)
from tests.support.servers import (
    async_wait_for,
    cli_command,
    run_cli,
)

DOC = ROOT / "docs" / "deploy-haproxy.md"

CLIENTS = 200
# docs/protocol.md: first reconnect delay random in 0-5 s. Scaled down 5x for the test.
FIRST_DELAY = 1.0

pytestmark = [pytest.mark.slow, pytest.mark.redis]


def test_the_recipe_shows_the_tested_config() -> None:
    """docs/deploy-haproxy.md embeds examples/haproxy/haproxy.cfg verbatim."""
    doc = DOC.read_text()
    blocks = re.findall(r"```haproxy\n(.*?)```", doc, re.S)
    assert CONFIG.read_text() in blocks


# -- clients --------------------------------------------------------------------------


@dataclass
class Session:
    server: str
    opened_at: float
    closed_at: float | None = None
    code: int | None = None
    reason: str | None = None


@dataclass
class WsClient:
    sessions: list[Session] = field(default_factory=list)
    failed_handshakes: int = 0


async def run_ws_client(url: str, client: WsClient, stop: asyncio.Event) -> None:
    """Stay connected; on a server close, reconnect the way docs/protocol.md says."""
    failures = 0
    delay = 0.0
    while not stop.is_set():
        if delay:
            try:
                await asyncio.wait_for(stop.wait(), delay)
                return
            except TimeoutError:
                pass
        try:
            conn = await websockets.connect(url, open_timeout=10)
        except (TimeoutError, OSError, InvalidHandshake):
            client.failed_handshakes += 1
            failures += 1
            assert failures < 10, "could not reconnect"
            delay = min(2.0, 0.1 * 2**failures) * random.random()  # backoff, full jitter
            continue
        failures = 0
        # Whatever ends this session (the server's close, the test's stop, an error while
        # reading the greeting), the connection is closed before it is dropped: an unclosed
        # one is a ResourceWarning, an error under filterwarnings = error.
        try:
            session = Session(str(await asyncio.wait_for(conn.recv(), 10)), time.monotonic())
            client.sessions.append(session)
            closed = asyncio.ensure_future(conn.wait_closed())
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait([closed, stopped], return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if not closed.done():  # the test is over: we close, and it is not counted
                await conn.close()
                await closed
                return
        finally:
            await conn.close()
        session.closed_at = time.monotonic()
        session.code, session.reason = conn.close_code, conn.close_reason
        delay = FIRST_DELAY * random.random()


@dataclass
class HttpLog:
    served: list[tuple[float, str]] = field(default_factory=list)  # (sent at, server)
    failures: list[str] = field(default_factory=list)


async def run_http_load(base: str, log: HttpLog, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        while not stop.is_set():
            sent = time.monotonic()
            try:
                response = await http.get("/", headers={"X-SPA-Client-Version": "1"})
                if response.status_code != 200:
                    log.failures.append(f"HTTP {response.status_code}")
                else:
                    log.served.append((sent, response.text))
            except httpx.HTTPError as exc:
                log.failures.append(repr(exc))
            await asyncio.sleep(0.02)  # a steady trickle, not a CPU hog


# -- the tests --------------------------------------------------------------------------


async def test_frontend_falls_back_while_no_server_is_ready(fleet: Fleet) -> None:
    """With every server of ``app`` drained (as for a moment after a bump, or before the
    first release), the recipe's frontend sends requests to ``app_any``: no 503."""
    await async_wait_for(lambda: states_are(fleet, GREEN, BLUE), timeout=15, interval=0.1)
    before = sessions_of(fleet, "app_any")
    # A release that no process runs: blue turns stale, green stays pending, and every
    # agent says "drain" (the state a bump passes through, held here until we look).
    assert run_cli("bump", "C", env=fleet.env).returncode == 0
    await async_wait_for(lambda: states_are(fleet, BLUE + GREEN, ()), timeout=AGENT_INTER + SLACK + 5)
    async with httpx.AsyncClient(base_url=f"http://{fleet.frontend}", timeout=10) as http:
        responses = [await http.get("/") for _ in range(4)]
    assert states_are(fleet, BLUE + GREEN, ()), "a server left DRAIN during the requests"
    assert [r.status_code for r in responses] == [200] * 4
    assert sessions_of(fleet, "app_any") > before


async def test_bump_switches_blue_to_green_without_a_failed_request(fleet: Fleet) -> None:
    """bump B: HAProxy drains blue via the agent, blue's sockets close with spread 1012s and
    reconnect to green, no HTTP request fails, and status shows blue stale with 0 sockets."""
    # Start: release A live. Blue is ready, green (B, not released yet) is drained.
    await async_wait_for(lambda: states_are(fleet, GREEN, BLUE), timeout=15, interval=0.1)

    stop = asyncio.Event()
    http_log = HttpLog()
    clients = [WsClient() for _ in range(CLIENTS)]
    url = f"ws://{fleet.frontend}/ws?spa-client-version=1"
    tasks = [
        asyncio.ensure_future(run_http_load(f"http://{fleet.frontend}", http_log, stop)) for _ in range(4)
    ]
    tasks += [asyncio.ensure_future(run_ws_client(url, c, stop)) for c in clients]
    bump: asyncio.subprocess.Process | None = None
    try:
        await async_wait_for(lambda: all(c.sessions for c in clients), timeout=30, interval=0.1)
        assert {c.sessions[0].server for c in clients} <= set(BLUE)

        bumped = time.monotonic()
        bump = await asyncio.create_subprocess_exec(
            *cli_command("bump", "B", "--wait", "--timeout", "60"),
            env={**os.environ, **fleet.env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        # The bump lands: the processes serve B's epoch (asked directly, not through HAProxy).
        second = await bump_landed(fleet.addrs[BLUE[0]], "B", timeout=30)
        assert second > fleet.first
        # Within one agent interval HAProxy has blue DRAIN and green UP. Whichever it saw
        # first, no request failed in between: the frontend's fallback backend served
        # (examples/haproxy/haproxy.cfg, checked by the HTTP log below).
        await async_wait_for(
            lambda: states_are(fleet, BLUE, GREEN), timeout=AGENT_INTER + SLACK, interval=0.05
        )
        drained_at = time.monotonic()

        out, err = await asyncio.wait_for(bump.communicate(), 90)
        assert bump.returncode == 0, err.decode()
        assert out.decode().startswith(f"bumped to epoch {second} (")

        # Every client came back, on green.
        await async_wait_for(
            lambda: all(len(c.sessions) == 2 and c.sessions[1].closed_at is None for c in clients),
            timeout=30,
            interval=0.1,
        )
    finally:
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        if bump is not None and bump.returncode is None:  # a failure above: reap it, pipes closed
            bump.kill()
            await bump.communicate()
    assert [r for r in results if isinstance(r, BaseException)] == []

    # Websockets: each blue session ended with exactly 1012 and the new epoch; the next
    # session is on green; nothing else ever closed a socket.
    closes = [s for c in clients for s in c.sessions if s.closed_at is not None]
    assert len(closes) == CLIENTS
    assert {s.code for s in closes} == {CLOSE_CODE_DRAIN}
    assert {parse_header(s.reason or "").epoch for s in closes} == {second}
    assert {c.sessions[1].server for c in clients} <= set(GREEN)
    assert sum(c.failed_handshakes for c in clients) == 0
    # Spread, not a stampede: no close before the grace, the middle half of the closes
    # spans a good part of the window, and no tenth of the window holds a quarter.
    times = sorted((s.closed_at or 0.0) - bumped for s in closes)
    assert times[0] >= GRACE - 0.01
    q1, _, q3 = statistics.quantiles(times, n=4)
    assert q3 - q1 >= WINDOW / 4
    tenth = WINDOW / 10
    per_bucket: dict[int, int] = {}
    for t in times:
        per_bucket[int((t - times[0]) / tenth)] = per_bucket.get(int((t - times[0]) / tenth), 0) + 1
    assert max(per_bucket.values()) <= CLIENTS // 4

    # HTTP: nothing failed, and every request sent after the drain was served by green.
    assert http_log.failures == []
    after = [server for sent, server in http_log.served if sent > drained_at]
    assert after and set(after) <= set(GREEN)
    assert {server for _, server in http_log.served} >= set(BLUE)  # blue did serve before

    # Fleet status: blue stale with 0 sockets, green live.
    def blue_settled() -> dict[str, object] | None:
        result = run_cli("status", "--json", env=fleet.env)
        assert result.returncode == 0, result.stderr
        import json

        summary: dict[str, object] = json.loads(result.stdout)
        builds = summary["builds"]
        assert isinstance(builds, dict)
        a, b = builds.get("A", {}), builds.get("B", {})
        ok = a.get("stale") == 2 and a.get("websockets") == 0 and b.get("live") == 2
        return summary if ok else None

    summary = await async_wait_for(blue_settled, timeout=15, interval=0.25)
    assert summary is not None
