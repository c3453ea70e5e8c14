"""Build identity: is this process's build the one that is live right now?

A process may declare the build it runs (the ``build`` option, `spa_version.options`),
the label it was deployed with. Compared with the current release's label, it is in
one of three states:

- ``live``: its build is the current label (or no release exists yet, or it declared
  no build at all: then nothing of the deploy switch kicks in).
- ``pending``: a new build deployed but not bumped to yet (blue/green: green before
  ``spa-version bump``). It takes no new balanced traffic (the agent says ``drain``),
  but it drains nothing either: it was never live.
- ``stale``: it was live, and a bump moved to another label. Its websockets are
  drained, new handshakes are refused, and the agent says ``drain``.

A rollback to the build makes it live again.

One rule decides what a stale build still accepts: for ``handover`` seconds after it
went stale it still *announces* itself live (`Liveness.announced`), so the agent keeps
saying ``up ready`` and new websockets are still accepted while the balancer learns of
the bump (docs/deploy-haproxy.md, "The agent"). The agent and the drain both ask it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..current import CurrentVersion, Snapshot
from ..release import Release

__all__ = ["LIVE", "PENDING", "STALE", "Liveness"]

logger = logging.getLogger("spa_version")

LIVE = "live"
PENDING = "pending"
STALE = "stale"

#: ``callback(old_state, new_state, release)``, called from whichever thread offered
#: the release to `CurrentVersion`.
StateCallback = Callable[[str, str, "Release | None"], None]


class Liveness:
    """Follows a `CurrentVersion` and keeps this process's state (`LIVE`, `PENDING`, `STALE`).

    *handover* is in seconds (>= 0): how long a stale build still announces itself live.
    """

    def __init__(self, build: str, current: CurrentVersion, *, handover: float = 0.0) -> None:
        self.build = build
        self.current = current
        self.handover = handover
        self._lock = threading.Lock()
        self._ever_live = False
        self._callbacks: list[StateCallback] = []
        self.state = LIVE
        #: `time.monotonic()` when the build went stale (None unless `STALE`).
        self.stale_since: float | None = None
        self._apply(current.release)
        current.add_observer(self._observe)

    @property
    def live(self) -> bool:
        return self.state == LIVE

    def stale_for(self) -> float:
        """Seconds since the build went stale (0 when it is not stale)."""
        since = self.stale_since
        return 0.0 if since is None or self.state != STALE else time.monotonic() - since

    def announced(self) -> str:
        """The state new traffic goes by: `STALE` reads `LIVE` until ``handover`` seconds passed.

        The agent answers by it and the drain refuses new websockets by it, so the balancer
        and the process never disagree about a build that is handing over.
        """
        state = self.state
        if state == STALE and self.stale_for() < self.handover:
            return LIVE
        return state

    def add_callback(self, callback: StateCallback) -> None:
        """Call ``callback(old_state, new_state, release)`` whenever the state changes."""
        self._callbacks.append(callback)

    def detach(self) -> None:
        """Stop following the `CurrentVersion`."""
        self.current.remove_observer(self._observe)

    def _observe(self, old: Snapshot, new: Snapshot) -> None:
        self._apply(new.release)

    def _apply(self, release: Release | None) -> None:
        with self._lock:
            before = self.state
            if release is None or release.label == self.build:
                after = LIVE
                # "No release yet" is live so that a first deploy serves traffic, but
                # it does not make a later bump to another label "stale": only having
                # been the current label does.
                self._ever_live = self._ever_live or release is not None
            else:
                after = STALE if self._ever_live else PENDING
            if after == STALE and before != STALE:
                self.stale_since = time.monotonic()
            elif after != STALE:
                self.stale_since = None
            self.state = after
        if after != before:
            logger.info(
                "spa-version: build %s is now %s (current label %s)",
                self.build,
                after,
                None if release is None else release.label,
            )
            for callback in list(self._callbacks):
                try:
                    callback(before, after, release)
                except Exception:
                    logger.exception("spa-version: a liveness callback failed")
