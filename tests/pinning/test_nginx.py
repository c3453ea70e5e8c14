"""The nginx pinning recipe (examples/nginx/nginx.conf, docs/deploy-haproxy.md "nginx")
against a real nginx: blue (build A, slot blue) and green (build B, slot green) uvicorn
processes, real Redis, the real CLI.

The switch is nginx's own (``live.conf`` rewritten, then a reload); pinned requests keep
reaching blue after it, and reach green once blue stops, without a failed request.
Malformed and unknown pins and websocket handshakes go to the live build.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

import pytest

from tests.support.haproxy import (
    BLUE,
    GREEN,
    assert_only_blue_pins_reach_blue,
    pinned_traffic,
    served_by,
    start_app_server,
    stop_all,
    stop_slot,
)
from tests.support.servers import (
    RedisServer,
    ServerProcess,
    async_wait_for,
    cli_command,
    free_port,
    nginx_binary,
    run_cli,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "examples" / "nginx" / "nginx.conf"
DOC = ROOT / "docs" / "deploy-haproxy.md"

pytestmark = [pytest.mark.slow, pytest.mark.redis]


def test_the_recipe_shows_the_tested_nginx_config() -> None:
    """docs/deploy-haproxy.md embeds examples/nginx/nginx.conf verbatim."""
    blocks = re.findall(r"```nginx\n(.*?)```", DOC.read_text(), re.S)
    assert CONFIG.read_text() in blocks


@dataclass
class NginxFleet:
    env: dict[str, str]
    prefix: Path
    frontend: str
    addrs: dict[str, str] = field(default_factory=dict)
    procs: dict[str, ServerProcess] = field(default_factory=dict)

    def switch(self, slot: tuple[str, ...]) -> None:
        """Point ``upstream live`` at *slot* and reload nginx (SIGHUP to its master)."""
        servers = "".join(f"    server {self.addrs[name]};\n" for name in slot)
        (self.prefix / "live.conf").write_text(f"upstream live {{\n{servers}}}\n")
        self.procs["nginx"].send_signal(signal.SIGHUP)


@pytest.fixture
def nginx_fleet(redis: RedisServer, app_name: str) -> Iterator[NginxFleet]:
    nginx = nginx_binary()
    prefix = Path(tempfile.mkdtemp(prefix="spa-nginx-"))
    store_env = {"SPA_VERSION_URL": redis.url, "SPA_VERSION_APP": app_name}
    assert run_cli("bump", "A", env=store_env).returncode == 0
    front_port = free_port()
    fleet = NginxFleet(store_env, prefix, f"127.0.0.1:{front_port}")
    try:
        for name in BLUE + GREEN:
            port = free_port()
            fleet.addrs[name] = f"127.0.0.1:{port}"
            env = {**store_env, "E2E_HEARTBEAT": "1", "E2E_DRAIN_GRACE": "2", "E2E_DRAIN_WINDOW": "2"}
            fleet.procs[name] = start_app_server(name, port, env)
        for name in BLUE + GREEN:
            fleet.procs[name].wait_listening()
        values = {f"{name.upper()}_ADDR": addr for name, addr in fleet.addrs.items()}
        values["FRONTEND_ADDR"] = fleet.frontend
        (prefix / "nginx.conf").write_text(Template(CONFIG.read_text()).safe_substitute(values))
        servers = "".join(f"    server {fleet.addrs[name]};\n" for name in BLUE)
        (prefix / "live.conf").write_text(f"upstream live {{\n{servers}}}\n")
        command = [nginx, "-p", str(prefix), "-c", "nginx.conf", "-g", "daemon off;"]
        fleet.procs["nginx"] = ServerProcess(
            "nginx", {}, command=command, port=front_port, cwd=prefix
        ).start()
        fleet.procs["nginx"].wait_listening(timeout=15)
        yield fleet
    finally:
        stop_all(fleet.procs, {"nginx": signal.SIGQUIT})  # nginx's graceful shutdown
        shutil.rmtree(prefix, ignore_errors=True)


async def test_nginx_pins_requests_to_their_slot_until_it_stops(nginx_fleet: NginxFleet) -> None:
    fleet = nginx_fleet
    base = f"http://{fleet.frontend}"
    assert await served_by(base, {}) <= set(BLUE)
    # nginx's reload (the switch) closes the client connections its old workers kept
    # alive; a request sent on one at that instant sees a close without a response, and
    # a browser sends it again. The clients here do the same, once (PinLog.retried).
    async with pinned_traffic(base, "blue", "blue", "blue", "", retry_closed=True) as logs:
        *pinned, unpinned = logs
        await async_wait_for(lambda: all(len(log.served) > 5 for log in pinned), timeout=15, interval=0.05)
        # The switch: nginx's live upstream to green (a reload), then the bump.
        fleet.switch(GREEN)
        bump = await asyncio.create_subprocess_exec(
            *cli_command("bump", "B"), env={**os.environ, **fleet.env}, stdout=asyncio.subprocess.DEVNULL
        )
        assert await bump.wait() == 0
        await async_wait_for(lambda: (recent := unpinned.recent(0.3)) and recent <= set(GREEN), timeout=20)
        switched = time.monotonic()
        await async_wait_for(
            lambda: all(any(at > switched for at, _ in log.served) for log in pinned), timeout=10
        )
        # Blue is stale now: pinned requests still reach it, everything else reaches green.
        await assert_only_blue_pins_reach_blue(fleet.frontend, blue_requests=20)

        # Blue stops: the pinned load goes on, answered by green.
        stopped = time.monotonic()
        await stop_slot(fleet.procs, BLUE)
        mark = time.monotonic()
        await async_wait_for(
            lambda: all(sum(at > mark for at, _ in log.served) > 10 for log in pinned), timeout=20
        )
    phases = f"switched at {switched:.3f}, blue stopped at {stopped:.3f}"
    assert [f for log in logs for f in log.failures] == [], phases
    # Only the reload closes connections: never blue's stop (nginx opens a fresh upstream
    # connection per request and passes a refused one to the next server).
    assert all(at < stopped for log in logs for at in log.retried)
    served = [(at, server) for log in pinned for at, server in log.served]
    assert {server for at, server in served if switched < at < stopped} == set(BLUE)
    assert {server for at, server in served if at > mark} <= set(GREEN)
