"""``memory://[NAME]``: releases kept in this process only.

A product feature for single-process apps and for code that bumps from inside the
app (``await store.bump(...)``). Every `MemoryStore` opened with the same name and
app in one process shares the same data, so the middleware and your code agree.
The CLI cannot reach it: it runs in another process.
"""

from __future__ import annotations

import asyncio
import threading
from typing import NoReturn

from ..release import Release
from .base import HISTORY_LIMIT, BumpResult, MinCompatible, OnRelease, Store, check_min_compatible, next_epoch


class _Shelf:
    """The shared data for one (name, app)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.epoch = 0
        self.history: list[Release] = []
        self.listeners: set[OnRelease] = set()


_shelves: dict[tuple[str, str], _Shelf] = {}
_shelves_lock = threading.Lock()


class MemoryStore(Store):
    """Releases in this process's memory, shared by name."""

    def __init__(self, name: str = "", *, app: str) -> None:
        self.app = app
        self.display_url = f"memory://{name}"
        with _shelves_lock:
            self._shelf = _shelves.setdefault((name, app), _Shelf())

    async def get(self) -> Release | None:
        history = self._shelf.history
        return history[0] if history else None

    async def history(self, limit: int = HISTORY_LIMIT) -> list[Release]:
        return list(self._shelf.history[:limit])

    async def _bump(self, fields: dict[str, object], min_compatible: MinCompatible, floor: int) -> BumpResult:
        shelf = self._shelf
        with shelf.lock:
            epoch = next_epoch(shelf.epoch, floor)
            release = Release.from_dict(
                {**fields, "epoch": epoch, "min_compatible": check_min_compatible(min_compatible, epoch)}
            )
            shelf.epoch = epoch
            shelf.history = [release, *shelf.history[: HISTORY_LIMIT - 1]]
            listeners = list(shelf.listeners)
        for listener in listeners:
            listener(release, False)
        return BumpResult(release, len(listeners))

    async def listen(self, on_release: OnRelease, resync_interval: float) -> NoReturn:
        shelf = self._shelf
        loop = asyncio.get_running_loop()
        home = threading.get_ident()

        def deliver(release: Release | None, resync: bool) -> None:
            # A bump from this loop's thread is delivered at once (the next response
            # has it); from any other thread it is handed to the listener's loop, since
            # on_release touches loop-bound state (the listener's asyncio.Event).
            if threading.get_ident() == home:
                on_release(release, resync)
            else:
                loop.call_soon_threadsafe(on_release, release, resync)

        with shelf.lock:
            shelf.listeners.add(deliver)
        try:
            while True:
                on_release(await self.get(), True)
                await asyncio.sleep(resync_interval)
        finally:
            with shelf.lock:
                shelf.listeners.discard(deliver)
