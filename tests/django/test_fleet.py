"""Django processes report to the fleet: ``spa-version status`` lists them, ``bump --wait``
waits for them (docs/deploy-haproxy.md, "Fleet status"; docs/django.md).

Real processes, as deployed: Django's development server (WSGI) and uvicorn serving
Django's own ASGI application, on the file store, configured from the environment.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from django.core.asgi import get_asgi_application

from spa_version.django.asgi import wrap_asgi
from spa_version.django.conf import settings_host
from spa_version.protocol import format_header
from tests.support.cli import bump_release, status_json
from tests.support.django_tests import SpaVersionTestCase
from tests.support.servers import ServerProcess, cli_command, wait_for

CLIENT = "X-SPA-Client-Version"
PIN = "X-SPA-Pin"
TARGETS = {
    "runserver": "tests.django.process_settings",
    "uvicorn": "tests.django.process_asgi:application",
}


@pytest.mark.parametrize("kind", sorted(TARGETS))
def test_a_django_process_shows_in_status_and_bump_wait_waits_for_it(
    kind: str, tmp_path: Path, app_name: str
) -> None:
    """A Django process that declares build A heartbeats (``status --json`` lists it, live);
    ``bump B --wait`` does not return while it has not caught up with B, and returns 0
    once it has (it then reports stale)."""
    env = {"SPA_VERSION_URL": f"file://{tmp_path}", "SPA_VERSION_APP": app_name}
    first = bump_release(env, "A")
    server_env = {**env, "SPA_VERSION_BUILD": "A", "DJANGO_SETTINGS_MODULE": TARGETS["runserver"]}
    with ServerProcess(kind, server_env, TARGETS[kind]) as server:
        server.wait_serving(format_header(first))  # the first request starts its listener thread
        assert server.proc is not None
        processes = wait_for(lambda: status_json(env)["processes"], timeout=30, interval=0.2)
        [record] = processes
        assert record["pid"] == server.proc.pid
        assert (record["build"], record["state"], record["epoch"]) == ("A", "live", first.epoch)

        # Frozen, the process cannot hear of the bump: --wait must see it behind and wait.
        progress = tmp_path / "bump-wait.log"
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            with progress.open("w") as log:
                waiting = subprocess.Popen(
                    cli_command("bump", "B", "--wait", "--timeout", "60"),
                    env={**os.environ, **env},
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                )
            wait_for(lambda: "1 process(es) not caught up" in progress.read_text(), timeout=30)
            assert waiting.poll() is None, progress.read_text()
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        out, _ = waiting.communicate(timeout=60)
        assert waiting.returncode == 0, progress.read_text()
        assert "0 websocket(s) left" in progress.read_text().splitlines()[-1]
        [record] = status_json(env)["processes"]
        assert record["state"] == "stale" and record["epoch"] > first.epoch
        assert f"bumped to epoch {record['epoch']} " in out


@pytest.mark.parametrize("kind", sorted(TARGETS))
def test_a_django_process_reports_its_requests_by_client_epoch_and_pin(
    kind: str, tmp_path: Path, app_name: str
) -> None:
    """A Django process with a build and a slot counts its requests in its fleet record, as
    the ASGI middleware does: by the client's epoch (``requests_by_epoch``), and those
    pinned to its slot (``pinned``), which ``bump --wait-pinned`` waits on."""
    env = {"SPA_VERSION_URL": f"file://{tmp_path}", "SPA_VERSION_APP": app_name}
    first = bump_release(env, "A")
    server_env = {
        **env,
        "SPA_VERSION_BUILD": "A",
        "SPA_VERSION_SLOT": "blue",
        "DJANGO_SETTINGS_MODULE": TARGETS["runserver"],
    }
    epoch = str(first.epoch)
    with ServerProcess(kind, server_env, TARGETS[kind]) as server, httpx.Client(base_url=server.url) as http:
        server.wait_serving(f"{format_header(first)}; slot=blue")

        def counted() -> dict[str, Any] | None:
            # The traffic keeps flowing while the records are read: each record holds the
            # counts since the one before it.
            for _ in range(3):
                assert http.get("/", headers={CLIENT: epoch, PIN: "blue"}).status_code == 200
                assert http.get("/", headers={PIN: "green"}).status_code == 200
            build = status_json(env)["builds"].get("A")
            seen = build is not None and build.get("pinned", 0) > 0 and build["requests_by_epoch"].get(epoch)
            return build if seen else None

        build = wait_for(counted, timeout=40, interval=0.2)
        assert build["slots"] == ["blue"]
        assert build["requests_by_epoch"][epoch] > 0
        # The green-pinned requests carry no client epoch: counted, but not as pinned here.
        assert build["requests_by_epoch"].get("none", 0) > 0


class PinCountTests(SpaVersionTestCase):
    """Every pinned request is counted once, in-process, where the count can be read
    exactly (`spa_version.deploy.Deployment.pins`): through Django's own middleware, and
    under `wrap_asgi`, where the ASGI middleware around Django counts it and Django's
    middleware must not count it again. The memory store keeps no fleet (one process), so
    no heartbeat takes the count from under the test."""

    spa_settings: ClassVar[dict[str, Any]] = {"BUILD": "A", "SLOT": "blue"}

    def test_each_pinned_request_is_counted_once(self) -> None:
        self.bump("A")
        self.client.get("/")  # starts following the store
        pins = settings_host().deployment.pins
        assert pins is not None
        pins.take()
        for _ in range(5):
            self.client.get("/", headers={PIN: "blue", CLIENT: "1"})
        self.client.get("/api/async/", headers={PIN: "green"})
        self.client.get("/")
        self.assertEqual(pins.take(), 5)

    def test_a_header_no_wsgi_server_would_send_is_served_not_raised(self) -> None:
        """Header values reach Django as latin-1 text (PEP 3333); one outside latin-1 (a
        test client, a server that decodes otherwise) in the headers this middleware reads
        (the client's epoch, the pin, If-None-Match) is answered, never a 500."""
        self.bump("A")
        odd = "blue\u2603"
        for path, headers in (
            ("/", {PIN: odd, CLIENT: "1\u2603"}),
            ("/__spa-version", {"If-None-Match": f'"{odd}"'}),
        ):
            response = self.client.get(path, headers=headers)
            self.assertEqual(response.status_code, 200, (path, headers))
        pins = settings_host().deployment.pins
        assert pins is not None
        self.assertEqual(pins.take(), 0)  # not our slot's name: not counted as pinned

    def test_under_wrap_asgi_each_pinned_request_is_counted_once(self) -> None:
        self.bump("A")
        application = wrap_asgi(get_asgi_application())

        async def send() -> int:
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                await client.get("/")  # starts following the store
                pins = application.deployment.pins
                assert pins is not None
                pins.take()
                for _ in range(5):
                    response = await client.get("/", headers={PIN: "blue"})
                    assert response.status_code == 200
                await client.get("/", headers={PIN: "green"})
                counted = pins.take()
            await application.shutdown()
            return counted

        self.assertEqual(asyncio.run(send()), 5)
