"""Tools for the fault-injection suite: a freezable TCP proxy, steady traffic, a probed app."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import redis as sync_redis

from spa_version import VersionMiddleware
from tests.support.servers import ThreadedUvicorn, free_port, wait_for

#: Every app in this suite re-reads the store this often, so "served within resync
#: interval + slack after the fault heals" is a short, meaningful bound.
RESYNC = 2.0
#: The pub/sub health check: PING after this much silence, give up after no PONG in this.
PING_INTERVAL = 1.0
PING_TIMEOUT = 1.0
#: Scheduling slack on a shared 2-core machine.
SLACK = 3.0


class FreezableProxy:
    """A loopback TCP proxy of our own that can stop forwarding without closing anything.

    `freeze` models a half-open link (a dead NAT entry, a partition): every connection,
    current and new, stays open but no byte moves in either direction. `heal` makes new
    connections work again; connections frozen earlier stay parked, open and silent, so
    the client has to notice on its own.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._peers: dict[socket.socket, socket.socket] = {}
        self._parked: list[socket.socket] = []
        self._frozen = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="freezable-proxy", daemon=True)
        self.accepted = 0

    def __enter__(self) -> FreezableProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "proxy thread did not stop"
        for sock in [*self._peers, *self._parked, self._listener]:
            sock.close()
        self._selector.close()

    def freeze(self) -> None:
        self._frozen = True

    def heal(self) -> None:
        """Park every frozen connection for good, and forward new ones again."""
        self._frozen = False

    def _park(self, sock: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)
        self._parked.append(sock)

    def _run(self) -> None:
        # Bounded: the thread stops when told, and every wait is 50 ms at most.
        while not self._stop.is_set():
            if self._frozen:
                for sock in list(self._peers):
                    self._park(sock)
                    self._peers.pop(sock)
            for key, _ in self._selector.select(timeout=0.05):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._listener:
                    self._accept()
                elif sock in self._peers:
                    self._forward(sock)

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        self.accepted += 1
        if self._frozen:
            self._parked.append(client)  # the handshake completes; nothing else ever will
            return
        upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
        for sock in (client, upstream):
            sock.setblocking(False)
            self._selector.register(sock, selectors.EVENT_READ, None)
        self._peers[client] = upstream
        self._peers[upstream] = client

    def _forward(self, sock: socket.socket) -> None:
        other = self._peers[sock]
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            for s in (sock, other):
                self._peers.pop(s, None)
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(s)
                s.close()
            return
        other.setblocking(True)
        try:
            other.sendall(data)
        finally:
            other.setblocking(False)


@dataclass
class Traffic:
    """HTTP requests in a steady loop from a thread, recording every outcome."""

    url: str
    seen: list[str | None] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Traffic:
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=15)
        assert not self._thread.is_alive(), "traffic thread did not stop"

    @property
    def last_epoch(self) -> int | None:
        value = self.seen[-1] if self.seen else None
        return None if value is None else int(value.split(";", 1)[0])

    def _run(self) -> None:
        host, port = self.url.removeprefix("http://").split(":")
        deadline = time.monotonic() + 240  # bounded even if a test forgets to stop it
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        try:
            for _ in range(200_000):
                if self._stop.is_set() or time.monotonic() > deadline:
                    return
                try:
                    conn.request("GET", "/")
                    response = conn.getresponse()
                    body = response.read()
                    if response.status != 200 or body != b"ok":
                        self.failures.append(f"status {response.status}: {body[:80]!r}")
                    self.seen.append(response.getheader("x-spa-version"))
                except (OSError, http.client.HTTPException) as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                    conn.close()
                    conn = http.client.HTTPConnection(host, int(port), timeout=5)
                # Pacing, not synchronisation: ~100 requests/s leaves the 2 cores to the test.
                self._stop.wait(0.01)
        finally:
            conn.close()

    def wait_for_epoch(self, epoch: int, timeout: float) -> None:
        """Wait until the responses carry *epoch* or newer; fail after *timeout* seconds."""
        start = len(self.seen)

        def served() -> bool:
            recent = [v for v in self.seen[start:] if v is not None]
            return bool(recent) and int(recent[-1].split(";", 1)[0]) >= epoch

        wait_for(
            served,
            timeout=timeout,
            message=lambda: (
                f"epoch {epoch} not served within {timeout} s; last header {self.seen[-1:]!r}, "
                f"failures {self.failures[:3]!r}"
            ),
        )


async def probed_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A trivial app; ``/__probe`` reports this event loop's task count (for leak checks)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b"ok"
    if scope["path"] == "/__probe":
        body = json.dumps({"tasks": len(asyncio.all_tasks())}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


def store_url(port: int, name: str, **extra: Any) -> str:
    """A redis:// URL with this suite's health-check and timeout settings, named for CLIENT LIST."""
    params = {
        "ping_interval": PING_INTERVAL,
        "ping_timeout": PING_TIMEOUT,
        "socket_timeout": 2,
        "socket_connect_timeout": 2,
        "client_name": name,
        **extra,
    }
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"redis://127.0.0.1:{port}/0?{query}"


@contextlib.contextmanager
def serve(url: str, app_name: str, **options: Any) -> Iterator[tuple[VersionMiddleware, ThreadedUvicorn]]:
    """The probed app behind `VersionMiddleware` on real uvicorn, following *url*."""
    options.setdefault("resync_interval", RESYNC)
    options.setdefault("startup_timeout", 0.5)
    middleware = VersionMiddleware(probed_app, store=url, app_name=app_name, **options)
    with ThreadedUvicorn(middleware) as server:
        yield middleware, server


def probe_tasks(server: ThreadedUvicorn) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request("GET", "/__probe")
        return int(json.loads(conn.getresponse().read())["tasks"])
    finally:
        conn.close()


def clients_named(admin: sync_redis.Redis, name: str) -> list[dict[str, Any]]:
    """The connections Redis holds open for *name* (set through ``client_name=``)."""
    return [c for c in admin.client_list() if c.get("name") == name]


def listener_alive(middleware: VersionMiddleware) -> bool:
    return middleware.running
