"""One coroutine per ``spa-version`` command (`COMMANDS`).

Each takes the parsed arguments (`spa_version.cli.parser.parse_args`), checks what it
can before touching the store, opens the store, prints its output and returns the exit
code. Errors are raised; `spa_version.cli.main` turns them into one line and an exit code.
Results go to stdout (pure JSON with ``--json``); notes and warnings go to stderr,
among them one line for each fleet record that does not validate (`BadRecords`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

from ..current import CurrentVersion
from ..deploy.agent import run_agent
from ..deploy.fleet import FLOOR_BOUND_MS, read_fleet, served_floor
from ..fleet_record import shown
from ..listener import Listener
from ..options import Options
from ..protocol import HEADER, format_header
from ..publish import Inventory, inventory, publish
from ..publish.files import SHELL_SUFFIXES
from ..release import InvalidRelease, Release, validate_label
from ..stores import BumpResult, Store, StoreError
from ..stores.base import clock_epoch
from .parser import PROG
from .status import fleet_summary, render_status, wait_for_drain

__all__ = ["COMMANDS", "default_label"]


def default_label(now: float | None = None) -> str:
    """A label for a bare ``bump``: the short git commit (if any) plus a UTC timestamp.

    Only a short hash is published, not the full SHA: labels go out in every response
    header (docs/protocol.md), so they stay short and opaque.
    """
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(now))
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=10", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return validate_label(f"{commit}-{stamp}" if commit else f"build-{stamp}")


@contextlib.asynccontextmanager
async def _opened(args: argparse.Namespace) -> AsyncIterator[Store]:
    """The store named by ``--url`` / ``--app`` (else the environment), closed afterwards.

    Through `Options`, like the middleware's: the URL is parsed once, by the same rule."""
    store = Options.from_command_line(args.url, args.app).open_store()
    try:
        yield store
    finally:
        await store.aclose()


async def bump(args: argparse.Namespace) -> int:
    """``bump [LABEL]``: publish a new release; with ``--wait``, wait for the drain (exit 3: timeout)."""
    label = args.label if args.label is not None else default_label()
    validate_label(label)  # before touching the store
    bad = BadRecords()
    async with _opened(args) as store:
        if (args.wait or args.wait_pinned) and store.fleet() is None:
            # Before the bump: exit 2 promises the store untouched.
            flag = "--wait-pinned" if args.wait_pinned else "--wait"
            raise ValueError(
                f"{flag} reads the heartbeats of the Redis or file store, and {store.display_url} "
                "keeps none; nothing was bumped"
            )
        result = await store.bump(
            label,
            policy=args.policy,
            min_compatible=args.min_compatible,
            note=args.note,
            at_least=await _served_floor(store, bad),
            cutoff=args.cutoff,
        )
        await _report_bump(store, result, args.json, bad)
        if args.wait or args.wait_pinned:
            pinned = args.wait_pinned
            left = await wait_for_drain(
                store, result.release, timeout=args.timeout, pinned=pinned, on_bad=bad
            )
            if left is not None:
                print(f"{PROG}: still draining after {args.timeout:g} s: {left}", file=sys.stderr)
                return 3
    return 0


async def get(args: argparse.Namespace) -> int:
    """``get``: print the current release."""
    async with _opened(args) as store:
        release = await _read_current(store)
        if release is None and not args.json:
            print(f"the store {store.display_url} has no release for app {store.app} (no bump yet, or lost)")
        else:
            _print_release(release, args.json)
    return 0


async def history(args: argparse.Namespace) -> int:
    """``history``: print the last ``--limit`` releases, newest first."""
    async with _opened(args) as store:
        releases = await store.history(args.limit)
    if args.json:
        print(json.dumps([r.to_dict() for r in releases]))
    elif not releases:
        print("no release yet")
    else:
        for release in releases:
            _print_release(release, False)
    return 0


async def rollback(args: argparse.Namespace) -> int:
    """``rollback [--to EPOCH]``: bump back to an earlier release (default: the previous one)."""
    async with _opened(args) as store:
        bad = BadRecords()
        result = await store.rollback(args.to, at_least=await _served_floor(store, bad))
        await _report_bump(store, result, args.json, bad)
    return 0


async def watch(args: argparse.Namespace) -> int:
    """``watch``: print the current release, then each bump, until interrupted."""
    async with _opened(args) as store:
        # One read first, so a store that cannot be read fails like every other command
        # (exit 1); only once it has been read is a later outage retried.
        release = await _read_current(store)
        if release is not None:
            _print_release(release, args.json, flush=True)
        elif args.json:  # stdout holds only releases
            print(f"{PROG}: no release yet; waiting for the first bump", file=sys.stderr, flush=True)
        else:
            _print_release(None, False, flush=True)
        current = CurrentVersion(HEADER)
        if release is not None:
            current.offer(release)
        current.add_observer(lambda old, new: _print_release(new.release, args.json, flush=True))
        # The same supervised listener the middleware uses: a Redis blip is retried with
        # backoff, not fatal, and reported in the watch's words, not a worker's.
        await Listener(store, current, on_error=_watch_error).run()
    return 0


