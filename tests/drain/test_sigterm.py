"""SIGTERM under real uvicorn: the sockets are closed gently before uvicorn cuts them
(docs/deploy-haproxy.md, "Shutting down a process that still has sockets")."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from spa_version.protocol import CLOSE_CODE_DRAIN, parse_header
from tests.support.drain_app import close_clients, open_clients
from tests.support.servers import ServerProcess, async_wait_for, run_cli


async def test_sigterm_closes_sockets_with_1012_spread_before_uvicorn_shuts_down(tmp_path: Path) -> None:
    """uvicorn would close every socket at once with a bare 1012; with the hook each one gets
    our 1012 with the current version as reason, spread over the shutdown window, and then
    the process exits."""
    window, count = 2.0, 30
    env = {
        "SPA_VERSION_URL": f"file://{tmp_path}",
        "SPA_VERSION_APP": "sigterm",
        "SPA_VERSION_BUILD": "A",
        "E2E_SERVER": "hello",  # the greeting open_clients expects
        "E2E_SHUTDOWN_WINDOW": str(window),
    }
    bumped = run_cli("bump", "--json", "A", env=env)
    assert bumped.returncode == 0, bumped.stderr
    epoch = json.loads(bumped.stdout)["epoch"]
    with ServerProcess("uvicorn", env, "tests.support.haproxy_app:app", "--log-level", "warning") as server:
        server.wait_listening()
        clients = await open_clients(f"{server.ws_url}/ws", count)
        server.terminate()
        await async_wait_for(lambda: all(c.closed_at is not None for c in clients), timeout=20)
        await async_wait_for(lambda: server.proc is not None and server.proc.poll() is not None, timeout=20)
    assert {c.code for c in clients} == {CLOSE_CODE_DRAIN}
    # uvicorn's own shutdown close carries no reason; ours carries the current version.
    assert {parse_header(c.reason or "").epoch for c in clients} == {epoch}
    times = sorted(c.closed_at or 0.0 for c in clients)
    q1, _, q3 = statistics.quantiles(times, n=4)
    assert q3 - q1 >= window / 4
    await close_clients(clients)
