"""Fleet status: each process heartbeats what it runs; ``spa-version status`` reads it.

Every ``interval`` seconds (and at once when its state changes or its last websocket
closes) a process publishes one JSON record that counts as gone after three intervals
(its ``ttl``), so a process that dies simply disappears. Where the record lives depends
on the store (`spa_version.fleet_backends`): TTL'd keys on Redis, one file per process
beside the file store (``DIR/<app>.fleet/<host>-<pid>.json``). The memory store has
no fleet.

Every process reports, whether or not it declares a build:

- with a build (`spa_version.deploy`): build, state (live/pending/stale), open
  websockets, and the requests seen since the last heartbeat by client epoch (the
  ``X-SPA-Client-Version`` request header). Counting is one header scan and one dict
  increment on raw bytes per request; parsing and writing happen only at heartbeat time.
- without one (`FleetReporter`): build null, state live, and no per-request counting
  at all, so the request path costs exactly what it did; websockets are null because
  nothing tracks them.

Common fields: host, pid, started_at, updated_at, interval, ttl, epoch, label.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .current import CurrentVersion
from .fleet_backends import FleetBackend, fleet_backend, fleet_keys
from .protocol import parse_client_epoch
from .stores.base import Store

__all__ = [
    "after_first_read",
    "stop_heartbeat_task",
    "EpochCounter",
    "FleetProcess",
    "FleetReporter",
    "Heartbeat",
    "fleet_keys",
    "read_fleet",
    "supports_fleet",
]

logger = logging.getLogger("spa_version")

#: Distinct raw header values counted per interval; beyond it (a client sending junk)
#: requests land in "other", so memory stays bounded.
_MAX_DISTINCT = 64


def supports_fleet(store: Store) -> bool:
    """Whether *store* can carry fleet records: Redis (shared) or a file store (one host)."""
    return fleet_backend(store) is not None


class EpochCounter:
    """Requests by client epoch, batched in memory until the next heartbeat."""

    __slots__ = ("header", "counts", "without", "other")

    def __init__(self, header: bytes) -> None:
        self.header = header
        self.counts: dict[bytes, int] = {}
        self.without = 0
        self.other = 0

    def count(self, headers: Iterable[tuple[bytes, bytes]]) -> None:
        """Count one request (called on the request path: keep it this small)."""
        wanted = self.header
        for key, value in headers:
            if key == wanted:
                counts = self.counts
                if value in counts:
                    counts[value] += 1
                elif len(counts) < _MAX_DISTINCT:
                    counts[value] = 1
                else:
                    self.other += 1
                return
        self.without += 1

    def take(self) -> dict[str, int]:
        """The counts since the last call, by epoch (``none``: no header; ``other``: invalid), reset."""
        counts, self.counts = self.counts, {}
        out: dict[str, int] = {}
        if self.without:
            out["none"] = self.without
        other = self.other
        self.without = self.other = 0
        for raw, n in counts.items():
            epoch = parse_client_epoch(raw)
            if epoch is None:
                other += n
            else:
                out[str(epoch)] = out.get(str(epoch), 0) + n
        if other:
            out["other"] = other
        return out


class Heartbeat:
    """Publishes this process's record every *interval* seconds until stopped or cancelled."""

    def __init__(
        self,
        store: Store,
        describe: Callable[[], dict[str, Any]],
        *,
        interval: float = 5.0,
        counter: EpochCounter | None = None,
    ) -> None:
        if not interval > 0:
            raise ValueError(f"heartbeat interval must be > 0 seconds, not {interval!r}")
        backend = fleet_backend(store)
        if backend is None:
            raise ValueError(f"fleet status needs the Redis or file store, not {store.display_url}")
        self.backend: FleetBackend = backend
        self.store = store
        self.describe = describe
        self.interval = interval
        self.counter = counter
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.name = f"{self.host}:{self.pid}"
        #: Three intervals: one or two missed beats do not drop a process.
        self.ttl = 3 * interval
        self.started_at = time.time()
        self._wake = asyncio.Event()
        self._stopping = False
        self._window_start = time.monotonic()

    def stop(self) -> None:
        """Make `run` return after the write in progress (cancelling mid-write can leak
        the connection the write was using)."""
        self._stopping = True
        self._wake.set()

    @property
    def stopped(self) -> bool:
        return self._stopping

    def poke(self) -> None:
        """Write now rather than at the next tick (call on the event loop)."""
        self._wake.set()

    def record(self) -> dict[str, Any]:
        now = time.monotonic()
        window, self._window_start = now - self._window_start, now
        data = {
            "host": self.host,
            "pid": self.pid,
            "started_at": round(self.started_at, 3),
            "updated_at": round(time.time(), 3),
            "interval": self.interval,
            "ttl": self.ttl,
            **self.describe(),
            "requests_by_epoch": self.counter.take() if self.counter is not None else {},
            "requests_window": round(window, 3),
        }
        return data

    async def beat(self) -> None:
        """Write the record once."""
        payload = json.dumps(self.record(), separators=(",", ":"))
        await self.backend.write(self.host, self.pid, payload, self.ttl)

    async def run(self) -> None:
        """Beat until `stop` (or cancelled); a store outage is logged and retried, never raised."""
        failing = False
        while not self._stopping:
            try:
                await self.beat()
                if failing:
                    logger.info("spa-version: fleet heartbeat is reaching the store again")
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not failing:
                    logger.warning("spa-version: fleet heartbeat failed (%s); retrying", exc)
                failing = True
            if self.stopped:
                return
            self._wake.clear()
            # A timer rather than asyncio.wait_for, which on Python 3.11 wraps the wait in a
            # task of its own: the loop's task count stays flat between beats.
            timer = asyncio.get_running_loop().call_later(self.interval, self._wake.set)
            try:
                await self._wake.wait()
            finally:
                timer.cancel()

    async def remove(self) -> None:
        """Forget this process (on shutdown); best effort."""
        try:
            await self.backend.remove(self.host, self.pid)
        except Exception as exc:
            logger.debug("spa-version: removing the fleet record failed: %s", exc)


