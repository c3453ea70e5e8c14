"""What ``spa-version status`` and ``spa-version bump --wait`` show.

Both read the fleet records (`spa_version.deploy.fleet.read_fleet`, each one a validated
`spa_version.fleet_record.FleetRecord`) next to the current release: ``status`` prints
them once (a table, or ``--json``), ``bump --wait`` polls them until every process
running another build reports zero websockets and zero event streams, drawing a
progress bar (or saying at once that there is nothing to drain). Processes that declare
no build are listed as live with websockets and streams "-" (untracked) and never
waited for. Every cell of the table passes through `spa_version.fleet_record.shown`,
so nothing a record holds can reach the terminal as a control sequence (ESC, BEL...).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from ..deploy.fleet import OnBadRecord, draining, read_fleet
from ..fleet_record import FleetRecord, shown
from ..release import Release
from ..stores.base import Store

__all__ = ["fleet_summary", "render_status", "wait_for_drain"]


def fleet_summary(release: Release | None, processes: list[FleetRecord]) -> dict[str, Any]:
    """The ``status --json`` document: the release, processes per build, and each process."""
    builds: dict[str, dict[str, Any]] = {}
    for proc in processes:
        entry = builds.setdefault(
            proc.build or "-",
            {
                "processes": 0,
                "live": 0,
                "pending": 0,
                "stale": 0,
                "websockets": 0,
                "streams": 0,
                "requests_by_epoch": {},
            },
        )
        entry["processes"] += 1
        entry[proc.state] += 1
        entry["websockets"] += proc.websockets or 0
        entry["streams"] += proc.streams or 0
        for epoch, count in proc.requests_by_epoch.items():
            entry["requests_by_epoch"][epoch] = entry["requests_by_epoch"].get(epoch, 0) + count
        if proc.slot is not None:  # pinning (docs/protocol.md): slots and pinned requests
            entry["slots"] = sorted({*entry.get("slots", ()), proc.slot})
            entry["pinned"] = entry.get("pinned", 0) + (proc.pinned or 0)
    return {
        "release": None if release is None else release.to_dict(),
        "builds": builds,
        "processes": [{"name": p.name, **p.to_dict()} for p in processes],
    }


def _epochs(counts: dict[str, int]) -> str:
    if not counts:
        return "-"
    return " ".join(f"{epoch}:{n}" for epoch, n in sorted(counts.items(), key=lambda kv: kv[0]))


def render_status(summary: dict[str, Any]) -> str:
    """A plain-text table of `fleet_summary`'s document."""
    release = summary["release"]
    lines = [
        "current: no release yet"
        if release is None
        else f"current: epoch {release['epoch']}  label {release['label']}  policy {release['policy']}"
    ]
    if not summary["processes"]:
        lines.append("no process has reported (is one running on this store, Redis or file://?)")
        return "\n".join(lines)
    header: tuple[str, ...]
    header = ("BUILD", "PROCS", "LIVE", "PENDING", "STALE", "SOCKETS", "STREAMS", "REQUESTS BY CLIENT EPOCH")
    rows: list[tuple[str, ...]] = [
        (
            build,
            str(b["processes"]),
            str(b["live"]),
            str(b["pending"]),
            str(b["stale"]),
            str(b["websockets"]),
            str(b["streams"]),
            _epochs(b["requests_by_epoch"]),
        )
        for build, b in summary["builds"].items()
    ]
    if any("slots" in b for b in summary["builds"].values()):  # pinning: which slot, pinned requests
        header = (*header[:7], "SLOT", "PINNED", header[7])
        rows = [
            (*row[:7], ",".join(b.get("slots", ())) or "-", str(b.get("pinned", "-")), row[7])
            for row, b in zip(rows, summary["builds"].values(), strict=True)
        ]
    lines.append("")
    lines.extend(_table(header, rows))
    lines.append("")
    proc_header = ("PROCESS", "BUILD", "STATE", "EPOCH", "SOCKETS", "STREAMS", "DRAINED", "AGE")
    now = time.time()
    proc_rows = [
        (
            p["name"],
            str(p["build"] or "-"),
            p["state"] + (" (stopping)" if p["stopping"] else ""),
            str(p["epoch"] or "-"),
            "-" if p["websockets"] is None else str(p["websockets"]),
            "-" if p["streams"] is None else str(p["streams"]),
            str(p["drained"]),
            f"{max(0.0, now - p['updated_at']):.0f}s",
        )
        for p in summary["processes"]
    ]
    lines.extend(_table(proc_header, proc_rows))
    return "\n".join(lines)


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    every = [header, *(tuple(shown(cell, 200) for cell in row) for row in rows)]
    widths = [max(len(row[i]) for row in every) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in every]


def _pinned(release: Release, proc: FleetRecord) -> tuple[int, bool]:
    """``(requests pinned to *proc* in its last heartbeat, quiet?)`` if it runs another build.

    Quiet: none pinned, over a window of at least half an interval. A heartbeat written
    early (on a state change) may cover a few milliseconds, and its 0 means nothing.
    """
    if proc.build is None or proc.build == release.label or proc.slot is None:
        return 0, True
    if release.cutoff:
        # Cut off: its pinned requests are answered 409 (reload), not served.
        return 0, True
    count = proc.pinned or 0
    return count, count == 0 and proc.requests_window >= proc.interval / 2


