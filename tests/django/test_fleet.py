"""Django processes report to the fleet: ``spa-version status`` lists them, ``bump --wait``
waits for them (docs/deploy-haproxy.md, "Fleet status"; docs/django.md).

Real processes, as deployed: Django's development server (WSGI) and uvicorn serving
Django's own ASGI application, on the file store, configured from the environment.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from spa_version.protocol import format_header
from tests.support.cli import bump_release, status_json
from tests.support.servers import ServerProcess, cli_command, wait_for

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
