"""`Host`: what one process needs to serve one configuration, built in one place.

Both middlewares host the same bundle, built from `spa_version.options.Options`: the
`spa_version.current.CurrentVersion` requests read (with the configured fallback), the
`spa_version.responses.Responses` they answer with, the process's
`spa_version.deploy.Deployment`, and, once started, the `spa_version.follower.Follower`
that keeps the version fresh from the store. The ASGI `spa_version.VersionMiddleware`
owns one and starts its follower on the serving event loop (lifespan, or the first
request); Django keeps one per ``SPA_VERSION`` settings object
(`spa_version.django.conf.settings_host`) and follows it on its listener thread
(`spa_version.django.listener_thread`), or shares the one of the ASGI wrapper
(`spa_version.django.asgi.wrap_asgi`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .current import CurrentVersion
from .deploy import Deployment
from .follower import Follower
from .options import Options
from .responses import Responses
from .stores.base import Store

__all__ = ["Host"]

logger = logging.getLogger("spa_version")


class Host:
    """One process's bundle for *options*: version, answers, deploy switch and follower.

    Building it does no I/O; `follow` opens the store (the only place a host does).
    """

    __slots__ = (
        "options",
        "current",
        "responses",
        "own_paths",
        "deployment",
        "follower",
        "synced",
        "ready",
        "_open_failed",
    )

    def __init__(self, options: Options) -> None:
        self.options = options
        self.current = CurrentVersion(options.header_name, options.slot, deployed=options.deploy.build)
        if options.fallback is not None:
            self.current.offer_fallback(options.fallback)
        self.responses = Responses(options)
        #: The paths the middlewares answer themselves (endpoint, script; None: off).
        self.own_paths = (options.endpoint, options.script_path)
        self.deployment = Deployment(self.current, options.deploy, client_header=options.client_header)
        #: Following the store, from `follow` until `unfollow` (None: not following).
        self.follower: Follower | None = None
        #: Set, from the following event loop, once the store has been read (even if empty).
        self.synced = threading.Event()
        #: Whether requests read `current` without waiting for the first read (set by the
        #: host that waits: `spa_version.django.listener_thread`).
        self.ready = False
        self._open_failed = False  # logged once (`follow`)

    @property
    def owns_store(self) -> bool:
        """Whether the store is opened from a URL here (and closed by `unfollow`), not given."""
        return not isinstance(self.options.store, Store)

    def follow(self, on_synced: Callable[[], None] | None = None) -> Follower | None:
        """Open the store and start following it, and the deploy switch, on the running loop.

        *on_synced* is called on the loop after the first read of the store (after
        `synced` is set). Returns the `Follower`, or None when the store could not be
        opened: logged once, and requests are served as before, without a new version
        (docs/redis.md: a store failure never turns into a 5xx). The options were
        validated, so this takes a fault in the store's own code; calling again retries.
        """
        try:
            store = self.options.open_store()
        except Exception:
            if not self._open_failed:
                self._open_failed = True
                logger.exception("spa-version: cannot open the store; serving without it")
            return None
        follower = Follower(store, self.deployment, self.options, owns_store=self.owns_store)
        self.follower = follower
        synced = self.synced

        def mark_synced() -> None:
            synced.set()
            if on_synced is not None:
                on_synced()

        follower.start(mark_synced)
        return follower

    async def unfollow(self) -> None:
        """Stop the deploy switch (its fleet record removed), the listener, and the store
        if it was opened here (`spa_version.follower.Follower.stop`). Idempotent."""
        follower, self.follower = self.follower, None
        if follower is not None:
            await follower.stop()
