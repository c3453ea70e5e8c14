"""Following one store on one event loop: the listener task and the deploy switch beside it.

Both middlewares run one through their `spa_version.host.Host` (`Host.follow`): the
ASGI `spa_version.VersionMiddleware` (one per lifespan, or from the first request when
the server sends none) and Django's listener thread (`spa_version.django.listener_thread`,
for the host of the settings). The order lives here:
the `spa_version.deploy.Deployment` stops first, while the store is still open (its
last heartbeat and the removal of its fleet record need it), then the listener is
cancelled and awaited, then the store is closed if the follower owns it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from .deploy import Deployment
from .listener import Listener
from .options import Options
from .stores.base import Store

__all__ = ["Follower"]

logger = logging.getLogger("spa_version")


class Follower:
    """Feeds the version *deployment* serves from *store* (a `Listener`), and runs
    *deployment* beside it.

    *options* gives the listener's ``resync_interval`` and ``reconnect_max_delay``; with
    *owns_store*, `stop` closes the store too.
    """

    def __init__(self, store: Store, deployment: Deployment, options: Options, *, owns_store: bool) -> None:
        self.store = store
        self.deployment = deployment
        self.owns_store = owns_store
        self.listener = Listener(
            store,
            deployment.current,
            resync_interval=options.resync_interval,
            backoff_cap=options.reconnect_max_delay,
        )
        #: The listener's task, from `start` on (done once `stop` returned).
        self.task: asyncio.Task[None] | None = None

    def start(self, on_synced: Callable[[], None] | None = None) -> None:
        """Start the listener and the deployment on the running event loop.

        *on_synced* is called on the loop once the store has been read (even if empty),
        for hosts that wait on another thread (Django's requests).
        """
        loop = asyncio.get_running_loop()
        self.task = loop.create_task(self._run(on_synced), name="spa-version listener")
        self.deployment.start(self.store, self.listener.synced.is_set)

    async def _run(self, on_synced: Callable[[], None] | None) -> None:
        if on_synced is None:
            await self.listener.run()
            return

        async def mark_synced() -> None:
            await self.listener.synced.wait()
            on_synced()

        marker = asyncio.create_task(mark_synced())
        try:
            await self.listener.run()
        except GeneratorExit:
            # Closed by the garbage collector, not cancelled: the event loop is gone,
            # so await nothing.
            marker.cancel()
            raise
        except BaseException:
            marker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await marker
            raise

    async def wait_synced(self, timeout: float) -> bool:
        """Wait up to *timeout* seconds for the first read of the store; whether it came."""
        try:
            await asyncio.wait_for(self.listener.synced.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """Stop the deployment, cancel and await the listener, close the store if owned.

        The store is closed even when this is cancelled part way (a loop shutting down
        cancels what still runs): a connection left open would outlive its event loop.
        """
        try:
            await self.deployment.stop()
        finally:
            task = self.task
            try:
                if task is not None and not task.done():
                    task.cancel()
                    try:
                        await task
                    except asyncio.CancelledError:
                        # The listener's own cancellation ends here; one of this task
                        # (`Task.cancelling`) goes on.
                        current = asyncio.current_task()
                        if current is not None and current.cancelling():
                            raise
            finally:
                if self.owns_store:
                    try:
                        await self.store.aclose()
                    except Exception:  # pragma: no cover - closing is best effort
                        logger.exception("spa-version: closing store %s failed", self.store.display_url)
