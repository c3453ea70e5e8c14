"""HAProxy agent-check replies, fleet heartbeats, ``spa-version status`` and ``bump --wait``
(docs/deploy-haproxy.md, "How it works")."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from spa_version import open_store
from spa_version.deploy.agent import agent_reply
from spa_version.deploy.fleet import read_fleet
from spa_version.deploy.heartbeat import EpochCounter
from spa_version.protocol import CLOSE_CODE_DRAIN
from spa_version.stores import Store
from tests.support.drain_app import build_middleware, close_clients, open_clients
from tests.support.servers import (
    RedisServer,
    ServerProcess,
    ThreadedUvicorn,
    async_wait_for,
    cli_command,
    free_port,
    run_cli,
    wait_for,
)


async def agent_says(port: int, reply: bytes) -> bool:
    """Whether one agent check now gets *reply*."""
    return await ask_agent(port) == reply


async def ask_agent(port: int) -> bytes:
    """One agent check, the way HAProxy does it: connect, read until the agent closes."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
        await writer.wait_closed()


# -- agent replies ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "weight", "line"),
    [
        ("live", 100, b"up ready 100%\n"),
        ("live", 55, b"up ready 55%\n"),
        ("live", 0, b"up ready 10%\n"),  # 0% would drain: warm-up never goes below 10%
        ("live", 250, b"up ready 100%\n"),
        ("stale", 100, b"drain\n"),
        ("pending", 100, b"drain\n"),
    ],
)
def test_agent_reply_words(state: str, weight: int, line: bytes) -> None:
    """live -> ready (+up, +weight); stale and pending -> drain (HAProxy agent-check words)."""
    assert agent_reply(state, weight) == line


async def test_in_process_agent_says_ready_then_drain_after_a_bump(app_name: str) -> None:
    """The middleware's agent answers ready while the build is current and drain once it is stale."""
    store = open_store(f"memory://{app_name}", app=app_name)
    await store.bump("A")
    port = free_port()
    mw, _ = build_middleware(store, agent_port=port, agent_handover=0)
    with ThreadedUvicorn(mw):
        await async_wait_for(lambda: mw.deployment.agent_port is not None)
        assert await ask_agent(port) == b"up ready 100%\n"
        await store.bump("B")

        await async_wait_for(lambda: agent_says(port, b"drain\n"), interval=0.05)
        await store.bump("A")  # a rollback makes it ready again

        await async_wait_for(lambda: agent_says(port, b"up ready 100%\n"), interval=0.05)
    # Stopped with the server: nothing listens any more.
    with pytest.raises(OSError):
        await ask_agent(port)


async def test_pending_build_is_drained_by_the_agent_and_warms_up_when_live(app_name: str) -> None:
    """green before its bump says drain; after it, ready with a warm-up weight below 100%."""
    store = open_store(f"memory://{app_name}", app=app_name)
    await store.bump("A")
    port = free_port()
    mw, _ = build_middleware(store, build="B", agent_port=port, agent_warmup=3600)
    with ThreadedUvicorn(mw):
        await async_wait_for(lambda: mw.deployment.agent_port is not None)
        assert await ask_agent(port) == b"drain\n"
        await store.bump("B")

        await async_wait_for(lambda: agent_says(port, b"up ready 10%\n"), interval=0.05)


@pytest.fixture
def agent_proc(redis: RedisServer, app_name: str) -> Iterator[tuple[int, dict[str, str]]]:
    """``spa-version agent`` as its own process, against the real Redis."""
    env = {"SPA_VERSION_URL": redis.url, "SPA_VERSION_APP": app_name}
    assert run_cli("bump", "A", env=env).returncode == 0
    port = free_port()
    command = cli_command("agent", "--port", str(port), "--build", "A")
    with ServerProcess("spa-version agent", env, command=command, port=port) as agent:
        wait_for(lambda: agent.check_running() or "agent for build A" in agent.output(), timeout=30)
        yield port, env


async def test_standalone_agent_command_follows_the_store(agent_proc: tuple[int, dict[str, str]]) -> None:
    """``spa-version agent --port N --build A`` says ready, then drain once ``bump B`` lands."""
    port, env = agent_proc

    await async_wait_for(lambda: agent_says(port, b"up ready 100%\n"), interval=0.05)
    assert (await asyncio.to_thread(run_cli, "bump", "B", env=env)).returncode == 0

    await async_wait_for(lambda: agent_says(port, b"drain\n"), interval=0.05)


