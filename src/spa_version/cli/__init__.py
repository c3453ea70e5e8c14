"""The ``spa-version`` command line: bump after a deploy, and look at releases.

`run` is the console script (and ``python -m spa_version``); `main` returns the exit
code instead. The arguments are parsed in `spa_version.cli.parser`, each command is one
coroutine in `spa_version.cli.commands`, and `spa_version.cli.status` draws ``status``
and ``bump --wait``.

Exit codes: 0 ok; 2 bad usage or bad input (the store is untouched; ``assets publish``:
nothing is written); 1 the store is unreachable, refused the operation, or holds data that
is not valid (nothing is written then), or this host's clock is past 2262 (checked when
`spa_version` is imported), or for ``assets``: the web directory's record is not valid,
another publish held the lock too long, or a file could not be written; 3 ``bump --wait``
timed out (the bump is done). A fleet record that does not validate changes no exit code:
it is skipped and reported in one line (`commands.BadRecords`).
Errors are one line, never a traceback.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import NoReturn

from ..publish import LockTimeout, RecordError
from ..release import InvalidRelease
from ..stores import REDIS_MISSING, StoreError
from .commands import COMMANDS, default_label
from .parser import PROG, parse_args

__all__ = ["default_label", "main", "run"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with *argv* (default: ``sys.argv[1:]``); return the exit code."""
    args = parse_args(argv)
    try:
        return asyncio.run(COMMANDS[args.command](args))
    except (InvalidRelease, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        # A Redis URL where redis-py is missing is a setup problem, like an ImportError.
        return 1 if REDIS_MISSING in str(exc) else 2
    except StoreError as exc:
        print(f"{PROG}: store error: {exc}", file=sys.stderr)
        return 1
    except (RecordError, LockTimeout) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except ImportError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. a disk that is full or read-only
        where = f": {exc.filename}" if exc.filename else ""
        print(f"{PROG}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


def run() -> NoReturn:
    """The console script: `main`, then exit with its code."""
    sys.exit(main())
