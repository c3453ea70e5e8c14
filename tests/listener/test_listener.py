"""The supervised listener: it logs, backs off with capped full jitter, and never dies silently."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import NoReturn

import pytest

from spa_version.current import CurrentVersion, Snapshot
from spa_version.listener import Listener
from spa_version.release import Release
from spa_version.stores import Store, StoreError, StoreUnavailable
from spa_version.stores.base import BumpResult, MinCompatible, OnRelease
from tests.support.servers import async_wait_for


class FlakyStore(Store):
    """A store whose listen() fails with the given errors, then serves a release."""

    def __init__(self, errors: list[Exception]) -> None:
        self.app = "flaky"
        self.display_url = "flaky://"
        self.errors = errors
        self.calls = 0

    async def get(self) -> Release | None:
        return Release(1, "v1")

    async def history(self, limit: int = 50) -> list[Release]:
        return [Release(1, "v1")]

    async def _bump(self, fields: dict[str, object], min_compatible: MinCompatible) -> BumpResult:
        raise NotImplementedError

    async def listen(self, on_release: OnRelease, resync_interval: float) -> NoReturn:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        on_release(await self.get(), True)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_listener_survives_every_kind_of_error(caplog: pytest.LogCaptureFixture) -> None:
    """Unavailable, refused and unexpected errors are each logged and retried; the listener keeps going."""
    caplog.set_level(logging.INFO, "spa_version")
    store = FlakyStore(
        [StoreUnavailable("down"), StoreError("NOPERM"), KeyError("bug"), StoreUnavailable("again")]
    )
    current = CurrentVersion("X-SPA-Version")
    listener = Listener(store, current, backoff_base=0.001, backoff_cap=0.01)
    task = asyncio.create_task(listener.run())
    try:
        await async_wait_for(lambda: current.release is not None, timeout=5)
        assert store.calls == 5
        assert not task.done()
        messages = [(r.levelname, r.getMessage(), bool(r.exc_info)) for r in caplog.records]
        assert any(level == "WARNING" and "down" in msg and not tb for level, msg, tb in messages)
        # A refusal (ACL) is an ERROR without a traceback; a bug gets its traceback.
        assert any(level == "ERROR" and "NOPERM" in msg and not tb for level, msg, tb in messages)
        assert any(level == "ERROR" and "bug" in msg and tb for level, msg, tb in messages)
        assert any("reachable again" in msg for _, msg, _ in messages)
        assert any("following store flaky://" in msg for _, msg, _ in messages)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_backoff_is_capped_full_jitter() -> None:
    """Delays are uniform in [0, min(cap, base * 2**failures)]: spread out, never above the cap."""
    listener = Listener(FlakyStore([]), CurrentVersion("X-SPA-Version"), backoff_base=0.5, backoff_cap=8.0)
    for failures, bound in [(0, 0.5), (1, 1.0), (3, 4.0), (4, 8.0), (10, 8.0), (10_000, 8.0)]:
        listener.failures = failures
        delays = [listener.backoff_delay() for _ in range(400)]
        assert all(0 <= d <= bound for d in delays)
        assert max(delays) > bound * 0.8  # jitter spans the range...
        assert min(delays) < bound * 0.2  # ...from near zero (full jitter)


async def test_offer_only_moves_forward() -> None:
    """A late notification for an older epoch never replaces a newer one."""
    current = CurrentVersion("X-SPA-Version")
    assert current.offer(Release(2, "v2"))
    assert not current.offer(Release(1, "v1"))
    assert not current.offer(Release(2, "v2"))
    assert current.release == Release(2, "v2")
    assert current.snapshot.header == (b"x-spa-version", b"2; label=v2; policy=next-navigation")


def test_a_watcher_is_told_every_snapshot_in_order(caplog: pytest.LogCaptureFixture) -> None:
    """`CurrentVersion.watch`: the current snapshot at once, then each replacement (the
    unreleased value, a release, a rollback), none for an offer not taken; a watcher
    that raises is logged and neither stops the version nor the other watchers."""
    current = CurrentVersion("X-SPA-Version")
    seen: list[Snapshot] = []

    def broken(snapshot: Snapshot) -> None:
        if snapshot.release is not None:
            raise RuntimeError("a broken watcher")

    current.watch(broken)
    current.watch(seen.append)
    assert seen == [current.snapshot]
    assert current.offer_unreleased()
    assert current.offer(Release(2, "v2"))
    assert not current.offer(Release(1, "v1"))
    assert current.offer(Release(1, "v1"), force=True)
    labels = [None if s.header is None else s.header[1].split(b";")[0] for s in seen]
    assert labels == [None, b"0", b"2", b"1"]
    assert seen[-1] is current.snapshot
    assert "a snapshot watcher failed" in caplog.text
    current.unwatch(seen.append)
    assert current.offer(Release(3, "v3"))
    assert len(seen) == 4


def test_the_last_call_of_a_watcher_is_the_current_snapshot() -> None:
    """Offers from several threads at once: the watcher's calls come in the order the
    snapshots were taken, so what it saw last is what requests read."""
    current = CurrentVersion("X-SPA-Version")
    seen: list[Snapshot] = []
    current.watch(seen.append)

    def offer(start: int) -> None:
        for epoch in range(start, 400, 4):
            current.offer(Release(epoch, f"v{epoch}"))

    threads = [threading.Thread(target=offer, args=(start,)) for start in (1, 2, 3, 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen[-1] is current.snapshot
    epochs = [s.release.epoch for s in seen[1:] if s.release is not None]
    assert epochs == sorted(epochs) and epochs[-1] == current.snapshot.release.epoch  # type: ignore[union-attr]


async def test_recovery_from_a_refusal_is_not_called_reachable_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The "reachable again" line follows an outage only; after an ACL refusal it is noise."""
    caplog.set_level(logging.INFO, "spa_version")
    store = FlakyStore([StoreError("NOPERM this user has no permissions")])
    current = CurrentVersion("X-SPA-Version")
    task = asyncio.create_task(Listener(store, current, backoff_base=0.001).run())
    try:
        await async_wait_for(lambda: current.release is not None, timeout=5)
        assert "NOPERM" in caplog.text and "reachable again" not in caplog.text
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
