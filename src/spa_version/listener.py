"""The supervised background listener that keeps a `CurrentVersion` up to date.

One per event loop (per worker). It asks the store to follow the current release
(`Store.listen`: subscribe, re-read after every (re)subscribe, resync periodically),
and whenever that fails it logs why, waits with capped full-jitter backoff, and
tries again. It never dies silently: only cancellation stops it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

from .current import CurrentVersion
from .release import Release
from .stores.base import Store, StoreError, StoreUnavailable

__all__ = ["Listener"]

logger = logging.getLogger("spa_version")

#: A `Store.listen` call that lasted this long counts as a healthy connection, so the
#: next failure starts the backoff from the beginning again.
_HEALTHY_AFTER = 10.0


class Listener:
    """Follows *store* and feeds each release to *current*.

    Each failure is logged in a worker's words ("serving epoch N"), unless *on_error* is
    given: then it is called with the error and the delay before the next try instead
    (``spa-version watch`` says it in its own words).
    """

    def __init__(
        self,
        store: Store,
        current: CurrentVersion,
        *,
        resync_interval: float = 30.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        on_error: Callable[[Exception, float], None] | None = None,
    ) -> None:
        self.store = store
        self.current = current
        self.resync_interval = resync_interval
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.on_error = on_error
        #: Set once the store has been read successfully (even if it was empty).
        self.synced = asyncio.Event()
        #: How many times in a row `Store.listen` has failed.
        self.failures = 0
        self.last_error: str | None = None
        self._confirming: asyncio.Task[None] | None = None
        self._unreachable = False

    def _on_release(self, release: Release | None, resync: bool) -> None:
        self.synced.set()
        if self.last_error is not None:
            # Only after an outage: a refusal (e.g. an ACL that allows reading the key
            # but not subscribing) reads fine right before failing again, and saying
            # "reachable again" each time would only be noise.
            if self._unreachable:
                logger.info("spa-version: store %s is reachable again", self.store.display_url)
            self.last_error = None
            self._unreachable = False
        if release is None:
            # No bump yet: stamp the unreleased value (docs/protocol.md, "Before the first
            # release"). An empty store (restarted without persistence, flushed): keep
            # serving what we hold. The next bump's epoch exceeds it ("Epochs").
            self.current.offer_unreleased()
            return
        if self.current.offer(release) or not resync:
            # A notification that is not newer is a late or duplicate message: never
            # step back on one.
            return
        held = self.current.release
        if held is not None and release != held:
            self._confirm(release, held)

    def _confirm(self, seen: Release, held: Release) -> None:
        """Follow *seen*, a re-read that differs from *held*, if a second read agrees.

        A re-read that differs from what this worker serves, with an epoch that is not
        newer, means the store lost or rewound its data (a Redis restarted empty or from
        an old snapshot, a failover to a replica that missed a bump, a deleted file
        store), and the store is the truth. But one read can also race a bump whose
        notification arrived while it was on the wire; a second read started now sees
        that bump. So read once more at once, and follow if nothing newer came meanwhile.
        """
        if self._confirming is not None and not self._confirming.done():
            return
        self._confirming = asyncio.get_running_loop().create_task(
            self._follow_if_confirmed(seen, held), name="spa-version confirm re-read"
        )

    async def _follow_if_confirmed(self, seen: Release, held: Release) -> None:
        try:
            again = await self.store.get()
        except Exception as exc:  # the listener's own loop reports store trouble
            logger.debug("spa-version: confirming re-read failed: %s", exc)
            return
        if again != seen or self.current.release is not held:
            return  # the store moved on, or a newer release arrived meanwhile
        logger.warning(
            "spa-version: the store's current release (%s) differs from the one served here (%s); "
            "was the store reset or restored? Following the store.",
            _describe(seen),
            _describe(held),
        )
        self.current.offer(seen, force=True)

    def backoff_delay(self) -> float:
        """Full jitter: uniform between 0 and the capped exponential bound.

        The cap never exceeds ``resync_interval``: that is the staleness bound the
        operator chose, and a bump made while the store was unreachable must be
        served within it once the store is back.
        """
        cap = min(self.backoff_cap, self.resync_interval)
        bound = min(cap, self.backoff_base * 2 ** min(self.failures, 16))
        return random.uniform(0, bound)

    async def run(self) -> None:
        """Follow the store until cancelled."""
        logger.info("spa-version: following store %s (app %s)", self.store.display_url, self.store.app)
        try:
            await self._follow()
        finally:
            if self._confirming is not None:
                self._confirming.cancel()

    async def _follow(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.store.listen(self._on_release, self.resync_interval)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if time.monotonic() - started > _HEALTHY_AFTER:
                    self.failures = 0
                delay = self.backoff_delay()
                self.failures += 1
                self.last_error = str(exc) or type(exc).__name__
                self._unreachable = isinstance(exc, StoreUnavailable)
                if self.on_error is not None:
                    self.on_error(exc, delay)
                else:
                    logger.log(
                        logging.WARNING if isinstance(exc, StoreUnavailable) else logging.ERROR,
                        "spa-version: listener error (%s); serving epoch %s; retrying in %.1f s",
                        self.last_error,
                        getattr(self.current.release, "epoch", "none"),
                        delay,
                        # A traceback only for the unexpected; store errors explain themselves.
                        exc_info=not isinstance(exc, StoreError),
                    )
                await asyncio.sleep(delay)


def _describe(release: Release) -> str:
    return f"epoch {release.epoch}, label {release.label}"
