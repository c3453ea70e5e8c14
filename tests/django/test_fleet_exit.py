"""A Django process that exits cleanly removes its fleet record (docs/django.md, "Fleet
status and the deploy switch"), whatever the server does with SIGTERM, and exits the way
the server makes it exit.

uvicorn re-raises SIGTERM after its graceful shutdown, with the default handler back in
place (docs/servers.md): the process is killed by the signal and ``atexit`` never runs.
runserver never handles SIGTERM at all. gunicorn's sync worker and Daphne exit normally.
Real processes on the file store; the record lives 30 s (``HEARTBEAT_INTERVAL`` 10), so
one gone within 8 s of the exit was removed, not expired.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from spa_version.protocol import format_header
from tests.support.cli import bump_release, status_json
from tests.support.servers import ServerProcess, wait_for

SETTINGS = "tests.django.process_settings_exit"

#: kind -> (target, the exit status the server itself gives a SIGTERM'd process).
SERVERS: dict[str, tuple[str, int]] = {
    "uvicorn": ("tests.django.process_asgi:application", -signal.SIGTERM),
    "daphne": ("tests.django.process_asgi:application", 0),
    "runserver": (SETTINGS, -signal.SIGTERM),
    "gunicorn": ("tests.django.process_wsgi:application", 0),
}


@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_sigterm_exit_removes_the_fleet_record(kind: str, tmp_path: Path, app_name: str) -> None:
    env = {"SPA_VERSION_URL": f"file://{tmp_path}", "SPA_VERSION_APP": app_name}
    release = bump_release(env, "A")
    target, exit_status = SERVERS[kind]
    server_env = {**env, "SPA_VERSION_BUILD": "A", "DJANGO_SETTINGS_MODULE": SETTINGS}
    with ServerProcess(kind, server_env, target) as server:
        server.wait_serving(format_header(release))  # the first request starts the listener thread
        [record] = wait_for(lambda: status_json(env)["processes"], timeout=30, interval=0.1)
        assert record["ttl"] == 30

        server.terminate()
        assert server.wait_exit(timeout=20) == exit_status, server.output()
        exited = time.monotonic()
        left: list[Any] = []

        def gone() -> bool:
            left[:] = status_json(env)["processes"]
            return not left

        wait_for(gone, timeout=8, interval=0.1)
        assert time.monotonic() - exited < 8, json.dumps(left)
