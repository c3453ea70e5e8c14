"""Real parts for the store-loss scenarios: 4 uvicorn workers, the CLI, raw Redis dumps."""

from __future__ import annotations

import contextlib
import http.client
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis as sync_redis

from spa_version import parse_header
from tests.support.servers import RedisServer, ServerProcess, free_port, run_cli, wait_for

ROOT = Path(__file__).resolve().parents[2]
#: The workers' resync interval (s): the bound within which every worker follows the store.
RESYNC = 2.0
#: The fleet heartbeat interval (s), so the CLI soon sees what the workers serve again.
HEARTBEAT = 0.5
#: Scheduling slack on a shared 2-core machine.
SLACK = 3.0
WORKERS = 4


def get(url: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, str | None, bytes]:
    """One request on a fresh connection (so the kernel may hand it to any worker)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheader("x-spa-version"), response.read()
    finally:
        conn.close()


def post_notes(url: str, client_epoch: int) -> tuple[int, str | None]:
    """The demo's enforced request (POST /api/notes) from a tab running *client_epoch*."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request(
            "POST",
            "/api/notes",
            body=b'{"text": "x"}',
            headers={"Content-Type": "application/json", "X-SPA-Client-Version": str(client_epoch)},
        )
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("x-spa-reload")
    finally:
        conn.close()


@dataclass
class Workers:
    """``uvicorn tests.stores.store_loss.app:app --workers 4`` in its own process group."""

    env: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    server: ServerProcess | None = None
    #: The pids of the workers, learned from ``/__pid`` once all have answered.
    pids: set[int] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Workers:
        env = {
            "STORE_LOSS_RESYNC": str(RESYNC),
            "STORE_LOSS_HEARTBEAT": str(HEARTBEAT),
            "PYTHONUNBUFFERED": "1",
            **self.env,
        }
        args = [sys.executable, "-m", "uvicorn", "tests.stores.store_loss.app:app", "--host", "127.0.0.1"]
        args += ["--port", str(self.port), "--workers", str(WORKERS), "--no-access-log"]
        args += ["--log-level", "warning", "--timeout-graceful-shutdown", "2"]
        self.server = ServerProcess(
            "uvicorn --workers", env, command=args, port=self.port, log=self.log
        ).start()
        self.pids = set()
        wait_for(self._all_answered, timeout=60, interval=0.01)
        return self

    def _all_answered(self) -> bool:
        assert self.server is not None
        self.server.check_running()
        try:
            status, _, body = get(self.url, "/__pid")
        except OSError:
            return False
        if status == 200:
            self.pids.add(int(body))
        return len(self.pids) >= WORKERS

    def stop(self) -> None:
        """Stop uvicorn and its workers (this process group only: we started it)."""
        if self.server is None:
            return
        if self.server.running():
            self.server.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.server.wait_exit(timeout=15)
        self.server.close()  # any worker left behind
        self.server = None

    def wait_all_serve(self, epoch: int, label: str, timeout: float) -> float:
        """Wait until every worker stamps (*epoch*, *label*); return the seconds it took.

        Polls ``/__pid`` on fresh connections until each known pid has answered with that
        release; fails after *timeout* seconds, naming what each worker served last.
        """
        started = time.monotonic()
        last: dict[int, tuple[int, str | None] | None] = dict.fromkeys(self.pids)
        done: set[int] = set()

        def all_serve() -> bool:
            status, header, body = get(self.url, "/__pid")
            if status == 200 and header is not None:
                pid = int(body)
                parsed = parse_header(header)
                last[pid] = (parsed.epoch, parsed.label)
                if (parsed.epoch, parsed.label) == (epoch, label):
                    done.add(pid)
            return done >= self.pids

        wait_for(
            all_serve,
            timeout=timeout,
            interval=0.005,
            message=lambda: f"not every worker serves ({epoch}, {label}) within {timeout} s: {last}",
        )
        return time.monotonic() - started

    def warnings(self, text: str) -> int:
        """How many log lines of the workers contain *text*."""
        return sum(text in line for line in self.log.read_text(errors="replace").splitlines())


def cli_bump(env: dict[str, str], label: str, *args: str) -> tuple[dict[str, Any], str]:
    """``spa-version --json bump LABEL ARGS`` for real: (the release, stderr)."""
    result = run_cli("--json", "bump", label, *args, env=env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout), result.stderr


def fleet_epochs(env: dict[str, str]) -> list[int | None]:
    """The epochs the fleet reports serving (``spa-version status --json``)."""
    result = run_cli("--json", "status", env=env)
    assert result.returncode == 0, result.stderr
    return [p.get("epoch") for p in json.loads(result.stdout).get("processes", [])]


def redis_dump(server: RedisServer, app: str) -> dict[bytes, bytes | None]:
    """Every key of *app* with its exact serialized value (``DUMP``), to compare before and after."""
    client = sync_redis.Redis(port=server.port, socket_timeout=5)
    try:
        return {key: client.dump(key) for key in sorted(client.keys(f"spa-version:{{{app}}}:*"))}
    finally:
        client.close()