def _watch_error(exc: Exception, retry_in: float) -> None:
    reason = str(exc) or type(exc).__name__
    print(f"{PROG}: watch: store error ({reason}); retrying in {retry_in:.1f} s", file=sys.stderr, flush=True)


async def status(args: argparse.Namespace) -> int:
    """``status``: print the fleet (a table, or ``--json``); exit 2 for a store without one."""
    async with _opened(args) as store:
        summary = fleet_summary(await _read_current(store), await read_fleet(store, BadRecords()))
    print(json.dumps(summary) if args.json else render_status(summary))
    return 0


async def agent(args: argparse.Namespace) -> int:
    """``agent``: serve HAProxy's agent-check for ``--build`` until interrupted."""
    build = validate_label(args.build)  # before touching the store
    async with _opened(args) as store:
        await run_agent(
            store, build, port=args.port, host=args.host, warmup=args.warmup, handover=args.handover
        )
    return 0


async def assets_publish(args: argparse.Namespace) -> int:
    """``assets publish BUILD_DIR WEB_DIR``: publish a build, prune what no kept release owns."""
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C stops the publish at once: asyncio.run would defer it to the next await,
        # and this command never awaits. The partial copy is removed on the way out.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        report = publish(
            Path(args.build_dir),
            Path(args.web_dir),
            keep=args.keep,
            min_age=args.min_age,
            release=args.release,
            dry_run=args.dry_run,
            lock_timeout=args.lock_timeout,
            on_wait=lambda: _note(f"waiting for another publish into {args.web_dir}"),
        )
    except KeyboardInterrupt:  # a publish cut short is not a success
        _note("error: interrupted; the files served are whole, and the next publish finishes the job")
        return 1
    if report.leftovers:
        would = "would remove" if report.dry_run else "removed"
        _note(f"{would} {report.leftovers} temporary file(s) an interrupted publish left")
    if report.adopted:
        would = "would record" if report.dry_run else "recorded"
        _note(f"{would} the files already in {args.web_dir} as release {report.adopted}")
    if args.json:
        print(json.dumps(report.to_dict()))
        return 0
    would = "would " if report.dry_run else ""
    shells = sum(1 for path in report.written if path.lower().endswith(SHELL_SUFFIXES))
    print(
        f"{'dry run: ' if report.dry_run else ''}release {report.release}: {would}write "
        f"{len(report.written)} file(s) ({shells} shell(s) last), {report.unchanged} unchanged; "
        f"{would}prune {len(report.pruned)} file(s) ({_size(report.pruned_bytes)}) of "
        f"{len(report.forgotten)} old release(s)"
    )
    assert report.inventory is not None
    print(_kept_line(report.inventory))
    return 0


async def assets_list(args: argparse.Namespace) -> int:
    """``assets list WEB_DIR``: the releases whose assets are kept, newest first, and their size."""
    kept = inventory(Path(args.web_dir))
    if args.json:
        print(json.dumps(kept.to_dict()))
        return 0
    for usage in kept.releases:
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(usage.published_at))
        print(f"{usage.release}  published {when}  {usage.files} file(s)  {_size(usage.bytes)}")
    print(_kept_line(kept))
    return 0


def _kept_line(kept: Inventory) -> str:
    line = f"kept {len(kept.releases)} release(s): {kept.files} file(s), {_size(kept.bytes)}"
    if kept.unowned:
        line += f"; {kept.unowned} file(s) no release owns (never pruned)"
    return line


def _size(count: int) -> str:
    """Bytes in SI units: ``"812 B"``, ``"1.4 kB"``, ``"2.3 MB"``."""
    size = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{count} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def _note(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


#: The coroutine behind each command name.
COMMANDS: dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, int]]] = {
    "bump": bump,
    "get": get,
    "history": history,
    "rollback": rollback,
    "watch": watch,
    "status": status,
    "agent": agent,
    "assets publish": assets_publish,
    "assets list": assets_list,
}