def _note_pinned(
    seen: dict[str, tuple[str, int, float]], release: Release, processes: list[FleetRecord]
) -> None:
    """Update *seen* (build -> slot, pinned in the last interval, last seen) from one poll."""
    counts: dict[str, int] = {}
    for proc in processes:
        count, _ = _pinned(release, proc)
        if count and proc.build is not None:
            counts[proc.build] = counts.get(proc.build, 0) + count
            _, _, when = seen.get(proc.build, ("", 0, 0.0))
            seen[proc.build] = (proc.slot or "-", 0, max(when, proc.updated_at))
    for build, (slot, _, when) in list(seen.items()):
        seen[build] = (slot, counts.get(build, 0), when)


def _pinned_cells(seen: dict[str, tuple[str, int, float]], now: float) -> list[str]:
    return [
        f"{shown(build, 64)}/{shown(slot, 32)}: {count}, last seen {max(0.0, now - when):.1f} s ago"
        for build, (slot, count, when) in sorted(seen.items())
        if count
    ]


def pinned_report(seen: dict[str, tuple[str, int, float]], now: float) -> list[str]:
    """One line per build that still got pinned requests at the end of a wait: its slot,
    its count over the last interval, when one was last seen, and how to end it."""
    return [
        f"still pinned: build {shown(build, 64)} (slot {shown(slot, 32)}): {count} request(s) in the "
        f"last interval, last seen {max(0.0, now - when):.1f} s ago; end it by stopping that build, "
        'or with spa-version bump --cutoff (docs/deploy-haproxy.md, "Security fixes")'
        for build, (slot, count, when) in sorted(seen.items())
        if count
    ]


async def wait_for_drain(
    store: Store,
    release: Release,
    *,
    timeout: float,
    poll: float = 0.5,
    out: TextIO | None = None,
    pinned: bool = False,
    on_bad: OnBadRecord | None = None,
) -> str | None:
    """Poll the fleet until other builds report no websockets and no event streams;
    draw progress on *out*.

    With *pinned*, also until every process of another build reports no pinned request
    in its last heartbeat interval (docs/protocol.md, "Pinning"). The progress names
    each build that still gets pinned requests, with its count over the last interval
    and how long ago its last heartbeat with one was written; at the timeout, one line
    per such build says so and how to end it (`pinned_report`).

    A record that does not validate is skipped and passed to *on_bad* (`read_fleet`).
    None when drained; when *timeout* passed first, what was still left, in the words of
    the progress line (``0 websocket(s) left, 0 stream(s), 3 pinned request(s) in the last
    interval``).
    """
    out = out or sys.stderr
    tty = out.isatty()
    deadline = time.monotonic() + timeout
    peak = 0
    last = ""
    first = True
    #: build -> (slot, requests pinned to it in the last interval, Unix time last seen)
    seen: dict[str, tuple[str, int, float]] = {}
    while True:
        processes = await read_fleet(store, on_bad)
        sockets, streams, behind = draining(release, processes)
        # With *pinned*: requests pinned to other builds, in each one's last interval.
        counts = [_pinned(release, p) for p in processes] if pinned else []
        left = sum(count for count, _ in counts)
        busy = not all(quiet for _, quiet in counts)
        if pinned:
            _note_pinned(seen, release, processes)
        if first and sockets == 0 and streams == 0 and behind == 0 and not busy:
            # Nothing was ever draining (e.g. `make demo`: one process, no build declared).
            reported = f"{len(processes)} process(es) reported" if processes else "no process has reported"
            out.write(f"nothing to drain: 0 websocket(s) and 0 stream(s) left on other builds ({reported})\n")
            out.flush()
            return None
        first = False
        peak = max(peak, sockets + streams)
        done_fraction = 1.0 if peak == 0 else (peak - sockets - streams) / peak
        filled = int(done_fraction * 30)
        remaining = f"{sockets} websocket(s) left, {streams} stream(s)"
        if behind:
            remaining += f", {behind} process(es) not caught up"
        if left:
            remaining += f", {left} pinned request(s) in the last interval"
        line = f"draining [{'#' * filled}{'.' * (30 - filled)}] {remaining}"
        if left:
            line += " (" + ", ".join(_pinned_cells(seen, time.time())) + ")"
        if tty:
            out.write("\r" + line.ljust(len(last)))
        elif line != last:
            out.write(line + "\n")
        out.flush()
        last = line
        if sockets == 0 and streams == 0 and behind == 0 and not busy:
            if tty:
                out.write("\n")
            return None
        if time.monotonic() >= deadline:
            if tty:
                out.write("\n")
            for report in pinned_report(seen, time.time()):
                out.write(report + "\n")
            out.flush()
            return remaining
        await asyncio.sleep(min(poll, max(0.0, deadline - time.monotonic())))
