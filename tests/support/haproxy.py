"""What the blue/green end-to-end tests share (tests/drain/test_haproxy_blue_green.py,
tests/pinning): the app servers of each slot as processes, the ``fleet`` fixture (four of
them behind a real HAProxy running examples/haproxy/haproxy.cfg; registered in
tests/conftest.py), and an old tab's pinned traffic (``X-SPA-Pin``, docs/protocol.md
"Pinning") through whichever front end routes it (HAProxy or nginx)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import websockets

from tests.support.epochs import bumped_epoch
from tests.support.servers import (
    RedisServer,
    ServerProcess,
    async_wait_for,
    cli_command,
    free_port,
    port_open,
    run_cli,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "examples" / "haproxy" / "haproxy.cfg"

BLUE = ("blue1", "blue2")  # build A, slot blue: live when a test starts
GREEN = ("green1", "green2")  # build B, slot green: live after the switch


AGENT_INTER = 1.0  # seconds: below inter x (rise - 1) = 2 s (docs/deploy-haproxy.md, Timing)
# HAProxy marks blue DRAIN within the agent interval (docs/deploy-haproxy.md, "Timing"): blue says "drain" at
# its first agent check after the bump (no handover, the default); the slack covers a
# busy machine's scheduling of that check and of this test's polling.
SLACK = 0.75
# The grace outlasts that, so HAProxy has drained blue before its first close and no
# reconnect lands on blue again.
GRACE = AGENT_INTER + SLACK + 1.0
WINDOW = 4.0

#: The pins an old tab may send that do NOT pin it to blue: none, the live slot, unknown
#: or malformed values (case, punctuation, an empty first element). They reach the live build.
UNPINNED = (
    {},
    {"X-SPA-Pin": "green"},
    {"X-SPA-Pin": "purple"},
    {"X-SPA-Pin": "Blue"},
    {"X-SPA-Pin": "blue!"},
    {"X-SPA-Pin": ""},
    {"X-SPA-Pin": ",blue"},
)


# -- the app servers -----------------------------------------------------------------


def start_app_server(name: str, port: int, env: Mapping[str, str]) -> ServerProcess:
    """uvicorn serving tests/support/haproxy_app.py as *name* (blue servers run build A in slot
    blue, green ones build B in slot green) on *port*, with *env* on top of this one's
    (an agent port only where *env* names one); started."""
    blue = name in BLUE
    full_env = {
        "SPA_VERSION_BUILD": "A" if blue else "B",
        "SPA_VERSION_SLOT": "blue" if blue else "green",
        "E2E_SERVER": name,
        **env,
    }
    command = [*cli_command()[:1], "-m", "uvicorn", "tests.support.haproxy_app:app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    server = ServerProcess(name, full_env, command=command, port=port, unset=("SPA_VERSION_AGENT_PORT",))
    return server.start()


def stop_all(procs: Mapping[str, ServerProcess], sig: Mapping[str, int] | None = None) -> None:
    """Stop every process (SIGTERM unless *sig* names another), then reap it; kill what hangs."""
    for name, proc in procs.items():
        if proc.running():
            proc.send_signal((sig or {}).get(name, signal.SIGTERM))
    for proc in procs.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait_exit(timeout=15)
        proc.close()


async def stop_slot(procs: Mapping[str, ServerProcess], slot: tuple[str, ...]) -> None:
    """SIGTERM the servers of *slot*, as a deploy does, and wait until they have exited."""
    for name in slot:
        procs[name].terminate()
    loop = asyncio.get_running_loop()
    for name in slot:
        await loop.run_in_executor(None, procs[name].wait_exit, 20)


# -- the HAProxy fleet ------------------------------------------------------------------------


@dataclass
class Fleet:
    env: dict[str, str]
    stats_socket: str
    frontend: str
    first: int  # the epoch of release A, live when the test starts
    addrs: dict[str, str] = field(default_factory=dict)  # each app server, bypassing HAProxy
    procs: dict[str, ServerProcess] = field(default_factory=dict)


@pytest.fixture
def fleet(redis: RedisServer, app_name: str) -> Iterator[Fleet]:
    if shutil.which("haproxy") is None:
        pytest.fail("haproxy is not installed (make test installs it)")
    tmp = tempfile.mkdtemp(prefix="spa-e2e-")
    store_env = {"SPA_VERSION_URL": redis.url, "SPA_VERSION_APP": app_name}
    first = bumped_epoch(run_cli("bump", "--json", "A", env=store_env))  # release A is live
    front_port = free_port()
    haproxy_env = {
        "FRONTEND_ADDR": f"127.0.0.1:{front_port}",
        "STATS_SOCKET": os.path.join(tmp, "haproxy.sock"),
        "AGENT_INTER": f"{AGENT_INTER:g}s",
    }
    fleet = Fleet(store_env, haproxy_env["STATS_SOCKET"], f"127.0.0.1:{front_port}", first)
    try:
        for name in BLUE + GREEN:
            port, agent_port = free_port(), free_port()
            fleet.addrs[name] = haproxy_env[f"{name.upper()}_ADDR"] = f"127.0.0.1:{port}"
            haproxy_env[f"{name.upper()}_AGENT_PORT"] = str(agent_port)
            env = {
                **store_env,
                "SPA_VERSION_AGENT_PORT": str(agent_port),
                "E2E_DRAIN_GRACE": str(GRACE),
                "E2E_DRAIN_WINDOW": str(WINDOW),
                "E2E_HEARTBEAT": "1",
            }
            fleet.procs[name] = start_app_server(name, port, env)
        for name in BLUE + GREEN:
            fleet.procs[name].wait_listening()
        haproxy = ["haproxy", "-db", "-f", str(CONFIG)]
        fleet.procs["haproxy"] = ServerProcess(
            "haproxy", haproxy_env, command=haproxy, port=front_port, cwd=Path(tmp)
        )
        fleet.procs["haproxy"].start()
        wait_for(lambda: port_open(front_port) and os.path.exists(fleet.stats_socket), timeout=15)
        yield fleet
    finally:
        stop_all(fleet.procs)
        shutil.rmtree(tmp, ignore_errors=True)


def show_stat(fleet: Fleet) -> list[dict[str, str]]:
    """HAProxy's ``show stat`` over the runtime API (the stats socket), one dict per row."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(fleet.stats_socket)
        sock.sendall(b"show stat\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    lines = data.decode().splitlines()
    header = lines[0].lstrip("# ").split(",")
    return [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]


def server_status(fleet: Fleet) -> dict[str, str]:
    """Each app server's status column from the runtime API's ``show stat`` (e.g. UP, DRAIN)."""
    return {
        row["svname"]: row["status"]
        for row in show_stat(fleet)
        if row.get("pxname") == "app" and row.get("svname") in BLUE + GREEN
    }


def sessions_of(fleet: Fleet, backend: str) -> int:
    """How many sessions *backend* has served so far (``stot`` of its BACKEND row)."""
    (row,) = [r for r in show_stat(fleet) if r.get("pxname") == backend and r.get("svname") == "BACKEND"]
    return int(row["stot"])


def states_are(fleet: Fleet, drained: tuple[str, ...], ready: tuple[str, ...]) -> bool:
    status = server_status(fleet)
    return all(status.get(s, "").startswith("DRAIN") for s in drained) and all(
        status.get(s) == "UP" for s in ready
    )


async def switch_to_green(fleet: Fleet, *args: str) -> None:
    """``spa-version bump B ARGS`` once HAProxy has blue UP and green DRAIN; return when it
    shows the switch (blue DRAIN, green UP)."""
    await async_wait_for(lambda: states_are(fleet, GREEN, BLUE), timeout=15, interval=0.1)
    result = run_cli("bump", "B", *args, env=fleet.env)
    assert result.returncode == 0, result.stderr
    await async_wait_for(
        lambda: states_are(fleet, BLUE, GREEN), timeout=AGENT_INTER + SLACK + 5, interval=0.05
    )


def blue_down(fleet: Fleet) -> bool:
    """Whether HAProxy has marked both blue servers DOWN."""
    status = server_status(fleet)
    return all(status.get(name, "").startswith("DOWN") for name in BLUE)


# -- pinned traffic ------------------------------------------------------------------


@dataclass
class PinLog:
    served: list[tuple[float, str]] = field(default_factory=list)  # (answered at, server)
    failures: list[str] = field(default_factory=list)
    #: Requests sent again after a kept-alive connection closed without any response.
    retried: list[float] = field(default_factory=list)

    def recent(self, seconds: float) -> set[str]:
        """The servers that answered in the last *seconds*."""
        since = time.monotonic() - seconds
        return {server for at, server in self.served if at > since}


async def pinned_load(
    base: str, pin: str, log: PinLog, stop: asyncio.Event, *, retry_closed: bool = False
) -> None:
    """A steady loop of GETs pinned to *pin* (none if empty), as an old tab's fetches would be.

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
            # Pacing, not synchronisation: a steady trickle leaves the cores to the servers.
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def pinned_traffic(base: str, *pins: str, retry_closed: bool = False) -> AsyncIterator[list[PinLog]]:
    """One `pinned_load` per pin in *pins*, running inside the block; their logs.

    On leaving, the loads stop, and none of them may have raised.
    """
    stop = asyncio.Event()
    logs = [PinLog() for _ in pins]
    tasks = [
        asyncio.ensure_future(pinned_load(base, pin, log, stop, retry_closed=retry_closed))
        for pin, log in zip(pins, logs, strict=True)
    ]
    try:
        yield logs
    finally:
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert [r for r in results if isinstance(r, BaseException)] == []


async def served_by(base: str, headers: dict[str, str], n: int = 12, method: str = "GET") -> set[str]:
    """The servers that answered *n* requests with *headers*."""
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        out = set()
        for _ in range(n):
            response = await http.request(method, "/api/whoami", headers=headers)
            assert response.status_code == 200, response.text
            out.add(response.json()["server"])
        return out


async def ws_server(frontend: str, headers: dict[str, str]) -> str:
    """The server that accepted a websocket handshake with *headers*."""
    async with websockets.connect(f"ws://{frontend}/ws", additional_headers=headers, open_timeout=10) as conn:
        return str(await asyncio.wait_for(conn.recv(), 10))


async def assert_only_blue_pins_reach_blue(frontend: str, blue_requests: int = 12) -> None:
    """After the switch to green: requests pinned to blue (GET, a pin list, POST) still
    reach blue, all of *blue_requests* of them; everything else reaches green, and a
    websocket handshake is never pinned, whatever it carries."""
    base = f"http://{frontend}"
    assert await served_by(base, {"X-SPA-Pin": "blue"}, n=blue_requests) == set(BLUE)
    assert await served_by(base, {"X-SPA-Pin": "blue ,green"}) <= set(BLUE)
    assert await served_by(base, {"X-SPA-Pin": "blue"}, method="POST") <= set(BLUE)
    for headers in UNPINNED:
        assert await served_by(base, headers) <= set(GREEN), headers
    for _ in range(4):
        assert await ws_server(frontend, {"X-SPA-Pin": "blue"}) in GREEN
