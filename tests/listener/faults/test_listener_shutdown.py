"""The listener stops promptly when cancelled, whatever it was doing (docs/architecture.md)."""

from __future__ import annotations

import asyncio

import pytest

from spa_version.release import Release
from spa_version.stores import parse_url
from spa_version.stores.redis import RedisStore
from tests.support.servers import RedisServer, async_wait_for

pytestmark = [pytest.mark.redis]


@pytest.mark.parametrize("after", ["subscribe", "message"])
async def test_cancelled_listener_stops_at_once(redis: RedisServer, app_name: str, after: str) -> None:
    """Cancelling `listen` when idle after subscribing, or after a pub/sub message, ends it within seconds."""
    reader = RedisStore(parse_url(redis.url), app=app_name)
    seen: list[tuple[Release | None, bool]] = []
    task = asyncio.create_task(reader.listen(lambda release, resync: seen.append((release, resync)), 30))
    try:
        await async_wait_for(lambda: seen, timeout=10)  # subscribed and read once
        if after == "message":
            writer = RedisStore(parse_url(redis.url), app=app_name)  # a deploy job sharing the loop
            await writer.bump("v1")
            await writer.aclose()
            await async_wait_for(lambda: any(not resync for _, resync in seen), timeout=10)
        # The scenario, not a synchronisation: the listener sits idle for over one poll (1 s).
        await asyncio.sleep(1.2)
        task.cancel()
        # A bound, not a sleep: a listener that swallows the cancellation never finishes.
        done, _ = await asyncio.wait({task}, timeout=5)
        assert done, "the listener did not stop when cancelled"
        assert task.cancelled()
    finally:
        await reader.aclose()
