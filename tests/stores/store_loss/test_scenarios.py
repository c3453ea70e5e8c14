"""The store forgets, one more bump moves everything: real Redis, Sentinel, file store, 4 workers, Chromium.

Each scenario runs ``uvicorn --workers 4`` (tests/store_loss/app.py: the demo SPA, resync
interval `RESYNC`), opens a real Chromium tab on it, makes the store lose what it knew,
then runs one more ``spa-version bump --min-compatible current`` with the real CLI. Then
(docs/protocol.md, "Epochs"; docs/redis.md, "When Redis forgets"):

- the new epoch is greater than every epoch seen before the loss;
- every one of the 4 workers stamps it within the resync interval (plus scheduling slack);
- a request from the tab's old code is refused with 409, one from the new code is not;
- the tab, loaded before the loss, moves to the new release at its next route change.

Where the store rewinds to an older record (snapshot, failover), the workers first follow
it, each with one warning naming both records.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spa_version import parse_header
from spa_version.stores import open_store
from spa_version.stores.base import clock_epoch
from tests.support.browser import Tab
from tests.support.redis_topologies import SentinelSetup, sentinel_setup
from tests.support.servers import RedisServer, run_cli, wait_for
from tests.support.store_loss import (
    RESYNC,
    SLACK,
    WORKERS,
    Workers,
    cli_bump,
    fleet_epochs,
    get,
    post_notes,
)

pytestmark = [pytest.mark.redis, pytest.mark.browser, pytest.mark.slow]

#: The warning each worker logs once when it follows a store that went back.
FOLLOW_WARNING = "differs from the one served here"


@pytest.fixture
def workers_log(tmp_path: Path) -> Path:
    return tmp_path / "uvicorn.log"


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, to kill and restart (no persistence unless SAVE)."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.close()


def stop(workers: Workers | None) -> None:
    if workers is not None:
        workers.stop()


async def open_tab(context: Any, url: str, epoch: int) -> Tab:
    """A tab on the SPA, rendered with *epoch* as its baseline."""
    tab = Tab(await context.new_page())
    await tab.open(url + "/")
    assert await tab.baseline() == epoch
    await tab.mark()
    return tab


async def one_more_bump_moves_everything(
    workers: Workers, env: dict[str, str], tab: Tab, seen: list[int], label: str
) -> tuple[int, str]:
    """The checks every scenario ends with; returns (the new epoch, the CLI's stderr)."""
    release, stderr = await asyncio.to_thread(cli_bump, env, label, "--min-compatible", "current")
    epoch = int(release["epoch"])
    assert epoch > max(seen), (epoch, seen)
    assert release["min_compatible"] == epoch

    took = await asyncio.to_thread(workers.wait_all_serve, epoch, label, RESYNC + SLACK)
    assert took <= RESYNC + SLACK

    # min_compatible (every worker holds it now): the old code is refused, the new code is
    # not; a counter restarted at 1 would have turned this around.
    old = max(seen)
    for _ in range(2 * WORKERS):
        assert await asyncio.to_thread(post_notes, workers.url, old) == (409, "*")
    assert (await asyncio.to_thread(post_notes, workers.url, epoch))[0] == 200

    # The tab learns of the release from an AJAX response, and moves at its next route change.
    await tab.refresh(expect_epoch=epoch)
    assert await tab.same_document(), "learning of a release does not reload by itself"
    await tab.page.click("a[href='/about']")
    await tab.eventually(
        f"!window.__sameDocument && window.SpaVersion && SpaVersion.start().baseline === {epoch}"
    )
    assert tab.loads == [workers.url + "/", workers.url + "/about"]
    return epoch, stderr


def served(workers: Workers) -> set[tuple[int, str]]:
    """What the workers stamp right now, as seen by a few requests."""
    out = set()
    for _ in range(2 * WORKERS):
        _, header, _ = get(workers.url, "/__pid")
        if header is not None:
            parsed = parse_header(header)
            out.add((parsed.epoch, str(parsed.label)))
    return out


# -- Redis restarted empty ----------------------------------------------------------------


@pytest.mark.parametrize("deploy_host", ["synced", "ahead"])
async def test_redis_restarted_empty(
    private_redis: RedisServer, app_name: str, workers_log: Path, context: Any, deploy_host: str
) -> None:
    """Redis (no persistence) is killed and restarted empty; one more bump moves everything.

    ``synced``: the last bump before the loss came from a host with a correct clock, and
    the next bump follows the restart at once (the clock floor does it). ``ahead``: it
    came from a host whose clock ran an hour ahead, so the clock alone would mint an
    older epoch after the loss; the bump waits for the workers' heartbeats, and the fleet
    floor carries it (the CLI says so in one line).
    """
    env = {"SPA_VERSION_URL": private_redis.url, "SPA_VERSION_APP": app_name}
    seen = [int(cli_bump(env, "v1")[0]["epoch"])]
    workers: Workers | None = Workers(env, workers_log).start()
    try:
        assert workers is not None
        if deploy_host == "synced":
            release, _ = cli_bump(env, "v2")
            seen.append(int(release["epoch"]))
        else:
            store = open_store(private_redis.url, app=app_name)
            store.clock = lambda: clock_epoch() + 3_600_000
            try:
                seen.append((await store.bump("v2")).release.epoch)
            finally:
                await store.aclose()
        await asyncio.to_thread(workers.wait_all_serve, seen[-1], "v2", RESYNC + SLACK)
        tab = await open_tab(context, workers.url, seen[-1])

        private_redis.stop()  # kill -9: everything in memory is gone
        private_redis.start()  # --save '' --appendonly no: it comes back empty
        result = run_cli("get", env=env)
        assert result.returncode == 0 and "has no release" in result.stdout, result

        if deploy_host == "ahead":
            # The workers keep what they hold while the store reads empty, and say so in
            # their heartbeats, which the CLI reads for its floor.
            wait_for(lambda: fleet_epochs(env) == [seen[-1]] * WORKERS, timeout=RESYNC + SLACK, interval=0.1)
            assert served(workers) == {(seen[-1], "v2")}

        epoch, stderr = await one_more_bump_moves_everything(workers, env, tab, seen, "v3")
        if deploy_host == "ahead":
            assert epoch == seen[-1] + 1, "the fleet floor, not the clock, made it newer"
            assert stderr.count("\n") == 1
            assert f"has no release, but {WORKERS} process(es) report serving epoch {seen[-1]}" in stderr
        assert workers.warnings(FOLLOW_WARNING) == 0, "an empty store is never followed"
    finally:
        stop(workers)


# -- Redis restarted from an older snapshot ------------------------------------------------


async def test_redis_restarted_from_an_older_snapshot(
    private_redis: RedisServer, app_name: str, workers_log: Path, context: Any
) -> None:
    """SAVE, bump, kill -9, restart from that RDB: workers follow the store back, then one bump moves all."""
    env = {"SPA_VERSION_URL": private_redis.url, "SPA_VERSION_APP": app_name}
    first = int(cli_bump(env, "v1")[0]["epoch"])
    assert private_redis.command("SAVE") == "OK"
    snapshot = Path(private_redis.dir) / "dump.rdb"
    assert snapshot.exists()
    workers: Workers | None = Workers(env, workers_log).start()
    try:
        assert workers is not None
        second = int(cli_bump(env, "v2")[0]["epoch"])
        await asyncio.to_thread(workers.wait_all_serve, second, "v2", RESYNC + SLACK)
        tab = await open_tab(context, workers.url, second)

        private_redis.stop()
        private_redis.start()  # loads dump.rdb: epoch `first`, label v1
        assert json.loads(run_cli("--json", "get", env=env).stdout)["epoch"] == first

        # The store's truth is an older record: each worker follows it after a confirming
        # re-read, once, with one warning naming both records.
        await asyncio.to_thread(workers.wait_all_serve, first, "v1", RESYNC + SLACK)
        assert workers.warnings(FOLLOW_WARNING) == WORKERS
        assert workers.warnings(f"(epoch {first}, label v1) differs from the one served here (epoch {second}")

        await one_more_bump_moves_everything(workers, env, tab, [first, second], "v3")
        assert workers.warnings(FOLLOW_WARNING) == WORKERS, "moving forward is not a warning"
    finally:
        stop(workers)


# -- Sentinel fails over to a replica that missed the last bump -------------------------


@pytest.fixture
def sentinel() -> Iterator[SentinelSetup]:
    with sentinel_setup() as setup:
        yield setup


async def test_sentinel_failover_to_a_replica_that_missed_the_last_bump(
    sentinel: SentinelSetup, app_name: str, workers_log: Path, context: Any
) -> None:
    """The replica is down for the last bump, the master dies, Sentinel promotes the replica.

    The replica comes back from its own snapshot (taken before the bump) while the master
    is gone, so it never hears of that bump: the new master's record is the older one.
    """
    env = {"SPA_VERSION_URL": sentinel.url(socket_timeout=2), "SPA_VERSION_APP": app_name}
    first = int(cli_bump(env, "v1")[0]["epoch"])
    replica = sentinel.replica
    epoch_key = f"spa-version:{{{app_name}}}:epoch"
    wait_for(lambda: f"\r\n{first}\r\n" in replica.command("GET", epoch_key), timeout=10)
    workers: Workers | None = Workers(env, workers_log).start()
    try:
        assert workers is not None
        assert replica.command("SAVE") == "OK"
        replica.stop()  # kill -9; it restarts from that snapshot below
        second = int(cli_bump(env, "v2")[0]["epoch"])
        await asyncio.to_thread(workers.wait_all_serve, second, "v2", RESYNC + SLACK)
        tab = await open_tab(context, workers.url, second)

        sentinel.master.stop()  # kill -9: the only copy of the last bump is gone
        replica.start()  # from its snapshot, a replica of the dead master
        sentinel.failover()
        wait_for(lambda: sentinel.master_port() == replica.port, timeout=30, interval=0.1)
        assert json.loads(run_cli("--json", "get", env=env).stdout)["epoch"] == first

        # Reconnecting through Sentinel takes up to one backoff (capped at the resync
        # interval), then the re-read and its confirmation.
        await asyncio.to_thread(workers.wait_all_serve, first, "v1", 2 * RESYNC + SLACK)
        assert workers.warnings(FOLLOW_WARNING) == WORKERS

        await one_more_bump_moves_everything(workers, env, tab, [first, second], "v3")
    finally:
        stop(workers)


# -- the file store's directory deleted -----------------------------------------------------


async def test_file_store_directory_deleted(
    tmp_path: Path, app_name: str, workers_log: Path, context: Any
) -> None:
    """``rm -rf`` of the store directory (releases, lock, fleet): workers keep serving; one bump moves all."""
    directory = tmp_path / "store"
    env = {"SPA_VERSION_URL": f"file://{directory}", "SPA_VERSION_APP": app_name}
    first = int(cli_bump(env, "v1")[0]["epoch"])
    workers: Workers | None = Workers(env, workers_log).start()
    try:
        assert workers is not None
        second = int(cli_bump(env, "v2")[0]["epoch"])
        await asyncio.to_thread(workers.wait_all_serve, second, "v2", RESYNC + SLACK)
        tab = await open_tab(context, workers.url, second)

        # As `rm -rf` would, but in one step: the workers keep writing heartbeats into
        # the directory, so deleting it file by file races with them (rmdir: not empty).
        gone = directory.with_name("store-deleted")
        directory.rename(gone)
        shutil.rmtree(gone)
        result = run_cli("get", env=env)
        assert result.returncode == 0 and "has no release" in result.stdout, result
        # The workers keep what they hold, and report it in heartbeats written anew.
        wait_for(lambda: fleet_epochs(env) == [second] * WORKERS, timeout=RESYNC + SLACK, interval=0.1)
        assert served(workers) == {(second, "v2")}

        await one_more_bump_moves_everything(workers, env, tab, [first, second], "v3")
        assert workers.warnings(FOLLOW_WARNING) == 0
    finally:
        stop(workers)


# -- an app moved from file:// to redis:// ------------------------------------------------


async def test_app_moved_from_the_file_store_to_redis(
    tmp_path: Path, private_redis: RedisServer, app_name: str, workers_log: Path, context: Any
) -> None:
    """The app is redeployed on an empty Redis (same origin); the tab from the file-store days moves too."""
    file_env = {"SPA_VERSION_URL": f"file://{tmp_path / 'store'}", "SPA_VERSION_APP": app_name}
    redis_env = {"SPA_VERSION_URL": private_redis.url, "SPA_VERSION_APP": app_name}
    seen = [int(cli_bump(file_env, label)[0]["epoch"]) for label in ("v1", "v2")]
    workers: Workers | None = Workers(file_env, workers_log).start()
    try:
        assert workers is not None
        await asyncio.to_thread(workers.wait_all_serve, seen[-1], "v2", RESYNC + SLACK)
        tab = await open_tab(context, workers.url, seen[-1])

        port = workers.port
        workers.stop()
        workers = None
        workers = Workers(redis_env, workers_log, port=port).start()
        # Nothing in Redis yet: the unreleased value (docs/protocol.md, "Before the first
        # release"), which the tab of the file-store days sees and ignores (no reload).
        unreleased = "0; label=unreleased; policy=next-navigation"
        assert get(workers.url, "/__pid")[1] == unreleased
        await tab.mark()
        await tab.refresh(expect_epoch=0)
        assert await tab.latest_epoch() is None and await tab.same_document()
        assert await tab.baseline() == seen[-1]

        await one_more_bump_moves_everything(workers, redis_env, tab, seen, "v3")
    finally:
        stop(workers)
