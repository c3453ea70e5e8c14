"""Fleet status on the embedded file store, and for processes without a declared build
(docs/deploy-haproxy.md, "Deploy steps").

The ``make demo`` case: one uvicorn process on ``file://.spa-version``, no Redis, no build.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from spa_version import open_store
from spa_version.deploy.fleet import read_fleet
from spa_version.protocol import CLOSE_CODE_DRAIN
from tests.support.cli import status_json
from tests.support.drain_app import build_middleware, close_clients, open_clients
from tests.support.servers import ServerProcess, ThreadedUvicorn, async_wait_for, free_port, run_cli, wait_for

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """The demo app started the way ``make demo`` starts it, in a private working directory."""
    port = free_port()
    app_dir = str(REPO / "examples" / "starlette_app")
    command = [sys.executable, "-m", "uvicorn", "--app-dir", app_dir, "app:app", "--port", str(port)]
    unset = ("SPA_VERSION_URL", "SPA_VERSION_APP", "SPA_VERSION_BUILD", "SPA_VERSION_AGENT_PORT")
    log = tmp_path / "demo.log"
    with ServerProcess("demo", {}, command=command, port=port, cwd=tmp_path, unset=unset, log=log) as server:
        assert server.wait_answering("/").status_code == 200
        assert server.proc is not None
        yield server.proc, tmp_path


def test_status_lists_the_running_demo_as_live(demo: tuple[subprocess.Popen[bytes], Path]) -> None:
    """``status`` (JSON and table) lists the demo process, live, no build, websockets untracked."""
    proc, cwd = demo
    summary = wait_for(lambda: status_json(cwd=cwd)["processes"] or None, timeout=15, interval=0.2)
    [record] = summary
    assert record["pid"] == proc.pid
    assert record["state"] == "live" and record["build"] is None
    assert record["websockets"] is None  # no build: nothing tracks them
    assert record["ttl"] == 3 * record["interval"]
    # The record is a file beside the demo's store, named <host>-<pid>.json.
    [path] = (cwd / ".spa-version" / "default.fleet").glob("*.json")
    assert path.name.endswith(f"-{proc.pid}.json")
    table = run_cli("status", cwd=str(cwd))
    assert table.returncode == 0, table.stderr
    [row] = [line.split() for line in table.stdout.splitlines() if line.startswith(record["name"])]
    assert row[1:5] == ["-", "live", "-", "-"]  # build, state, epoch (no release yet), sockets


def test_bump_wait_against_the_demo_finishes_at_once(demo: tuple[subprocess.Popen[bytes], Path]) -> None:
    """With no stale process, ``bump --wait`` says there is nothing to drain and exits 0; the
    demo then reports the new epoch, and removes its record when it shuts down."""
    proc, cwd = demo
    wait_for(lambda: status_json(cwd=cwd)["processes"], timeout=15, interval=0.2)
    result = run_cli("bump", "demo-2", "--wait", "--timeout", "30", cwd=str(cwd))
    assert result.returncode == 0, result.stderr
    epoch = json.loads(run_cli("get", "--json", cwd=str(cwd)).stdout)["epoch"]
    assert result.stdout.startswith(f"bumped to epoch {epoch} (")
    nothing = "nothing to drain: 0 websocket(s) and 0 stream(s) left on other builds (1 process(es) reported)"
    assert nothing in result.stderr

    def caught_up() -> bool:
        [record] = status_json(cwd=cwd)["processes"]
        return bool(record["epoch"] == epoch and record["label"] == "demo-2")

    wait_for(caught_up, timeout=15, interval=0.2)
    proc.send_signal(signal.SIGTERM)
    # uvicorn re-raises the signal after a graceful shutdown, so -SIGTERM is a clean exit.
    assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in (cwd / "demo.log").read_text()
    # Removed on shutdown, not merely left to expire.
    assert list((cwd / ".spa-version" / "default.fleet").glob("*.json")) == []
    assert "no process has reported" in run_cli("status", cwd=str(cwd)).stdout


async def test_file_store_bump_wait_drains_a_stale_build(tmp_path: Path, app_name: str) -> None:
    """On file://, a process on build A goes stale at ``bump B --wait``, which exits 0 once it has
    closed every websocket with 1012; ``status`` then shows it stale with 0 sockets."""
    url = f"file://{tmp_path}"
    store = open_store(url, app=app_name)
    await store.bump("A")
    mw, _ = build_middleware(
        url, app_name=app_name, heartbeat_interval=0.5, drain_grace=0.2, drain_window=1.0
    )
    env = {"SPA_VERSION_URL": url, "SPA_VERSION_APP": app_name}
    with ThreadedUvicorn(mw) as server:
        clients = await open_clients(server.ws_url + "/ws", 5)
        await async_wait_for(
            lambda: [p["websockets"] for p in status_json(env)["processes"]] == [5], timeout=15
        )
        # In a thread: the clients on this loop must answer the server's close frames meanwhile.
        result = await asyncio.to_thread(run_cli, "bump", "B", "--wait", "--timeout", "30", env=env)
        assert result.returncode == 0, result.stderr
        assert "0 websocket(s) left" in result.stderr
        assert "nothing to drain" not in result.stderr  # it really waited for the drain
        await async_wait_for(lambda: all(c.closed_at is not None for c in clients))
        assert {c.code for c in clients} == {CLOSE_CODE_DRAIN}
        [record] = status_json(env)["processes"]
        assert record["build"] == "A" and record["state"] == "stale" and record["websockets"] == 0
        await close_clients(clients)
    assert await read_fleet(store) == []


async def test_a_process_without_a_build_heartbeats_but_counts_nothing(tmp_path: Path, app_name: str) -> None:
    """No build declared: the record is live with build null, and requests are not counted by
    epoch (the request path has no counter at all)."""
    url = f"file://{tmp_path}"
    store = open_store(url, app=app_name)
    epoch = (await store.bump("A")).release.epoch
    mw, _ = build_middleware(url, app_name=app_name, build=None, heartbeat_interval=0.3)
    assert mw.deployment.build is None and mw.deployment.count_request is None
    env = {"SPA_VERSION_URL": url, "SPA_VERSION_APP": app_name}
    with ThreadedUvicorn(mw) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            for _ in range(3):
                headers = {"X-SPA-Client-Version": str(epoch)}  # a tab on A
                assert (await http.get("/", headers=headers)).status_code == 200
        # A few beats later (each would carry counts if there were any).
        first = await async_wait_for(lambda: status_json(env)["processes"], timeout=15)
        await async_wait_for(
            lambda: status_json(env)["processes"][0]["updated_at"] > first[0]["updated_at"], timeout=15
        )
        [record] = status_json(env)["processes"]
        assert record["build"] is None and record["state"] == "live"
        assert record["epoch"] == epoch and record["pid"] == os.getpid()
        assert record["requests_by_epoch"] == {}
    assert await read_fleet(store) == []


async def test_readers_prune_file_records_past_their_ttl(tmp_path: Path, app_name: str) -> None:
    """A record older than its TTL (a process that died) is gone for readers and deleted;
    a fresh one is kept."""
    fleet_dir = tmp_path / f"{app_name}.fleet"
    fleet_dir.mkdir()
    now = time.time()

    def record(pid: int, age: float) -> str:
        return json.dumps(
            {"host": "h", "pid": pid, "updated_at": now - age, "interval": 1.0, "ttl": 3.0, "build": "A"}
            | {"state": "live", "epoch": 1, "websockets": 2}
        )

    (fleet_dir / "h-1.json").write_text(record(1, age=60.0))
    (fleet_dir / "h-2.json").write_text(record(2, age=0.0))
    store = open_store(f"file://{tmp_path}", app=app_name)
    [proc] = await read_fleet(store)
    assert proc.name == "h:2" and proc.websockets == 2
    assert sorted(p.name for p in fleet_dir.iterdir()) == ["h-2.json"]


def test_status_on_the_memory_store_is_a_clear_error() -> None:
    """The memory store has no fleet: ``status`` says so in one line, exit 2."""
    result = run_cli("status", env={"SPA_VERSION_URL": "memory://x"})
    assert result.returncode == 2
    assert "fleet status needs the Redis or file store" in result.stderr


def test_status_json_has_the_keys_the_docs_list(tmp_path: Path, app_name: str) -> None:
    """``status --json`` has exactly the keys docs/deploy-haproxy.md lists, for a process
    with a build and its agent (so a script written from the docs finds them all)."""
    store_url = f"file://{tmp_path}"
    asyncio.run(open_store(store_url, app=app_name).bump("A"))
    mw, _ = build_middleware(store_url, app_name=app_name, agent_port=free_port(), heartbeat_interval=0.2)
    env = {"SPA_VERSION_URL": store_url, "SPA_VERSION_APP": app_name}
    with ThreadedUvicorn(mw):
        summary = wait_for(lambda: (s := status_json(env))["processes"] and s, timeout=15, interval=0.1)
    assert set(summary) == {"release", "builds", "processes"}
    assert set(summary["release"]) == {"epoch", "label", "policy", "min_compatible", "created_at", "note"}
    assert set(summary["builds"]) == {"A"}
    assert set(summary["builds"]["A"]) == {
        "processes", "live", "pending", "stale", "websockets", "streams", "requests_by_epoch",
    }  # fmt: skip
    [process] = summary["processes"]
    assert set(process) == {
        "name", "host", "pid", "build", "state", "stopping", "epoch", "label", "websockets", "streams",
        "drained", "agent_port", "requests_by_epoch", "requests_window", "started_at", "updated_at",
        "interval", "ttl",
    }  # fmt: skip
