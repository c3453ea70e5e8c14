"""Django over ASGI: a ``StreamingHttpResponse`` of type ``text/event-stream`` (an async
iterator) is drained like any ASGI stream when the application is wrapped in
`spa_version.django.asgi.wrap_asgi` (docs/django.md, docs/protocol.md "Stream drain").

A real uvicorn process serving Django, a real HTTP client reading the stream."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from spa_version import open_store
from spa_version.protocol import STREAM_EVENT, STREAM_RETRY_MS, format_header
from tests.support.cli import bump_release, status_json
from tests.support.servers import ServerProcess, async_wait_for, cli_command
from tests.support.sse import open_streams

pytestmark = pytest.mark.slow


async def test_a_django_stream_ends_with_the_new_version_after_a_bump(tmp_path: Path, app_name: str) -> None:
    env = {"SPA_VERSION_URL": f"file://{tmp_path}", "SPA_VERSION_APP": app_name}
    first = bump_release(env, "A")
    server_env = {**env, "SPA_VERSION_BUILD": "A", "DJANGO_SETTINGS_MODULE": "tests.django.process_settings"}
    with ServerProcess("uvicorn", server_env, "tests.django.process_asgi_wrapped:application") as server:
        server.wait_serving(format_header(first))
        streams = await open_streams(server.url + "/events/", 2)
        await async_wait_for(
            lambda: [p["streams"] for p in status_json(env)["processes"]] == [2], timeout=30, interval=0.2
        )
        wait = await asyncio.create_subprocess_exec(
            *cli_command("bump", "B", "--wait", "--timeout", "60"),
            env={**server.env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(wait.communicate(), 90)
        assert wait.returncode == 0, err.decode()
        release = await open_store(env["SPA_VERSION_URL"], app=app_name).get()
        assert release is not None and release.label == "B"
        second = format_header(release)
        await async_wait_for(lambda: all(s.ended for s in streams), timeout=15)
        for stream in streams:
            assert stream.error is None, stream
            assert [e.event for e in stream.events[:-1]] == ["tick"] * (len(stream.events) - 1), stream
            last = stream.events[-1]
            assert (last.event, last.data, last.retry) == (STREAM_EVENT, second, STREAM_RETRY_MS), stream
        response = server.get()
        assert response is not None and response.status_code == 200
        assert response.headers["x-spa-version"] == second

        server.terminate()
        server.wait_exit(timeout=30)
        output = server.output()
    assert "Traceback" not in output and "without completing response" not in output, output


async def test_a_django_stream_ends_with_a_last_event_at_sigterm(tmp_path: Path, app_name: str) -> None:
    """SIGTERM with Django streams open: each ends with the drain's last event, carrying the
    version still current (the process is stopping, not stale), as a complete response."""
    env = {"SPA_VERSION_URL": f"file://{tmp_path}", "SPA_VERSION_APP": app_name}
    first = format_header(bump_release(env, "A"))
    server_env = {**env, "SPA_VERSION_BUILD": "A", "DJANGO_SETTINGS_MODULE": "tests.django.process_settings"}
    with ServerProcess("uvicorn", server_env, "tests.django.process_asgi_wrapped:application") as server:
        server.wait_serving(first)
        streams = await open_streams(server.url + "/events/", 2)
        await async_wait_for(lambda: all(s.events for s in streams), timeout=15)
        server.terminate()
        await async_wait_for(lambda: all(s.ended for s in streams), timeout=15)
        for stream in streams:
            assert stream.error is None, stream
            last = stream.events[-1]
            assert (last.event, last.data, last.retry) == (STREAM_EVENT, first, STREAM_RETRY_MS), stream
            assert len([e for e in stream.events if e.event == STREAM_EVENT]) == 1, stream
        server.wait_exit(timeout=30)
        output = server.output()
    assert "Traceback" not in output and "without completing response" not in output, output
