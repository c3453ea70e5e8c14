"""Server-sent event streams through the drain, on every ASGI server of the matrix.

A real sse-starlette ``EventSourceResponse`` (tests/servers/apps.py, ``/events``) behind
`VersionMiddleware`, served by each server as its own process, read by a real HTTP
client: after ``bump B --wait`` every stream of the old build has received the drain's
last event (docs/protocol.md, "Stream drain") and ended as a complete response, and
``bump --wait`` waited for it; at SIGTERM the same, with the current version.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from spa_version import open_store
from spa_version.protocol import STREAM_EVENT, STREAM_RETRY_MS, format_header
from tests.support.cli import bump_release, fleet_processes
from tests.support.servers import (
    SERVER_NOISE,
    SERVERS,
    ServerProcess,
    async_wait_for,
    cli_command,
    matrix_env,
)
from tests.support.sse import EventStream, open_streams

pytestmark = pytest.mark.slow

#: The servers whose SIGTERM reaches the middleware's hook (docs/servers.md): Hypercorn
#: with workers (the default) never passes it on.
SIGTERM_HOOKED = [("uvicorn", ()), ("daphne", ()), ("granian", ()), ("hypercorn", ("--workers", "0"))]


def _ended_with(stream: EventStream, header: str) -> None:
    """*stream* got ticks, then exactly one last event announcing *header*, and ended as a
    complete response (no error: the chunked body was terminated)."""
    assert stream.ended and stream.error is None, stream
    assert stream.of_type("tick"), stream
    last = stream.events[-1]
    assert (last.event, last.data, last.retry) == (STREAM_EVENT, header, STREAM_RETRY_MS), stream
    assert len(stream.of_type(STREAM_EVENT)) == 1, stream
    ticks = [int(e.data) for e in stream.of_type("tick")]
    assert ticks == list(range(1, len(ticks) + 1)), stream  # nothing lost or reordered before it


@pytest.mark.parametrize("kind", SERVERS)
async def test_bump_wait_waits_for_streams_ending_with_the_new_version(kind: str, tmp_path: Path) -> None:
    env = matrix_env(tmp_path)
    first = bump_release(env, "A")
    with ServerProcess(kind, env) as server:
        server.wait_serving(format_header(first))
        streams = await open_streams(server.url + "/events", 3)
        assert {s.headers.get("x-spa-version") for s in streams if s.headers} == {format_header(first)}
        await async_wait_for(lambda: [p.get("streams") for p in fleet_processes(env)] == [3], timeout=15)

        wait = await asyncio.create_subprocess_exec(
            *cli_command("bump", "B", "--wait", "--timeout", "60"),
            env={**server.env},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(wait.communicate(), 90)
        assert wait.returncode == 0, stderr.decode()
        assert "0 websocket(s) left, 0 stream(s)" in stderr.decode()
        second = await open_store(env["SPA_VERSION_URL"], app="matrix").get()
        assert second is not None and second.label == "B"
        await async_wait_for(lambda: all(s.ended for s in streams), timeout=15)
        for stream in streams:
            _ended_with(stream, format_header(second))
        # The app's handler ended too: the process reports no stream, and still serves.
        await async_wait_for(lambda: [p.get("streams") for p in fleet_processes(env)] == [0], timeout=15)
        assert [p.get("drained") for p in fleet_processes(env)] == [3]
        response = server.get()
        assert response is not None and response.status_code == 200

        server.terminate()
        server.wait_exit(timeout=30)
        output = server.output()
    assert not [line for line in output.splitlines() if any(n in line for n in SERVER_NOISE)], output
    assert "without completing response" not in output, output


@pytest.mark.parametrize(
    ("kind", "extra"), SIGTERM_HOOKED, ids=[" ".join([k, *e]) for k, e in SIGTERM_HOOKED]
)
async def test_sigterm_ends_each_stream_with_a_last_event(
    kind: str, extra: tuple[str, ...], tmp_path: Path
) -> None:
    env = matrix_env(tmp_path)
    first = bump_release(env, "A")
    with ServerProcess(kind, env, "tests.servers.apps:app", *extra) as server:
        server.wait_serving(format_header(first))
        streams = await open_streams(server.url + "/events", 3)
        server.terminate()
        await async_wait_for(lambda: all(s.ended for s in streams), timeout=15)
        for stream in streams:
            _ended_with(stream, format_header(first))
        # uvicorn re-raises the SIGTERM it handled once it is done (0.29+): both are clean.
        assert server.wait_exit(timeout=30) in (0, -signal.SIGTERM)
        output = server.output()
    assert not [line for line in output.splitlines() if any(n in line for n in SERVER_NOISE)], output
    assert "without completing response" not in output, output
