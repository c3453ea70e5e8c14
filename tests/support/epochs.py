"""Epochs in tests: read them from what a bump returned, or freeze a store's clock on purpose.

A bump's epoch is max(stored counter + 1, the clock in Unix milliseconds, a fleet floor)
(`spa_version.stores.base.Store.bump`), so tests never assume 1, 2, 3: they read the epoch
from the bump (`bumped_epoch` for the CLI) and compare with < / >. A test that needs
to see the counter itself (atomic increments, a refused bump that consumed nothing)
freezes the store's clock ahead of real time: the first bump then gets exactly the
frozen value, and each later one the counter + 1.
"""

from __future__ import annotations

import json
import subprocess

from spa_version.stores import Store
from spa_version.stores.base import clock_epoch

#: How far ahead `freeze_clock` sets the clock: about 11.6 days, so neither this host's
#: clock nor Redis's own TIME (also in ms, `RedisStore`) can overtake it during a test.
AHEAD_MS = 10**9


def freeze_clock(store: Store) -> int:
    """Make *store*'s bumps floor their epoch at a fixed moment ahead of now; return it."""
    frozen = clock_epoch() + AHEAD_MS
    store.clock = lambda: frozen
    return frozen


def bumped_epoch(done: subprocess.CompletedProcess[str]) -> int:
    """The epoch a finished ``spa-version bump --json`` (or ``rollback --json``) run reports."""
    assert done.returncode == 0, done.stderr
    return int(json.loads(done.stdout)["epoch"])
