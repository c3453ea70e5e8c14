"""The heartbeat: this process's fleet record, written every few seconds.

Every ``interval`` seconds (and at once when its state changes or its last websocket
closes) a process publishes one JSON record that counts as gone after three intervals
(its ``ttl``) to the store's fleet (`spa_version.stores.base.Fleet`: Redis keys or
files, per store); `spa_version.deploy.fleet` reads them all.

The record (`spa_version.fleet_record.FleetRecord`, the same type every reader parses)
is `spa_version.deploy.Deployment.describe` plus the common fields (host, pid,
started_at, updated_at, interval, ttl) and, where the process counts them, the
requests seen since the last heartbeat by client epoch (`EpochCounter`: the
``X-SPA-Client-Version`` request header). Counting is one header scan and one dict
increment on raw bytes per request; parsing and writing happen only at heartbeat time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..fleet_record import FleetRecord
from ..protocol import parse_client_epoch
from ..stores.base import Fleet

__all__ = ["EpochCounter", "Heartbeat", "after_first_read"]

logger = logging.getLogger("spa_version")

#: Distinct raw header values counted per interval; beyond it (a client sending junk)
#: requests land in "other", so memory stays bounded.
_MAX_DISTINCT = 64


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
    """Publishes this process's record every *interval* seconds until stopped or cancelled.

    *fleet* is where the record goes (`spa_version.stores.base.Store.fleet`), *describe*
    returns the process's own fields (a JSON-ready dict); *interval* is in seconds (> 0).
    """

    def __init__(
        self,
        fleet: Fleet,
        describe: Callable[[], dict[str, Any]],
        *,
        interval: float = 5.0,
        counter: EpochCounter | None = None,
    ) -> None:
        if not interval > 0:
            raise ValueError(f"heartbeat interval must be > 0 seconds, not {interval!r}")
        self.fleet = fleet
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

    def record(self) -> FleetRecord:
        """This process's record now (taking the request counts since the last one).

        Built as the typed record every reader parses (`spa_version.fleet_record`), so
        what is written is what is read; a value it refuses raises `BadRecord`.
        """
        now = time.monotonic()
        window, self._window_start = now - self._window_start, now
        return FleetRecord(
            host=self.host,
            pid=self.pid,
            started_at=round(self.started_at, 3),
            updated_at=round(time.time(), 3),
            interval=self.interval,
            ttl=self.ttl,
            **self.describe(),
            requests_by_epoch=self.counter.take() if self.counter is not None else {},
            requests_window=round(window, 3),
        )

    async def beat(self) -> None:
        """Write the record once."""
        await self.fleet.write(self.host, self.pid, self.record().to_json(), self.ttl)

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
            await self.fleet.remove(self.host, self.pid)
        except Exception as exc:
            logger.debug("spa-version: removing the fleet record failed: %s", exc)


async def after_first_read(synced: Callable[[], bool], limit: float) -> None:
    """Wait (at most *limit* seconds) for the listener's first read of the store.

    Started together, the listener's read and a first heartbeat would make the Redis pool
    open a second command connection for good. Bounded: a store that is down still gets
    its heartbeat attempts (they log and retry).
    """
    deadline = time.monotonic() + limit
    while not synced() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
