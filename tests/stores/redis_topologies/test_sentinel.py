"""``redis+sentinel://`` with a real redis-sentinel, one replica and a forced failover
(docs/redis.md, "Sentinel")."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
import redis as sync_redis

from spa_version.stores import StoreError, open_store
from tests.support.epochs import bumped_epoch
from tests.support.redis_faults import PING_INTERVAL, PING_TIMEOUT, RESYNC, SLACK, Traffic, serve
from tests.support.redis_topologies import SentinelSetup, sentinel_setup
from tests.support.servers import run_cli, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def sentinel() -> Iterator[SentinelSetup]:
    with sentinel_setup() as setup:
        yield setup


class Bumper:
    """Bumps through the Sentinel URL from its own thread and event loop, as a deploy job would."""

    def __init__(self, url: str, app: str) -> None:
        self.url = url
        self.app = app
        self.done: list[tuple[int, str]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="bumper", daemon=True)

    def __enter__(self) -> Bumper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), "bumper did not stop"

    async def _run(self) -> None:
        store = open_store(self.url, app=self.app)
        try:
            for n in range(600):  # bounded: at most 600 bumps, ~10/s
                if self._stop.is_set():
                    return
                try:
                    result = await store.bump(f"sentinel-{n}")
                    self.done.append((result.release.epoch, result.release.label))
                except StoreError as exc:  # a bump in flight during the switch may fail
                    self.errors.append(str(exc))
                await asyncio.sleep(0.1)  # pacing between deploys, not synchronisation
        finally:
            await store.aclose()


def test_bumps_keep_reaching_the_app_through_a_sentinel_failover(
    sentinel: SentinelSetup, app_name: str
) -> None:
    """SENTINEL FAILOVER while bumps keep coming: the app follows the new master, 0 failed requests."""
    url = sentinel.url(ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT, socket_timeout=2)
    env = {"SPA_VERSION_URL": url, "SPA_VERSION_APP": app_name}
    first = bumped_epoch(run_cli("bump", "--json", "before-failover", env=env))
    old_master = sentinel.master_port()
    assert old_master == sentinel.master.port
    with serve(url, app_name) as (middleware, server), Traffic(server.url) as traffic:
        traffic.wait_for_epoch(first, timeout=10)
        with Bumper(url, app_name) as bumper:
            wait_for(lambda: len(bumper.done) >= 5, timeout=20)
            traffic.wait_for_epoch(bumper.done[4][0], timeout=RESYNC + SLACK)
            sentinel.failover()
            wait_for(lambda: sentinel.master_port() == sentinel.replica.port, timeout=30, interval=0.1)
            switched = len(bumper.done)
            # Bumps made on the new master keep reaching the app.
            wait_for(lambda: len(bumper.done) >= switched + 10, timeout=30)
        last_epoch, last_label = bumper.done[-1]
        traffic.wait_for_epoch(last_epoch, timeout=RESYNC + SLACK)
        assert traffic.seen[-1] is not None and f"label={last_label};" in traffic.seen[-1]
        served = sorted({int(v.split(";")[0]) for v in traffic.seen if v is not None})
        after_switch = {epoch for epoch, _ in bumper.done[switched:]}
        assert len(after_switch & set(served)) >= 2, (served, after_switch)
        # The listener now subscribes on the new master (not through the demoted one).
        new_master = sync_redis.Redis(port=sentinel.replica.port, decode_responses=True)
        try:
            wait_for(lambda: any(c["flags"] == "P" for c in new_master.client_list()), timeout=RESYNC + SLACK)
        finally:
            new_master.close()
        assert traffic.failures == []
        assert middleware.running
    assert bumper.errors == [] or all("Redis" in e or "master" in e for e in bumper.errors), bumper.errors[:3]
