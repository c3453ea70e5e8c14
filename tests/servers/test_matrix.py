"""Every major ASGI server as a real process (docs/servers.md): uvicorn, Hypercorn, Daphne, Granian.

For each: the HTTP stamp, the websocket accept stamp, lifespan, the drain after a bump
with ``spa-version bump --wait`` (the deploy order docs/servers.md recommends), and what
SIGTERM does to open websockets. The expected values below are the table in
docs/servers.md; a server release that changes one of them fails here first.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from spa_version import open_store
from spa_version.protocol import CLOSE_CODE_DRAIN, CLOSE_CODE_DRAIN_FALLBACK, close_reason, format_header
from tests.support.cli import bump_release, fleet_processes
from tests.support.drain_app import Client, close_clients, open_clients
from tests.support.servers import (
    SERVER_NOISE,
    SERVERS,
    ServerProcess,
    async_wait_for,
    cli_command,
    matrix_env,
)
from tests.support.stalled import StalledWebsocket

pytestmark = pytest.mark.slow

#: Does the server send the headers of ``websocket.accept`` (ASGI spec 2.1)?
ACCEPT_STAMPED = {"uvicorn": True, "hypercorn": True, "daphne": False, "granian": False}
#: Does the server run ASGI lifespan?
LIFESPAN = {"uvicorn": True, "hypercorn": True, "daphne": False, "granian": True}
#: The drain's close as the client sees it: code, and whether the reason arrives.
DRAIN_CLOSE = {
    "uvicorn": (CLOSE_CODE_DRAIN, True),
    "hypercorn": (CLOSE_CODE_DRAIN, True),
    "daphne": (CLOSE_CODE_DRAIN_FALLBACK, False),  # autobahn: no 1012, and no reason sent
    "granian": (CLOSE_CODE_DRAIN, True),
}
#: What open websockets get on SIGTERM (to the process the user started): code, and
#: whether the reason (the version) arrives. Keyed by server and extra arguments.
SIGTERM_CLOSE = {
    ("uvicorn", ()): (CLOSE_CODE_DRAIN, True),  # the middleware's hook drains first
    ("daphne", ()): (CLOSE_CODE_DRAIN_FALLBACK, False),  # the hook, before Twisted's handler
    ("granian", ()): (CLOSE_CODE_DRAIN, True),  # the hook, on each worker's loop
    ("hypercorn", ("--workers", "0")): (CLOSE_CODE_DRAIN, True),  # one process: the hook, on its loop
    # Workers (the default, 1) never see SIGTERM: the parent sets an event they poll,
    # and whatever is open at the graceful timeout is cut with 1011.
    ("hypercorn", ()): (1011, False),
}

#: Where SIGTERM exits with clients that stopped reading (docs/servers.md), and what the
#: server adds to the drain's bound (``drain_shutdown_window + drain_close_timeout``):
#: Hypercorn cannot have its transports aborted, and ends them at its graceful timeout
#: (3 s). Not there: Hypercorn with workers, whose workers then never exit.
STALLED_SIGTERM_EXTRA = {
    ("uvicorn", ()): 0.0,
    ("daphne", ()): 0.0,
    ("granian", ()): 0.0,
    ("hypercorn", ("--workers", "0")): 3.0,
}


async def _closed(clients: list[Client], timeout: float = 30.0) -> None:
    await async_wait_for(lambda: all(c.closed_at is not None for c in clients), timeout=timeout)


@pytest.mark.parametrize(
    ("kind", "target"),
    [(kind, "tests.servers.apps:app") for kind in SERVERS]
    + [("daphne", "tests.servers.channels_asgi:application")],
    ids=[*SERVERS, "daphne channels"],
)
async def test_stamps_and_drains_with_bump_wait_before_stop(kind: str, target: str, tmp_path: Path) -> None:
    """HTTP and (where the server sends them) accept headers are stamped; lifespan starts the
    listener; ``bump --wait`` returns once the old build's sockets are really closed, with
    the drain's close; a SIGTERM after that finds nothing to cut and the process stops clean."""
    env = matrix_env(tmp_path)
    first = bump_release(env, "A")
    with ServerProcess(kind, env, target) as server:
        server.wait_serving(format_header(first))
        clients = await open_clients(server.ws_url + "/ws", 3)
        accept = {c.conn.response.headers.get("X-SPA-Version") for c in clients}
        assert accept == ({format_header(first)} if ACCEPT_STAMPED[kind] else {None})
        await async_wait_for(lambda: [p.get("websockets") for p in fleet_processes(env)] == [3], timeout=15)

        # The deploy order of docs/servers.md: bump and wait for the drain, then stop.
        wait = await asyncio.create_subprocess_exec(
            *cli_command("bump", "B", "--wait", "--timeout", "60"),
            env={**server.env},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(wait.communicate(), 90)
        assert wait.returncode == 0, stderr.decode()
        await _closed(clients)  # bump --wait returned: the closes are on their way, not pending
        second = await open_store(env["SPA_VERSION_URL"], app="matrix").get()
        assert second is not None and second.label == "B"
        code, with_reason = DRAIN_CLOSE[kind]
        assert {c.code for c in clients} == {code}
        assert {c.reason for c in clients} == {close_reason(second) if with_reason else ""}
        await close_clients(clients)

        server.terminate()
        server.wait_exit(timeout=30)
        output = server.output()
    assert not [line for line in output.splitlines() if any(n in line for n in SERVER_NOISE)], output
    if LIFESPAN[kind]:
        assert "lifespan: startup" in output and "lifespan: shutdown" in output, output
        assert fleet_processes(env) == []  # lifespan shutdown removed the fleet record
    else:
        assert "lifespan:" not in output
    assert "did not close in time" not in output  # nothing was left for the SIGTERM drain


#: How each server is told the prefix it is mounted at (the ASGI ``root_path``).
ROOT_PATH_FLAG = {
    "uvicorn": "--root-path",
    "hypercorn": "--root-path",
    "daphne": "--root-path",
    "granian": "--url-path-prefix",
}
#: The request paths at which the endpoint answers under the prefix /api. uvicorn puts
#: ``root_path`` in front of the request's path itself (a proxy in front strips the prefix),
#: so a request that still carries it is /api/api/... there and no route of the app.
PREFIXES_ANSWERED = {
    "uvicorn": ("",),
    "hypercorn": ("", "/api"),
    "daphne": ("", "/api"),
    "granian": ("", "/api"),
}


@pytest.mark.parametrize("kind", SERVERS)
def test_endpoint_and_script_under_a_root_path(kind: str, tmp_path: Path) -> None:
    """Under ``root_path`` /api the endpoint and the script answer, stamped, at the paths
    docs/servers.md gives for each server (docs/fastapi.md, "Mount prefixes")."""
    env = matrix_env(tmp_path)
    first = bump_release(env, "A")
    with ServerProcess(kind, env, "tests.servers.apps:app", ROOT_PATH_FLAG[kind], "/api") as server:
        server.wait_serving(format_header(first))
        for prefix in PREFIXES_ANSWERED[kind]:
            endpoint = server.get(prefix + "/__spa-version")
            assert endpoint is not None and endpoint.status_code == 200, (prefix, endpoint, server.output())
            assert endpoint.json()["epoch"] == first.epoch
            assert endpoint.headers["x-spa-version"] == format_header(first)
            script = server.get(prefix + "/__spa-version.js")
            assert script is not None and script.status_code == 200, (prefix, script)
            assert "javascript" in script.headers["content-type"]
            assert script.headers["x-spa-version"] == format_header(first)


@pytest.mark.parametrize(
    ("kind", "extra"), list(SIGTERM_CLOSE), ids=[" ".join([k, *e]) for k, e in SIGTERM_CLOSE]
)
async def test_what_sigterm_does_to_open_websockets(
    kind: str, extra: tuple[str, ...], tmp_path: Path
) -> None:
    """SIGTERM with websockets still open: the close each client gets (docs/servers.md)."""
    env = matrix_env(tmp_path)
    first = bump_release(env, "A")
    with ServerProcess(kind, env, "tests.servers.apps:app", *extra) as server:
        server.wait_serving(format_header(first))
        clients = await open_clients(server.ws_url + "/ws", 3)
        await async_wait_for(lambda: [p.get("websockets") for p in fleet_processes(env)] == [3], timeout=15)
        server.terminate()
        await _closed(clients)
        server.wait_exit(timeout=30)
    code, with_reason = SIGTERM_CLOSE[kind, extra]
    assert {c.code for c in clients} == {code}, server.output()
    assert {c.reason for c in clients} == {close_reason(first) if with_reason else ""}
    await close_clients(clients)


# -- lifespan passes through: the server sees what the app does -------------------------


def test_uvicorn_reports_lifespan_unsupported_for_an_app_that_refuses_it(tmp_path: Path) -> None:
    """An app that raises on lifespan (as Django's ASGIHandler does): uvicorn (lifespan auto)
    says "lifespan unsupported", and the listener starts with the first request instead."""
    env = matrix_env(tmp_path)
    first = bump_release(env, "A")
    with ServerProcess("uvicorn", env, "tests.servers.apps:refuses_lifespan") as server:
        server.wait_serving(format_header(first))
        server.terminate()
        server.wait_exit(timeout=30)
        output = server.output()
    assert "ASGI 'lifespan' protocol appears unsupported." in output, output
    assert not [line for line in output.splitlines() if any(n in line for n in SERVER_NOISE)], output


@pytest.mark.parametrize("app", ["crashes_at_startup", "crashes_before_reading"])
def test_uvicorn_lifespan_on_fails_startup_of_an_app_that_crashes(app: str, tmp_path: Path) -> None:
    """With ``--lifespan on`` an app whose startup raises does not start, whether it read
    the startup message first (Starlette) or not (a raw app): uvicorn exits non-zero and
    its output shows the app's traceback."""
    env = matrix_env(tmp_path)
    bump_release(env, "A")
    with ServerProcess("uvicorn", env, f"tests.servers.apps:{app}", "--lifespan", "on") as server:
        returncode = server.wait_exit(timeout=30)
        output = server.output()
    assert returncode != 0
    assert "RuntimeError: database is down" in output and "Traceback" in output, output
    assert "Application startup failed. Exiting." in output, output


# -- clients that stop reading (a phone in a tunnel) ------------------------------------------


async def _stalled_and_healthy(server: ServerProcess) -> tuple[list[StalledWebsocket], list[Client]]:
    """3 clients that stop reading while the app floods them, beside 20 that read; returns
    once the server's buffers for the stalled ones are full."""
    stalled = [StalledWebsocket(server.port, "/flood") for _ in range(3)]
    healthy = await open_clients(server.ws_url + "/ws", 20)
    await async_wait_for(lambda: all(s.blocked() for s in stalled), timeout=15, interval=0.2)
    return stalled, healthy


@pytest.mark.parametrize("kind", SERVERS)
async def test_clients_that_stop_reading_do_not_hold_up_the_drain(kind: str, tmp_path: Path) -> None:
    """3 stalled clients beside 20 reading ones: every reading one gets the drain's close
    within the window after the bump (each close at its own moment, each with its time
    limit), on every server."""
    window = 2.0
    env = {**matrix_env(tmp_path), "MATRIX_DRAIN_WINDOW": str(window)}
    first = bump_release(env, "A")
    with ServerProcess(kind, env) as server:
        server.wait_serving(format_header(first))
        stalled, healthy = await _stalled_and_healthy(server)
        try:
            bump_release(env, "B")
            await _closed(healthy, timeout=window + 5)  # plus the slack of a loaded machine
        finally:
            for client in stalled:
                client.close()
        assert {c.code for c in healthy} == {DRAIN_CLOSE[kind][0]}, server.output()
        await close_clients(healthy)


@pytest.mark.parametrize(
    ("kind", "extra"),
    list(STALLED_SIGTERM_EXTRA),
    ids=[" ".join([k, *e]) for k, e in STALLED_SIGTERM_EXTRA],
)
async def test_sigterm_exits_within_its_bound_with_clients_that_stopped_reading(
    kind: str, extra: tuple[str, ...], tmp_path: Path
) -> None:
    """SIGTERM with 3 stalled clients and 20 reading ones: the reading ones get the SIGTERM
    drain's close, and the process exits within the drain's bound (docs/servers.md) plus
    what the server adds, instead of waiting on the stalled connections for ever."""
    shutdown_window, close_timeout = 2.0, 1.0  # the window set here; the limit's default
    env = {**matrix_env(tmp_path), "MATRIX_SHUTDOWN_WINDOW": str(shutdown_window)}
    first = bump_release(env, "A")
    with ServerProcess(kind, env, "tests.servers.apps:app", *extra) as server:
        server.wait_serving(format_header(first))
        stalled, healthy = await _stalled_and_healthy(server)
        try:
            server.terminate()
            bound = shutdown_window + close_timeout + STALLED_SIGTERM_EXTRA[kind, extra]
            # A deadline, with the slack of a loaded machine: what fails here is a hang.
            await asyncio.to_thread(server.wait_exit, bound + 10)
        finally:
            for client in stalled:
                client.close()
        await _closed(healthy, timeout=10)
        assert {c.code for c in healthy} == {SIGTERM_CLOSE[kind, extra][0]}, server.output()
        await close_clients(healthy)
