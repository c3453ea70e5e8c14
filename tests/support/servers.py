"""Real servers for tests: a private redis-server, and uvicorn in a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll *predicate* until it returns something truthy; fail after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        time.sleep(interval)


async def async_wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """`wait_for` for coroutines: polls without blocking the event loop."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        await asyncio.sleep(interval)


class RedisServer:
    """A private redis-server on a free loopback port, with no persistence.

    `stop` and `start` keep the port, so a test can take Redis away and bring it back.
    """

    def __init__(self, *extra_args: str) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (make test installs it)")
        self.binary = binary
        self.port = free_port()
        self.extra_args = extra_args
        self.dir = tempfile.mkdtemp(prefix="spa-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self.ping, timeout=10)

    def ping(self) -> bool:
        try:
            return self.command("PING") == "PONG"
        except OSError:
            return False

    def command(self, *args: str) -> str:
        """Run one command over a raw socket (no client library), return the reply line."""
        payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(payload.encode())
            data = sock.recv(65536).decode(errors="replace")
        return data[1:].split("\r\n", 1)[0] if data[:1] in "+-:" else data

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class ThreadedUvicorn:
    """uvicorn serving *app* on a free port from a background thread (a real server)."""

    def __init__(self, app: Any, **config: Any) -> None:
        self.port = free_port()
        config.setdefault("log_level", "warning")
        config.setdefault("lifespan", "on")
        # uvicorn closes a keep-alive connection after 5 s idle, the same moment httpx
        # (keepalive_expiry=5 s) may reuse it: the request then meets an RST and fails
        # with ReadError, a race of the test harness, not of the app. A server-side
        # timeout well above the client's makes the client always retire first.
        config.setdefault("timeout_keep_alive", 60)
        self.config = uvicorn.Config(app, host="127.0.0.1", port=self.port, **config)
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadedUvicorn:
        self.thread.start()
        wait_for(lambda: self.server.started or not self.thread.is_alive(), timeout=15)
        if not self.server.started:
            raise RuntimeError("uvicorn did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        assert not self.thread.is_alive(), "uvicorn did not stop"


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "spa_version", *args]


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real ``spa-version`` CLI in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        cli_command(*args), capture_output=True, text=True, env=full_env, cwd=cwd, timeout=60
    )


@contextlib.contextmanager
def redis_server(*extra_args: str) -> Iterator[RedisServer]:
    server = RedisServer(*extra_args)
    server.start()
    try:
        yield server
    finally:
        server.close()
