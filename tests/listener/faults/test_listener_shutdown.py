"""The listener stops promptly when cancelled, whatever it was doing (docs/architecture.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis as sync_redis

from spa_version.host import Host
from spa_version.options import Options
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


async def test_a_stop_cut_short_while_redis_hangs_still_closes_the_store(
    private_redis: RedisServer, admin: sync_redis.Redis, app_name: str
) -> None:
    """A follower's stop cancelled part way (a loop shutting down cancels what still runs)
    while Redis holds the fleet record's removal: the listener is still stopped and the
    store closed, so no connection to Redis outlives the event loop."""
    host = Host(Options.from_kwargs(store=private_redis.url, app_name=app_name, build="A"))
    follower = host.follow()
    assert follower is not None
    await async_wait_for(host.synced.is_set, timeout=10)
    own = admin.client_id()

    def others() -> list[dict[str, Any]]:
        return [c for c in admin.client_list() if int(c["id"]) != own]

    # The heartbeat has written the record, so stopping has one to remove.
    await async_wait_for(lambda: admin.keys(f"spa-version:{{{app_name}}}:proc:*"), timeout=10)
    admin.client_pause(30_000, all=False)  # WRITE: every write waits, the record's removal too
    try:
        stopping = asyncio.create_task(host.unfollow())
        await async_wait_for(
            lambda: any("b" in c["flags"] for c in others()),  # "b": blocked (CLIENT LIST)
            timeout=10,
            message=lambda: f"no write held by the pause: {others()}",
        )
        stopping.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stopping
        assert follower.task is not None and follower.task.done()
        await async_wait_for(
            lambda: others() == [], timeout=10, message=lambda: f"still connected: {others()}"
        )
    finally:
        admin.client_unpause()
