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
from .base import HISTORY_LIMIT, BumpResult, MinCompatible, OnRelease, Store, check_min_compatible


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

    async def _bump(self, fields: dict[str, object], min_compatible: MinCompatible) -> BumpResult:
        shelf = self._shelf
        with shelf.lock:
            epoch = shelf.epoch + 1
            release = Release.from_dict(
                {**fields, "epoch": epoch, "min_compatible": check_min_compatible(min_compatible, epoch)}
            )
            shelf.epoch = epoch
            shelf.history = [release, *shelf.history[: HISTORY_LIMIT - 1]]
            listeners = list(shelf.listeners)
        # Listeners only swap a reference (`CurrentVersion.offer`), so calling them from
        # the bumping thread is safe.
        for listener in listeners:
            listener(release, False)
        return BumpResult(release, len(listeners))

    async def listen(self, on_release: OnRelease, resync_interval: float) -> NoReturn:
        shelf = self._shelf
        with shelf.lock:
            shelf.listeners.add(on_release)
        try:
            while True:
                on_release(await self.get(), True)
                await asyncio.sleep(resync_interval)
        finally:
            with shelf.lock:
                shelf.listeners.discard(on_release)
