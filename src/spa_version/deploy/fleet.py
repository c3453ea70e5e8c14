"""The fleet: every process's last heartbeat, where it lives per store, and how it is read.

Each process publishes one JSON record (`spa_version.deploy.heartbeat` writes it); the
CLI reads them all (`read_fleet`: ``spa-version status`` and ``bump --wait``). A record
counts as gone after its ``ttl`` (three heartbeat intervals), so a process that dies
simply disappears. Where the records live depends on the store:

- `RedisFleet` (``redis://`` and variants)::

      spa-version:{APP}:proc:<host>:<pid>   the record (SET ... EX ttl)
      spa-version:{APP}:fleet               a set of the <host>:<pid> names, so a reader
                                            needs no SCAN; expired names are pruned on read

  Both are hash-tagged like the rest of the app's keys (docs/protocol.md), so a Redis
  Cluster keeps them in one slot.

- `FileFleet` (``file://DIR``, one host)::

      DIR/<app>.fleet/<host>-<pid>.json     the record, published with temp file + os.replace

  Files do not expire by themselves: a reader treats a record whose ``updated_at`` is
  more than its ``ttl`` ago as gone (the process died without removing it) and deletes it.

The memory store has no fleet: it is one process, there is nobody else to report to.
Nothing here runs per request; writes happen only at heartbeat time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import tempfile
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..release import Release
from ..stores.base import Store
from ..stores.file import FileStore

__all__ = [
    "FileFleet",
    "FleetBackend",
    "FleetProcess",
    "RedisFleet",
    "draining",
    "fleet_backend",
    "fleet_keys",
    "read_fleet",
    "require_fleet",
    "supports_fleet",
]

logger = logging.getLogger("spa_version")


class FleetBackend(ABC):
    """Writes, removes and lists the fleet records of one app."""

    @abstractmethod
    async def write(self, host: str, pid: int, payload: str, ttl: float) -> None:
        """Publish this process's record (JSON text), to count as gone after *ttl* seconds."""

    @abstractmethod
    async def remove(self, host: str, pid: int) -> None:
        """Forget this process's record (may raise: callers treat it as best effort)."""

    @abstractmethod
    async def read(self) -> list[tuple[str, str | bytes]]:
        """``(name, raw JSON)`` of each record still alive; prunes the ones that are not."""


def fleet_backend(store: Store) -> FleetBackend | None:
    """The fleet medium of *store*, or None when it has none (the memory store)."""
    if isinstance(store, FileStore):
        return FileFleet(store.directory, store.app)
    # Duck-typed so this module never imports the optional redis package.
    if getattr(store, "client", None) is not None and hasattr(store, "history_key"):
        return RedisFleet(store)
    return None


def supports_fleet(store: Store) -> bool:
    """Whether *store* can carry fleet records: Redis (shared) or a file store (one host)."""
    return fleet_backend(store) is not None


def require_fleet(store: Store) -> FleetBackend:
    """The fleet medium of *store*; ``ValueError`` when it has none (the memory store)."""
    backend = fleet_backend(store)
    if backend is None:
        raise ValueError(f"fleet status needs the Redis or file store, not {store.display_url}")
    return backend


def fleet_keys(app: str) -> tuple[str, str]:
    """Redis ``(index_key, record_key_prefix)`` for *app*."""
    prefix = f"spa-version:{{{app}}}"
    return f"{prefix}:fleet", f"{prefix}:proc:"


