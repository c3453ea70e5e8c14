"""The fleet as processes: every process's last heartbeat, read back for the CLI.

Each process publishes one record (`spa_version.deploy.heartbeat` writes a
`spa_version.fleet_record.FleetRecord`); the CLI reads them all (`read_fleet`:
``spa-version status`` and ``bump --wait``), asks which processes a release still waits
for (`draining`) and how far the reported epochs may lift the next one (`served_floor`).
A record counts as gone after its ``ttl`` (three heartbeat intervals), so a process that
dies simply disappears.

Every record is parsed by `FleetRecord.parse`, so a record that does not validate (a bug,
a disk error, a forged heartbeat) is skipped and reported, never raised. Where the records
live is the store's business (`spa_version.stores.base.Store.fleet`): Redis keys beside
the app's (`spa_version.stores.redis.fleet`), or files beside a file store's document
(`spa_version.stores.file.fleet`). The memory store has no fleet: it is one process,
there is nobody else to report to. Nothing here runs per request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..fleet_record import MAX_CLOCK_AHEAD, BadRecord, FleetRecord, shown
from ..release import MAX_EPOCH, Release
from ..stores.base import Store

__all__ = ["FLOOR_BOUND_MS", "Floor", "OnBadRecord", "draining", "read_fleet", "served_floor"]

logger = logging.getLogger("spa_version")

#: Called with the name a bad record is stored under (escaped for a terminal) and the
#: one-line reason it was skipped.
OnBadRecord = Callable[[str, str], None]

#: How far (ms) an epoch the fleet reports may lie beyond the greater of the store's
#: counter and the bumping host's clock and still lift the next epoch: one day.
#: docs/protocol.md, "Epochs", gives the rule and why.
FLOOR_BOUND_MS = 86_400_000


def _log_bad(name: str, reason: str) -> None:
    logger.warning("spa-version: skipped a bad fleet record %s: %s", name, reason)


async def read_fleet(store: Store, on_bad: OnBadRecord | None = None) -> list[FleetRecord]:
    """Every process with a live heartbeat, sorted by build then name.

    A record that does not validate is skipped and passed to *on_bad* (default: a log
    warning). Raises ``ValueError`` for a store without a fleet (memory), and the
    store's errors (`spa_version.stores.base.StoreError`).
    """
    fleet = store.fleet()
    if fleet is None:
        raise ValueError(f"fleet status needs the Redis or file store, not {store.display_url}")
    report = on_bad or _log_bad
    out = []
    now = time.time()
    for name, raw in await fleet.read():
        try:
            record = FleetRecord.parse(raw)
        except BadRecord as exc:
            report(shown(name), str(exc))
            continue
        ahead = record.ahead(now)
        if ahead is not None:  # it would never expire, and hold up every `bump --wait`
            report(
                shown(name),
                f"updated_at is {ahead:.0f} s ahead of this host's clock "
                f"(more than {MAX_CLOCK_AHEAD:g} s: a wrong clock, or a forged record)",
            )
            continue
        out.append(record)
    out.sort(key=lambda p: (p.build or "", p.name))
    return out


def draining(release: Release, processes: list[FleetRecord]) -> tuple[int, int, int]:
    """``(open websockets, open event streams, processes not caught up)`` on other
    builds than *release*'s.

    Processes that declare no build are never waited for; one that has not heard of the
    bump yet still calls itself live, so it counts as not caught up until its epoch does.
    """
    sockets = 0
    streams = 0
    behind = 0
    for proc in processes:
        if proc.build is None or proc.build == release.label:
            continue
        sockets += proc.websockets or 0
        streams += proc.streams or 0
        if proc.epoch is None or proc.epoch < release.epoch:
            behind += 1
    return sockets, streams, behind


@dataclass(frozen=True, slots=True)
class Floor:
    """What `served_floor` decided.

    ``at_least``: the epoch the next bump must reach (``Store.bump(at_least=...)``), or
    None when no trusted record reports one; ``highest``: the highest trusted epoch
    reported; ``reporting``: how many processes report an epoch; ``limit``: the highest
    epoch trusted; ``ignored``: the records whose epoch lies beyond ``limit``.
    """

    at_least: int | None
    highest: int | None
    reporting: int
    limit: int
    ignored: tuple[FleetRecord, ...]


def served_floor(processes: list[FleetRecord], *, counter: int, clock: int) -> Floor:
    """The floor the fleet's reported epochs set for the next bump (docs/protocol.md, "Epochs").

    *counter* is the store's last epoch (0: none), *clock* the bumping host's clock in ms
    (`spa_version.stores.base.clock_epoch`). An epoch is trusted up to
    ``max(counter, clock) + FLOOR_BOUND_MS``; beyond that it is ignored (a forged or broken
    record cannot push epochs towards the 15-digit end). The floor is the highest trusted
    epoch + 1, never past `MAX_EPOCH`, so no record can make a bump fail.
    """
    limit = max(counter, clock) + FLOOR_BOUND_MS
    reported = [p for p in processes if p.epoch is not None]
    trusted = [p.epoch for p in reported if p.epoch is not None and p.epoch <= limit]
    ignored = tuple(p for p in reported if p.epoch is not None and p.epoch > limit)
    highest = max(trusted) if trusted else None
    return Floor(
        at_least=None if highest is None else min(highest + 1, MAX_EPOCH),
        highest=highest,
        reporting=len(trusted),
        limit=limit,
        ignored=ignored,
    )
