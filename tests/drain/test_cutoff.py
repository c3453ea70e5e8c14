"""A security cutoff (``spa-version bump --cutoff``; docs/protocol.md, "Security fixes"),
with a real uvicorn process of the old build (blue) and the real CLI.

The old build is given a long drain (30 s grace, 60 s window) that a cutoff must skip:
its websockets and streams end at once; from then on it answers every pinned request and
every request of a client below the cutoff with 409 + X-SPA-Reload, GETs included;
``bump --cutoff --wait-pinned`` returns although a tab keeps pinning to it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from spa_version import open_store
from spa_version.protocol import CLOSE_CODE_DRAIN, RELOAD_HEADER, STREAM_EVENT, close_reason, format_header
from spa_version.release import Release
from tests.support.cli import bump_release
from tests.support.drain_app import close_clients, open_clients
from tests.support.servers import (
    ServerProcess,
    async_wait_for,
    cli_command,
    matrix_env,
    run_cli,
)
from tests.support.sse import open_streams

pytestmark = pytest.mark.slow


def _long_drain(tmp_path: Path) -> dict[str, str]:
    return {
        **matrix_env(tmp_path),
        "SPA_VERSION_SLOT": "blue",
        "MATRIX_DRAIN_GRACE": "30",
        "MATRIX_DRAIN_WINDOW": "60",
    }


async def test_cutoff_closes_at_once_and_sends_old_and_pinned_clients_to_reload(tmp_path: Path) -> None:
    env = _long_drain(tmp_path)
    first = bump_release(env, "A")
    with ServerProcess("uvicorn", env) as server:
        server.wait_serving(f"{format_header(first)}; slot=blue")
        clients = await open_clients(server.ws_url + "/ws", 2)
        streams = await open_streams(server.url + "/events", 2)
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            pinned_answers: list[int] = []
            stop = asyncio.Event()

            async def pinning_tab() -> None:
                # An old tab that keeps pinning to blue, every 0.2 s.
                while not stop.is_set():
                    response = await http.get("/", headers={"X-SPA-Pin": "blue"})
                    pinned_answers.append(response.status_code)
                    await asyncio.sleep(0.2)

            tab = asyncio.get_running_loop().create_task(pinning_tab())
            await async_wait_for(lambda: len(pinned_answers) >= 3)
            assert set(pinned_answers) == {200}
            wait = await asyncio.create_subprocess_exec(
                *cli_command("bump", "B", "--cutoff", "--wait-pinned", "--timeout", "25"),
                env={**server.env},
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(wait.communicate(), 60)
            stop.set()
            await tab
            # Without the cutoff, the 30 s grace and the pinning tab would hold it past 25 s.
            assert wait.returncode == 0, err.decode()
            release = await open_store(env["SPA_VERSION_URL"], app="matrix").get()
            assert release is not None and release.label == "B" and release.cutoff
            assert json.loads(run_cli("get", "--json", env=env).stdout)["cutoff"] is True

            # Closed at once, not after the grace: the sockets with 1012, the streams with
            # their last event.
            await async_wait_for(lambda: all(c.closed_at is not None for c in clients), timeout=10)
            assert {(c.code, c.reason) for c in clients} == {(CLOSE_CODE_DRAIN, close_reason(release))}
            await async_wait_for(lambda: all(s.ended for s in streams), timeout=10)
            for stream in streams:
                assert stream.error is None and stream.events[-1].event == STREAM_EVENT, stream
                # Blue is stale: its stamp names no slot (docs/protocol.md, "Pinning").
                assert stream.events[-1].data == format_header(release)

            # The pinned tab was moved within one request of the cutoff: 409 + reload.
            assert pinned_answers[-1] == 409
            for headers in (
                {"X-SPA-Pin": "blue"},
                {"X-SPA-Pin": "green"},
                {"X-SPA-Client-Version": str(first.epoch)},
            ):
                response = await http.get("/", headers=headers)
                assert response.status_code == 409, headers
                assert response.headers[RELOAD_HEADER] and response.json()["reload"] is True
            # A client already on the cutoff release, and a page load, are served.
            assert (
                await http.get("/", headers={"X-SPA-Client-Version": str(release.epoch)})
            ).status_code == 200
            assert (await http.get("/")).status_code == 200
        await close_clients(clients)


def test_a_cutoff_is_validated_and_kept_in_the_record(tmp_path: Path) -> None:
    env = {"SPA_VERSION_URL": f"file://{tmp_path}", "SPA_VERSION_APP": "cut"}
    plain = run_cli("bump", "A", "--json", env=env)
    assert plain.returncode == 0 and "cutoff" not in json.loads(plain.stdout)
    cut = run_cli("bump", "B", "--cutoff", "--json", env=env)
    assert cut.returncode == 0 and json.loads(cut.stdout)["cutoff"] is True
    history = json.loads(run_cli("history", "--json", env=env).stdout)
    assert [r.get("cutoff", False) for r in history] == [True, False]
    with pytest.raises(ValueError, match="invalid cutoff"):
        Release(epoch=1, label="x", cutoff="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid cutoff"):
        Release.from_dict({"epoch": 1, "label": "x", "cutoff": 1})


async def test_wait_pinned_names_the_builds_still_pinned_and_how_to_end_it(tmp_path: Path) -> None:
    """Without a cutoff, a tab that keeps pinning holds ``--wait-pinned`` until its timeout;
    the wait names the build and slot, its count and when it was last seen, and says how to
    end it (docs/deploy-haproxy.md, "When to stop blue")."""
    env = {**_long_drain(tmp_path), "MATRIX_DRAIN_GRACE": "0", "MATRIX_DRAIN_WINDOW": "0.5"}
    first = bump_release(env, "A")
    with ServerProcess("uvicorn", env) as server:
        server.wait_serving(f"{format_header(first)}; slot=blue")
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            stop = asyncio.Event()
            answers: list[int] = []

            async def pinning_tab() -> None:
                while not stop.is_set():
                    answers.append((await http.get("/", headers={"X-SPA-Pin": "blue"})).status_code)
                    await asyncio.sleep(0.1)

            tab = asyncio.get_running_loop().create_task(pinning_tab())
            try:
                wait = await asyncio.create_subprocess_exec(
                    *cli_command("bump", "B", "--wait-pinned", "--timeout", "4"),
                    env={**server.env},
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE,
                )
                _, err = await asyncio.wait_for(wait.communicate(), 60)
            finally:
                stop.set()
                await tab
    text = err.decode()
    assert wait.returncode == 3, text
    assert set(answers) == {200}  # no cutoff: the pinned tab is served by blue throughout
    assert "(A/blue: " in text and "s ago)" in text, text  # the progress names the build
    [report] = [line for line in text.splitlines() if line.startswith("still pinned:")]
    assert report.startswith("still pinned: build A (slot blue): "), report
    assert "last seen" in report and "bump --cutoff" in report and "stopping that build" in report
    assert text.splitlines()[-1].startswith("spa-version: still draining after 4 s: "), text
