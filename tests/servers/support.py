"""Each ASGI server of the matrix (docs/servers.md) as a real process on a free port."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

import httpx

from tests.support.servers import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]

SERVERS = ("uvicorn", "hypercorn", "daphne", "granian")


def server_command(kind: str, port: int, target: str, *extra: str) -> list[str]:
    """The command line a user runs for *kind*, serving *target* on 127.0.0.1:*port*."""
    py = sys.executable
    commands = {
        "uvicorn": [py, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port)],
        "hypercorn": [py, "-m", "hypercorn", target, "--bind", f"127.0.0.1:{port}"],
        "daphne": [py, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), target],
        "granian": [
            py, "-m", "granian", "--interface", "asgi", "--loop", "asyncio",
            "--host", "127.0.0.1", "--port", str(port), target,
        ],
        # Django's development server (WSGI): *target* is the settings module.
        "runserver": [
            py, "-m", "django", "runserver", "--noreload", "--settings", target, f"127.0.0.1:{port}",
        ],
    }  # fmt: skip
    return [*commands[kind], *extra]


class ServerProcess:
    """One server process; its stdout and stderr go to one file that `output` reads."""

    def __init__(self, kind: str, env: dict[str, str], target: str = "tests.servers.apps:app", *extra: str):
        self.kind = kind
        self.port = free_port()
        self.command = server_command(kind, self.port, target, *extra)
        self.env = {**os.environ, **env}
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed in __exit__)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        # Its own session, so that its workers (Hypercorn, Granian) go with it in __exit__.
        self.proc = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def get(self, path: str = "/") -> httpx.Response | None:
        """One GET, or None while nothing answers yet."""
        try:
            return httpx.get(self.url + path, timeout=5)
        except httpx.TransportError:
            return None

    def wait_serving(self, header: str, timeout: float = 30.0) -> None:
        """Wait until the server answers stamped with *header* (or fail with its output)."""

        def stamped() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"{self.kind} exited with {self.proc.returncode}:\n{self.output()}")
            response = self.get()
            return response is not None and response.headers.get("x-spa-version") == header

        wait_for(stamped, timeout=timeout, interval=0.05)

    def terminate(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def output(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # the group this test started
            self.proc.wait(timeout=10)
        self._log.close()
