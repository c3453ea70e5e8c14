"""The fleet as processes: every process's last heartbeat, read back for the CLI.

Each process publishes one JSON record (`spa_version.deploy.heartbeat` writes it); the
CLI reads them all (`read_fleet`: ``spa-version status`` and ``bump --wait``) and asks
which processes a release still waits for (`draining`). A record counts as gone after
its ``ttl`` (three heartbeat intervals), so a process that dies simply disappears.

Where the records live is the store's business (`spa_version.stores.base.Store.fleet`):
Redis keys beside the app's (`spa_version.stores.redis_fleet`), or files beside a file
store's document (`spa_version.stores.file_fleet`). The memory store has no fleet: it
is one process, there is nobody else to report to. Nothing here runs per request.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from ..release import Release
from ..stores.base import Store

__all__ = ["FleetProcess", "draining", "read_fleet"]

logger = logging.getLogger("spa_version")


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
    fleet = store.fleet()
    if fleet is None:
        raise ValueError(f"fleet status needs the Redis or file store, not {store.display_url}")
    out = []
    for name, raw in await fleet.read():
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
