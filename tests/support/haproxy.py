"""What the blue/green end-to-end tests share: the app servers of each slot as processes,
and an old tab's pinned traffic (``X-SPA-Pin``, docs/protocol.md "Pinning") through
whichever front end routes it (HAProxy or nginx). The HAProxy fleet itself: haproxy_fleet.py."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import websockets

from tests.support.servers import (
    ServerProcess,
    cli_command,
)

ROOT = Path(__file__).resolve().parents[2]

BLUE = ("blue1", "blue2")  # build A, slot blue: live when a test starts
GREEN = ("green1", "green2")  # build B, slot green: live after the switch

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