class RedisFleet(FleetBackend):
    """Records as TTL'd keys plus an index set (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.index_key, self.prefix = fleet_keys(store.app)

    @property
    def _client(self) -> Any:
        return self.store.client  # type: ignore[attr-defined]

    async def write(self, host: str, pid: int, payload: str, ttl: float) -> None:
        name = f"{host}:{pid}"
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.set(self.prefix + name, payload, ex=max(1, round(ttl)))
            pipe.sadd(self.index_key, name)
            await pipe.execute()

    async def remove(self, host: str, pid: int) -> None:
        name = f"{host}:{pid}"
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.delete(self.prefix + name)
            pipe.srem(self.index_key, name)
            await pipe.execute()

    async def read(self) -> list[tuple[str, str | bytes]]:
        from ..stores.redis import redis_errors, translate_error

        client = self._client
        try:
            members = await client.smembers(self.index_key)
            names = sorted(n.decode() if isinstance(n, bytes) else n for n in members)
            raws = await client.mget([self.prefix + n for n in names]) if names else []
            gone = [n for n, raw in zip(names, raws, strict=True) if raw is None]
            if gone:
                await client.srem(self.index_key, *gone)
        except (redis_errors.RedisError, OSError) as exc:
            raise translate_error(exc, "status") from None
        return [(n, raw) for n, raw in zip(names, raws, strict=True) if raw is not None]


#: Characters kept in a record's file name; anything else (never in a sane host name)
#: becomes "_", so a name can never leave the fleet directory.
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class FileFleet(FleetBackend):
    """Records as JSON files in ``DIR/<app>.fleet/`` (see the module docstring).

    File I/O runs in a worker thread, so a slow disk never blocks the event loop.
    """

    def __init__(self, directory: Path, app: str) -> None:
        self.directory = Path(directory) / f"{app}.fleet"

    def _path(self, host: str, pid: int) -> Path:
        return self.directory / f"{_UNSAFE.sub('_', host)}-{pid}.json"

    def _write(self, path: Path, payload: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{path.stem}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(payload)
            os.chmod(tmp, 0o644)
            # Atomic: a reader sees the previous record or this one, never half of one.
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    async def write(self, host: str, pid: int, payload: str, ttl: float) -> None:
        # ttl is in the record itself (the reader checks updated_at + ttl).
        await asyncio.to_thread(self._write, self._path(host, pid), payload)

    async def remove(self, host: str, pid: int) -> None:
        path = self._path(host, pid)
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(os.unlink, path)

    def _read(self) -> list[tuple[str, str | bytes]]:
        try:
            entries = sorted(os.scandir(self.directory), key=lambda e: e.name)
        except FileNotFoundError:
            return []
        now = time.time()
        out: list[tuple[str, str | bytes]] = []
        for entry in entries:
            if entry.name.endswith(".tmp"):
                # A writer that died between mkstemp and os.replace: clean up after a while.
                with contextlib.suppress(OSError):
                    if now - entry.stat().st_mtime > 60:
                        os.unlink(entry.path)
                continue
            if not entry.name.endswith(".json"):
                continue
            try:
                raw = Path(entry.path).read_bytes()
            except FileNotFoundError:
                continue  # removed by its process (or another reader) just now
            if _expired(raw, now):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                continue
            out.append((entry.name[: -len(".json")], raw))
        return out

    async def read(self) -> list[tuple[str, str | bytes]]:
        return await asyncio.to_thread(self._read)


def _expired(raw: bytes, now: float) -> bool:
    """Whether a file record is past its TTL (as Redis would have expired the key).

    An unreadable record is left alone here; the caller reports it as bad.
    """
    try:
        data = json.loads(raw)
        updated = float(data["updated_at"])
        ttl = float(data.get("ttl") or 3 * float(data.get("interval", 5.0)))
    except (ValueError, TypeError, KeyError, AttributeError):
        return False
    return now - updated > ttl


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
    """Every process with a live heartbeat, sorted by build then name. Prunes expired records.

    Raises ``ValueError`` for a store without a fleet (memory), and the store's errors.
    """
    out = []
    for name, raw in await require_fleet(store).read():
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


def draining(release: Release, processes: list[FleetProcess]) -> tuple[int, int]:
    """``(open websockets on other builds, processes not caught up)`` after *release*.

    Processes that declare no build are never waited for; one that has not heard of the
    bump yet still calls itself live, so it counts as not caught up until its epoch does.
    """
    sockets = 0
    behind = 0
    for proc in processes:
        if proc.build is None or proc.build == release.label:
            continue
        sockets += proc.websockets
        if proc.epoch is None or proc.epoch < release.epoch:
            behind += 1
    return sockets, behind
