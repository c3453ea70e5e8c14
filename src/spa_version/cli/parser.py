"""The ``spa-version`` command line's arguments: `parse_args`.

Global options (``--url``, ``--app``, ``--json``) work before or after the command:
``spa-version --json get`` and ``spa-version get --json`` both do.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from importlib.metadata import version
from typing import NoReturn

from ..publish import parse_age
from ..release import POLICIES
from ..stores import MinCompatible

__all__ = ["PROG", "build_parser", "parse_args"]

PROG = "spa-version"

#: What each command does, in full: the description its own ``--help`` shows (the
#: top-level ``--help`` lists the short ``help=`` line of each).
DESCRIPTIONS = {
    "bump": (
        "Publish a new release (run after a deploy). Every process following the store "
        "stamps it on its responses, and open tabs move to it as --policy says."
    ),
    "get": "Print the current release. With --json, the release record (null before the first bump).",
    "history": "Print past releases, newest first. The store keeps the last 50.",
    "rollback": (
        "Bump back to an earlier release. The label and policy come back under a new, "
        "higher epoch, so every worker and tab moves again."
    ),
    "watch": (
        "Print each bump as it happens (Ctrl-C stops). The current release comes first. "
        "Before any bump that is 'no release yet' (on stderr with --json, whose stdout holds "
        "only releases). A store that cannot be read at the start is an error (exit 1); a "
        "later outage is retried."
    ),
    "status": (
        "Show the fleet table: builds, live/stale, websockets left. It is read from the "
        "heartbeats every process writes to the store (Redis or file store)."
    ),
    "assets": (
        "Publish a frontend build into the web directory so that open tabs keep their own "
        "assets through a deploy (replaces rsync --delete; docs/deploy-haproxy.md)."
    ),
    "assets publish": (
        "Copy BUILD_DIR into WEB_DIR: new files first, each written atomically, the HTML "
        "shells last; record which files this release owns; delete only the files that no "
        "release among the last --keep, nor any replaced less than --min-age ago, owns. "
        "Publishing the same build again writes nothing. The store is not used."
    ),
    "assets list": "Show the releases whose assets WEB_DIR keeps, newest first, and their size.",
    "agent": (
        "Serve HAProxy's agent-check for a build. Its processes are reported ready while "
        "the build is live and drain once a bump made it stale (docs/deploy-haproxy.md)."
    ),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line and exit 2, like every other bad input (argparse prints usage too).
        self.exit(2, f"{self.prog}: error: {message}\n")


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


def _port(value: str) -> int:
    # bind() accepts 0-65535, and 0 would pick a random port HAProxy cannot be told.
    if value.isdigit() and 1 <= int(value) <= 65535:
        return int(value)
    raise argparse.ArgumentTypeError(f"expected a TCP port 1-65535, not {value!r}")


def _not_empty(value: str) -> str:
    # An empty --url or --app is an unset shell variable (--url "$URL"), not a request
    # for the defaults. Empty environment variables count as unset (README, "The CLI").
    if value:
        return value
    raise argparse.ArgumentTypeError("must not be empty (leave the option out for the default)")


def _age(value: str) -> float:
    try:
        return parse_age(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if number >= 0 and number != float("inf"):
        return number
    raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, not {value!r}")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command (see `DESCRIPTIONS`)."""
    # SUPPRESS keeps a subcommand's copy of a global option from overwriting a value
    # given before the command; `parse_args` fills in the defaults afterwards.
    common = _Parser(add_help=False)
    common.add_argument(
        "--url", type=_not_empty, default=argparse.SUPPRESS, help="store URL (env SPA_VERSION_URL)"
    )
    common.add_argument(
        "--app", type=_not_empty, default=argparse.SUPPRESS, help="app namespace (env SPA_VERSION_APP)"
    )
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")

    parser = _Parser(
        prog=PROG, description="Publish and inspect deploy versions for open SPA tabs.", parents=[common]
    )
    # The installed distribution's version, which the build reads from spa_version.__version__
    # (pyproject.toml): the package itself is a layer above (docs/architecture.md, "Layers").
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('spa-version')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[common], help=help, description=DESCRIPTIONS[name])

    bump = command("bump", "publish a new release (run after a deploy)")
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
        "--cutoff",
        action="store_true",
        help="a security release: old builds answer old clients and pinned requests with 409 "
        "(reload) and close their websockets and streams at once",
    )
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
    bump.add_argument(
        "--timeout", type=_positive_float, metavar="S", help="for --wait or --wait-pinned (300)"
    )

    command("get", "print the current release")

    history = command("history", "print past releases, newest first")
    history.add_argument(
        "--limit", type=_positive_int, default=20, help="how many releases to print (default: %(default)s)"
    )

    rollback = command("rollback", "bump back to an earlier release")
    rollback.add_argument("--to", type=_positive_int, metavar="EPOCH", help="default: the previous release")

    command("watch", "print each bump as it happens (Ctrl-C stops)")

    command("status", "fleet table: builds, live/stale, websockets left")

    agent = command("agent", "serve HAProxy's agent-check for a build")
    agent.add_argument("--port", type=_port, required=True, help="TCP port for agent-port (1-65535)")
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

    assets = command("assets", "publish a frontend build, keeping old releases' assets")
    actions = assets.add_subparsers(
        dest="assets_command", required=True, metavar="ACTION", parser_class=_Parser
    )
    publish = actions.add_parser(
        "publish",
        parents=[common],
        help="publish BUILD_DIR into WEB_DIR",
        description=DESCRIPTIONS["assets publish"],
    )
    publish.add_argument("build_dir", metavar="BUILD_DIR", help="the new build (e.g. dist/)")
    publish.add_argument("web_dir", metavar="WEB_DIR", help="the directory the web server serves")
    publish.add_argument(
        "--keep", type=_positive_int, default=5, metavar="N", help="keep the last N releases' files (5)"
    )
    publish.add_argument(
        "--min-age",
        type=_age,
        default=86400.0,
        metavar="T",
        help="and any release replaced, or file written, less than T ago: 90s, 15m, 12h, 7d (1d)",
    )
    publish.add_argument(
        "--release", metavar="NAME", help="release name (default: a hash of the build's content)"
    )
    publish.add_argument("--dry-run", action="store_true", help="say what would change; change nothing")
    publish.add_argument(
        "--lock-timeout",
        type=_positive_float,
        default=300.0,
        metavar="S",
        help="wait S s for another publish (300)",
    )
    listing = actions.add_parser(
        "list",
        parents=[common],
        help="releases kept in WEB_DIR and their size",
        description=DESCRIPTIONS["assets list"],
    )
    listing.add_argument("web_dir", metavar="WEB_DIR", help="the directory the web server serves")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The parsed command line; ``url``, ``app`` (None: the environment's) and ``json``
    are always set. Bad usage prints one line and exits 2 (``SystemExit``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "bump":
        if args.timeout is None:
            args.timeout = 300.0
        elif not (args.wait or args.wait_pinned):
            # Accepted silently, it would let a script believe it waited.
            parser.error("bump: --timeout applies to --wait or --wait-pinned; give one of them")
    if args.command == "assets":
        args.command = f"assets {args.assets_command}"
    for name, default in (("url", None), ("app", None), ("json", False)):
        if not hasattr(args, name):
            setattr(args, name, default)
    return args
