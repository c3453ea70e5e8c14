"""Fleet status: each process heartbeats what it runs to Redis; ``spa-version status`` reads it (issue #5).

Every ``interval`` seconds (and at once when its state changes or its last websocket
closes) a process writes one JSON record with a TTL of three intervals, so a process
that dies simply disappears:

- ``spa-version:{APP}:proc:<host>:<pid>``  the record (``SET ... EX``)
- ``spa-version:{APP}:fleet``              a set of the ``<host>:<pid>`` names, so a
  reader needs no ``SCAN``; names whose record expired are pruned when read.

Both are hash-tagged like the rest of the app's keys (docs/protocol.md), so a Redis
Cluster keeps them in one slot.

The record: host, pid, build, state (live/pending/stale), current epoch, open
websockets, and the requests seen since the last heartbeat by client epoch (the
``X-SPA-Client-Version`` request header). Counting is one header scan and one dict
increment on raw bytes per request; parsing and writing happen only at heartbeat time.
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

from .protocol import parse_client_epoch
from .stores.base import Store

__all__ = ["EpochCounter", "FleetProcess", "Heartbeat", "fleet_keys", "read_fleet", "supports_fleet"]

logger = logging.getLogger("spa_version")

#: Distinct raw header values counted per interval; beyond it (a client sending junk)
#: requests land in "other", so memory stays bounded.
_MAX_DISTINCT = 64


def supports_fleet(store: Store) -> bool:
    """Fleet status needs a shared Redis: the other stores are per-host or per-process."""
    return getattr(store, "client", None) is not None and hasattr(store, "history_key")


def fleet_keys(app: str) -> tuple[str, str]:
    """``(index_key, record_key_prefix)`` for *app*."""
    prefix = f"spa-version:{{{app}}}"
    return f"{prefix}:fleet", f"{prefix}:proc:"


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
    """Writes this process's record to Redis every *interval* seconds until cancelled."""

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
        self.store = store
        self.describe = describe
        self.interval = interval
        self.counter = counter
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.name = f"{self.host}:{self.pid}"
        self.index_key, prefix = fleet_keys(store.app)
        self.key = prefix + self.name
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
            **self.describe(),
            "requests_by_epoch": self.counter.take() if self.counter is not None else {},
            "requests_window": round(window, 3),
        }
        return data

    async def beat(self) -> None:
        """Write the record once."""
        client: Any = self.store.client  # type: ignore[attr-defined]
        payload = json.dumps(self.record(), separators=(",", ":"))
        ttl = max(1, round(self.interval * 3))
        async with client.pipeline(transaction=True) as pipe:
            pipe.set(self.key, payload, ex=ttl)
            pipe.sadd(self.index_key, self.name)
            await pipe.execute()

    async def run(self) -> None:
        """Beat until `stop` (or cancelled); a Redis outage is logged and retried, never raised."""
        failing = False
        while not self._stopping:
            try:
                await self.beat()
                if failing:
                    logger.info("spa-version: fleet heartbeat is reaching Redis again")
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
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)

    async def remove(self) -> None:
        """Forget this process (on shutdown); best effort."""
        client: Any = self.store.client  # type: ignore[attr-defined]
        try:
            async with client.pipeline(transaction=True) as pipe:
                pipe.delete(self.key)
                pipe.srem(self.index_key, self.name)
                await pipe.execute()
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
    """Every process with a live heartbeat, sorted by build then name. Prunes expired names."""
    if not supports_fleet(store):
        raise ValueError(f"fleet status needs the Redis store, not {store.display_url}")
    client: Any = store.client  # type: ignore[attr-defined]
    index_key, prefix = fleet_keys(store.app)
    from .stores.redis import redis_errors, translate_error

    try:
        names = sorted(n.decode() if isinstance(n, bytes) else n for n in await client.smembers(index_key))
        raws = await client.mget([prefix + n for n in names]) if names else []
        gone = [n for n, raw in zip(names, raws, strict=True) if raw is None]
        if gone:
            await client.srem(index_key, *gone)
    except (redis_errors.RedisError, OSError) as exc:
        raise translate_error(exc, "status") from None
    out = []
    for name, raw in zip(names, raws, strict=True):
        if raw is None:
            continue
        try:
            data = json.loads(raw)
            out.append(
                FleetProcess(
                    name=name,
                    build=data.get("build"),
                    state=str(data.get("state", "live")),
                    epoch=data.get("epoch"),
                    websockets=int(data.get("websockets", 0)),
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
