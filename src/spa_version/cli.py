"""The ``spa-version`` command line: bump after a deploy, and look at releases.

Exit codes: 0 ok; 2 bad usage or bad input (the store is untouched); 1 the store is
unreachable, refused the operation, or holds data that is not valid (nothing is written
then); 3 ``bump --wait`` timed out (the bump is done).
Errors are one line, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import NoReturn

from . import __version__
from .current import CurrentVersion
from .listener import Listener
from .protocol import HEADER, format_header
from .release import POLICIES, InvalidRelease, Release, is_epoch, validate_label
from .stores import MinCompatible, Store, StoreError, open_store, resolve_url

__all__ = ["main", "default_label"]

PROG = "spa-version"


class UsageError(Exception):
    """Bad input: exit 2."""


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


def _min_compatible(value: str) -> MinCompatible:
    if value == "current":
        return "current"
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise argparse.ArgumentTypeError(f"expected an epoch >= 1 or 'current', not {value!r}")


def _positive_int(value: str) -> int:
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise argparse.ArgumentTypeError(f"expected a whole number >= 1, not {value!r}")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line and exit 2, like every other bad input (argparse prints usage too).
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    # Global options work before or after the command: `spa-version --json get` and
    # `spa-version get --json` both do. SUPPRESS keeps a subcommand's copy from
    # overwriting a value given before it.
    common = _Parser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS, help="store URL (env SPA_VERSION_URL)")
    common.add_argument("--app", default=argparse.SUPPRESS, help="app namespace (env SPA_VERSION_APP)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")

    parser = _Parser(
        prog=PROG, description="Publish and inspect deploy versions for open SPA tabs.", parents=[common]
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    bump = commands.add_parser("bump", parents=[common], help="publish a new release (run after a deploy)")
    bump.add_argument("label", nargs="?", help="build label (default: short git hash + UTC time)")
    bump.add_argument("--policy", choices=POLICIES, default="next-navigation", help="how open tabs move")
    bump.add_argument(
        "--min-compatible",
        type=_min_compatible,
        metavar="EPOCH|current",
        help="clients older than this epoch get 409 on unsafe requests; 'current' = this release",
    )
    bump.add_argument("--note", help="a short note shown by history")
    bump.add_argument(
        "--wait",
        action="store_true",
        help="then wait until other builds report 0 websockets (Redis or file store; exit 3: timeout)",
    )
    bump.add_argument(
        "--wait-pinned",
        action="store_true",
        help="--wait, and also until other builds served no pinned request in their last heartbeat",
    )
    bump.add_argument("--timeout", type=_positive_float, default=300.0, metavar="S", help="for --wait (300)")

    commands.add_parser("get", parents=[common], help="print the current release")

    history = commands.add_parser("history", parents=[common], help="print past releases, newest first")
    history.add_argument("--limit", type=_positive_int, default=20)

    rollback = commands.add_parser("rollback", parents=[common], help="bump back to an earlier release")
    rollback.add_argument("--to", type=_positive_int, metavar="EPOCH", help="default: the previous release")

    commands.add_parser("watch", parents=[common], help="print each bump as it happens (Ctrl-C stops)")

    commands.add_parser("status", parents=[common], help="fleet table: builds, live/stale, websockets left")

    agent = commands.add_parser("agent", parents=[common], help="serve HAProxy's agent-check for a build")
    agent.add_argument("--port", type=_positive_int, required=True, help="TCP port for agent-port")
    agent.add_argument("--build", required=True, help="the label this app's processes run")
    agent.add_argument("--host", help="address to bind (env SPA_VERSION_AGENT_HOST, default 127.0.0.1)")
    agent.add_argument(
        "--handover",
        type=_positive_float,
        default=0.0,
        metavar="S",
        help="a stale build still says ready for S s, for balancers without a fallback (0)",
    )
    agent.add_argument(
        "--warmup", type=_positive_float, default=0.0, metavar="S", help="report a rising weight for S s"
    )
    return parser


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if number >= 0 and number != float("inf"):
        return number
    raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, not {value!r}")


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


async def _with_store(args: argparse.Namespace, action: Callable[[Store], Awaitable[int]]) -> int:
    store = open_store(getattr(args, "url", None), app=getattr(args, "app", None))
    try:
        return await action(store)
    finally:
        await store.aclose()


async def _run(args: argparse.Namespace) -> int:
    as_json: bool = getattr(args, "json", False)
    command: str = args.command

    if command == "bump":
        label = args.label if args.label is not None else default_label()
        validate_label(label)  # before touching the store

        async def bump(store: Store) -> int:
            at_least = await _served_floor(store)
            result = await store.bump(
                label,
                policy=args.policy,
                min_compatible=args.min_compatible,
                note=args.note,
                at_least=at_least,
            )
            _report_bump(result.release, result.receivers, as_json)
            if args.wait or args.wait_pinned:
                from .status import wait_for_drain

                pinned = args.wait_pinned
                if not await wait_for_drain(store, result.release, timeout=args.timeout, pinned=pinned):
                    print(f"{PROG}: websockets still open after {args.timeout:g} s", file=sys.stderr)
                    return 3
            return 0

        return await _with_store(args, bump)

    if command == "get":

        async def get(store: Store) -> int:
            release = await _read_current(store)
            if release is None and not as_json:
                print(
                    f"the store {store.display_url} has no release for app {store.app} (no bump yet, or lost)"
                )
            else:
                _print_release(release, as_json)
            return 0

        return await _with_store(args, get)

    if command == "history":

        async def history(store: Store) -> int:
            releases = await store.history(args.limit)
            if as_json:
                print(json.dumps([r.to_dict() for r in releases]))
            elif not releases:
                print("no release yet")
            else:
                for release in releases:
                    _print_release(release, False)
            return 0

        return await _with_store(args, history)

    if command == "rollback":

        async def rollback(store: Store) -> int:
            result = await store.rollback(args.to, at_least=await _served_floor(store))
            _report_bump(result.release, result.receivers, as_json)
            return 0

        return await _with_store(args, rollback)

    if command == "watch":

        async def watch(store: Store) -> int:
            # The same supervised listener the middleware uses: a Redis blip is
            # retried with backoff, not fatal.
            current = CurrentVersion(HEADER)
            current.add_observer(lambda old, new: _print_release(new.release, as_json, flush=True))
            await Listener(store, current).run()
            return 0

        return await _with_store(args, watch)

    if command == "status":
        from .deploy.fleet import read_fleet
        from .status import fleet_summary, render_status

        async def status(store: Store) -> int:
            summary = fleet_summary(await _read_current(store), await read_fleet(store))
            print(json.dumps(summary) if as_json else render_status(summary))
            return 0

        return await _with_store(args, status)

    if command == "agent":
        from .deploy.agent import run_agent

        build = validate_label(args.build)

        async def agent(store: Store) -> int:
            await run_agent(
                store, build, port=args.port, host=args.host, warmup=args.warmup, handover=args.handover
            )
            return 0

        return await _with_store(args, agent)

    raise UsageError(f"unknown command {command!r}")


async def _served_floor(store: Store) -> int | None:
    """One more than the highest epoch the fleet reports serving (None: none reported).

    A store that lost its data (restarted empty, restored from an older snapshot, failed
    over to a replica that missed a bump) no longer knows what open tabs and workers
    hold, but the processes still say it in their heartbeats. The bump's epoch then
    exceeds it (`Store.bump`'s ``at_least``), and the operator is told in one line.
    """
    from .deploy.fleet import read_fleet

    if store.fleet() is None:
        return None
    current = await _read_current(store)
    try:
        fleet = await read_fleet(store)
    except StoreError:  # e.g. an ACL that allows bumping but not reading the fleet
        return None
    epochs = [p.epoch for p in fleet if p.epoch is not None and is_epoch(p.epoch)]
    if not epochs:
        return None
    highest = max(epochs)
    if current is None:
        _warn(
            f"the store {store.display_url} has no release, but {len(epochs)} process(es) report "
            f"serving epoch {highest}: was it reset or replaced? The new epoch will exceed it."
        )
    elif current is not None and highest > current.epoch:
        _warn(
            f"processes report serving epoch {highest}, newer than the store's {current.epoch}: "
            "was it restored from an older snapshot or failed over? The new epoch will exceed it."
        )
    return highest + 1


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


def _report_bump(release: Release, receivers: int | None, as_json: bool) -> None:
    if as_json:
        print(json.dumps({**release.to_dict(), "receivers": receivers}))
        return
    line = f"bumped to epoch {release.epoch} ({format_header(release)})"
    if receivers is not None:
        line += f"; {receivers} subscriber{'s' if receivers != 1 else ''} received it"
    print(line)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        resolve_url(getattr(args, "url", None), getattr(args, "app", None))
        return asyncio.run(_run(args))
    except (InvalidRelease, UsageError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"{PROG}: store error: {exc}", file=sys.stderr)
        return 1
    except ImportError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. a disk that is full or read-only
        print(f"{PROG}: error: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


def run() -> NoReturn:  # the console script
    sys.exit(main())