async def test_a_second_agent_on_the_same_port_is_refused(agent_proc: tuple[int, dict[str, str]]) -> None:
    """Two builds must not answer HAProxy on one port by turns: the second agent exits 1, one line."""
    port, env = agent_proc
    await async_wait_for(lambda: agent_says(port, b"up ready 100%\n"), interval=0.05)
    result = await asyncio.to_thread(run_cli, "agent", "--port", str(port), "--build", "B", env=env)
    assert result.returncode == 1, result
    assert result.stderr.count("\n") == 1 and "another agent" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    for _ in range(5):  # the first agent, alone on the port, keeps answering for build A
        assert await agent_says(port, b"up ready 100%\n")


# -- fleet ---------------------------------------------------------------------------------


def test_epoch_counter_batches_raw_values_and_stays_bounded() -> None:
    """Counts by client epoch, 'none' without the header, 'other' for junk or past the size bound."""
    counter = EpochCounter(b"x-spa-client-version")
    for value in (b"3", b"3", b"4", b"junk"):
        counter.count([(b"accept", b"*/*"), (b"x-spa-client-version", value)])
    counter.count([(b"accept", b"*/*")])
    assert counter.take() == {"3": 2, "4": 1, "none": 1, "other": 1}
    assert counter.take() == {}  # taken means reset
    for i in range(1000):
        counter.count([(b"x-spa-client-version", str(i + 1).encode())])
    taken = counter.take()
    assert len(taken) <= 65 and sum(taken.values()) == 1000


@pytest.fixture
def redis_store(redis: RedisServer, app_name: str) -> Iterator[Store]:
    yield open_store(redis.url, app=app_name)


async def test_heartbeat_reports_build_state_sockets_and_client_epochs(
    redis: RedisServer, redis_store: Store, app_name: str
) -> None:
    """Each process's record shows build, live/stale, open websockets and requests by client epoch."""
    a = str((await redis_store.bump("A")).release.epoch)
    mw, _ = build_middleware(redis.url, app_name=app_name, heartbeat_interval=30, drain_window=60)
    env = {"SPA_VERSION_URL": redis.url, "SPA_VERSION_APP": app_name}

    def fleet() -> dict[str, Any]:
        result = run_cli("status", "--json", env=env)
        assert result.returncode == 0, result.stderr
        summary: dict[str, Any] = json.loads(result.stdout)
        return summary

    with ThreadedUvicorn(mw) as server:
        clients = await open_clients(server.ws_url + "/ws", 3)
        # Each record carries the requests counted since the one before: wait for the
        # first (written once the listener has read the store), so that the next one,
        # written at the bump, is the one that counts the requests below.
        await async_wait_for(lambda: fleet()["processes"], timeout=15, interval=0.2)
        async with httpx.AsyncClient(base_url=server.url) as http:
            for epoch in (a, a, a, "junk", None):  # three requests from tabs on A
                headers = {} if epoch is None else {"X-SPA-Client-Version": epoch}
                assert (await http.get("/", headers=headers)).status_code == 200
        # The bump changes the state, which writes a heartbeat at once (no 30 s wait).
        b = (await redis_store.bump("B")).release.epoch

        def stale_record() -> dict[str, Any] | None:
            summary = fleet()
            procs = [p for p in summary["processes"] if p["state"] == "stale"]
            return summary if procs else None

        summary = await async_wait_for(lambda: stale_record(), timeout=15, interval=0.2)
        [proc] = summary["processes"]
        assert proc["build"] == "A" and proc["pid"] == os.getpid()
        assert proc["websockets"] == 3
        assert proc["requests_by_epoch"] == {a: 3, "other": 1, "none": 1}
        assert summary["release"]["label"] == "B"
        assert summary["builds"]["A"]["stale"] == 1 and summary["builds"]["A"]["websockets"] == 3
        table = run_cli("status", env=env).stdout
        assert f"current: epoch {b}  label B" in table
        assert any(line.split()[:3] == ["A", "1", "0"] for line in table.splitlines())
        await close_clients(clients)
    # A process that shut down removes its record.
    assert await read_fleet(redis_store) == []
    await redis_store.aclose()


def fleet_sockets(env: dict[str, str]) -> list[int]:
    """Open websockets per process, as ``spa-version status --json`` reports them."""
    result = run_cli("status", "--json", env=env)
    assert result.returncode == 0, result.stderr
    return [int(p["websockets"]) for p in json.loads(result.stdout)["processes"]]