class BadRecords:
    """Reports each fleet record that does not validate once, in one line on stderr
    (`spa_version.deploy.fleet.OnBadRecord`), however often a command reads the fleet."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, name: str, reason: str) -> None:
        if name not in self.seen:
            self.seen.add(name)
            print(f"{PROG}: skipped a bad fleet record {name}: {reason}", file=sys.stderr, flush=True)


async def _served_floor(store: Store, bad: BadRecords) -> int | None:
    """The ``at_least`` of the next bump: one more than the highest epoch the fleet reports
    serving, within `FLOOR_BOUND_MS` of the store's counter and this host's clock (None:
    none reported). docs/protocol.md, "Epochs".

    A store that lost its data (restarted empty, restored from an older snapshot, failed
    over to a replica that missed a bump) no longer knows what open tabs and workers
    hold, but the processes still say it in their heartbeats. The bump's epoch then
    exceeds it (`Store.bump`'s ``at_least``), and the operator is told in one line. An
    epoch beyond the bound (a forged or broken record) is ignored, also in one line.
    """
    if store.fleet() is None:
        return None
    current = await _read_current(store)
    try:
        fleet = await read_fleet(store, bad)
    except StoreError:  # e.g. an ACL that allows bumping but not reading the fleet
        return None
    floor = served_floor(fleet, counter=0 if current is None else current.epoch, clock=clock_epoch())
    if floor.ignored:
        names = ", ".join(f"{p.name} ({p.epoch})" for p in floor.ignored[:3])
        more = f" and {len(floor.ignored) - 3} more" if len(floor.ignored) > 3 else ""
        _warn(
            f"ignored the epoch of {len(floor.ignored)} fleet record(s) beyond {floor.limit}, "
            f"more than {FLOOR_BOUND_MS // 3_600_000} h past the store's counter and this host's clock: "
            f"{shown(names + more, 300)}; a forged or broken heartbeat? "
            '(docs/redis.md, "A forged fleet record")'
        )
    if floor.highest is None:
        return None
    if current is None:
        _warn(
            f"the store {store.display_url} has no release, but {floor.reporting} process(es) report "
            f"serving epoch {floor.highest}: was it reset or replaced? The new epoch will exceed it."
        )
    elif floor.highest > current.epoch:
        _warn(
            f"processes report serving epoch {floor.highest}, newer than the store's {current.epoch}: "
            "was it restored from an older snapshot or failed over? The new epoch will exceed it."
        )
    return floor.at_least


async def _read_current(store: Store) -> Release | None:
    """``store.get()``, with a current record that does not validate reported as the store's fault.

    A record that is null, a list, an object without the fields, an epoch out of range,
    JSON nested too deeply: the operator did not type it, so it is not bad input (exit 2)
    but bad data in the store (exit 1), said in one line that names the store.
    """
    try:
        return await store.get()
    except InvalidRelease as exc:
        raise StoreError(
            f"the current release of app {store.app} in {store.display_url} is not valid ({exc}); "
            "fix or remove it (nothing was changed)"
        ) from None


def _warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def _print_release(release: Release | None, as_json: bool, *, flush: bool = False) -> None:
    if as_json:
        print(json.dumps(None if release is None else release.to_dict()), flush=flush)
    elif release is None:
        print("no release yet")
    else:
        line = f"epoch {release.epoch}  label {release.label}  policy {release.policy}"
        if release.min_compatible is not None:
            line += f"  min-compatible {release.min_compatible}"
        line += f"  created {release.created_at}"
        if release.note:
            line += f"  note {release.note}"
        print(line, flush=flush)


async def _report_bump(store: Store, result: BumpResult, as_json: bool, bad: BadRecords) -> None:
    """What a bump made (stdout), and who will hear of it.

    Redis counts the subscribers its message reached. A file store cannot: its followers
    poll it. So the bump names the store's absolute directory and counts the processes
    whose heartbeats it holds (stderr). A relative ``file://`` URL is relative to the
    working directory, and a bump run from another one writes a second store nobody follows.
    With no follower, a store whose modes keep other users out says so too, on the same
    line (`Store.sharing_problem`).
    """
    release, receivers = result.release, result.receivers
    if as_json:
        print(json.dumps({**release.to_dict(), "receivers": receivers}))
    else:
        line = f"bumped to epoch {release.epoch} ({format_header(release)})"
        if receivers is not None:
            line += f"; {receivers} subscriber{'s' if receivers != 1 else ''} received it"
        print(line)
    if receivers is not None or store.fleet() is None:
        return
    try:
        followers = len(await read_fleet(store, bad))
    except StoreError:  # the bump is done; the count is only a courtesy
        return
    if followers == 0:
        following = "no process follows it yet (if your app is running, is this the directory it uses?)"
        problem = store.sharing_problem()
        if problem is not None:
            docs = "docs/deploy-haproxy.md, 'File store permissions'"
            following += f"; none running as another user can: {problem} ({docs})"
    else:
        following = f"{followers} process{'es follow' if followers != 1 else ' follows'} it"
    print(f"{PROG}: wrote {store.location} (app {store.app}); {following}", file=sys.stderr)
