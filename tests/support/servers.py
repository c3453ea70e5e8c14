"""Real servers for tests: a private redis-server, uvicorn in a background thread, each
ASGI server of the matrix (docs/servers.md) as a process; and deadline waits for them."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
import uvicorn

from tests.support.users import as_user, python_env, python_for

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:*port* right now."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


#: What a failed wait says: a text, or a function that builds it then (to show what was seen last).
Message = str | Callable[[], str] | None


def wait_for(
    predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02, message: Message = None
) -> Any:
    """Poll *predicate* until it returns something truthy, and return that; fail (with
    *message*, if given) after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        _fail_after(deadline, timeout, predicate, message)
        time.sleep(interval)
    return result


async def async_wait_for(
    predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02, message: Message = None
) -> Any:
    """`wait_for` for coroutines: polls without blocking the event loop. *predicate* may
    be an ``async def`` (or return any awaitable): its result is awaited each round."""

    async def check() -> Any:
        result = predicate()
        return await result if inspect.isawaitable(result) else result

    deadline = time.monotonic() + timeout
    while not (result := await check()):
        _fail_after(deadline, timeout, predicate, message)
        await asyncio.sleep(interval)
    return result


def _fail_after(deadline: float, timeout: float, predicate: object, message: Message) -> None:
    if time.monotonic() > deadline:
        text = message() if callable(message) else message
        raise AssertionError(text or f"condition not met within {timeout} s: {predicate!r}")


class _Loopback:
    """A server on 127.0.0.1:``port``: its base URLs."""

    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


class RedisServer:
    """A private redis-server on a free loopback port and a Unix socket, with no persistence.

    `stop` and `start` keep the port and the socket's path, so a test can take Redis
    away and bring it back.
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

    @property
    def socket_path(self) -> str:
        return os.path.join(self.dir, "redis.sock")

    @property
    def unix_url(self) -> str:
        """The same server through its Unix socket (docs/redis.md, ``unix://``)."""
        return f"unix://{self.socket_path}?db=0"

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
                "--unixsocket",
                self.socket_path,
                "--unixsocketperm",
                "700",
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


class ThreadedUvicorn(_Loopback):
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


def nginx_binary() -> str:
    """The path of Debian's nginx (a test fails, not skips, without it)."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if found is None:
        pytest.fail("nginx is not installed (make test installs it)")
    return found


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


# -- each ASGI server of the matrix (docs/servers.md) as a real process -------------

SERVERS = ("uvicorn", "hypercorn", "daphne", "granian")

#: What a server's output must not contain after a clean drain or stop.
SERVER_NOISE = ("Traceback", "Task was destroyed", "GeneratorExit", "never awaited")


def matrix_env(tmp_path: Path, build: str = "A") -> dict[str, str]:
    """The environment of tests/servers/apps.py (and its Channels twin) declaring *build*,
    on a file store in *tmp_path*, with short drain and shutdown windows."""
    return {
        "SPA_VERSION_URL": f"file://{tmp_path}",
        "SPA_VERSION_APP": "matrix",
        "SPA_VERSION_BUILD": build,
        "MATRIX_DRAIN_GRACE": "0",
        "MATRIX_DRAIN_WINDOW": "0.5",
        "MATRIX_SHUTDOWN_WINDOW": "1",
        # For the Channels project; a test session that imported the Django tests has
        # another settings module in its environment.
        "DJANGO_SETTINGS_MODULE": "tests.servers.channels_settings",
    }


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
        # gunicorn's default sync worker (WSGI), one worker.
        "gunicorn": [py, "-m", "gunicorn", target, "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        # Django's development server (WSGI): *target* is the settings module.
        "runserver": [
            py, "-m", "django", "runserver", "--noreload", "--settings", target, f"127.0.0.1:{port}",
        ],
    }  # fmt: skip
    return [*commands[kind], *extra]


class ServerProcess(_Loopback):
    """One long-running process (a server, an agent, a proxy); its stdout and stderr go to
    one file that `output` reads. ``with`` starts it; leaving kills its whole process group."""

    def __init__(
        self,
        kind: str,
        env: dict[str, str],
        target: str = "tests.servers.apps:app",
        *extra: str,
        user: str | None = None,
        umask: int = -1,
        unset: Iterable[str] = (),
        command: list[str] | None = None,
        port: int | None = None,
        cwd: Path = ROOT,
        log: Path | None = None,
    ):
        """*kind*: a server of `server_command` serving *target* with *extra* arguments, or,
        with *command*, just the name of that process in failure messages; *env*: on top of
        this process's environment, without the inherited variables named in *unset* (e.g.
        ``SPA_VERSION_URL``); *port*: where *command* listens (default: a free port for
        `server_command`); *cwd*: its working directory (default: the repository); *log*:
        the file its output is appended to (default: a temporary one);
        *user*: run as that user, with its primary group and no other (root only);
        *umask*: the process's umask (-1: inherited)."""
        self.user = user
        self.umask = umask
        self.kind = kind
        self.cwd = cwd
        self.port = free_port() if port is None else port
        self.command = command if command is not None else server_command(kind, self.port, target, *extra)
        self.env = {**{k: v for k, v in os.environ.items() if k not in set(unset)}, **env}
        if user is not None:
            python = python_for(user)
            if python is None:
                raise RuntimeError(f"no Python interpreter that user {user} can run imports spa_version")
            self.command[0] = python
            self.env.update(python_env())
        self.proc: subprocess.Popen[bytes] | None = None
        # Closed in __exit__.
        self._log: IO[bytes] = tempfile.TemporaryFile() if log is None else log.open("a+b")  # noqa: SIM115

    def start(self) -> ServerProcess:
        # Its own session, so that its workers (Hypercorn, Granian) go with it in __exit__.
        self.proc = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            umask=self.umask,
            **({} if self.user is None else as_user(self.user)),
        )
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_running(self) -> None:
        """Fail, with the process's output, if it has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.kind} exited with {self.proc.returncode}:\n{self.output()}")

    def wait_listening(self, timeout: float = 30.0) -> None:
        """Wait until the process accepts connections on its port (or fail with its output)."""
        wait_for(lambda: self.check_running() or port_open(self.port), timeout=timeout, interval=0.05)

    def wait_answering(self, path: str = "/", timeout: float = 30.0) -> httpx.Response:
        """Wait until an HTTP GET of *path* gets an answer, any status (or fail with its output)."""

        def answer() -> httpx.Response | None:
            self.check_running()
            return self.get(path)

        response: httpx.Response = wait_for(answer, timeout=timeout, interval=0.05)
        return response

    def get(self, path: str = "/") -> httpx.Response | None:
        """One GET, or None while nothing answers yet."""
        try:
            return httpx.get(self.url + path, timeout=5)
        except httpx.TransportError:
            return None

    def wait_serving(self, header: str, timeout: float = 30.0) -> None:
        """Wait until the server answers stamped with *header* (or fail with its output)."""

        def stamped() -> bool:
            self.check_running()
            response = self.get()
            return response is not None and response.headers.get("x-spa-version") == header

        wait_for(stamped, timeout=timeout, interval=0.05)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def send_signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def output(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def __enter__(self) -> ServerProcess:
        return self.start()

    def close(self) -> None:
        """Kill the process group this test started (whatever is left of it) and reap it."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._log.close()

    def __exit__(self, *exc: Any) -> None:
        self.close()