@dataclass(frozen=True)
class FleetProcess:
    """One process as its last heartbeat described it."""

    name: str
    build: str | None
    state: str
    epoch: int | None
    websockets: int
    requests_by_epoch: dict[str, int] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)


async def read_fleet(store: Store) -> list[FleetProcess]:
    """Every process with a live heartbeat, sorted by build then name. Prunes expired records."""
    backend = fleet_backend(store)
    if backend is None:
        raise ValueError(f"fleet status needs the Redis or file store, not {store.display_url}")
    out = []
    for name, raw in await backend.read():
        try:
            data = json.loads(raw)
            if "host" in data and "pid" in data:
                name = f"{data['host']}:{data['pid']}"  # the same name on every backend
            out.append(
                FleetProcess(
                    name=name,
                    build=data.get("build"),
                    state=str(data.get("state", "live")),
                    epoch=data.get("epoch"),
                    # null: the process does not track websockets (no build declared).
                    websockets=int(data.get("websockets") or 0),
                    requests_by_epoch={
                        str(k): int(v) for k, v in (data.get("requests_by_epoch") or {}).items()
                    },
                    raw=data,
                )
            )
        except (ValueError, TypeError, AttributeError) as exc:
            logger.warning("spa-version: skipping a bad fleet record %s: %s", name, exc)
    out.sort(key=lambda p: (p.build or "", p.name))
    return out


class FleetReporter:
    """The heartbeat of a process that declares no build (the ``make demo`` case).

    It reports the release it serves as live; it counts nothing per request and tracks no
    websockets (that is the deploy switch's job, for declared builds). It has the same
    ``run``/``stop`` life as `spa_version.deploy.DeploySwitch`, so the middleware runs
    whichever of the two it has beside the listener.
    """

    def __init__(self, current: CurrentVersion, *, interval: float = 5.0) -> None:
        if not interval > 0:
            raise ValueError(f"heartbeat_interval must be > 0 seconds, not {interval!r}")
        self.current = current
        self.interval = interval
        self.heartbeat: Heartbeat | None = None

    def describe(self) -> dict[str, Any]:
        """This process's fleet record (`Heartbeat` adds host, pid and times)."""
        release = self.current.release
        return {
            "build": None,
            "state": "live",
            "stopping": False,
            "epoch": None if release is None else release.epoch,
            "label": None if release is None else release.label,
            "websockets": None,
            "drained": 0,
            "agent_port": None,
        }

    async def run(self, store: Store, synced: Callable[[], bool]) -> None:
        """Heartbeat until stopped; returns at once on a store without a fleet (memory)."""
        if not supports_fleet(store):
            return
        await after_first_read(synced, self.interval)
        # No extra beat on a new release either, for the same reason (it would race the
        # listener's read of it); the next regular beat reports the epoch.
        self.heartbeat = heartbeat = Heartbeat(store, self.describe, interval=self.interval)
        try:
            await heartbeat.run()
        except GeneratorExit:
            # Closed by the garbage collector, not stopped: the event loop is gone, so no
            # store I/O (the record expires after its ttl).
            raise
        except BaseException:
            self.heartbeat = None
            await heartbeat.remove()
            raise
        self.heartbeat = None
        await heartbeat.remove()

    async def stop(self, task: asyncio.Task[None] | None) -> None:
        """Shutdown: let the write in progress finish, remove the record, then stop *task*."""
        if task is not None:
            await stop_heartbeat_task(self.heartbeat, task)


async def after_first_read(synced: Callable[[], bool], limit: float) -> None:
    """Wait (at most *limit* seconds) for the listener's first read of the store.

    Started together, the listener's read and a first heartbeat would make the Redis pool
    open a second command connection for good. Bounded: a store that is down still gets
    its heartbeat attempts (they log and retry).
    """
    deadline = time.monotonic() + limit
    while not synced() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def stop_heartbeat_task(heartbeat: Heartbeat | None, task: asyncio.Task[None]) -> None:
    """Let *heartbeat* finish its write and remove its record (bounded), then end *task*.

    Cancelling mid-write could leak the connection the write was using.
    """
    if heartbeat is not None:
        heartbeat.stop()
        await asyncio.wait({task}, timeout=5.0)
    if not task.done():
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
