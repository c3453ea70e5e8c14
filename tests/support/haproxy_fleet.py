"""The blue/green fleet behind a real HAProxy (tests/drain/test_haproxy_blue_green.py,
tests/pinning): the ``fleet`` fixture (registered in tests/conftest.py) starts four app
servers (tests/support/haproxy.py) behind HAProxy running examples/haproxy/haproxy.cfg,
the config docs/deploy-haproxy.md shows; the rest reads and switches it."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.epochs import bumped_epoch
from tests.support.haproxy import BLUE, GREEN, ROOT, start_app_server, stop_all
from tests.support.servers import (
    RedisServer,
    ServerProcess,
    async_wait_for,
    free_port,
    port_open,
    run_cli,
    wait_for,
)

CONFIG = ROOT / "examples" / "haproxy" / "haproxy.cfg"

AGENT_INTER = 1.0  # seconds: below inter x (rise - 1) = 2 s (docs/deploy-haproxy.md, Timing)
# HAProxy marks blue DRAIN within the agent interval (docs/deploy-haproxy.md, "Timing"):
# blue says "drain" at its first agent check after the bump (no handover, the default); the slack covers a
# busy machine's scheduling of that check and of this test's polling.
SLACK = 0.75
# The grace outlasts that, so HAProxy has drained blue before its first close and no
# reconnect lands on blue again.
GRACE = AGENT_INTER + SLACK + 1.0
WINDOW = 4.0


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


def runtime_api(fleet: Fleet, command: str) -> str:
    """One command over HAProxy's runtime API (the stats socket, level admin); its answer."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(fleet.stats_socket)
        sock.sendall(command.encode() + b"\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data.decode()


def show_stat(fleet: Fleet) -> list[dict[str, str]]:
    """HAProxy's ``show stat`` over the runtime API, one dict per row."""
    lines = runtime_api(fleet, "show stat").splitlines()
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


async def bump_landed(addr: str, label: str, timeout: float) -> int:
    """Poll one app server's version endpoint directly until it serves *label*; its epoch."""
    async with httpx.AsyncClient(base_url=f"http://{addr}", timeout=5) as http:

        async def epoch() -> int | None:
            release = (await http.get("/__spa-version")).json()
            return int(release["epoch"]) if release is not None and release["label"] == label else None

        landed: int = await async_wait_for(
            epoch, timeout=timeout, message=f"the bump did not reach {addr} within {timeout} s"
        )
        return landed