async def test_bump_wait_returns_once_stale_processes_have_no_websockets(
    redis: RedisServer, app_name: str
) -> None:
    """``bump B --wait`` exits 0 after the blue process drained every socket with 1012."""
    store = open_store(redis.url, app=app_name)
    a = (await store.bump("A")).release.epoch
    await store.aclose()
    # The middleware's own store: a redis client belongs to one event loop.
    mw, _ = build_middleware(
        redis.url, app_name=app_name, heartbeat_interval=0.5, drain_grace=0.2, drain_window=1.0
    )
    env = {"SPA_VERSION_URL": redis.url, "SPA_VERSION_APP": app_name}
    with ThreadedUvicorn(mw) as server:
        clients = await open_clients(server.ws_url + "/ws", 5)
        await async_wait_for(lambda: fleet_sockets(env) == [5])
        result = await asyncio.to_thread(run_cli, "bump", "B", "--wait", "--timeout", "30", env=env)
        assert result.returncode == 0, result.stderr
        b = json.loads(run_cli("get", "--json", env=env).stdout)["epoch"]
        assert b > a and result.stdout.startswith(f"bumped to epoch {b} (")
        assert "0 websocket(s) left" in result.stderr
        # Every socket was really closed (the wait did not just time out or guess).
        await async_wait_for(lambda: all(c.closed_at is not None for c in clients))
        assert {c.code for c in clients} == {CLOSE_CODE_DRAIN}
        await close_clients(clients)


async def test_bump_wait_exits_3_on_timeout(redis: RedisServer, app_name: str) -> None:
    """With sockets still open when --timeout passes, ``bump --wait`` exits 3 (the bump itself is done)."""
    store = open_store(redis.url, app=app_name)
    await store.bump("A")
    await store.aclose()
    mw, _ = build_middleware(redis.url, app_name=app_name, heartbeat_interval=0.5, drain_grace=600)
    env = {"SPA_VERSION_URL": redis.url, "SPA_VERSION_APP": app_name}
    with ThreadedUvicorn(mw) as server:
        clients = await open_clients(server.ws_url + "/ws", 2)
        await async_wait_for(lambda: fleet_sockets(env) == [2])
        result = await asyncio.to_thread(run_cli, "bump", "B", "--wait", "--timeout", "1", env=env)
        assert result.returncode == 3
        assert "still draining after 1 s: 2 websocket(s) left" in result.stderr
        assert json.loads(run_cli("get", "--json", env=env).stdout)["label"] == "B"
        await close_clients(clients)


async def test_bump_wait_pinned_timeout_names_the_pinned_requests(redis: RedisServer, app_name: str) -> None:
    """``--wait-pinned`` that times out on pinned traffic alone says so, not "websockets"."""
    store = open_store(redis.url, app=app_name)
    await store.bump("A")
    await store.aclose()
    mw, _ = build_middleware(redis.url, app_name=app_name, heartbeat_interval=0.5, slot="blue")
    env = {"SPA_VERSION_URL": redis.url, "SPA_VERSION_APP": app_name}
    stop = asyncio.Event()

    async def pinned_tab(base: str) -> None:  # an old tab that keeps calling its API
        async with httpx.AsyncClient(base_url=base) as http:
            while not stop.is_set():
                await http.get("/", headers={"X-SPA-Pin": "blue"})
                await asyncio.sleep(0.05)

    with ThreadedUvicorn(mw) as server:
        tab = asyncio.ensure_future(pinned_tab(server.url))
        try:
            result = await asyncio.to_thread(run_cli, "bump", "B", "--wait-pinned", "--timeout", "3", env=env)
        finally:
            stop.set()
            await tab
    assert result.returncode == 3, result.stderr
    [line] = [ln for ln in result.stderr.splitlines() if ln.startswith("spa-version:")]
    assert line.startswith("spa-version: still draining after 3 s: 0 websocket(s) left, "), line
    assert line.endswith("pinned request(s) in the last interval"), line


async def test_a_stale_build_hands_over_before_it_drains(app_name: str) -> None:
    """For agent_handover seconds after the bump the old build still says ready and accepts
    websockets (the balancer may not know yet); then it says drain and refuses them."""
    store = open_store(f"memory://{app_name}", app=app_name)
    await store.bump("A")
    port = free_port()
    mw, _ = build_middleware(store, agent_port=port, agent_handover=1.5, drain_grace=30)
    with ThreadedUvicorn(mw) as server:
        await async_wait_for(lambda: mw.deployment.agent_port is not None)
        liveness = mw.deployment.liveness
        assert liveness is not None
        await store.bump("B")
        await async_wait_for(lambda: liveness.state == "stale")
        # Right after the bump: still ready, still accepting (unless the machine stalled
        # for the whole handover, which the stale_for() check makes explicit).
        reply = await ask_agent(port)
        accepted = await open_clients(server.ws_url + "/ws", 1)
        if liveness.stale_for() < 1.5:
            assert reply == b"up ready 100%\n"

        await async_wait_for(lambda: agent_says(port, b"drain\n"), interval=0.05)
        assert liveness.stale_for() >= 1.5
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(server.ws_url + "/ws", open_timeout=10)
        assert refused.value.response.status_code == 503
        await close_clients(accepted)
