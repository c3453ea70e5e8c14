"""SIGTERM under real uvicorn: the sockets are closed gently before uvicorn cuts them
(docs/deploy-haproxy.md, "Shutting down a process that still has sockets")."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
from pathlib import Path

from spa_version.protocol import CLOSE_CODE_DRAIN, parse_header
from tests.support.drain_app import close_clients, open_clients
from tests.support.servers import async_wait_for, free_port, port_open, run_cli, wait_for

ROOT = Path(__file__).resolve().parents[2]


async def test_sigterm_closes_sockets_with_1012_spread_before_uvicorn_shuts_down(tmp_path: Path) -> None:
    """uvicorn would close every socket at once with a bare 1012; with the hook each one gets
    our 1012 with the current version as reason, spread over the shutdown window, and then
    the process exits."""
    window, count = 2.0, 30
    port = free_port()
    env = {
        **os.environ,
        "SPA_VERSION_URL": f"file://{tmp_path}",
        "SPA_VERSION_APP": "sigterm",
        "SPA_VERSION_BUILD": "A",
        "E2E_SERVER": "hello",  # the greeting open_clients expects
        "E2E_SHUTDOWN_WINDOW": str(window),
    }
    bumped = run_cli("bump", "--json", "A", env=env)
    assert bumped.returncode == 0, bumped.stderr
    epoch = json.loads(bumped.stdout)["epoch"]
    command = [sys.executable, "-m", "uvicorn", "tests.support.haproxy_app:app", "--port", str(port)]
    proc = subprocess.Popen([*command, "--log-level", "warning"], cwd=ROOT, env=env)
    try:
        wait_for(lambda: port_open(port), timeout=30)
        clients = await open_clients(f"ws://127.0.0.1:{port}/ws", count)
        proc.send_signal(signal.SIGTERM)
        await async_wait_for(lambda: all(c.closed_at is not None for c in clients), timeout=20)
        await async_wait_for(lambda: proc.poll() is not None, timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
    assert {c.code for c in clients} == {CLOSE_CODE_DRAIN}
    # uvicorn's own shutdown close carries no reason; ours carries the current version.
    assert {parse_header(c.reason or "").epoch for c in clients} == {epoch}
    times = sorted(c.closed_at or 0.0 for c in clients)
    q1, _, q3 = statistics.quantiles(times, n=4)
    assert q3 - q1 >= window / 4
    await close_clients(clients)
